// Host: the CAF actor that is one live actor instance's single-threaded home. It opens the
// database, constructs the user's object on the first event (and again after a reset), and
// runs events one at a time, each in its own savepoint inside a batch transaction that
// commits when the mailbox has no more queued events (group commit) or the batch is full.
// Replies and socket sends are released only once that commit is durable (the output gate):
// the commit's WAL sync runs on the storage pool while the host runs its next events
// (pipelined durability), and batches' outputs leave in commit order.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include <caf/event_based_actor.hpp>

#include "cairn/actor.hpp"
#include "cairn/context.hpp"
#include "cairn/registry.hpp"
#include "activity.hpp"
#include "database.hpp"
#include "events.hpp"
#include "outbox.hpp"

namespace cairn {

namespace detail {
class RuntimeCore;
}

class Host;

class HostContext final : public Context {
 public:
  explicit HostContext(Host& host) : host_(host) {}
  const ActorId& id() const override;
  Sql& sql() override;
  Clock::time_point now() const override;
  TraceContext trace() const override;
  Result<Response> accept_websocket(const Request& request, std::vector<std::string> tags) override;
  std::vector<WebSocket> websockets(const std::string& tag) override;
  Result<void> set_websocket_auto_response(std::optional<AutoResponse> rule) override;
  std::optional<AutoResponse> websocket_auto_response() const override;
  std::optional<Clock::time_point> auto_response_timestamp(const WebSocket& socket) const override;
  std::vector<Alarm> alarms() override;
  void delete_all() override;
  Result<void> call(std::string_view binding, std::string_view name, std::string method,
                    nlohmann::json args, std::string reply_method, nlohmann::json context) override;

 protected:
  Result<void> put_alarm(std::string_view name, Clock::time_point when) override;
  std::optional<Clock::time_point> find_alarm(std::string_view name) override;
  bool remove_alarm(std::string_view name) override;

 private:
  Host& host_;
};

class Host final : public caf::event_based_actor {
 public:
  Host(caf::actor_config& config, detail::RuntimeCore* core, ActorId id,
       std::shared_ptr<const ActorFactory> factory, std::uint64_t generation);
  caf::behavior make_behavior() override;
  const char* name() const override { return "cairn-host"; }
  // However the host ends (evicted, shut down, or ended by CAF), its database is closed
  // before the directory hears of it, so the next host can open it. An open batch that was
  // not committed is rolled back and its callers are answered 503.
  void on_exit() override;
  // Answers still held (none after on_exit) fail with 503: no caller may wait for ever.
  ~Host() override;

 private:
  friend class HostContext;
  struct PendingAnswer {
    ReplyTo reply;
    std::variant<Response, Result<nlohmann::json>> answer;
  };

  // A committed batch whose outputs wait for durability: its own commit's (if it wrote),
  // else that of the last batch before it that wrote.
  struct WaitingBatch {
    std::uint64_t needs;  // durable_through_ must reach this
    std::vector<SocketOutput> outputs;
    std::vector<SocketId> accepted;
    std::vector<PendingAnswer> answers;
    bool report_alarms = false;
    std::optional<std::int64_t> soonest;
    std::int64_t epoch = 0;
    std::size_t events = 0;
    std::chrono::steady_clock::time_point started;
    std::uint64_t first_event = 0;  // its events' numbers in recent_: [first_event, end_event)
    std::uint64_t end_event = 0;
  };

  enum class Outcome { ok, threw, failed };
  // The answer to an event of a shard this node does not serve now (cluster mode).
  Error not_owner_error() const;  // failed: storage broke, the batch was aborted
  struct DueAlarm {
    std::string name;
    std::int64_t due;
    int retries;
    TraceContext trace;  // of the event that set it
  };

