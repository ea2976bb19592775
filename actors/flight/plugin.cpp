// Flight as a plugin: libcairn-flight.so, the seat-booking demo's class for a cairn-server
// started with `demo = false` (examples/seat_booking/flight-plugin.toml). Registers FLIGHT
// with the demo's routes (the tutorial's URLs by ?flightId=, and /objects/FLIGHT/...);
// options: hold-seconds (what cairn-server's --hold-seconds is for the compiled-in class).
#include <cairn/plugin.hpp>

#include <chrono>
#include <stdexcept>

#include "flight/flight.hpp"

namespace {

void register_classes(cairn::PluginRegistrar& classes) {
  cairn::actors::FlightOptions flight;
  auto options = classes.options("FLIGHT");
  for (const auto& [key, value] : options.items()) {
    if (key != "hold-seconds") throw std::invalid_argument("FLIGHT's options: unknown key '" + key + "' (hold-seconds)");
  }
  if (options.contains("hold-seconds")) {
    const auto& seconds = options["hold-seconds"];
    if (!seconds.is_number() || seconds.get<double>() < 0.1 || seconds.get<double>() > 86400) {
      throw std::invalid_argument("FLIGHT's options: hold-seconds must be a number from 0.1 to 86400");
    }
    flight.hold_duration = std::chrono::milliseconds(static_cast<long long>(seconds.get<double>() * 1000));
  }
  classes.add("FLIGHT", [flight](cairn::Context& ctx) { return std::make_unique<cairn::actors::Flight>(ctx, flight); });
  for (const char* path : {"/seats", "/hold-seat", "/book-seat", "/release-seat", "/cancel-booking", "/ws"}) {
    classes.route({path, "FLIGHT", "flightId"});
  }
  classes.objects("FLIGHT");
}

}  // namespace

CAIRN_PLUGIN(register_classes)
