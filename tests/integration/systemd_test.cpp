// cairn-server under systemd: socket activation (listening sockets passed by the service
// manager, named or not), the notify protocol (READY=1 once it serves, STOPPING=1 on the
// stop signal, WATCHDOG=1 pings), the admin token from $CREDENTIALS_DIRECTORY, and a restart
// under Debian's systemd-socket-activate that refuses no connection and loses no booking.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "child_process.hpp"
#include "clients.hpp"
#include "server_process.hpp"
#include "temp_dir.hpp"

using namespace cairn::testing;
using namespace std::chrono_literals;

namespace {

// A listening socket on 127.0.0.1, as a .socket unit makes it.
int listening_socket(std::uint16_t& port) {
  int fd = bind_loopback(port);
  if (::listen(fd, 128) != 0) throw std::runtime_error("listen failed");
  return fd;
}

// The service manager's end of the notify protocol: a datagram socket at a path.
class NotifySocket {
 public:
  explicit NotifySocket(const std::filesystem::path& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      throw std::runtime_error("cannot bind the notify socket");
    }
  }
  ~NotifySocket() { ::close(fd_); }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;
  const std::filesystem::path& path() const { return path_; }

  // The next message, or nullopt after `limit`.
  std::optional<std::string> next(std::chrono::milliseconds limit) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(limit.count())) <= 0) return std::nullopt;
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }
  // Waits for a message that contains `text`; every message seen is appended to `seen`.
  bool wait_for(const std::string& text, std::chrono::milliseconds limit, std::vector<std::string>& seen) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
      auto message = next(std::max(left, 1ms));
      if (!message) continue;
      seen.push_back(*message);
      if (message->find(text) != std::string::npos) return true;
    }
    return false;
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

// One booking over a fresh connection (Connection: close), as a plain socket so that a
// refused connection is told apart from everything else.
struct Attempt {
  enum Outcome { booked, retryable, refused, no_answer, failed } outcome = failed;
  std::string detail;
};
Attempt book_once(std::uint16_t port, const std::string& flight, const std::string& seat, const std::string& name) {
  Attempt out;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    out.outcome = errno == ECONNREFUSED ? Attempt::refused : Attempt::failed;
    out.detail = std::strerror(errno);
    ::close(fd);
    return out;
  }
  std::string body = R"({"seatNumber":")" + seat + R"(","name":")" + name + R"("})";
  std::string request = "POST /book-seat?flightId=" + flight +
                        " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n"
                        "Content-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body;
  std::string reply;
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
    auto end = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < end) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      reply.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  out.detail = reply.substr(0, 300);
  if (reply.rfind("HTTP/1.1 ", 0) != 0) {
    out.outcome = Attempt::no_answer;
    return out;
  }
  int status = std::stoi(reply.substr(9, 3));
  if (status == 200) out.outcome = Attempt::booked;
  else if (status == 503 && reply.find("\"retryable\":true") != std::string::npos) out.outcome = Attempt::retryable;
  else out.outcome = Attempt::failed;
  return out;
}

std::optional<pid_t> read_pid(const std::filesystem::path& file) {
  std::ifstream in(file);
  long pid = 0;
  if (in >> pid && pid > 0) return static_cast<pid_t>(pid);
  return std::nullopt;
}

}  // namespace

TEST_CASE("socket activation: named sockets passed by systemd are served, the admin token comes from a credential") {
  TempDir dir;
  std::uint16_t public_port = 0;
  std::uint16_t admin_port = 0;
  int public_fd = listening_socket(public_port);
  int admin_fd = listening_socket(admin_port);
  auto credentials = dir.path() / "credentials";
  std::filesystem::create_directories(credentials);
  std::ofstream(credentials / "admin-token") << "a-token-from-systemd-credentials\n";
  // In the other order than the roles: the names decide.
  ServerProcess server(dir.path() / "data", {},
                       {.fds = {admin_fd, public_fd},
                        .names = "admin:public",
                        .env = {"CREDENTIALS_DIRECTORY=" + credentials.string()},
                        .admin = true});
  CHECK(server.port() == public_port);
  CHECK(server.admin_port() == admin_port);
  CHECK(http_post(public_port, "/book-seat?flightId=SD1", R"({"seatNumber":"2B","name":"Sam"})").status == 200);
  HttpClient admin(admin_port);
  admin.header("Authorization", "Bearer a-token-from-systemd-credentials");
  CHECK(admin.request(http::verb::get, "/metrics").status == 200);
  CHECK(server.stop() == 0);
  ::close(public_fd);
  ::close(admin_fd);
}

