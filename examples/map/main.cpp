// cairn-map: the collaborative map. /api/map?id=<map> (default "default-map") is the
// WebSocket of that map; the page is served from --public-dir. Stops on SIGINT/SIGTERM.
#include <CLI/CLI.hpp>
#include <cairn/gateway/serve.hpp>
#include <cairn/runtime.hpp>
#include <chrono>
#include <exception>
#include <spdlog/spdlog.h>

#include "map.hpp"

#ifndef CAIRN_MAP_PUBLIC_DIR
#define CAIRN_MAP_PUBLIC_DIR "public"
#endif

int main(int argc, char** argv) {
  CLI::App app{"cairn collaborative map example"};
  std::string host = "127.0.0.1";
  std::uint16_t port = 8790;
  std::string data_dir = "map-data";
  std::string public_dir = CAIRN_MAP_PUBLIC_DIR;
  double idle_timeout_s = 10;
  app.add_option("--host", host, "address to listen on")->capture_default_str();
  app.add_option("--port", port, "port to listen on (0 picks a free one)")->capture_default_str();
  app.add_option("--data-dir", data_dir, "where the maps' databases live")->capture_default_str();
  app.add_option("--public-dir", public_dir, "the page")->capture_default_str();
  app.add_option("--idle-timeout", idle_timeout_s, "seconds before an idle map hibernates")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  cairn::gateway::block_stop_signals();
  try {
    cairn::Registry classes;
    classes.add<WaypointMap>("WAYPOINT_MAP");
    cairn::RuntimeOptions options;
    options.data_dir = data_dir;
    options.idle_timeout = std::chrono::milliseconds(static_cast<long long>(idle_timeout_s * 1000));
    cairn::Runtime runtime(std::move(classes), options);
    cairn::gateway::GatewayOptions web;
    web.host = host;
    web.port = port;
    web.public_dir = public_dir;
    web.routes.push_back({"/api/map", "WAYPOINT_MAP", "id", "", "default-map"});
    return cairn::gateway::serve(runtime, web);
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
}