  void handle(Event& event);
  // The admin API's operations (AdminEvent); answer through event.done.
  void run_admin(AdminEvent& event);
  Result<nlohmann::json> admin_operation(AdminEvent& event);
  nlohmann::json inspect();
  nlohmann::json remove_everything();
  // Opens the database (recording the actor's name first) if it is not open.
  void open_database();
  // Opens the database and starts a batch if needed; false (caller told) if it cannot.
  bool ensure_batch(ReplyTo reply);
  // Runs `body` as one event: its own savepoint, the instance created first if needed,
  // rolled back (and the instance reset) if it throws. `record` (its kind and what) is
  // completed and kept in the actor's recent events.
  Outcome run_event(const std::function<void()>& body, ReplyTo reply, detail::EventRecord record);
  // Keeps a finished event in the recent events and the open batch's activity (added to the
  // runtime's table now if no batch is open).
  // `told`: its caller was answered already (the event was refused, or broke its batch).
  void remember(detail::EventRecord record, std::chrono::steady_clock::time_point started, int status,
                bool told = false);
  // The open batch ended: its events learn the commit's size (committed) or the status their
  // callers got (`failed`), and its activity goes to the runtime's table.
  void batch_ended(std::size_t events, std::optional<int> failed);
  // A committed batch's callers were told `status` after all (its sync failed, or the shard
  // moved): its recent events say so, and its errors are counted.
  void batch_failed_late(const WaitingBatch& batch, int status);
  // Hands the recent events to the runtime, for the actor's next host.
  void park_events();
  void dispatch(Event& event, ReplyTo reply);
  void run_due_alarms();
  void schedule_retry(const DueAlarm& alarm);
  bool alarm_table_exists();
  // Gives an alarm table made before alarms carried their trace (cairn 0.x) the columns for
  // it. Throws what SQLite throws.
  void ensure_alarm_trace_columns();
  // The actor's own name in its database (_cairn_actor: binding, name, created_ms), written
  // with the first batch of an opening that writes while it is missing or another's (an
  // imported copy): a shard's files then say whose they are, so a follower that takes the
  // shard over can rebuild the node's names and alarm indexes from them
  // (Runtime::adopt_shard_files). True once it is there.
  bool identity_recorded();
  void record_identity();
  std::optional<std::int64_t> soonest_alarm();
  // Commits the open batch and releases its outputs; false if it failed (the batch was
  // aborted: callers told, database closed).
  bool commit_batch();
  // Outputs of a durable batch leave (or are dropped if the shard moved meanwhile).
  void release(WaitingBatch& batch);
  // Starts the WAL sync that covers every batch committed so far, unless one runs (its
  // completion starts the next).
  void start_sync();
  void synced(std::uint64_t term, std::uint64_t through, bool ok, const std::string& error);
  // Makes every committed batch durable on this thread and releases it (before the database
  // closes, and before the admin API looks at it); false if the sync failed (they failed).
  bool flush_durable();
  void make_call(ActorCall call);
  // The open batch fails (rolled back, its outputs dropped, its callers told), the instance is
  // reset and the database closed. The batches committed before it are made durable and
  // released first, unless `durability_lost` (a sync failed): then they fail too.
  void abort_batch(const Error& error, bool durability_lost = false);
  void reset_instance();
  void finish();
  // Deletes the (closed, empty) database's files and the actor's names row.
  void forget_empty_database();
  // Bytes of the database file and its WAL on disk now (0 if absent).
  std::int64_t files_bytes() const;
  // Tells the runtime's running total how the database's bytes changed since last told.
  void report_bytes();

