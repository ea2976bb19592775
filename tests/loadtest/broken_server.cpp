// A deliberately broken seat-booking server, for testing cairn-load's checks: the real
// Flight behind the real gateway, except for bookings.
//   --break 1 (lose): every 7th booking of an instance is answered 200 but never written.
//   --break 2 (duplicate): a booking of a taken seat is answered 200 and overwrites it.
#include <memory>

#include "cairn/gateway/app.hpp"
#include "flight/flight.hpp"

namespace {

class BrokenFlight final : public cairn::Actor {
 public:
  BrokenFlight(cairn::Context& ctx, int mode) : ctx_(ctx), flight_(ctx), mode_(mode) {}
  cairn::Methods methods() override { return flight_.methods(); }
  void on_message(cairn::WebSocket& socket, std::string_view message, bool binary) override {
    flight_.on_message(socket, message, binary);
  }
  void on_alarm(const cairn::AlarmInfo& alarm) override { flight_.on_alarm(alarm); }

  cairn::Response fetch(const cairn::Request& request) override {
    if (request.method != "POST" || request.path() != "/book-seat") return flight_.fetch(request);
    auto body = nlohmann::json::parse(request.body, nullptr, false);
    if (!body.is_object() || !body["seatNumber"].is_string() || !body["name"].is_string()) return flight_.fetch(request);
    std::string seat = body["seatNumber"], name = body["name"];
    auto ok = [&] {
      return cairn::Response::json(200, {{"message", "Seat " + seat + " booked successfully"}, {"status", 200}});
    };
    if (mode_ == 1 && ++bookings_ % 7 == 0) return ok();
    if (mode_ == 2) {
      auto taken = ctx_.sql().exec("SELECT occupant FROM seats WHERE seatId = ? AND occupant IS NOT NULL", seat);
      if (!taken.to_array().empty()) {
        ctx_.sql().exec("UPDATE seats SET occupant = ? WHERE seatId = ?", name, seat);
        return ok();
      }
    }
    return flight_.fetch(request);
  }

 private:
  cairn::Context& ctx_;
  cairn::actors::Flight flight_;
  int mode_;
  int bookings_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  double mode = 1;
  cairn::gateway::AppDefaults app{"a broken seat-booking server (cairn-load's tests)", 0, "data", "",
                                  {{"--break", "1: lose every 7th booking, 2: overwrite taken seats", &mode, 1, 2}}};
  return cairn::gateway::run_app(
      argc, argv, app,
      [&] {
        cairn::Registry classes;
        int m = static_cast<int>(mode);
        classes.add("FLIGHT", [m](cairn::Context& ctx) { return std::make_unique<BrokenFlight>(ctx, m); });
        return classes;
      },
      [](cairn::gateway::GatewayOptions& web) {
        for (const char* path : {"/seats", "/book-seat", "/cancel-booking", "/hold-seat", "/release-seat", "/ws"}) {
          web.routes.push_back({path, "FLIGHT", "flightId"});
        }
      });
}
