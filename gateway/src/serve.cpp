// serve(): start, wait for a stop signal, stop in order.
#include "cairn/gateway/serve.hpp"

#include <signal.h>

#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <string>

#include <spdlog/spdlog.h>

namespace cairn::gateway {
namespace {

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

void block_stop_signals() {
  auto set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

namespace {

int serve_both(Runtime& runtime, GatewayOptions options, std::optional<GatewayOptions> admin_options,
               const std::string& banner) {
  try {
    std::string host = options.host;
    Gateway gateway(runtime, std::move(options));
    std::unique_ptr<Gateway> admin;
    std::string admin_host;
    if (admin_options) {
      admin_host = admin_options->host;
      admin_options->extra_metrics = [&gateway](metrics::TextWriter& out) { gateway.write_metrics(out); };
      admin = std::make_unique<Gateway>(runtime, std::move(*admin_options));
    }
    gateway.start();
    if (admin) admin->start();
    std::string lines = "cairn listening on http://" + host + ":" + std::to_string(gateway.port()) + " " +
                        (banner.empty() ? "(SIGINT or SIGTERM stops it)" : banner) + "\n";
    if (admin) {
      lines += "cairn admin API on http://" + admin_host + ":" + std::to_string(admin->port()) +
               " (bearer token from --admin-token-file)\n";
    }
    std::fputs(lines.c_str(), stdout);
    std::fflush(stdout);

    auto set = stop_signals();
    int signal_number = 0;
    sigwait(&set, &signal_number);
    spdlog::info("signal {}: stopping", signal_number);
    gateway.stop_accepting();
    if (admin) admin->stop_accepting();
    runtime.shutdown();  // open batches commit and answer; databases close
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
  return serve_both(runtime, std::move(options), std::nullopt, banner);
}

int serve(Runtime& runtime, GatewayOptions options, GatewayOptions admin, const std::string& banner) {
  return serve_both(runtime, std::move(options), std::move(admin), banner);
}

}  // namespace cairn::gateway
