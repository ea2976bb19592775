// Host: event loop, group commit and output gate of one actor instance.
#include "host.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include <caf/all.hpp>

#include "cairn/limits.hpp"
#include "runtime_core.hpp"

namespace cairn {
namespace {

using commit_atom = caf::atom_constant<caf::atom("commit")>;

std::int64_t to_ticks(Clock::time_point t) { return t.time_since_epoch().count(); }
Clock::time_point from_ticks(std::int64_t ticks) {
  return Clock::time_point{Clock::time_point::duration{ticks}};
}

// limits::alarm_retry_base doubling with each retry, plus up to a quarter of jitter so the
// retries of alarms that failed together spread out.
Clock::duration alarm_retry_delay(int retry) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  auto base = std::chrono::duration_cast<std::chrono::milliseconds>(limits::alarm_retry_base) *
              (1 << (retry - 1));
  std::uniform_int_distribution<std::chrono::milliseconds::rep> jitter(0, base.count() / 4);
  return base + std::chrono::milliseconds(jitter(random));
}

// True for an exception that says the actor's storage failed (I/O, a full disk, a file that
// cannot be opened), as opposed to a bug in the actor or bad SQL.
bool is_storage_failure(const std::exception& e) {
  auto* sql = dynamic_cast<const SqlError*>(&e);
  if (sql == nullptr) return false;
  int primary = sql->code() & 0xff;
  return primary == SQLITE_IOERR || primary == SQLITE_FULL || primary == SQLITE_CANTOPEN ||
         primary == SQLITE_NOMEM || primary == SQLITE_READONLY;
}

// What the callers of a batch that broke are told: 507 for a full disk, 503 for another
// storage failure (both retryable; the instance reopens its database on the next event),
// 500 for anything else (a constraint the actor's writes broke at commit, a bug).
Error storage_error(const std::exception& e, const std::string& what) {
  if (!is_storage_failure(e)) return Error{Code::internal, what + ": " + e.what()};
  if ((dynamic_cast<const SqlError&>(e).code() & 0xff) == SQLITE_FULL) {
    return Error{Code::storage_full, what + ": the disk is full"};
  }
  return Error{Code::unavailable, what + ": the actor's storage failed"};
}

}  // namespace

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
      "retries INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID");
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
  db.internal("INSERT OR REPLACE INTO _cairn_alarms (name, due, retries) VALUES (?, ?, 0)",
              std::vector<SqlValue>{key, std::max<std::int64_t>(0, to_ticks(when))});
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
                               std::move(reply_method), std::move(context)});
  return {};
}

void HostContext::delete_all() {
  host_.db_->drop_everything();
  host_.alarms_dirty_ = true;
  for (auto& socket : websockets({})) socket.close(1000, "deleted");
  host_.reset_after_event_ = true;
}

Host::Host(caf::actor_config& config, detail::RuntimeCore* core, ActorId id,
           const ActorFactory* factory, std::uint64_t generation)
    : caf::event_based_actor(config), core_(core), id_(std::move(id)), factory_(factory),
      generation_(generation), context_(*this) {}

caf::behavior Host::make_behavior() {
  // What the metrics' totals hold for this actor already (counted at start, or reported at
  // close by its previous host). Here, on the host's thread, not in the spawning one.
  reported_bytes_ = files_bytes();
  set_exit_handler([this](caf::exit_msg& msg) {
    finish();
    quit(msg.reason);
  });
  return {
      [this](Event& event) { handle(event); },
      [this](commit_atom, std::uint64_t batch) {
        if (in_batch_ && batch == batch_) commit_batch();
      },
      [this](evict_atom, std::uint64_t generation) {
        if (generation != generation_) return;
        finish();
        core_->host_stopped(id_, generation_);
        quit();
      },
  };
}

