// ServerProcess: runs the real cairn-server on 127.0.0.1 port 0 and reads back its port;
// stops it by its PID (SIGTERM, then SIGKILL after a deadline).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "child_process.hpp"

extern char** environ;

namespace cairn::testing {

// What systemd would hand the server: listening sockets (at descriptors 3, 4, ... with
// LISTEN_FDS, LISTEN_FDNAMES = `names`, and LISTEN_PID set to the server's own PID by a
// shell just before it execs the server), and more environment (NAME=VALUE).
struct PassedToServer {
  std::vector<int> fds = {};
  std::string names = {};
  std::vector<std::string> env = {};
  bool admin = false;  // an admin socket is among them: read the admin line too
  std::string stderr_file = {};  // set: the server's stderr (its log) goes to this file
};

class ServerProcess {
 public:
  using Passed = PassedToServer;
#ifdef CAIRN_SERVER_PATH
  // The test suite's server: the built cairn-server on data_dir, then `extra` flags.
  explicit ServerProcess(const std::filesystem::path& data_dir, std::vector<std::string> extra = {},
                         const Passed& passed = {})
      : ServerProcess(with_defaults(data_dir, std::move(extra)), passed) {}
#endif

  // Runs args[0] with `args`; it must print "listening on http://127.0.0.1:PORT " on stdout.
  explicit ServerProcess(std::vector<std::string> args, const Passed& passed = {}) {
    if (!passed.fds.empty()) {
      args.insert(args.begin(), {"/bin/sh", "-c", "export LISTEN_PID=$$; exec \"$0\" \"$@\""});
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_text;
    for (char** e = environ; *e != nullptr; ++e) env_text.emplace_back(*e);
    if (!passed.fds.empty()) {
      env_text.push_back("LISTEN_FDS=" + std::to_string(passed.fds.size()));
      if (!passed.names.empty()) env_text.push_back("LISTEN_FDNAMES=" + passed.names);
    }
    env_text.insert(env_text.end(), passed.env.begin(), passed.env.end());
    std::vector<char*> envp;
    for (auto& e : env_text) envp.push_back(e.data());
    envp.push_back(nullptr);
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    if (!passed.stderr_file.empty()) {
      posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, passed.stderr_file.c_str(),
                                       O_WRONLY | O_CREAT | O_TRUNC, 0644);
    }
    // Out of the way first, so no passed descriptor is overwritten by another's dup2.
    std::vector<int> high;
    for (std::size_t i = 0; i < passed.fds.size(); ++i) {
      high.push_back(::fcntl(passed.fds[i], F_DUPFD_CLOEXEC, 200));
      posix_spawn_file_actions_adddup2(&actions, high.back(), static_cast<int>(3 + i));
    }
    int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    for (int fd : high) ::close(fd);
    ::close(out[1]);
    if (rc != 0) {
      ::close(out[0]);
      throw std::runtime_error("cannot start " + args[0]);
    }
    bool admin = passed.admin || std::find(args.begin(), args.end(), "--admin-port") != args.end();
    port_ = read_port(out[0], admin);
    ::close(out[0]);
  }
  ~ServerProcess() { stop(); }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  std::uint16_t port() const { return port_; }
  // The admin listener's port (0 unless the server was started with --admin-port).
  std::uint16_t admin_port() const { return admin_port_; }
  pid_t pid() const { return pid_; }

  // SIGTERM and wait (10 s, then SIGKILL). Returns the exit status, or -1 if killed.
  int stop() {
    if (pid_ <= 0) return exit_status_;
    auto status = stop_child(pid_);
    pid_ = 0;
    return exit_status_ = status.value_or(-1);
  }

 private:
#ifdef CAIRN_SERVER_PATH
  static std::vector<std::string> with_defaults(const std::filesystem::path& data_dir,
                                                std::vector<std::string> extra) {
    std::vector<std::string> args{CAIRN_SERVER_PATH, "--host",       "127.0.0.1",
                                  "--port",          "0",            "--data-dir",
                                  data_dir.string(), "--public-dir", CAIRN_PUBLIC_DIR,
                                  "--threads",       "4",            "--log-level", "warn"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
#endif

  // The port after `marker` once the text holds it whole, else 0.
  static std::uint16_t port_after(const std::string& text, const std::string& marker) {
    auto at = text.find(marker);
    if (at == std::string::npos || text.find(' ', at + marker.size()) == std::string::npos) return 0;
    return static_cast<std::uint16_t>(std::stoi(text.substr(at + marker.size())));
  }

  std::uint16_t read_port(int fd, bool admin) {
    std::string text;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[256];
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      text.append(buf, static_cast<std::size_t>(n));
      auto port = port_after(text, "cairn listening on http://127.0.0.1:");
      if (port == 0) port = port_after(text, "cairn listening on https://127.0.0.1:");
      if (port != 0 && admin) {
        admin_port_ = port_after(text, "admin API on http://127.0.0.1:");
        if (admin_port_ == 0) admin_port_ = port_after(text, "admin API on https://127.0.0.1:");
      }
      if (port != 0 && (!admin || admin_port_ != 0)) return port;
    }
    stop();
    throw std::runtime_error("the server did not report its port; it printed: " + text);
  }

  pid_t pid_ = 0;
  std::uint16_t port_ = 0;
  std::uint16_t admin_port_ = 0;
  int exit_status_ = 0;
};

}  // namespace cairn::testing
