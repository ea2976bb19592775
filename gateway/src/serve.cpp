// serve(): start, wait for a stop signal, stop in order.
#include "cairn/gateway/serve.hpp"

#include <signal.h>

#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <spdlog/spdlog.h>

#include "cairn/cli/version.hpp"
#include "systemd.hpp"

namespace cairn::gateway {
namespace {

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);  // not a stop: TLS certificates are read again
  return set;
}

}  // namespace

void block_stop_signals() {
  auto set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

namespace {

int serve_all(Runtime& runtime, GatewayOptions options, ServeExtras extras, const std::string& banner) {
  try {
    Gateway gateway(runtime, std::move(options));
    std::unique_ptr<Gateway> admin;
    std::unique_ptr<Gateway> internal;
    if (extras.internal) {
      internal = std::make_unique<Gateway>(runtime, std::move(*extras.internal));
      internal->start();
      if (extras.internal_started) extras.internal_started(internal->port());
    }
    if (extras.admin) {
      extras.admin->extra_metrics = [&gateway, &internal, more = extras.metrics](metrics::TextWriter& out) {
        out.family("cairn_build_info", "gauge", "1, labelled with this program's cairn version, git commit and build type");
        out.sample("cairn_build_info",
                   {{"version", CAIRN_VERSION}, {"commit", CAIRN_GIT_COMMIT}, {"build_type", CAIRN_BUILD_TYPE}}, 1.0);
        gateway.write_metrics(out);
        if (internal) internal->write_metrics(out);
        if (more) more(out);
      };
      admin = std::make_unique<Gateway>(runtime, std::move(*extras.admin));
    }
    gateway.start();
    if (admin) admin->start();
    auto where = [](const Gateway& g) {
      auto address = g.address();
      if (address.find(':') != std::string::npos) address = "[" + address + "]";
      return std::string(g.tls() ? "https://" : "http://") + address + ":" + std::to_string(g.port());
    };
    std::string lines = "cairn listening on " + where(gateway) + " " +
                        (banner.empty() ? "(SIGINT or SIGTERM stops it)" : banner) + "\n";
    if (admin) {
      lines += "cairn admin API on " + where(*admin) +
               " (bearer token from --admin-token-file)\n";
    }
    if (internal) {
      lines += "cairn cluster listener on " + where(*internal) + "\n";
    }
    std::fputs(lines.c_str(), stdout);
    std::fflush(stdout);
    // systemd (Type=notify): the listeners accept and the runtime runs.
    systemd::notify("READY=1\nSTATUS=serving on " + where(gateway));
    auto set = stop_signals();
    int signal_number = 0;
    {
      systemd::Watchdog watchdog([&gateway](std::chrono::milliseconds limit) { return gateway.responsive(limit); });
      for (;;) {
        sigwait(&set, &signal_number);
        if (signal_number != SIGHUP) break;
        // SIGHUP: new certificates for new connections; open ones keep theirs.
        bool any = false;
        for (Gateway* g : {&gateway, admin.get()}) {
          if (g == nullptr || !g->tls()) continue;
          any = true;
          auto problem = g->reload_tls();
          if (problem.empty()) spdlog::info("SIGHUP: TLS certificate read again for {}", where(*g));
          else spdlog::error("SIGHUP: {}; {} keeps its certificate", problem, where(*g));
        }
        if (!any) spdlog::info("SIGHUP: no TLS listener, nothing to read again");
        if (extras.reload) {
          try {
            extras.reload();
          } catch (const std::exception& e) {
            spdlog::error("SIGHUP: {}", e.what());
          }
        }
      }
    }
    systemd::notify("STOPPING=1\nSTATUS=stopping (signal " + std::to_string(signal_number) + ")");
    spdlog::info("signal {}: stopping", signal_number);
    gateway.set_draining();
    if (admin) admin->set_draining();
    if (internal) internal->set_draining();
    if (extras.drain_period.count() > 0) {
      spdlog::info("draining for {} ms (/readyz answers 503) before stopping", extras.drain_period.count());
      std::this_thread::sleep_for(extras.drain_period);
    }
    if (extras.leaving) extras.leaving();
    gateway.stop_accepting();
    if (admin) admin->stop_accepting();
    if (internal) internal->stop_accepting();
    runtime.shutdown();  // open batches commit and answer; databases close
    if (extras.stopped) extras.stopped();
    if (internal) internal->stop();
    if (admin) admin->stop();
    gateway.stop();
    spdlog::info("stopped");
    return 0;
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
}

}  // namespace

int serve(Runtime& runtime, GatewayOptions options, const std::string& banner) {
  return serve_all(runtime, std::move(options), ServeExtras{}, banner);
}

int serve(Runtime& runtime, GatewayOptions options, GatewayOptions admin, const std::string& banner) {
  ServeExtras extras;
  extras.admin = std::move(admin);
  return serve_all(runtime, std::move(options), std::move(extras), banner);
}

int serve(Runtime& runtime, GatewayOptions options, ServeExtras extras, const std::string& banner) {
  return serve_all(runtime, std::move(options), std::move(extras), banner);
}

}  // namespace cairn::gateway