void Host::handle(Event& event) {
  if (auto* admin = std::get_if<AdminEvent>(&event.body)) {
    run_admin(*admin);
    return;
  }
  if (std::holds_alternative<AlarmEvent>(event.body)) {
    run_due_alarms();
    return;
  }
  run_event([&] { dispatch(event); }, event.reply);
}

bool Host::ensure_batch(const std::shared_ptr<PendingReply>& reply) {
  // No exception may leave a handler: CAF 0.17 would kill the actor.
  try {
    open_database();
    if (!in_batch_) {
      db_->begin();
      in_batch_ = true;
      batch_events_ = 0;
      ++batch_;
      // Queued behind every event already in the mailbox: they all join this batch.
      send(this, commit_atom::value, batch_);
    }
    return true;
  } catch (const std::exception& e) {
    spdlog::error("actor {} {}: cannot start an event: {}", id_.binding(), id_.hex(), e.what());
    auto error = storage_error(e, "the actor's storage is unavailable");
    if (reply) reply->fail(error);
    abort_batch(error);
    return false;
  }
}

void Host::open_database() {
  if (db_) return;
  // Named before its database exists, so every database with data can be listed by name.
  core_->names().record(id_);
  db_.emplace(core_->database_path(id_), core_->options.durability);
  // Whatever the alarm index says of this actor is checked against the truth at commit.
  alarms_dirty_ = alarm_table_exists();
}

void Host::run_admin(AdminEvent& event) {
  Result<nlohmann::json> result = fail(Code::internal, "no result");
  try {
    result = admin_operation(event);
  } catch (const SqlError& e) {
    int primary = e.code() & 0xff;
    if (is_storage_failure(e) && primary != SQLITE_READONLY) {
      result = storage_error(e, "the actor's storage failed");
    } else if (primary == SQLITE_INTERRUPT) {
      result = fail(Code::timeout, e.what());
    } else {
      result = fail(Code::invalid_argument, e.what());
    }
  } catch (const std::exception& e) {
    spdlog::error("actor {} {}: admin operation failed: {}", id_.binding(), id_.hex(), e.what());
    result = fail(Code::internal, e.what());
  } catch (...) {
    result = fail(Code::internal, "unknown exception (not a std::exception)");
  }
  if (event.done) event.done->set_value(std::move(result));
}

Result<nlohmann::json> Host::admin_operation(AdminEvent& event) {
  // The operator sees (and copies) what callers were told happened: the open batch first.
  if (in_batch_) commit_batch();
  if (event.op == AdminEvent::Op::remove) return remove_everything();
  open_database();
  switch (event.op) {
    case AdminEvent::Op::inspect:
      return inspect();
    case AdminEvent::Op::query:
      return db_->read_only_query(event.text, event.max_rows, limits::admin_query_budget);
    case AdminEvent::Op::copy_to: {
      db_->copy_to(event.text);
      auto soonest = soonest_alarm();
      return nlohmann::json{{"bytes", std::filesystem::file_size(event.text)},
                            {"soonest_alarm", soonest ? nlohmann::json(*soonest) : nlohmann::json()}};
    }
    case AdminEvent::Op::import: {
      if (!db_->is_empty()) {
        return fail(Code::conflict, "actor " + id_.binding() + " '" + id_.name() +
                                        "' already has data: delete it first, or import into a new name");
      }
      reset_instance();
      db_->import_from(event.text);
      // The imported alarms go into the index like a commit's.
      auto soonest = soonest_alarm();
      core_->alarm_index().before_commit(id_, soonest);
      core_->alarms_committed(id_, soonest);
      alarms_dirty_ = false;
      auto tables = db_->internal("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'").one()["n"];
      return nlohmann::json{{"imported", true},
                            {"bytes", db_->bytes_on_disk()},
                            {"tables", std::get<std::int64_t>(tables)}};
    }
    case AdminEvent::Op::remove:
      break;
  }
  return fail(Code::internal, "unknown admin operation");
}