TEST_CASE("socket activation: an unnamed socket is the public one, and a socket that does not listen is refused with exit 2") {
  TempDir dir;
  std::uint16_t port = 0;
  int fd = listening_socket(port);
  {
    ServerProcess server(dir.path() / "data", {}, {.fds = {fd}, .names = "cairn.socket"});
    CHECK(server.port() == port);
    CHECK(http_get(port, "/seats?flightId=SD2").status == 200);
  }
  ::close(fd);
  // Once sockets are named, a socket with another name is refused (it must not become the
  // admin API by its place).
  std::uint16_t p1 = 0;
  std::uint16_t p2 = 0;
  int named = listening_socket(p1);
  int stray = listening_socket(p2);
  CHECK_THROWS_WITH_AS(ServerProcess(dir.path() / "data", {}, {.fds = {named, stray}, .names = "public:metrics"}),
                       doctest::Contains("did not report its port"), std::runtime_error);
  ::close(named);
  ::close(stray);
  std::uint16_t unused = 0;
  int not_listening = bind_loopback(unused);
  CHECK_THROWS_WITH_AS(ServerProcess(dir.path() / "data", {}, {.fds = {not_listening}}),
                       doctest::Contains("did not report its port"), std::runtime_error);
  ::close(not_listening);
}

TEST_CASE("systemd notify: READY=1 once the server answers, WATCHDOG=1 pings, STOPPING=1 on SIGTERM") {
  TempDir dir;
  NotifySocket notify(dir.path() / "notify");
  ServerProcess server(dir.path() / "data", {},
                       {.env = {"NOTIFY_SOCKET=" + notify.path().string(), "WATCHDOG_USEC=200000"}});
  std::vector<std::string> seen;
  REQUIRE(notify.wait_for("READY=1", 10s, seen));
  CHECK(http_get(server.port(), "/livez").status == 200);
  int pings = 0;
  auto end = std::chrono::steady_clock::now() + 1s;
  while (std::chrono::steady_clock::now() < end) {
    auto message = notify.next(100ms);
    if (message && *message == "WATCHDOG=1") ++pings;
  }
  CHECK(pings >= 4);  // every 100 ms (half of 200 ms)
  REQUIRE(::kill(server.pid(), SIGTERM) == 0);
  seen.clear();
  CHECK(notify.wait_for("STOPPING=1", 10s, seen));
  CHECK(server.stop() == 0);
}

