// cairn-map: the collaborative map. /api/map?id=<map> (default "default-map") is the
// WebSocket of that map; the page is served from --public-dir (run_app: standard flags).
#include <cairn/gateway/app.hpp>

#include "map.hpp"

#ifndef CAIRN_MAP_PUBLIC_DIR
#define CAIRN_MAP_PUBLIC_DIR "public"
#endif

int main(int argc, char** argv) {
  cairn::Registry classes;
  classes.add<WaypointMap>("WAYPOINT_MAP");
  return cairn::gateway::run_app(argc, argv, {.description = "cairn collaborative map example", .port = 8790, .data_dir = "map-data", .public_dir = CAIRN_MAP_PUBLIC_DIR},
                                 std::move(classes), [](cairn::gateway::GatewayOptions& web) {
                                   web.routes.push_back({"/api/map", "WAYPOINT_MAP", "id", "", "default-map"});
                                 });
}