nlohmann::json Host::inspect() {
  nlohmann::json sockets = nlohmann::json::array();
  for (const auto& entry : core_->sockets.list(id_.hex(), {})) {
    nlohmann::json attachment;
    if (!entry->attachment.empty()) {
      attachment = nlohmann::json::parse(entry->attachment, nullptr, false);
    }
    sockets.push_back({{"id", entry->id}, {"tags", entry->tags}, {"attachment", attachment}});
  }
  nlohmann::json alarms = nlohmann::json::array();
  if (alarm_table_exists()) {
    for (const auto& row : db_->internal("SELECT name, due, retries FROM _cairn_alarms ORDER BY due, name")) {
      auto due = from_ticks(std::get<std::int64_t>(row["due"]));
      alarms.push_back({{"name", std::get<std::string>(row["name"])},
                        {"due_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                       due.time_since_epoch()).count()},
                        {"retries", std::get<std::int64_t>(row["retries"])}});
    }
  }
  nlohmann::json tables = nlohmann::json::array();
  auto schema = db_->internal(
      "SELECT name, type FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE "
      "'sqlite\\_%' ESCAPE '\\' ORDER BY name");
  for (const auto& row : schema) {
    const auto& name = std::get<std::string>(row["name"]);
    const auto& type = std::get<std::string>(row["type"]);
    nlohmann::json table{{"name", name}, {"type", type}};
    if (type == "table") {
      std::string quoted = "\"";
      for (char c : name) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
      quoted += '"';
      table["rows"] = std::get<std::int64_t>(db_->internal("SELECT count(*) AS n FROM " + quoted).one()["n"]);
    }
    tables.push_back(std::move(table));
  }
  return {{"binding", id_.binding()},
          {"name", id_.name()},
          {"id", id_.hex()},
          {"instance", instance_ != nullptr},
          {"sockets", std::move(sockets)},
          {"alarms", std::move(alarms)},
          {"tables", std::move(tables)},
          {"database_bytes", db_->bytes_on_disk()}};
}

nlohmann::json Host::remove_everything() {
  std::size_t closed = 0;
  for (const auto& entry : core_->sockets.list(id_.hex(), {})) {
    entry->sink->close(limits::deleted_close_code, "the actor was deleted");
    core_->sockets.remove(entry->id);
    ++closed;
  }
  core_->sockets.set_rule(id_, nullptr);
  reset_instance();
  db_.reset();
  report_bytes();
  alarms_dirty_ = false;
  auto path = core_->database_path(id_);
  std::error_code ec;
  bool existed = std::filesystem::exists(path, ec);
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::filesystem::remove(path.string() + suffix, ec);
    if (ec) throw SqlError(SQLITE_IOERR, "cannot delete " + path.string() + suffix + ": " + ec.message(), "");
  }
  sync_path(path.parent_path());
  report_bytes();
  core_->alarms_committed(id_, std::nullopt);
  core_->alarm_index().flush();
  core_->names().remove(id_);
  return {{"deleted", existed}, {"sockets_closed", closed}};
}

