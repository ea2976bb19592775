// cairn-server: the seat-booking demo, and the stock server for plugins (--plugin, README
// "Deploying a class without building a server"). Registers Flight as FLIGHT, routes the
// tutorial's URLs to it by ?flightId= (and /objects/FLIGHT/<flightId>/...), serves public/,
// and stops cleanly on SIGINT/SIGTERM. Flags: run_app's standard ones plus --hold-seconds,
// and --demo=false for a server without the compiled-in FLIGHT (its plugin may bring it:
// seat_booking/flight-plugin.toml).
#include <chrono>
#include <filesystem>
#include <string>
#include <system_error>

#include "cairn/gateway/app.hpp"
#include "flight/flight.hpp"

namespace {

// The demo's page: beside the installed program (<prefix>/share/cairn/public, as the Debian
// package puts it), else the source tree's public/ (a build tree).
std::string default_public_dir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto installed = exe.parent_path().parent_path() / "share" / "cairn" / "public";
    if (std::filesystem::is_regular_file(installed / "index.html", ec)) return installed.string();
  }
  return CAIRN_DEFAULT_PUBLIC_DIR;
}

}  // namespace

int main(int argc, char** argv) {
  cairn::actors::FlightOptions flight;
  double hold_seconds = std::chrono::duration<double>(flight.hold_duration).count();
  bool demo = true;
  cairn::gateway::AppDefaults app{"cairn seat-booking server", 8787, "data", default_public_dir(),
                                  {{"--hold-seconds", "how long a seat hold lasts before it expires",
                                    &hold_seconds, 0.1, 86400.0},
                                   {"--demo", "serve the compiled-in seat-booking demo (FLIGHT and its routes; false: no compiled-in class, and --hold-seconds is unused: the Flight plugin takes hold-seconds in [bindings.FLIGHT.options])", &demo}}};
  return cairn::gateway::run_app(
      argc, argv, app,
      [&] {
        flight.hold_duration = std::chrono::milliseconds(static_cast<long long>(hold_seconds * 1000));
        cairn::Registry classes;
        if (!demo) return classes;
        classes.add("FLIGHT", [flight](cairn::Context& ctx) {
          return std::make_unique<cairn::actors::Flight>(ctx, flight);
        });
        return classes;
      },
      [&demo](cairn::gateway::GatewayOptions& web) {
        if (!demo) return;
        for (const char* path : {"/seats", "/hold-seat", "/book-seat", "/release-seat", "/cancel-booking", "/ws"}) {
          web.routes.push_back({path, "FLIGHT", "flightId"});
        }
        web.object_bindings = {"FLIGHT"};
      });
}
