// cairn-bench-edge-server: the seat-booking server (as cairn-server) with an application
// hook (GatewayOptions::edge.on_request) when --hook is given, for scripts/bench-edge.sh: the
// cost of the public edge on GET /seats is measured with a hook of the kind an application
// writes (it reads a header, refuses on a condition, and tags the request for the actor).
#include <optional>
#include <string>
#include <string_view>

#include "cairn/gateway/app.hpp"
#include "flight/flight.hpp"

int main(int argc, char** argv) {
  bool hook = false;
  cairn::gateway::AppDefaults app{"cairn seat-booking server with a benchmark hook", 8787, "data",
                                  CAIRN_DEFAULT_PUBLIC_DIR, {{"--hook", "install the application hook", &hook}}};
  return cairn::gateway::run_app(
      argc, argv, app,
      [] {
        cairn::Registry classes;
        classes.add("FLIGHT", [](cairn::Context& ctx) { return std::make_unique<cairn::actors::Flight>(ctx); });
        return classes;
      },
      [&hook](cairn::gateway::GatewayOptions& web) {
        for (const char* path : {"/seats", "/hold-seat", "/book-seat", "/release-seat", "/cancel-booking", "/ws"}) {
          web.routes.push_back({path, "FLIGHT", "flightId"});
        }
        web.object_bindings = {"FLIGHT"};
        if (!hook) return;
        web.edge.on_request = [](cairn::Request& request, std::string_view binding) -> std::optional<cairn::Response> {
          if (request.header("X-Maintenance") == "1") {
            return cairn::Response::error(cairn::Code::unavailable, "down for maintenance");
          }
          if (!binding.empty() && request.claims.is_object()) {
            request.headers.emplace_back("X-User", request.claims.value("sub", ""));
          }
          return std::nullopt;
        };
      });
}
