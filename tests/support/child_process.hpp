// Small helpers of the tests that start processes and listen on loopback: a socket bound to a
// free loopback port, and stopping a child by its PID.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <thread>

namespace cairn::testing {

// A TCP socket bound to 127.0.0.1 on a port the kernel chose (not listening yet); `port` is
// set. The caller owns the descriptor. Throws std::runtime_error.
inline int bind_loopback(std::uint16_t& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot bind a loopback port");
  }
  port = ntohs(address.sin_port);
  return fd;
}

// Stops child `pid`: SIGTERM, then SIGKILL after `grace`. Its exit status, or nullopt if it
// had to be killed or did not exit normally.
// How long a child stopped with SIGTERM may take to exit cleanly before it is killed. Under
// AddressSanitizer (the Sanitize build) every process is several times slower.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr std::chrono::seconds stop_grace{30};
#else
inline constexpr std::chrono::seconds stop_grace{10};
#endif

inline std::optional<int> stop_child(pid_t pid, std::chrono::seconds grace = stop_grace) {
  ::kill(pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!WIFEXITED(status)) return std::nullopt;
  return WEXITSTATUS(status);
}

}  // namespace cairn::testing
