// cairn-server: the seat-booking demo. Registers Flight as FLIGHT, routes the tutorial's
// URLs to it by ?flightId= (and /objects/FLIGHT/<flightId>/...), serves public/, and stops
// cleanly on SIGINT/SIGTERM. Flags: run_app's standard ones plus --hold-seconds.
#include <chrono>

#include "cairn/gateway/app.hpp"
#include "flight/flight.hpp"

int main(int argc, char** argv) {
  cairn::actors::FlightOptions flight;
  double hold_seconds = std::chrono::duration<double>(flight.hold_duration).count();
  cairn::gateway::AppDefaults app{"cairn seat-booking server", 8787, "data", CAIRN_DEFAULT_PUBLIC_DIR,
                                  {{"--hold-seconds", "how long a seat hold lasts before it expires",
                                    &hold_seconds, 0.1, 86400.0}}};
  return cairn::gateway::run_app(
      argc, argv, app,
      [&] {
        flight.hold_duration = std::chrono::milliseconds(static_cast<long long>(hold_seconds * 1000));
        cairn::Registry classes;
        classes.add("FLIGHT", [flight](cairn::Context& ctx) {
          return std::make_unique<cairn::actors::Flight>(ctx, flight);
        });
        return classes;
      },
      [](cairn::gateway::GatewayOptions& web) {
        for (const char* path : {"/seats", "/hold-seat", "/book-seat", "/release-seat", "/cancel-booking", "/ws"}) {
          web.routes.push_back({path, "FLIGHT", "flightId"});
        }
        web.object_bindings = {"FLIGHT"};
      });
}