Host::Outcome Host::run_event(const std::function<void()>& body,
                              const std::shared_ptr<PendingReply>& reply) {
  if (!ensure_batch(reply)) return Outcome::failed;
  outbox_.begin_event();
  std::size_t answers_before = answers_.size();
  db_->savepoint();  // deferred to the event's first statement: cannot fail here
  auto started = std::chrono::steady_clock::now();
  auto budget = core_->options.event_budget;
  if (budget.count() > 0) db_->sql().set_deadline(started + budget, budget);
  std::optional<std::string> thrown;  // what the event threw
  std::optional<Error> broken;        // set if the batch cannot go on
  bool storage_failed = false;        // ... because the storage failed (not the actor's doing)
  try {
    if (!instance_) {
      instance_ = (*factory_)(context_);
      core_->instance_started();
      methods_ = instance_->methods();
    }
    body();
    db_->release();
    if (reset_after_event_) reset_instance();
  } catch (const std::exception& e) {
    thrown = e.what();
    // SQLite may have rolled the whole transaction back: the batch cannot go on.
    if (is_storage_failure(e)) {
      broken = storage_error(e, "the write failed");
      storage_failed = true;
    }
  } catch (...) {
    // Actor code may throw anything; nothing may reach CAF (0.17 would kill the host).
    thrown = "unknown exception (not a std::exception)";
  }
  reset_after_event_ = false;
  if (budget.count() > 0) db_->sql().set_deadline(std::chrono::steady_clock::time_point::max(), budget);
  if (auto took = std::chrono::steady_clock::now() - started; took > limits::slow_event_warning) {
    spdlog::warn("actor {} {}: an event ran for {} ms", id_.binding(), id_.hex(),
                 std::chrono::duration_cast<std::chrono::milliseconds>(took).count());
  }
  if (!broken && db_->transaction_lost()) {
    // The event made SQLite end the transaction it shared with the batch's other events
    // (INSERT OR ROLLBACK, RAISE(ROLLBACK)), even if it caught the error: none of them
    // happened, and each caller must hear so.
    broken = Error{Code::unavailable,
                   "another event in the same batch made SQLite roll back the transaction: "
                   "nothing of this request was written; retry"};
  }
  if (broken) {
    spdlog::error("actor {} {}: event ended its batch's transaction: {}", id_.binding(), id_.hex(),
                  thrown.value_or("SQLite rolled the transaction back"));
    for (SocketId socket : outbox_.discard_event()) core_->sockets.unaccept(socket);
    answers_.resize(answers_before);
    if (reply) {
      reply->fail(!storage_failed
                      ? Error{Code::internal, "internal error in actor " + id_.binding() +
                                                  ": SQLite rolled back the event's transaction (" +
                                                  thrown.value_or("the event caught the error") +
                                                  "); the event and its batch did not happen"}
                      : *broken);
    }
    abort_batch(*broken);
    return Outcome::failed;
  }
  if (thrown) {
    spdlog::error("actor {} {}: event failed, rolled back: {}", id_.binding(), id_.hex(), *thrown);
    for (SocketId socket : outbox_.discard_event()) core_->sockets.unaccept(socket);
    answers_.resize(answers_before);
    try {
      db_->rollback_to_savepoint();
    } catch (const std::exception& rollback_error) {
      spdlog::error("actor {} {}: rollback failed: {}", id_.binding(), id_.hex(),
                    rollback_error.what());
      auto error = storage_error(rollback_error, "the event could not be rolled back");
      if (reply) reply->fail(error);
      abort_batch(error);
      return Outcome::failed;
    }
    if (reply) {
      answers_.push_back({reply, Result<nlohmann::json>(Error{
                                     Code::internal,
                                     "internal error in actor " + id_.binding() + ": " + *thrown})});
    }
    // Members may be half-updated: the next event gets a fresh object (the data is intact).
    reset_instance();
  }
  if (++batch_events_ >= limits::max_events_per_commit && !commit_batch()) return Outcome::failed;
  return thrown ? Outcome::threw : Outcome::ok;
}

