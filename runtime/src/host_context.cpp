// HostContext: what an actor instance sees of its host (its id, SQL, sockets, alarms, calls).
#include "host.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>

#include <caf/all.hpp>

#include "cairn/limits.hpp"
#include "host_support.hpp"
#include "runtime_core.hpp"

namespace cairn {
using namespace host_support;

const ActorId& HostContext::id() const { return host_.id_; }

Sql& HostContext::sql() { return host_.db_->sql(); }

Clock::time_point HostContext::now() const { return host_.core_->options.clock->now(); }

Result<Response> HostContext::accept_websocket(const Request& request,
                                               std::vector<std::string> tags) {
  if (!request.is_websocket_upgrade() || request.websocket == 0) {
    return fail(Code::invalid_argument, "accept_websocket() needs a WebSocket upgrade request");
  }
  auto accepted = host_.core_->sockets.accept(request.websocket, host_.id_, std::move(tags));
  if (!accepted) return accepted.error();
  host_.outbox_.accepted(request.websocket);
  return Response::switching_protocols();
}

std::vector<WebSocket> HostContext::websockets(const std::string& tag) {
  std::vector<WebSocket> out;
  auto entries = host_.core_->sockets.list(host_.id_.hex(), tag);
  out.reserve(entries.size());
  for (auto& entry : entries) out.emplace_back(std::move(entry), &host_.outbox_);
  return out;
}

Result<void> HostContext::set_websocket_auto_response(std::optional<AutoResponse> rule) {
  if (rule) {
    auto valid = rule->validate();
    if (!valid) return valid;
  }
  host_.core_->sockets.set_rule(
      host_.id_, rule ? std::make_shared<const AutoResponse>(std::move(*rule)) : nullptr);
  return {};
}

std::optional<AutoResponse> HostContext::websocket_auto_response() const {
  auto rule = host_.core_->sockets.rule(host_.id_.hex());
  if (!rule) return std::nullopt;
  return *rule;
}

std::optional<Clock::time_point> HostContext::auto_response_timestamp(const WebSocket& socket) const {
  auto entry = host_.core_->sockets.find(socket.id());
  if (!entry) return std::nullopt;
  auto ticks = entry->auto_response_at.load();
  if (ticks == detail::SocketEntry::never) return std::nullopt;
  return from_ticks(ticks);
}

TraceContext HostContext::trace() const { return host_.trace_; }

std::vector<Alarm> HostContext::alarms() {
  std::vector<Alarm> out;
  if (!host_.alarm_table_exists()) return out;
  for (const auto& row : host_.db_->internal("SELECT name, due FROM _cairn_alarms ORDER BY due, name")) {
    out.push_back({std::get<std::string>(row["name"]), from_ticks(std::get<std::int64_t>(row["due"]))});
  }
  return out;
}

Result<void> HostContext::put_alarm(std::string_view name, Clock::time_point when) {
  if (name.size() > limits::max_alarm_name_bytes) {
    return fail(Code::invalid_argument, "an alarm name may be at most " +
                                            std::to_string(limits::max_alarm_name_bytes) + " bytes");
  }
  auto& db = *host_.db_;
  db.internal(
      "CREATE TABLE IF NOT EXISTS _cairn_alarms (name TEXT PRIMARY KEY, due INTEGER NOT NULL, "
      "retries INTEGER NOT NULL DEFAULT 0, request_id TEXT, traceparent TEXT) WITHOUT ROWID");
  host_.ensure_alarm_trace_columns();
  std::string key(name);
  if (db.internal("SELECT 1 FROM _cairn_alarms WHERE name = ?", {key}).size() == 0) {
    auto count = std::get<std::int64_t>(db.internal("SELECT count(*) AS n FROM _cairn_alarms").one()["n"]);
    if (count >= static_cast<std::int64_t>(limits::max_alarms_per_actor)) {
      return fail(Code::resource_exhausted,
                  "an actor may have at most " + std::to_string(limits::max_alarms_per_actor) +
                      " alarms (limits::max_alarms_per_actor)");
    }
  }
  // A time before the clock's epoch (time_point::min(), say) is in the past: it fires at once,
  // and stored as the epoch no lateness computed from it can overflow.
  // With the request this event descends from: the alarm's event carries it on.
  auto trace_value = [](const std::string& text) { return text.empty() ? SqlValue{} : SqlValue{text}; };
  db.internal(
      "INSERT OR REPLACE INTO _cairn_alarms (name, due, retries, request_id, traceparent) VALUES (?, ?, 0, ?, ?)",
      std::vector<SqlValue>{key, std::max<std::int64_t>(0, to_ticks(when)), trace_value(host_.trace_.request_id),
                            trace_value(host_.trace_.traceparent)});
  host_.alarms_dirty_ = true;
  return {};
}

std::optional<Clock::time_point> HostContext::find_alarm(std::string_view name) {
  if (!host_.alarm_table_exists()) return std::nullopt;
  auto rows = host_.db_->internal("SELECT due FROM _cairn_alarms WHERE name = ?", {std::string(name)});
  if (rows.size() == 0) return std::nullopt;
  return from_ticks(std::get<std::int64_t>(rows.one()["due"]));
}

bool HostContext::remove_alarm(std::string_view name) {
  if (!host_.alarm_table_exists()) return false;
  auto deleted = host_.db_->internal("DELETE FROM _cairn_alarms WHERE name = ? RETURNING name",
                                     {std::string(name)});
  if (deleted.size() == 0) return false;
  host_.alarms_dirty_ = true;
  return true;
}

Result<void> HostContext::call(std::string_view binding, std::string_view name, std::string method,
                               nlohmann::json args, std::string reply_method, nlohmann::json context) {
  if (host_.core_->registry.find(binding) == nullptr) {
    return fail(Code::not_found, "no actor class is bound to '" + std::string(binding) + "'");
  }
  auto target = ActorId::make(binding, name);
  if (!target) return target.error();
  if (!host_.methods_.contains(reply_method)) {
    return fail(Code::invalid_argument, "actor " + host_.id_.binding() + " has no method '" +
                                            reply_method + "' to receive the reply");
  }
  host_.outbox_.call(ActorCall{std::move(*target), std::move(method), std::move(args),
                               std::move(reply_method), std::move(context), host_.trace_});
  return {};
}

void HostContext::delete_all() {
  host_.db_->drop_everything();
  host_.alarms_dirty_ = true;
  host_.identity_known_ = false;
  for (auto& socket : websockets({})) socket.close(1000, "deleted");
  host_.reset_after_event_ = true;
}

}  // namespace cairn
