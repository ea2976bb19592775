// The base class of every actor class. The runtime constructs one instance per live actor,
// on its first event and again after every reset, and calls the hooks one event at a time,
// each inside one SQLite transaction (commit on return, rollback on throw).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "cairn/http.hpp"
#include "cairn/result.hpp"
#include "cairn/websocket.hpp"

namespace cairn {

using json = nlohmann::json;

// What on_alarm is told: which alarm fell due ("" for the unnamed one) and how many times it
// has been retried after its handler threw (0 on the first attempt).
struct AlarmInfo {
  std::string name;
  int retry_count = 0;
  bool is_retry = false;
};

// The RPC table: method name -> handler. Stub::call() reaches these.
using Methods = std::unordered_map<std::string, std::function<Result<json>(const json&)>>;

class Actor {
 public:
  virtual ~Actor() = default;

  // Called once per instance, right after construction.
  virtual Methods methods() { return {}; }
  // HTTP requests, WebSocket upgrades included. Default: 404.
  virtual Response fetch(const Request& request);
  virtual void on_message(WebSocket& socket, std::string_view message, bool binary);
  virtual void on_close(WebSocket& socket, int code, std::string_view reason);
  virtual void on_error(WebSocket& socket, std::string_view error);
  // An alarm fell due (Context::set_alarm); it is deleted before this runs, so setting it
  // again here re-arms it. Throwing rolls the event back and retries the alarm with backoff
  // (limits::alarm_retry_base doubling, limits::alarm_max_retries), then drops it with a
  // logged error. Default: logs a warning (a class that sets alarms should override this).
  virtual void on_alarm(const AlarmInfo& alarm);
};

}  // namespace cairn
