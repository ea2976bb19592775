// RawSocket: a plain TCP connection to 127.0.0.1 for tests that must misbehave (half-sent
// headers, pipelined requests, oversized lines). Every read has a deadline.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace cairn::testing {

class RawSocket {
 public:
  explicit RawSocket(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket() failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      throw std::runtime_error("connect() failed");
    }
  }
  ~RawSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;

  // False if the peer has closed (or reset) the connection.
  bool send(const std::string& bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }

  // Reads until the peer closes the connection or `limit` passes; closed() tells which.
  std::string read_until_closed(std::chrono::milliseconds limit) {
    return read_while([](const std::string&) { return true; }, limit);
  }

  // Reads until `text` holds `count` complete responses, the peer closes, or `limit` passes.
  // Assumes every response has a Content-Length (cairn's do).
  std::string read_responses(std::size_t count, std::chrono::milliseconds limit) {
    return read_while([count](const std::string& text) { return complete_responses(text) < count; },
                      limit);
  }

  bool closed() const { return closed_; }

  // How many complete responses (header + Content-Length bytes of body) `text` starts with.
  static std::size_t complete_responses(const std::string& text) {
    std::size_t at = 0;
    std::size_t count = 0;
    while (true) {
      auto end = text.find("\r\n\r\n", at);
      if (end == std::string::npos) return count;
      auto header = text.substr(at, end - at);
      std::size_t length = 0;
      auto cl = header.find("Content-Length: ");
      if (cl != std::string::npos) length = std::stoul(header.substr(cl + 16));
      if (text.size() < end + 4 + length) return count;
      at = end + 4 + length;
      ++count;
    }
  }

 private:
  template <class More>
  std::string read_while(More more, std::chrono::milliseconds limit) {
    std::string text;
    auto end = std::chrono::steady_clock::now() + limit;
    while (more(text)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[8192];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      text.append(buf, static_cast<std::size_t>(n));
    }
    return text;
  }

  int fd_ = -1;
  bool closed_ = false;
};

// The status code of the HTTP response at the start of `text` (0 if there is none).
inline int status_of(const std::string& text) {
  if (text.rfind("HTTP/1.1 ", 0) != 0 || text.size() < 12) return 0;
  return std::stoi(text.substr(9, 3));
}

}  // namespace cairn::testing