TEST_CASE(
    "socket activation: a restart under systemd-socket-activate refuses no connection and loses no "
    "booking") {
  TempDir dir;
  std::uint16_t port = 0;
  ::close(bind_loopback(port));  // a free port for systemd-socket-activate to listen on
  auto pid_file = dir.path() / "server.pid";
  // The wrapper plays systemd's Restart=: the server runs twice on the one listening socket.
  std::vector<std::string> args{"/usr/bin/systemd-socket-activate", "-l", "127.0.0.1:" + std::to_string(port),
                                "--fdname=public"};
  for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS"}) {
    if (std::getenv(name) != nullptr) args.push_back(std::string("-E") + name);
  }
  std::vector<std::string> server{CAIRN_SERVER_PATH, "--data-dir", (dir.path() / "data").string(),
                                  "--threads", "2", "--log-level", "warn"};
  args.insert(args.end(), {"/bin/bash", "-c",
                           "for i in 1 2; do (echo $BASHPID > \"$0.tmp\" && mv \"$0.tmp\" \"$0\"; "
                           "export LISTEN_PID=$BASHPID; exec \"$@\" >/dev/null); done",
                           pid_file.string()});
  args.insert(args.end(), server.begin(), server.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t wrapper = 0;
  REQUIRE(posix_spawn(&wrapper, argv[0], nullptr, nullptr, argv.data(), environ) == 0);
  struct Reap {
    pid_t wrapper;
    const std::filesystem::path& pid_file;
    ~Reap() {
      if (auto pid = read_pid(pid_file)) ::kill(*pid, SIGKILL);
      stop_child(wrapper, std::chrono::seconds(5));
    }
  } reap{wrapper, pid_file};
  // systemd-socket-activate listens at once and starts the server at the first connection.
  for (int i = 0; i < 100; ++i) {
    int probe = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool up = ::connect(probe, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    ::close(probe);
    if (up) break;
    std::this_thread::sleep_for(50ms);
  }
  REQUIRE(book_once(port, "SR0", "1A", "first").outcome == Attempt::booked);
  auto first = read_pid(pid_file);
  REQUIRE(first);

  std::mutex mutex;
  std::map<std::string, std::string> booked;  // "flight/seat" -> name
  std::map<int, int> counts;
  std::vector<std::string> failures;
  std::atomic<int> next{0};
  std::atomic<bool> stop{false};
  auto client = [&] {
    for (;;) {
      int i = next.fetch_add(1);
      if (stop.load() || i >= 6000) return;
      std::string flight = "SR" + std::to_string(1 + i / 60);
      std::string seat = std::to_string(1 + (i % 60) / 6) + static_cast<char>('A' + i % 6);
      std::string name = "n" + std::to_string(i);
      auto got = book_once(port, flight, seat, name);
      std::lock_guard lock(mutex);
      ++counts[got.outcome];
      if (got.outcome == Attempt::booked) booked[flight + "/" + seat] = name;
      if (got.outcome != Attempt::booked && got.outcome != Attempt::retryable) failures.push_back(got.detail);
    }
  };
  std::thread a(client);
  std::thread b(client);
  auto wait_bookings = [&](int n) {
    auto end = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < end) {
      {
        std::lock_guard lock(mutex);
        if (counts[Attempt::booked] >= n) return true;
      }
      std::this_thread::sleep_for(10ms);
    }
    return false;
  };
  bool before = wait_bookings(100);
  REQUIRE(::kill(*first, SIGTERM) == 0);  // systemctl restart: the old process stops...
  std::optional<pid_t> second;
  for (int i = 0; i < 400 && (!second || *second == *first); ++i) {
    std::this_thread::sleep_for(25ms);
    second = read_pid(pid_file);
  }
  int at_restart = 0;
  {
    std::lock_guard lock(mutex);
    at_restart = counts[Attempt::booked];
  }
  bool after = wait_bookings(at_restart + 100);  // ...and the new one serves the queue
  stop.store(true);
  a.join();
  b.join();
  CHECK(before);
  CHECK(after);
  REQUIRE(second);
  CHECK(*second != *first);
  MESSAGE("restart: " << counts[Attempt::booked] << " booked, " << counts[Attempt::retryable]
                      << " answered retryable 503 (in flight at the stop), " << counts[Attempt::refused]
                      << " refused, " << counts[Attempt::no_answer] << " without an answer");
  CHECK(counts[Attempt::refused] == 0);
  CHECK(counts[Attempt::no_answer] == 0);
  CHECK(counts[Attempt::failed] == 0);
  for (const auto& failure : failures) INFO(failure);
  CHECK(failures.empty());
  // Every acknowledged booking is there after the restart.
  std::map<std::string, nlohmann::json> seats;
  std::size_t missing = 0;
  for (const auto& [key, name] : booked) {
    auto flight = key.substr(0, key.find('/'));
    auto seat = key.substr(key.find('/') + 1);
    if (!seats.count(flight)) {
      HttpClient http(port);
      seats[flight] = nlohmann::json::parse(http.request(http::verb::get, "/seats?flightId=" + flight).body);
    }
    bool found = false;
    for (const auto& s : seats[flight]) {
      if (s.value("seatNumber", "") == seat && s.value("occupant", nlohmann::json()) == name) found = true;
    }
    if (!found) ++missing;
  }
  CHECK(missing == 0);
  if (auto pid = read_pid(pid_file)) CHECK(stop_child(*pid) == 0);
}
