// Host: event loop, group commit and output gate of one actor instance.
#include "host.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>

#include <caf/all.hpp>

#include "cairn/limits.hpp"
#include "cairn/log_context.hpp"
#include "host_support.hpp"
#include "runtime_core.hpp"

namespace cairn {
using namespace host_support;
namespace {
using commit_atom = caf::atom_constant<caf::atom("commit")>;
using synced_atom = caf::atom_constant<caf::atom("synced")>;
}  // namespace

namespace {

// What an event is, as the actor's recent events show it.
detail::EventRecord describe(const Event& event) {
  detail::EventRecord record;
  using Kind = detail::EventRecord::Kind;
  constexpr auto most = limits::event_record_what_bytes;
  if (const auto* fetch = std::get_if<FetchEvent>(&event.body)) {
    record.kind = Kind::fetch;
    // The path without its query, which may carry secrets; cut before it is copied whole.
    record.what = detail::cut_utf8(fetch->request.method, most / 2) + " ";
    record.what += detail::cut_utf8(fetch->request.path(), most - record.what.size());
  } else if (const auto* call = std::get_if<CallEvent>(&event.body)) {
    record.kind = Kind::call;
    record.what = detail::cut_utf8(call->method, most);
  } else if (const auto* socket = std::get_if<SocketEvent>(&event.body)) {
    switch (socket->kind) {
      case SocketEvent::Kind::message:
        record.kind = Kind::message;
        record.what = std::to_string(socket->data.size()) + (socket->binary ? " bytes, binary" : " bytes, text");
        break;
      case SocketEvent::Kind::close:
        record.kind = Kind::close;
        record.what = "code " + std::to_string(socket->code);
        break;
      case SocketEvent::Kind::error:
        record.kind = Kind::error;
        record.what = detail::cut_utf8(socket->data, most);
        break;
    }
  }
  return record;
}

}  // namespace

Host::Host(caf::actor_config& config, detail::RuntimeCore* core, ActorId id,
           std::shared_ptr<const ActorFactory> factory, std::uint64_t generation)
    : caf::event_based_actor(config), core_(core), id_(std::move(id)), factory_(std::move(factory)),
      generation_(generation), context_(*this), outbox_(core->node()) {}

caf::behavior Host::make_behavior() {
  // What the metrics' totals hold for this actor already (counted at start, or reported at
  // close by its previous host). Here, on the host's thread, not in the spawning one.
  reported_bytes_ = files_bytes();
  recent_ = core_->activity().unpark(id_);
  set_exit_handler([this](caf::exit_msg& msg) {
    finish();
    quit(msg.reason);
  });
  return {
      [this](Event& event) { handle(event); },
      [this](commit_atom, std::uint64_t batch) {
        if (in_batch_ && batch == batch_) commit_batch();
      },
      [this](synced_atom, std::uint64_t term, std::uint64_t through, bool ok, const std::string& error) {
        synced(term, through, ok, error);
      },
      [this](evict_atom, std::uint64_t generation) {
        if (generation != generation_) return;
        finish();
        park_events();  // before the next host can start
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
  ReplyTo reply = event.take_reply();  // answered from now on through the router
  // The request it descends from: Context::trace(), carried on by its calls and alarms, and
  // on the log lines written while it runs (the runtime's and the actor's).
  trace_ = {};
  if (const auto* fetch = std::get_if<FetchEvent>(&event.body)) {
    trace_ = {fetch->request.request_id, fetch->request.traceparent};
  } else if (const auto* call = std::get_if<CallEvent>(&event.body)) {
    trace_ = call->trace;
  }
  ScopedLogContext log_context({trace_.request_id, std::string(trace_id_of(trace_.traceparent))});
  run_event([&] { dispatch(event, reply); }, reply,
            core_->activity().enabled() ? describe(event) : detail::EventRecord{});
  trace_ = {};
}

bool Host::ensure_batch(ReplyTo reply) {
  // No exception may leave a handler: CAF 0.17 would kill the actor.
  try {
    open_database();
    if (!in_batch_) {
      // The batch runs under the epoch at which the shard is owned now (an event sets it
      // before; an alarm's batch, which may be the first of a new instance, takes it here):
      // its outputs are released only while that epoch holds.
      auto epoch = core_->owned_epoch(id_.shard());
      if (!epoch) {
        if (reply) core_->fail_reply(reply, not_owner_error());
        refused_status_ = http_status(not_owner_error().code);
        return false;
      }
      batch_epoch_ = *epoch;
      db_->begin();
      in_batch_ = true;
      batch_events_ = 0;
      batch_first_event_ = recent_.total();
      ++batch_;
      // Queued behind every event already in the mailbox: they all join this batch.
      send(this, commit_atom::value, batch_);
    }
    return true;
  } catch (const std::exception& e) {
    spdlog::error("actor {} {}: cannot start an event: {}", id_.binding(), id_.hex(), e.what());
    auto error = storage_error(e, "the actor's storage is unavailable");
    if (reply) core_->fail_reply(reply, error);
    refused_status_ = http_status(error.code);
    abort_batch(error);
    return false;
  }
}

void Host::open_database() {
  if (db_) return;
  // Named before its database exists, so every database with acknowledged data can be listed
  // by name: the record and the new directories' entries are made durable by the first sync
  // (the first batch after an opening always waits for one), off this thread.
  OpenDebt debt;
  debt.names = core_->names().record(id_);
  auto path = core_->database_path(id_, &debt.dirs);
  // A new WAL's first commit does not sync its header, nor the directory (database_vfs.hpp):
  // the first sync after every opening syncs the directory, which holds the entries of the WAL
  // and of the database file (the power-loss test checks this). After every opening, not only
  // when the WAL is new: one left by a process that crashed before its first sync exists and
  // has frames (so SQLite syncs no header), but its entry may not be durable.
  debt.wal_directory = true;
  // A WAL that is not empty was not closed cleanly (a close checkpoints it and cuts it to 0
  // bytes): the process crashed, or a sync failed and the closing checkpoint with it. Its
  // frames may be readable and yet not on the disk (after a failed fsync Linux marks their
  // pages clean, and no later fsync writes them), so commits must not land behind them: they
  // are copied into the database file first (Database::absorb_wal). Until that succeeds, no
  // event runs.
  std::error_code ec;
  bool absorb = std::filesystem::file_size(path.string() + "-wal", ec) > 0 && !ec;
  db_.emplace(path);
  if (absorb) {
    try {
      db_->absorb_wal();
    } catch (...) {
      db_.reset();
      throw;
    }
  }
  db_->enable_history(HistoryOptions{std::chrono::duration_cast<std::chrono::milliseconds>(core_->options.history_retention),
                                     core_->options.history_max_bytes, core_->options.clock});
  ++db_term_;
  gate_ = std::make_shared<SyncGate>();
  if (core_->options.durability == Durability::full) {
    debt_ = std::move(debt);
  } else if (!debt.empty()) {
    core_->storage().post([core = core_, debt = std::move(debt), vfs = db_->vfs(), wal = db_->wal_file()] {
      std::string error;
      if (!pay(*core, debt, error) || (debt.wal_directory && !sync_wal(vfs, wal, error, true))) {
        spdlog::warn("{}", error);
      }
    });
  }
  // What the file holds may not be durable yet (a previous process's unsynced commits, still in
  // the page cache): the first batch's outputs wait for a sync, even if it only reads.
  if (core_->options.durability == Durability::full) written_through_ = ++committed_;
  // Whatever the alarm index says of this actor is checked against the truth at commit.
  alarms_dirty_ = alarm_table_exists();
  identity_known_ = identity_recorded();
}

Host::Outcome Host::run_event(const std::function<void()>& body, ReplyTo reply, detail::EventRecord record) {
  auto arrived = std::chrono::steady_clock::now();
  // Every event runs only where its shard is owned now, and one batch under one epoch.
  auto epoch = core_->owned_epoch(id_.shard());
  if (!epoch || (in_batch_ && *epoch != batch_epoch_)) {
    if (reply) core_->fail_reply(reply, not_owner_error());
    remember(std::move(record), arrived, http_status(not_owner_error().code), true);
    return Outcome::failed;  // the open batch, if any, is dropped at its commit
  }
  if (instance_ && *epoch != instance_epoch_) reset_instance();  // its memory may be stale
  if (!instance_) instance_epoch_ = *epoch;
  if (!in_batch_) batch_epoch_ = *epoch;
  if (!ensure_batch(reply)) {
    remember(std::move(record), arrived, refused_status_, true);
    return Outcome::failed;
  }
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
    remember(std::move(record), started, storage_failed ? http_status(broken->code) : 500, true);
    for (SocketId socket : outbox_.discard_event()) core_->sockets.unaccept(socket);
    answers_.resize(answers_before);
    if (reply) {
      core_->fail_reply(reply, !storage_failed
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
      if (reply) core_->fail_reply(reply, error);
      remember(std::move(record), started, http_status(error.code), true);
      abort_batch(error);
      return Outcome::failed;
    }
    remember(std::move(record), started, 500);
    if (reply) {
      answers_.push_back({reply, Result<nlohmann::json>(Error{
                                     Code::internal,
                                     "internal error in actor " + id_.binding() + ": " + *thrown})});
    }
    // Members may be half-updated: the next event gets a fresh object (the data is intact).
    reset_instance();
  } else {
    int status = 200;
    if (answers_.size() > answers_before) {
      const auto& answer = answers_.back().answer;
      if (const auto* response = std::get_if<Response>(&answer)) {
        status = response->status;
      } else if (const auto& result = std::get<Result<nlohmann::json>>(answer); !result) {
        status = http_status(result.error().code);
      }
    }
    remember(std::move(record), started, status);
  }
  if (++batch_events_ >= limits::max_events_per_commit && !commit_batch()) return Outcome::failed;
  return thrown ? Outcome::threw : Outcome::ok;
}

void Host::dispatch(Event& event, ReplyTo reply) {
  if (auto* fetch = std::get_if<FetchEvent>(&event.body)) {
    answers_.push_back({reply, instance_->fetch(fetch->request)});
    return;
  }
  if (auto* call = std::get_if<CallEvent>(&event.body)) {
    auto method = methods_.find(call->method);
    if (method == methods_.end()) {
      answers_.push_back({reply, Result<nlohmann::json>(Error{
                                           Code::not_found, "actor " + id_.binding() +
                                                                " has no method '" +
                                                                call->method + "'"})});
      return;
    }
    auto result = method->second(call->args);
    if (!reply && !result) {  // a reply to Context::call: nobody else would see it
      spdlog::warn("actor {} {}: method '{}' (a call's reply) failed: {}", id_.binding(), id_.hex(),
                   call->method, result.error().message);
    }
    answers_.push_back({reply, std::move(result)});
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
  bool wrote = false;
  bool naming = false;
  try {
    // In the same transaction as the first write of an opening that finds it missing.
    naming = !identity_known_ && db_->writing();
    if (naming) record_identity();
    wrote = db_->commit();
  } catch (const std::exception& e) {
    spdlog::error("actor {} {}: commit failed: {}", id_.binding(), id_.hex(), e.what());
    // After a failed commit the write may still surface when the database reopens (its WAL
    // frames reached the file): the caller learns only that it was not made durable.
    // A checkpoint that could not sync may have lost the WAL's frames: then the batches
    // committed before this one are not durable either.
    abort_batch(storage_error(e, "the write could not be made durable"), db_ && db_->durability_lost());
    return false;
  }
  if (report) alarms_dirty_ = false;
  if (naming) identity_known_ = true;
  auto committed_at = std::chrono::steady_clock::now();
  // The metrics' database bytes follow at most every second (two stats), and at close.
  if (committed_at - bytes_reported_at_ > std::chrono::seconds(1)) {
    bytes_reported_at_ = committed_at;
    report_bytes();
  }
  in_batch_ = false;
  ++committed_;
  if (wrote) written_through_ = committed_;
  WaitingBatch batch{written_through_, {}, outbox_.accepted(), std::exchange(answers_, {}),
                     report, soonest, batch_epoch_, batch_events_, commit_start, batch_first_event_, recent_.total()};
  batch.outputs = outbox_.take();
  batch_ended(batch_events_, std::nullopt);
  batch_events_ = 0;
  if (core_->options.durability == Durability::normal) durable_through_ = written_through_;
  if (batch.needs <= durable_through_ && waiting_.empty()) {
    release(batch);  // nothing it shows can be lost: it read only what is durable
    return true;
  }
  waiting_.push_back(std::move(batch));
  start_sync();
  return true;
}

void Host::start_sync() {
  if (syncing_ || written_through_ <= durable_through_ || !db_) return;
  syncing_ = true;
  auto self = caf::actor_cast<caf::actor>(this);
  core_->storage().post([self, core = core_, debt = debt_, vfs = db_->vfs(), gate = gate_,
                         wal = db_->wal_file(), term = db_term_, through = written_through_] {
    std::string error;
    bool ok = gated_sync(*core, *gate, debt, vfs, wal, error);
    caf::anon_send(self, synced_atom::value, term, through, ok, error);
  });
}

bool Host::gated_sync(detail::RuntimeCore& core, SyncGate& gate, const OpenDebt& debt, sqlite3_vfs* vfs,
                      const std::string& wal, std::string& error) {
  std::lock_guard lock(gate.mutex);
  if (gate.retired) return true;
  if (!gate.failure.empty()) {
    error = gate.failure + " (an earlier sync of this opening failed)";
    return false;
  }
  bool ok = (debt.empty() || pay(core, debt, error)) && sync_wal(vfs, wal, error, debt.wal_directory);
  if (!ok) gate.failure = error;
  return ok;
}

std::string Host::retire_gate(bool database_stays_open) {
  std::string failure;
  if (gate_) {
    std::lock_guard lock(gate_->mutex);
    gate_->retired = true;
    failure = gate_->failure;
  }
  gate_ = database_stays_open ? std::make_shared<SyncGate>() : nullptr;
  return failure;
}

void Host::synced(std::uint64_t term, std::uint64_t through, bool ok, const std::string& error) {
  if (term != db_term_ || !syncing_) return;  // for a database closed since
  syncing_ = false;
  if (!ok) {
    spdlog::error("actor {} {}: cannot make its commits durable: {}", id_.binding(), id_.hex(), error);
    // Every batch not yet durable fails, the open one too (it was written on top of them).
    abort_batch(Error{Code::unavailable, "the write could not be made durable: the actor's storage failed"}, true);
    return;
  }
  debt_ = {};  // paid by this sync (an opening since would have changed the term)
  durable_through_ = std::max(durable_through_, through);
  while (!waiting_.empty() && waiting_.front().needs <= durable_through_) {
    release(waiting_.front());
    waiting_.pop_front();
  }
  start_sync();  // for what was committed while this one ran
}

bool Host::pay(detail::RuntimeCore& core, const OpenDebt& debt, std::string& error) {
  if (debt.names != 0 && !core.names().sync_through(debt.names, error)) return false;
  for (const auto& level : debt.dirs) {
    if (!sync_path(level.parent_path())) {
      error = "cannot fsync the directory " + level.parent_path().string() + ": " + std::strerror(errno);
      return false;
    }
  }
  if (!debt.dirs.empty()) core.dirs_durable(debt.dirs);
  return true;
}

bool Host::flush_durable() {
  if (waiting_.empty() && written_through_ <= durable_through_) return true;
  if (written_through_ > durable_through_) {
    // Through a gate of its own: the one a sync on the pool may be using is retired first
    // (waiting for that sync), so that one's failure is seen here and no stale sync runs later.
    std::string error = retire_gate(true);
    if (!db_ || !error.empty() || !gated_sync(*core_, *gate_, debt_, db_->vfs(), db_->wal_file(), error)) {
      spdlog::error("actor {} {}: cannot make its commits durable: {}", id_.binding(), id_.hex(), error);
      abort_batch(Error{Code::unavailable, "the write could not be made durable: the actor's storage failed"}, true);
      return false;
    }
    durable_through_ = written_through_;
    debt_ = {};
    syncing_ = false;  // whatever runs on the pool now is stale (its term is bumped below)
    ++db_term_;
  }
  while (!waiting_.empty()) {
    release(waiting_.front());
    waiting_.pop_front();
  }
  return true;
}

void Host::release(WaitingBatch& batch) {
  core_->committed(batch.events, std::chrono::duration<double>(std::chrono::steady_clock::now() - batch.started).count());
  if (auto owned = core_->owned_epoch(id_.shard()); !owned || *owned != batch.epoch) {
    // Cluster mode: this node fenced itself (its lease may be expiring) or the shard moved
    // while the batch ran. Nothing may leave: another node may own the actor by now.
    spdlog::warn("actor {} {}: shard {} no longer owned at epoch {}; the batch's outputs are dropped",
                 id_.binding(), id_.hex(), id_.shard(), batch.epoch);
    auto error = not_owner_error();
    for (auto& pending : batch.answers) {
      if (pending.reply) core_->fail_reply(pending.reply, error);
    }
    batch.answers.clear();
    batch_failed_late(batch, http_status(error.code));
    reset_instance();
    return;
  }
  // The alarm index learns of the batch's soonest alarm now that it is durable, unless a later
  // batch (committed, still waiting) changed it again: that one reports. Reporting this one's
  // later time now could leave the index late for the later batch's sooner alarm, which its
  // commit wrote ahead (waiting_'s front is `batch` itself).
  if (batch.report_alarms && !hold_alarm_reports_ &&
      std::none_of(waiting_.begin() + (!waiting_.empty() && &waiting_.front() == &batch ? 1 : 0), waiting_.end(),
                   [](const WaitingBatch& later) { return later.report_alarms; })) {
    core_->alarms_committed(id_, batch.soonest);
  }
  // The output gate opens: everything the batch sent leaves now, in order. Socket outputs
  // are addressed by socket: their connections are looked up once for the whole batch.
  auto& outputs = batch.outputs;
  std::vector<SocketId> addressed;
  for (const auto& output : outputs) {
    if (auto* send = std::get_if<SocketSend>(&output)) addressed.push_back(send->to.socket);
    if (auto* close = std::get_if<SocketClose>(&output)) addressed.push_back(close->to.socket);
  }
  auto sinks = addressed.empty() ? std::vector<std::shared_ptr<SocketSink>>{} : core_->sockets.sinks(addressed);
  std::size_t next_sink = 0;
  for (auto& output : outputs) {
    if (auto* send = std::get_if<SocketSend>(&output)) {
      if (auto& sink = sinks[next_sink++]) sink->send(std::move(send->message), send->binary);
    } else if (auto* call = std::get_if<ActorCall>(&output)) {
      make_call(std::move(*call));
    } else {
      auto& close = std::get<SocketClose>(output);
      if (auto& sink = sinks[next_sink++]) sink->close(close.code, std::move(close.reason));
    }
  }
  for (auto& pending : std::exchange(batch.answers, {})) {
    if (!pending.reply) continue;
    std::visit([&](auto& answer) { core_->answer_reply(pending.reply, std::move(answer)); }, pending.answer);
  }
}

Error Host::not_owner_error() const {
  return Error{Code::unavailable, "this node does not serve actor " + id_.binding() + "'s shard " +
                                      std::to_string(id_.shard()) +
                                      " now (cluster mode: it moved, or this node lost etcd); "
                                      "whether a write happened is unknown; try again shortly"};
}

void Host::make_call(ActorCall call) {
  // The answer comes back as an event of this actor (whichever instance is live then); the
  // runtime may be gone by then, hence the weak pointer.
  std::weak_ptr<detail::RuntimeCore> weak = core_->weak_from_this();
  auto reply = [weak, caller = id_, reply_method = std::move(call.reply_method), trace = call.trace,
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
    core->tell_actor(caller, std::move(reply_method), std::move(payload), std::move(trace));
  };
  core_->call_actor(call.target, std::move(call.method), std::move(call.args), std::move(reply),
                    std::move(call.trace));
}

void Host::abort_batch(const Error& error, bool durability_lost) {
  // What the alarm index holds for this actor may no longer match any state its database can
  // come back in (the open batch's sooner alarm was indexed before a commit that failed yet
  // may surface; a dropped batch's report is lost, or an earlier one's was skipped for it).
  bool alarms_unknown = alarms_dirty_ || std::any_of(waiting_.begin(), waiting_.end(),
                                                     [](const WaitingBatch& b) { return b.report_alarms; });
  // Nothing of the batch happened: its outputs are dropped, its callers told, and the
  // instance and its connection start afresh on the next event.
  if (db_) db_->rollback();
  for (SocketId socket : outbox_.discard_batch()) core_->sockets.unaccept(socket);
  for (auto& pending : std::exchange(answers_, {})) {
    if (pending.reply) core_->fail_reply(pending.reply, error);
  }
  if (in_batch_) batch_ended(0, http_status(error.code));
  in_batch_ = false;
  batch_events_ = 0;
  // The batches committed before it are not the open batch's to fail: made durable now, they
  // are released (if that sync fails, they fail there), their alarm reports held back if the
  // index may hold a sooner time for the open batch (the wake below tells it the truth).
  if (!durability_lost) {
    hold_alarm_reports_ = alarms_unknown;
    flush_durable();
    hold_alarm_reports_ = false;
  }
  // Unless the storage failed under them: their commits may be lost (or surface when the
  // database reopens); their callers learn only that they were not made durable.
  for (auto& batch : std::exchange(waiting_, {})) {
    for (SocketId socket : batch.accepted) core_->sockets.unaccept(socket);
    for (auto& pending : batch.answers) {
      if (pending.reply) core_->fail_reply(pending.reply, error);
    }
    batch_failed_late(batch, http_status(error.code));
  }
  durable_through_ = written_through_ = committed_;
  syncing_ = false;
  ++db_term_;
  retire_gate(false);  // no sync of this opening runs after the database closes
  in_batch_ = false;
  batch_events_ = 0;
  alarms_dirty_ = false;  // checked again when the database reopens
  reset_instance();
  db_.reset();
  report_bytes();
  // An early wake: the actor reopens its database and reports its soonest alarm as it is.
  if (alarms_unknown) core_->alarms_committed(id_, to_ticks(core_->options.clock->now()));
}

Host::~Host() {
  Error stopped{Code::unavailable, "the actor stopped before answering"};
  for (auto& pending : std::exchange(answers_, {})) {
    if (pending.reply) core_->fail_reply(pending.reply, stopped);
  }
  for (auto& batch : std::exchange(waiting_, {})) {
    for (auto& pending : batch.answers) {
      if (pending.reply) core_->fail_reply(pending.reply, stopped);
    }
  }
}

void Host::on_exit() {
  // The batches committed before the open one are made durable and released first; the open
  // one did not commit: its callers hear so.
  flush_durable();
  if (in_batch_) abort_batch(Error{Code::unavailable, "the actor stopped before answering"}, true);
  reset_instance();
  db_.reset();
  report_bytes();
  park_events();
}

void Host::remember(detail::EventRecord record, std::chrono::steady_clock::time_point started, int status,
                    bool told) {
  if (!core_->activity().enabled()) return;
  auto took = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
  record.at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     core_->options.clock->now().time_since_epoch() - std::chrono::duration_cast<Clock::duration>(took))
                     .count();
  record.duration_us = static_cast<std::uint32_t>(std::min<std::int64_t>(took.count(), std::numeric_limits<std::uint32_t>::max()));
  record.status = static_cast<std::uint16_t>(std::clamp(status, 0, 999));
  // Its answer waits for the batch to end (and may change then), unless its caller was told.
  record.open = in_batch_ && !told;
  recent_.push(std::move(record));
  ++batch_activity_.events;
  if (status >= 500) ++batch_activity_.errors;
  batch_activity_.latency.add(static_cast<std::uint64_t>(took.count()));
  if (!in_batch_) batch_ended(0, std::nullopt);  // it joined no batch: counted now
}

void Host::batch_ended(std::size_t events, std::optional<int> failed) {
  if (!core_->activity().enabled()) return;
  recent_.each_since(batch_first_event_, [&](detail::EventRecord& r) {
    if (!r.open) return;  // answered at once, or an earlier batch's
    r.open = false;
    if (!failed) {
      r.batch = static_cast<std::uint16_t>(std::min<std::size_t>(events, std::numeric_limits<std::uint16_t>::max()));
      return;
    }
    // Its caller was told the batch's failure, whatever the event answered.
    if (r.status < 500) ++batch_activity_.errors;
    r.status = static_cast<std::uint16_t>(std::clamp(*failed, 0, 999));
  });
  batch_first_event_ = recent_.total();
  core_->activity().add(id_, batch_activity_);
  batch_activity_ = {};
}

void Host::batch_failed_late(const WaitingBatch& batch, int status) {
  if (!core_->activity().enabled()) return;
  detail::BatchActivity failed;
  recent_.each_between(batch.first_event, batch.end_event, [&](detail::EventRecord& r) {
    if (r.batch == 0) return;  // answered at once: it did not wait for this batch
    if (r.status < 500) ++failed.errors;
    r.status = static_cast<std::uint16_t>(std::clamp(status, 0, 999));
  });
  // Its events were counted when it committed; only the errors are new.
  core_->activity().add(id_, failed);
}

void Host::park_events() {
  if (recent_.total() == 0) return;
  core_->activity().park(id_, std::exchange(recent_, detail::EventRing(0)));
}

void Host::reset_instance() {
  methods_.clear();
  instance_.reset();
}

void Host::finish() {
  if (in_batch_) commit_batch();
  flush_durable();
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

}  // namespace cairn