  detail::RuntimeCore* core_;
  ActorId id_;
  std::shared_ptr<const ActorFactory> factory_;  // the class as it was when this host started
  // Cluster mode (0 on a single node): the epoch of the shard's ownership the instance
  // started under (another one drops it), and the one the open batch began under (its
  // outputs leave only if that is still the current one).
  std::int64_t instance_epoch_ = 0;
  std::int64_t batch_epoch_ = 0;
  std::uint64_t generation_;  // this host's term in the directory
  HostContext context_;
  TraceContext trace_;  // the running event's (Context::trace())
  std::optional<Database> db_;
  std::unique_ptr<Actor> instance_;
  Methods methods_;
  Outbox outbox_;
  std::vector<PendingAnswer> answers_;
  bool in_batch_ = false;
  bool alarms_dirty_ = false;       // the batch may have changed the soonest alarm
  bool identity_known_ = false;     // _cairn_actor names this actor (committed)
  bool reset_after_event_ = false;  // delete_all(): the next event gets a fresh instance
  std::size_t batch_events_ = 0;
  std::uint64_t batch_ = 0;  // generation: a commit message for an older batch is stale
  // Pipelined durability: committed batches, numbered from 1 across the host's life.
  std::deque<WaitingBatch> waiting_;
  std::uint64_t committed_ = 0;        // the last batch committed
  std::uint64_t written_through_ = 0;  // the last committed batch that wrote
  std::uint64_t durable_through_ = 0;  // batches up to this one are durable
  bool syncing_ = false;               // a sync of this database is on the storage pool
  bool hold_alarm_reports_ = false;    // an abort releases earlier batches: the index hears later
  std::uint64_t db_term_ = 0;          // counts openings: a sync of an older one is stale
  // What the database opened last still owes the disk before anything of it is acknowledged
  // (durability full): its names record, the fsyncs of directories made for it, and its own
  // directory's (its WAL's entry and its file's, which SQLite did not sync). Paid by its
  // first sync, off the actor's thread; with durability normal, by a job nobody waits for.
  struct OpenDebt {
    std::uint64_t names = 0;                  // for NamesIndex::sync_through
    std::vector<std::filesystem::path> dirs;  // levels whose parents to fsync (database_path)
    bool wal_directory = false;  // sync the WAL's directory with it (database_vfs.hpp)
    bool empty() const { return names == 0 && dirs.empty() && !wal_directory; }
  };
  OpenDebt debt_;
  // The names sync and the directories' fsyncs (the WAL's is the caller's, with its sync).
  static bool pay(detail::RuntimeCore& core, const OpenDebt& debt, std::string& error);
  // The syncs of an opening run one at a time, on the pool or on the host's thread, through
  // its gate. Linux tells a failed writeback once, to whichever fsync of the file comes first:
  // a sync whose result the host would not read (one made stale by flush_durable, or queued
  // for a database closed since) must not take that error from the sync the host waits for.
  // So a sync that fails marks the gate, and every later sync through it fails too; and a
  // retired gate (its syncs stale) runs none: retiring it waits for the one under way.
  struct SyncGate {
    std::mutex mutex;
    bool retired = false;
    std::string failure;  // a sync through this gate failed: why
  };
  std::shared_ptr<SyncGate> gate_;
  // Pays `debt` and syncs `wal` through `gate` (any thread). True if it is durable, or if the
  // gate is retired (nothing ran: the result is stale and read by nobody).
  static bool gated_sync(detail::RuntimeCore& core, SyncGate& gate, const OpenDebt& debt, sqlite3_vfs* vfs,
                         const std::string& wal, std::string& error);
  // Retires the current gate (waiting for a sync under way through it) and returns what it saw
  // fail, if anything; a new one serves the syncs from now on if the database stays open.
  std::string retire_gate(bool database_stays_open);
  // For operators (activity.hpp): the actor's last events (parked in the runtime between
  // hosts), the number of the open batch's first one, and what the open batch did.
  detail::EventRing recent_;
  std::uint64_t batch_first_event_ = 0;
  detail::BatchActivity batch_activity_;
  int refused_status_ = 503;  // what ensure_batch's last refusal told the caller
  std::int64_t reported_bytes_ = 0;  // this database's bytes as the metrics' total has them
  std::chrono::steady_clock::time_point bytes_reported_at_{};
};

}  // namespace cairn
