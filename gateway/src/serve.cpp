// serve(): start, wait for a stop signal, stop in order.
#include "cairn/gateway/serve.hpp"

#include <signal.h>

#include <cstdio>
#include <exception>

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

int serve(Runtime& runtime, GatewayOptions options, const std::string& banner) {
  try {
    std::string host = options.host;
    Gateway gateway(runtime, std::move(options));
    gateway.start();
    std::printf("cairn listening on http://%s:%u %s\n", host.c_str(),
                static_cast<unsigned>(gateway.port()),
                banner.empty() ? "(SIGINT or SIGTERM stops it)" : banner.c_str());
    std::fflush(stdout);

    auto set = stop_signals();
    int signal_number = 0;
    sigwait(&set, &signal_number);
    spdlog::info("signal {}: stopping", signal_number);
    gateway.stop_accepting();
    runtime.shutdown();  // open batches commit and answer; databases close
    gateway.stop();
    spdlog::info("stopped");
    return 0;
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
}

}  // namespace cairn::gateway
