// HaproxyProcess: a real HAProxy (Debian's `haproxy`) for a test, in the foreground, with the
// config the test gives; stopped by PID.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "child_process.hpp"
#include "temp_dir.hpp"

extern char** environ;

namespace cairn::testing {

class HaproxyProcess {
 public:
  // Starts `haproxy -db -f <config>`; `ready` is asked until it says yes (20 s at most).
  HaproxyProcess(const std::string& config, const std::function<bool()>& ready) {
    auto file = dir_.path() / "haproxy.cfg";
    std::ofstream(file) << config;
    std::vector<std::string> args{CAIRN_HAPROXY_PATH, "-db", "-f", file.string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    std::string log_path = (dir_.path() / "haproxy.log").string();
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error(std::string("cannot start ") + CAIRN_HAPROXY_PATH);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        throw std::runtime_error("haproxy exited; its log: " + log());
      }
      if (ready()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    stop();
    throw std::runtime_error("haproxy did not become ready; its log: " + log());
  }
  ~HaproxyProcess() { stop(); }
  HaproxyProcess(const HaproxyProcess&) = delete;
  HaproxyProcess& operator=(const HaproxyProcess&) = delete;

  void stop() {
    if (pid_ <= 0) return;
    stop_child(pid_);
    pid_ = 0;
  }
  std::string log() const {
    std::ifstream in(dir_.path() / "haproxy.log");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

 private:
  TempDir dir_;
  pid_t pid_ = 0;
};

}  // namespace cairn::testing
