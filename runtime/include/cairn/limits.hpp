// Every limit cairn enforces, as a named constant. An error that enforces one quotes it.
// Storage limits follow Cloudflare Durable Objects' documented values.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace cairn::limits {

// Actor names and bindings.
inline constexpr std::size_t max_actor_name_bytes = 256;
inline constexpr std::size_t max_binding_name_bytes = 64;

// SQL (set with sqlite3_limit on every actor database).
inline constexpr int max_sql_bound_parameters = 100;
inline constexpr int max_sql_statement_bytes = 100'000;
inline constexpr int max_sql_value_bytes = 2'000'000;
inline constexpr int max_sql_columns = 100;

// The WAL file each actor database keeps between checkpoints and evictions.
inline constexpr std::size_t wal_bytes_kept = 64 * 1024;

// Events: how many queued events may share one commit (group commit).
inline constexpr std::size_t max_events_per_commit = 64;

// WebSockets.
inline constexpr std::size_t max_websocket_tags = 10;
inline constexpr std::size_t max_websocket_tag_bytes = 256;
inline constexpr std::size_t max_websocket_message_bytes = 1 << 20;
// Messages of one WebSocket its actor has not run yet; at this many the gateway stops
// reading the socket until the actor has run half of them (backpressure, SocketFlow::pause).
inline constexpr std::uint32_t max_socket_messages_waiting = 32;
// The close code for a socket whose actor's queue is full (RFC 6455: try again later).
inline constexpr int overloaded_close_code = 1013;
inline constexpr std::size_t max_websocket_outbound_bytes = 1 << 20;
// A socket closed for going over max_websocket_outbound_bytes gets this long to take the
// write in flight (then its 1008 close frame); after it the connection is cut.
inline constexpr std::chrono::seconds websocket_close_grace{5};
// A socket's attachment (WebSocket::set_attachment), serialized as JSON.
inline constexpr std::size_t max_websocket_attachment_bytes = 16 * 1024;
// Open sockets one actor instance may have accepted at once.
inline constexpr std::size_t max_websockets_per_actor = 32'768;
// Each side of an auto-response rule (Context::set_websocket_auto_response), and the largest
// message the runtime tries to match against a JSON rule.
inline constexpr std::size_t max_auto_response_bytes = 2048;

// Alarms (Context::set_alarm). A throwing on_alarm is retried after alarm_retry_base,
// doubling each time (plus up to a quarter of jitter), at most alarm_max_retries times.
inline constexpr std::size_t max_alarm_name_bytes = 256;
inline constexpr std::size_t max_alarms_per_actor = 10'000;
inline constexpr std::chrono::seconds alarm_retry_base{2};
inline constexpr int alarm_max_retries = 6;
// How many due alarms one wake of an instance runs before it yields to other events.
inline constexpr std::size_t max_alarms_per_wake = 64;
// An instance told to run its due alarms that has not reported back within this long is
// told again (its host may have failed to open its storage).
inline constexpr std::chrono::seconds alarm_dispatch_lease{30};

// Lifecycle defaults (RuntimeOptions).
inline constexpr std::chrono::milliseconds default_idle_timeout{10'000};
inline constexpr std::size_t default_max_live_instances = 1000;

// Overload: requests and calls waiting for one actor (queued or running) at most; past it
// they are refused at once with 503 overloaded (RuntimeOptions::max_queued_events).
inline constexpr std::size_t default_max_queued_events = 1000;

// The time one event may run its SQL (RuntimeOptions::event_budget): past it, SQLite
// interrupts the event's statements, the event fails with 500 and the instance is reset.
inline constexpr std::chrono::milliseconds default_event_budget{30'000};
// An event that runs longer than this is logged (whatever its budget).
inline constexpr std::chrono::milliseconds slow_event_warning{1'000};

// HTTP. The header limit covers the request line too (431 past it).
inline constexpr std::size_t max_http_body_bytes = 64 * 1024;
inline constexpr std::size_t max_http_header_bytes = 16 * 1024;
// Defaults of GatewayOptions: a connection with no request for keep_alive_timeout is closed;
// a request's header must arrive within header_timeout of its first byte (slowloris), its
// body within body_timeout; an actor that has not answered within request_timeout gets 504.
inline constexpr std::chrono::seconds default_keep_alive_timeout{60};
inline constexpr std::chrono::seconds default_header_timeout{10};
inline constexpr std::chrono::seconds default_body_timeout{30};
inline constexpr std::chrono::seconds default_request_timeout{30};
// Open connections (HTTP and WebSocket) at most, when the program sets none: the
// descriptor limit less a reserve for the databases (2 per live instance) and the runtime.
inline constexpr std::size_t default_max_connections = 10'000;
inline constexpr std::size_t reserved_descriptors = 256;
// Threads that wait on fsyncs (RuntimeOptions::storage_threads). Measured over 1,000
// databases on this kind of machine: 8 threads in fsync at once gave 5.3k commits/s, 16 gave
// 9.1k, 32 gave 11.1k (reference/websocket-and-commit-limits.md).
inline constexpr std::size_t default_storage_threads = 16;

// The admin API (cairn::Admin). A read-only query may run this long on the actor's thread
// and return at most admin_max_rows rows (admin_default_rows unless asked); an imported
// database may be this large; WebSockets of a deleted actor are closed with this code.
inline constexpr std::chrono::milliseconds admin_query_budget{2000};
// An online backup copies one actor at a time and rests this many times as long as each
// copy took: it takes about a quarter of one core at most, and serving keeps the rest
// (measured: GET /seats during a backup of 10,000 actors fell to 0.30 of its rate with four
// unpaced copiers on 2 cores; scripts/bench-admin.sh).
inline constexpr int backup_rest_factor = 3;
inline constexpr std::size_t admin_default_rows = 100;
inline constexpr std::size_t admin_max_rows = 10'000;
inline constexpr std::size_t max_admin_body_bytes = 256 * 1024 * 1024;
inline constexpr int deleted_close_code = 4004;
// How long an admin operation waits for the actor's thread before it answers 504.
inline constexpr std::chrono::seconds admin_operation_timeout{60};

// What the runtime remembers of its actors' events for operators (the admin API's
// "recent_events" and /admin/top, the inspector, cairnctl top). Each live actor keeps its
// last default_recent_events events (RuntimeOptions::recent_events; about 80 bytes each,
// taken on its first event); the rings of the last parked_event_rings actors to be evicted
// are kept until they wake. The top lists count events in slots of activity_slot, the last
// activity_slots of them (5 minutes), at most activity_actors_per_slot actors a slot.
inline constexpr std::size_t default_recent_events = 32;
inline constexpr std::size_t max_recent_events = 1000;
inline constexpr std::size_t event_record_what_bytes = 64;
inline constexpr std::size_t parked_event_rings = 1024;
inline constexpr std::chrono::seconds activity_slot{10};
inline constexpr std::size_t activity_slots = 30;
inline constexpr std::size_t activity_actors_per_slot = 1024;
inline constexpr std::size_t admin_default_top = 10;
inline constexpr std::size_t admin_max_top = 100;

// Each actor's history of changes, for restores to a point in time (README "Restoring an
// actor to a moment"): kept for RuntimeOptions::history_retention (off unless set), at most
// history_max_bytes of changes per actor (the oldest pruned first).
inline constexpr std::int64_t default_history_max_bytes = 64LL << 20;
inline constexpr std::int64_t max_history_max_bytes = 1LL << 40;

}  // namespace cairn::limits