void Host::dispatch(Event& event) {
  if (auto* fetch = std::get_if<FetchEvent>(&event.body)) {
    answers_.push_back({event.reply, instance_->fetch(fetch->request)});
    return;
  }
  if (auto* call = std::get_if<CallEvent>(&event.body)) {
    auto method = methods_.find(call->method);
    if (method == methods_.end()) {
      answers_.push_back({event.reply, Result<nlohmann::json>(Error{
                                           Code::not_found, "actor " + id_.binding() +
                                                                " has no method '" +
                                                                call->method + "'"})});
      return;
    }
    auto result = method->second(call->args);
    if (!event.reply && !result) {  // a reply to Context::call: nobody else would see it
      spdlog::warn("actor {} {}: method '{}' (a call's reply) failed: {}", id_.binding(), id_.hex(),
                   call->method, result.error().message);
    }
    answers_.push_back({event.reply, std::move(result)});
    return;
  }
  if (std::holds_alternative<AlarmEvent>(event.body)) return;  // handled by run_due_alarms
  auto& socket_event = std::get<SocketEvent>(event.body);
  auto route = core_->sockets.route(socket_event.socket);
  if (!route.owner || !(route.owner->id == id_)) return;
  WebSocket socket(std::move(route.entry), &outbox_);
  switch (socket_event.kind) {
    case SocketEvent::Kind::message:
      instance_->on_message(socket, socket_event.data, socket_event.binary);
      break;
    case SocketEvent::Kind::close:
      core_->sockets.remove(socket_event.socket);
      instance_->on_close(socket, socket_event.code, socket_event.data);
      break;
    case SocketEvent::Kind::error:
      core_->sockets.remove(socket_event.socket);
      instance_->on_error(socket, socket_event.data);
      break;
  }
}

void Host::run_due_alarms() {
  if (!ensure_batch(nullptr)) return;
  alarms_dirty_ = true;  // whatever happens, the index hears the truth at commit
  std::vector<DueAlarm> due;
  try {
    if (!alarm_table_exists()) return;
    auto rows = db_->internal(
        "SELECT name, due, retries FROM _cairn_alarms WHERE due <= ? ORDER BY due LIMIT ?",
        std::vector<SqlValue>{to_ticks(core_->options.clock->now()),
                              static_cast<std::int64_t>(limits::max_alarms_per_wake)});
    for (const auto& row : rows) {
      due.push_back({std::get<std::string>(row["name"]), std::get<std::int64_t>(row["due"]),
                     static_cast<int>(std::get<std::int64_t>(row["retries"]))});
    }
  } catch (const std::exception& e) {
    spdlog::error("actor {} {}: cannot read its alarms: {}", id_.binding(), id_.hex(), e.what());
    abort_batch(storage_error(e, "the actor's alarms could not be read"));
    return;
  }
  for (const auto& alarm : due) {
    // An earlier handler of this wake may have moved or deleted it.
    try {
      auto still = db_->internal("SELECT due, retries FROM _cairn_alarms WHERE name = ?", {alarm.name});
      if (still.size() != 1 || std::get<std::int64_t>(still.one()["due"]) != alarm.due ||
          std::get<std::int64_t>(still.one()["retries"]) != alarm.retries) {
        continue;
      }
    } catch (const std::exception& e) {
      spdlog::error("actor {} {}: cannot read its alarms: {}", id_.binding(), id_.hex(), e.what());
      abort_batch(storage_error(e, "the actor's alarms could not be read"));
      return;
    }
    core_->alarm_late(core_->options.clock->now() - from_ticks(alarm.due));
    auto outcome = run_event(
        [&] {
          // Consumed before the handler runs: if it sets the alarm again, that one stays.
          alarms_dirty_ = true;  // a commit inside this wake may have reported the index
          db_->internal("DELETE FROM _cairn_alarms WHERE name = ?", {alarm.name});
          instance_->on_alarm(AlarmInfo{alarm.name, alarm.retries, alarm.retries > 0});
        },
        nullptr);
    if (outcome == Outcome::failed) return;
    core_->alarm_ran();
    if (outcome == Outcome::threw) schedule_retry(alarm);
  }
}

