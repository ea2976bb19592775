// cairn-echo: one Echo instance ("foo", as in the Workers example) behind /websocket,
// /getCurrentConnections and /. Stops cleanly on SIGINT/SIGTERM.
#include <CLI/CLI.hpp>
#include <cairn/gateway/serve.hpp>
#include <cairn/runtime.hpp>
#include <chrono>
#include <exception>
#include <spdlog/spdlog.h>

#include "echo.hpp"

int main(int argc, char** argv) {
  CLI::App app{"cairn WebSocket echo example"};
  std::string host = "127.0.0.1";
  std::uint16_t port = 8789;
  std::string data_dir = "echo-data";
  double idle_timeout_s = 10;
  app.add_option("--host", host, "address to listen on")->capture_default_str();
  app.add_option("--port", port, "port to listen on (0 picks a free one)")->capture_default_str();
  app.add_option("--data-dir", data_dir, "where the actor's database lives")->capture_default_str();
  app.add_option("--idle-timeout", idle_timeout_s, "seconds before an idle instance hibernates")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  cairn::gateway::block_stop_signals();
  try {
    cairn::Registry classes;
    classes.add<Echo>("ECHO");
    cairn::RuntimeOptions options;
    options.data_dir = data_dir;
    options.idle_timeout = std::chrono::milliseconds(static_cast<long long>(idle_timeout_s * 1000));
    cairn::Runtime runtime(std::move(classes), options);
    cairn::gateway::GatewayOptions web;
    web.host = host;
    web.port = port;
    for (const char* path : {"/websocket", "/getCurrentConnections", "/"}) {
      web.routes.push_back({path, "ECHO", "", "foo"});  // every request reaches the one instance
    }
    return cairn::gateway::serve(runtime, web);
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
}
