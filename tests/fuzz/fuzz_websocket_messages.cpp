// libFuzzer target: WebSocket text messages into an actor with auto-response rules: the
// rules' own matcher (the map seed's JSON heartbeat and a Durable Objects string pair), then
// the same message on a Flight socket through the real runtime. The runtime answers a
// heartbeat without waking the flight; anything else gets the seat map or a JSON error.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cairn/testing.hpp"
#include "cairn/websocket.hpp"
#include "flight/flight.hpp"

namespace {

cairn::testing::TestRuntime& runtime() {
  static auto* t = [] {
    cairn::RuntimeOptions options;
    options.durability = cairn::Durability::normal;
    options.threads = 1;
    return new cairn::testing::TestRuntime(
        [] {
          cairn::Registry r;
          r.add<cairn::actors::Flight>("FLIGHT");
          return r;
        },
        options);
  }();
  return *t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string message(reinterpret_cast<const char*>(data), size);
  static const auto heartbeat = cairn::AutoResponse::heartbeat();
  static const auto pair = cairn::AutoResponse::pair("ping", "pong");
  if (auto answer = heartbeat.answer(message)) {
    auto reply = nlohmann::json::parse(*answer, nullptr, false);
    if (!reply.is_object() || reply["type"] != "pong") std::abort();
  }
  if (auto answer = pair.answer(message); answer && (message != "ping" || *answer != "pong")) std::abort();

  // A socket per input: a recording socket keeps every message it was sent.
  auto socket = runtime().connect("FLIGHT", "ws", "/ws");
  std::size_t before = socket->messages().size();
  runtime().send(*socket, message);
  // A fetch queued behind the message: once it answers, the message has been handled.
  if (runtime().fetch("FLIGHT", "ws", "GET", "/seats").status != 200) std::abort();
  auto messages = socket->messages();
  if (messages.size() != before + 1) std::abort();  // exactly one answer per message
  auto reply = nlohmann::json::parse(messages.back(), nullptr, false);
  if (reply.is_discarded()) std::abort();
  if (!socket->closes().empty()) std::abort();
  runtime().close(*socket);
  return 0;
}