void Host::schedule_retry(const DueAlarm& alarm) {
  if (!ensure_batch(nullptr)) return;
  int retries = alarm.retries + 1;
  alarms_dirty_ = true;  // the index must hear of the retry's time at commit
  try {
    db_->savepoint();
    if (retries > limits::alarm_max_retries) {
      db_->internal("DELETE FROM _cairn_alarms WHERE name = ? AND due = ? AND retries = ?",
                    std::vector<SqlValue>{alarm.name, alarm.due,
                                          static_cast<std::int64_t>(alarm.retries)});
      spdlog::error("actor {} {}: alarm '{}' dropped: on_alarm threw on {} attempts",
                    id_.binding(), id_.hex(), alarm.name, retries);
    } else {
      auto delay = alarm_retry_delay(retries);
      auto due = to_ticks(core_->options.clock->now() + delay);
      // The row is as it was before the handler ran (its event rolled back).
      db_->internal(
          "UPDATE _cairn_alarms SET due = ?, retries = ? WHERE name = ? AND due = ? AND retries = ?",
          std::vector<SqlValue>{due, static_cast<std::int64_t>(retries), alarm.name, alarm.due,
                                static_cast<std::int64_t>(alarm.retries)});
      spdlog::warn("actor {} {}: alarm '{}' threw; retry {} of {} in {} ms", id_.binding(),
                   id_.hex(), alarm.name, retries, limits::alarm_max_retries,
                   std::chrono::duration_cast<std::chrono::milliseconds>(delay).count());
    }
    db_->release();
  } catch (const std::exception& e) {
    spdlog::error("actor {} {}: cannot reschedule alarm '{}': {}", id_.binding(), id_.hex(),
                  alarm.name, e.what());
    abort_batch(storage_error(e, "the actor's alarms could not be rescheduled"));
  }
}

bool Host::alarm_table_exists() {
  return db_->internal("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = '_cairn_alarms'")
             .size() == 1;
}

std::optional<std::int64_t> Host::soonest_alarm() {
  if (!alarm_table_exists()) return std::nullopt;
  auto soonest = db_->internal("SELECT min(due) AS due FROM _cairn_alarms").one()["due"];
  if (auto* due = std::get_if<std::int64_t>(&soonest)) return *due;
  return std::nullopt;
}

bool Host::commit_batch() {
  // The index learns of a sooner alarm before the commit that sets it (so a crash between
  // the two leaves it early, never late), and of everything else after.
  bool report = alarms_dirty_;
  std::optional<std::int64_t> soonest;
  try {
    if (report) {
      soonest = soonest_alarm();
      core_->alarm_index().before_commit(id_, soonest);
    }
  } catch (const std::exception& e) {
    spdlog::error("actor {} {}: cannot index its alarms: {}", id_.binding(), id_.hex(), e.what());
    abort_batch(storage_error(e, "the actor's alarms could not be made durable"));
    return false;
  }
  auto commit_start = std::chrono::steady_clock::now();
  try {
    db_->commit();
  } catch (const std::exception& e) {
    spdlog::error("actor {} {}: commit failed: {}", id_.binding(), id_.hex(), e.what());
    // After a failed fsync the write may still surface when the database reopens (its WAL
    // frames reached the file): the caller learns only that it was not made durable.
    abort_batch(storage_error(e, "the write could not be made durable"));
    return false;
  }
  if (report) {
    alarms_dirty_ = false;
    core_->alarms_committed(id_, soonest);
  }
  auto committed_at = std::chrono::steady_clock::now();
  core_->committed(batch_events_, std::chrono::duration<double>(committed_at - commit_start).count());
  // The metrics' database bytes follow at most every 100 ms (two stats), and at close.
  if (committed_at - bytes_reported_at_ > std::chrono::milliseconds(100)) {
    bytes_reported_at_ = committed_at;
    report_bytes();
  }
  in_batch_ = false;
  batch_events_ = 0;
  // The output gate opens: everything the batch sent leaves now, in order.
  for (auto& output : outbox_.take()) {
    if (auto* send = std::get_if<SocketSend>(&output)) {
      send->sink->send(std::move(send->message), send->binary);
    } else if (auto* call = std::get_if<ActorCall>(&output)) {
      make_call(std::move(*call));
    } else {
      auto& close = std::get<SocketClose>(output);
      close.sink->close(close.code, std::move(close.reason));
    }
  }
  for (auto& pending : std::exchange(answers_, {})) {
    if (!pending.reply) continue;
    std::visit([&](auto& answer) { pending.reply->answer(std::move(answer)); }, pending.answer);
  }
  return true;
}

