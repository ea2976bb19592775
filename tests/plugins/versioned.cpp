// A test plugin built in versions (CAIRN_TEST_VERSION 1, 2, ...) for the reload test.
// VERSIONED, at /objects/VERSIONED/<name>/: a WebSocket at /ws (each message is answered to
// every socket as "v<version> <message>"), GET /version, and GET /arm?ms=N (an alarm that
// says "alarm v<version>" to every socket when it fires). CAIRN_TEST_EXTRA_BINDING: the
// version also registers VERSIONED_EXTRA (a reload must refuse it); CAIRN_TEST_CRASH: it
// aborts while registering.
#include <cairn/plugin.hpp>

#include <chrono>
#include <cstdlib>
#include <string>

#ifndef CAIRN_TEST_VERSION
#error "CAIRN_TEST_VERSION must be set"
#endif

namespace {

class Versioned final : public cairn::Actor {
 public:
  explicit Versioned(cairn::Context& ctx) : ctx_(ctx) {}
  cairn::Response fetch(const cairn::Request& request) override {
    if (request.path() == "/version") return cairn::Response::json(200, {{"version", CAIRN_TEST_VERSION}});
    if (request.path() == "/arm") {
      auto ms = request.query_param("ms");
      if (!ms || !ms->has_value()) return cairn::Response::error(cairn::Code::invalid_argument, "need ?ms=");
      auto set = ctx_.set_alarm(std::chrono::system_clock::now() + std::chrono::milliseconds(std::stoll(**ms)));
      if (!set) return cairn::Response::error(set.error());
      return cairn::Response::json(200, {{"version", CAIRN_TEST_VERSION}});
    }
    auto accepted = ctx_.accept_websocket(request, {});
    return accepted ? *accepted : cairn::Response::error(accepted.error());
  }
  void on_message(cairn::WebSocket&, std::string_view message, bool) override {
    say("v" + std::to_string(CAIRN_TEST_VERSION) + " " + std::string(message));
  }
  void on_alarm(const cairn::AlarmInfo&) override { say("alarm v" + std::to_string(CAIRN_TEST_VERSION)); }

 private:
  void say(const std::string& text) {
    for (auto& socket : ctx_.websockets()) socket.send(text);
  }
  cairn::Context& ctx_;
};

void register_classes(cairn::PluginRegistrar& classes) {
#ifdef CAIRN_TEST_CRASH
  std::abort();  // a version that crashes while it registers: the server must survive its reload
#endif
  classes.add<Versioned>("VERSIONED");
  classes.objects("VERSIONED");
#ifdef CAIRN_TEST_EXTRA_BINDING
  classes.add<Versioned>("VERSIONED_EXTRA");
#endif
}

}  // namespace

CAIRN_PLUGIN(register_classes)
