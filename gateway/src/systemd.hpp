// What cairn-server does when systemd runs it (libsystemd's sd-daemon): listening sockets
// passed by socket activation, the notify protocol (READY=1, STOPPING=1, STATUS=) and the
// watchdog. Outside systemd (no LISTEN_FDS, no NOTIFY_SOCKET) every call here does nothing.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace cairn::gateway::systemd {

// The listening sockets systemd passed, by role: its FileDescriptorName= ("public", "admin"
// or "cluster"; then every socket must be so named, one per role), or, when none is so
// named, the order (public, admin, cluster). -1: none passed for that role.
struct ListenFds {
  int public_fd = -1;
  int admin_fd = -1;
  int cluster_fd = -1;
  std::string problem;  // set: the passed sockets cannot be used (exit 2 with it)
};
// Reads (and unsets) LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES once.
ListenFds listen_fds();

// Sends `state` (e.g. "READY=1\nSTATUS=serving") to the service manager, if there is one.
void notify(const std::string& state);

// While alive, sends WATCHDOG=1 every half of WatchdogSec= when `healthy` says so (systemd
// restarts the service when the pings stop). Does nothing unless the watchdog is enabled.
class Watchdog {
 public:
  explicit Watchdog(std::function<bool(std::chrono::milliseconds limit)> healthy);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace cairn::gateway::systemd
