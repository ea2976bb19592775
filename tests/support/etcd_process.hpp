// EtcdProcess: a real etcd (Debian's etcd-server) for a test, on two free loopback ports and
// its own data directory; stopped by its PID. It can be stopped and started again on the same
// ports and data (a restart).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cairn/cluster/etcd.hpp"
#include "child_process.hpp"
#include "temp_dir.hpp"

extern char** environ;

namespace cairn::testing {

// A loopback port free right now (the kernel's choice), for a program that cannot listen on
// port 0 and say which port it got.
inline std::uint16_t free_loopback_port() {
  std::uint16_t port = 0;
  ::close(bind_loopback(port));
  return port;
}

// A loopback port that refuses connections for as long as this lives: bound, never listening,
// so no other process can take it meanwhile.
class RefusingPort {
 public:
  RefusingPort() { fd_ = bind_loopback(port_); }
  ~RefusingPort() { ::close(fd_); }
  RefusingPort(const RefusingPort&) = delete;
  RefusingPort& operator=(const RefusingPort&) = delete;
  cluster::Endpoint endpoint() const { return {"127.0.0.1", std::to_string(port_)}; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

class EtcdProcess {
 public:
  EtcdProcess() {
    // Another process may take a port between our look and etcd's bind: try afresh.
    for (int attempt = 0;; ++attempt) {
      client_port_ = free_loopback_port();
      peer_port_ = free_loopback_port();
      if (start_once()) return;
      if (attempt == 2) throw std::runtime_error("etcd did not start; its log: " + log());
    }
  }
  ~EtcdProcess() { stop(); }
  EtcdProcess(const EtcdProcess&) = delete;
  EtcdProcess& operator=(const EtcdProcess&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(client_port_); }
  cluster::Endpoint endpoint() const { return {"127.0.0.1", std::to_string(client_port_)}; }
  std::uint16_t port() const { return client_port_; }
  pid_t pid() const { return pid_; }

  // SIGTERM, then SIGKILL after 10 s.
  void stop() {
    if (pid_ <= 0) return;
    stop_child(pid_);
    pid_ = 0;
  }
  // Starts it again on the same ports and data.
  void restart() {
    stop();
    if (!start_once()) throw std::runtime_error("etcd did not restart; its log: " + log());
  }

  std::string log() const {
    std::ifstream in(dir_.path() / "etcd.log");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.size() > 4000 ? text.substr(text.size() - 4000) : text;
  }

 private:
  bool start_once() {
    std::string client = "http://127.0.0.1:" + std::to_string(client_port_);
    std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
    std::vector<std::string> args{CAIRN_ETCD_PATH,
                                  "--name", "test",
                                  "--data-dir", (dir_.path() / "data").string(),
                                  "--listen-client-urls", client,
                                  "--advertise-client-urls", client,
                                  "--listen-peer-urls", peer,
                                  "--initial-advertise-peer-urls", peer,
                                  "--initial-cluster", "test=" + peer,
                                  "--log-level", "warn"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    std::string log_path = (dir_.path() / "etcd.log").string();
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error(std::string("cannot start ") + CAIRN_ETCD_PATH);
    // Ready when it answers a read.
    cluster::EtcdClient probe({endpoint()}, std::chrono::milliseconds(500));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // it exited (a port taken?)
        pid_ = 0;
        return false;
      }
      if (probe.range("probe").ok()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    stop();
    return false;
  }

  TempDir dir_;
  std::uint16_t client_port_ = 0;
  std::uint16_t peer_port_ = 0;
  pid_t pid_ = 0;
};

}  // namespace cairn::testing
