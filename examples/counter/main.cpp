// cairn-counter: a whole cairn program. Registers Counter as COUNTER, serves every counter at
// /objects/COUNTER/<name>/value and /increment, and stops cleanly on SIGINT/SIGTERM.
#include <CLI/CLI.hpp>
#include <cairn/gateway/serve.hpp>
#include <cairn/runtime.hpp>
#include <exception>
#include <spdlog/spdlog.h>

#include "counter.hpp"

int main(int argc, char** argv) {
  CLI::App app{"cairn counter example"};
  std::string host = "127.0.0.1";
  std::uint16_t port = 8788;
  std::string data_dir = "counter-data";
  app.add_option("--host", host, "address to listen on")->capture_default_str();
  app.add_option("--port", port, "port to listen on (0 picks a free one)")->capture_default_str();
  app.add_option("--data-dir", data_dir, "where the counters' databases live")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  cairn::gateway::block_stop_signals();
  try {
    cairn::Registry classes;
    classes.add<Counter>("COUNTER");
    cairn::RuntimeOptions options;
    options.data_dir = data_dir;
    cairn::Runtime runtime(std::move(classes), options);
    cairn::gateway::GatewayOptions web;
    web.host = host;
    web.port = port;
    web.object_bindings = {"COUNTER"};
    return cairn::gateway::serve(runtime, web);
  } catch (const std::exception& e) {  // e.g. a data directory that cannot be used
    spdlog::critical("{}", e.what());
    return 1;
  }
}
