#include "systemd.hpp"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include <spdlog/spdlog.h>

namespace cairn::gateway::systemd {

ListenFds listen_fds() {
  ListenFds out;
  char** names = nullptr;
  int n = sd_listen_fds_with_names(1, &names);
  if (n < 0) {
    out.problem = "systemd's LISTEN_FDS cannot be read: error " + std::to_string(-n);
    return out;
  }
  std::vector<std::string> labels;
  for (int i = 0; i < n; ++i) labels.emplace_back(names != nullptr && names[i] != nullptr ? names[i] : "");
  if (names != nullptr) {
    for (int i = 0; i < n; ++i) std::free(names[i]);
    std::free(static_cast<void*>(names));
  }
  if (n == 0) return out;
  int* roles[] = {&out.public_fd, &out.admin_fd, &out.cluster_fd};
  const char* role_names[] = {"public", "admin", "cluster"};
  auto role_of = [&](const std::string& label) {
    for (int r = 0; r < 3; ++r) {
      if (label == role_names[r]) return r;
    }
    return -1;
  };
  // Named sockets go by their names, and then every socket must have one (a socket meant
  // for something else must not become the admin API). With no name given at all, the
  // order decides: public, admin, cluster.
  bool any_named = false;
  for (const auto& label : labels) any_named = any_named || role_of(label) >= 0;
  if (!any_named && n > 3) {
    out.problem = "systemd passed " + std::to_string(n) +
                  " sockets; cairn serves at most three (FileDescriptorName= public, admin, cluster)";
    return out;
  }
  for (int i = 0; i < n; ++i) {
    int fd = SD_LISTEN_FDS_START + i;
    if (sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) <= 0) {
      out.problem = "the socket systemd passed as descriptor " + std::to_string(fd) + " (" + labels[i] +
                    ") is not a listening TCP socket";
      return out;
    }
    int r = any_named ? role_of(labels[i]) : i;
    if (r < 0) {
      out.problem = "systemd passed a socket named '" + labels[i] +
                    "'; name each of cairn's sockets public, admin or cluster (FileDescriptorName=)";
      return out;
    }
    if (*roles[r] >= 0) {
      out.problem = std::string("systemd passed two sockets named ") + role_names[r] +
                    "; cairn serves one socket each (ListenStream=[::]:PORT serves IPv4 and IPv6)";
      return out;
    }
    *roles[r] = fd;
  }
  return out;
}

void notify(const std::string& state) {
  int rc = sd_notify(0, state.c_str());
  if (rc < 0) spdlog::warn("systemd notify '{}': error {}", state.substr(0, state.find('\n')), -rc);
}

Watchdog::Watchdog(std::function<bool(std::chrono::milliseconds)> healthy) {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return;
  auto every = std::chrono::milliseconds(std::max<std::uint64_t>(1, usec / 2000));
  spdlog::info("systemd watchdog: a ping every {} ms", every.count());
  thread_ = std::thread([this, every, healthy = std::move(healthy)] {
    std::unique_lock lock(mutex_);
    auto next = std::chrono::steady_clock::now();
    while (!stop_) {
      next += every;
      lock.unlock();
      // A wedged I/O thread stops the pings: systemd then restarts the service. The check
      // takes at most half a period, so pings stay a period apart.
      bool ok = healthy(every / 2);
      if (ok) notify("WATCHDOG=1");
      else spdlog::error("systemd watchdog: the listener did not answer within {} ms: no ping", (every / 2).count());
      lock.lock();
      wake_.wait_until(lock, next, [this] { return stop_; });
    }
  });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace cairn::gateway::systemd