void Host::make_call(ActorCall call) {
  // The answer comes back as an event of this actor (whichever instance is live then); the
  // runtime may be gone by then, hence the weak pointer.
  std::weak_ptr<detail::RuntimeCore> weak = core_->weak_from_this();
  auto reply = [weak, caller = id_, reply_method = std::move(call.reply_method),
                context = std::move(call.context)](Result<nlohmann::json> result) mutable {
    auto core = weak.lock();
    if (!core) return;
    nlohmann::json payload{{"context", std::move(context)}};
    if (result) {
      payload["result"] = std::move(*result);
    } else {
      payload["error"] = {{"code", code_name(result.error().code)},
                          {"message", result.error().message},
                          {"status", http_status(result.error().code)}};
    }
    core->deliver(caller, Event{CallEvent{std::move(reply_method), std::move(payload)}, nullptr});
  };
  core_->deliver(call.target, Event{CallEvent{std::move(call.method), std::move(call.args)},
                                    std::make_shared<PendingReply>(Stub::CallCallback(std::move(reply)))});
}

void Host::abort_batch(const Error& error) {
  // Nothing of the batch happened: its outputs are dropped, its callers told, and the
  // instance and its connection start afresh on the next event.
  if (db_) db_->rollback();
  for (SocketId socket : outbox_.discard_batch()) core_->sockets.unaccept(socket);
  for (auto& pending : std::exchange(answers_, {})) {
    if (pending.reply) pending.reply->fail(error);
  }
  in_batch_ = false;
  batch_events_ = 0;
  alarms_dirty_ = false;  // checked again when the database reopens
  reset_instance();
  db_.reset();
  report_bytes();
}

void Host::on_exit() {
  if (in_batch_) {
    abort_batch(Error{Code::unavailable, "the actor stopped before answering"});
    return;
  }
  reset_instance();
  db_.reset();
  report_bytes();
}

void Host::reset_instance() {
  methods_.clear();
  instance_.reset();
}

void Host::finish() {
  if (in_batch_) commit_batch();
  reset_instance();
  // An actor that never kept anything (no table, so no alarm either) leaves no trace, as in
  // Durable Objects: otherwise every name ever asked for would keep a file and a names row.
  bool empty = false;
  if (db_) {
    try {
      empty = db_->is_empty();
    } catch (...) {
      empty = false;  // cannot tell: keep it
    }
  }
  db_.reset();
  report_bytes();
  if (empty) forget_empty_database();
}

std::int64_t Host::files_bytes() const {
  auto path = core_->database_file(id_);
  std::int64_t total = 0;
  std::error_code ec;
  for (const char* suffix : {"", "-wal"}) {
    auto size = std::filesystem::file_size(path.string() + suffix, ec);
    if (!ec) total += static_cast<std::int64_t>(size);
  }
  return total;
}

void Host::report_bytes() {
  auto now = files_bytes();
  if (now != reported_bytes_) core_->database_bytes_changed(id_.binding(), now - reported_bytes_);
  reported_bytes_ = now;
}

void Host::forget_empty_database() {
  auto path = core_->database_file(id_);
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::filesystem::remove(path.string() + suffix, ec);
  }
  report_bytes();
  // No directory fsync: if a crash brings the empty file back, it is as empty as before.
  try {
    core_->names().remove(id_);
  } catch (const std::exception& e) {
    // The row stays (the actor is listed with an empty database); nothing is lost.
    spdlog::warn("actor {} {}: cannot forget its name: {}", id_.binding(), id_.hex(), e.what());
  }
}

}  // namespace cairn
