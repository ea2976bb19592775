// libFuzzer target: WebSocket text messages into an actor with auto-response rules: the
// rules' own matcher (the map seed's JSON heartbeat and a Durable Objects string pair), then
// the same message on a Flight socket through the real runtime. The runtime answers a
// heartbeat without waking the flight; anything else gets the seat map or a JSON error.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cairn/websocket.hpp"
#include "flight_runtime.hpp"


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
  auto socket = flight_runtime().connect("FLIGHT", "ws", "/ws");
  std::size_t before = socket->messages().size();
  flight_runtime().send(*socket, message);
  // A fetch queued behind the message: once it answers, the message has been handled.
  if (flight_runtime().fetch("FLIGHT", "ws", "GET", "/seats").status != 200) std::abort();
  auto messages = socket->messages();
  if (messages.size() != before + 1) std::abort();  // exactly one answer per message
  auto reply = nlohmann::json::parse(messages.back(), nullptr, false);
  if (reply.is_discarded()) std::abort();
  if (!socket->closes().empty()) std::abort();
  flight_runtime().close(*socket);
  return 0;
}
