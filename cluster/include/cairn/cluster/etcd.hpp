// A small client of etcd 3.4's v3 API over its HTTP/JSON gateway (Debian's etcd-server),
// for cluster mode's membership, shard ownership and epochs. etcd is never on the data path:
// these calls happen on lease renewals, claims and hand-offs, not per request.
//
// Why not a library: Debian packages no C++ etcd client (etcd-cpp-apiv3 is not in Debian,
// and its gRPC stack would be a second network layer beside Beast). The JSON gateway is
// etcd's documented HTTP interface, and what cairn needs of it is a handful of calls.
//
// etcd's traps, handled here (../shared/reference/cluster-notes.md): keys and values travel
// base64-encoded; 64-bit numbers arrive as JSON strings and lease IDs exceed 2^53, so they
// never pass through a double; fields at their default value are omitted (a failed txn has
// no "succeeded", a PUT event no "type", a keepalive on a lost lease no "TTL").
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/result.hpp"

namespace cairn::cluster {

// An etcd endpoint, "http://HOST:PORT" (plain HTTP; TLS to etcd is not supported yet).
struct Endpoint {
  std::string host;
  std::string port;
  std::string to_string() const { return "http://" + host + ":" + port; }
};
// Parses "http://HOST:PORT[,http://HOST:PORT...]"; an error names the bad entry.
Result<std::vector<Endpoint>> parse_endpoints(std::string_view list);

// The end of the key range that holds every key starting with `prefix` (etcd's range_end).
std::string prefix_end(std::string_view prefix);

struct KeyValue {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t version = 0;
  std::int64_t lease = 0;  // 0: not under a lease
};

struct RangeResult {
  std::int64_t revision = 0;  // the store's revision when read
  std::vector<KeyValue> kvs;
};

// One comparison of a transaction: the key's `target` compared with a number or a value.
struct Compare {
  enum class Target { version, create_revision, mod_revision, value, lease };
  enum class Op { equal, not_equal, greater, less };
  std::string key;
  Target target = Target::version;
  Op op = Op::equal;
  std::int64_t number = 0;  // for version, create/mod revision, lease
  std::string value;        // for Target::value

  // The key does not exist (a claim of a free key).
  static Compare absent(std::string key) { return {std::move(key), Target::create_revision, Op::equal, 0, {}}; }
  // The key was last written at `revision` (a fencing check: nobody wrote it since).
  static Compare modified_at(std::string key, std::int64_t revision) {
    return {std::move(key), Target::mod_revision, Op::equal, revision, {}};
  }
  static Compare value_is(std::string key, std::string value) {
    return {std::move(key), Target::value, Op::equal, 0, std::move(value)};
  }
};

// One operation of a transaction's branch.
struct Operation {
  enum class Kind { put, range, remove };
  Kind kind = Kind::range;
  std::string key;
  std::string range_end;  // range and remove: empty for the key alone
  std::string value;      // put
  std::int64_t lease = 0; // put

  static Operation put(std::string key, std::string value, std::int64_t lease = 0) {
    return {Kind::put, std::move(key), {}, std::move(value), lease};
  }
  static Operation range(std::string key, std::string range_end = {}) {
    return {Kind::range, std::move(key), std::move(range_end), {}, 0};
  }
  static Operation remove(std::string key, std::string range_end = {}) {
    return {Kind::remove, std::move(key), std::move(range_end), {}, 0};
  }
};

struct TxnResult {
  bool succeeded = false;
  std::int64_t revision = 0;  // the store's revision after the txn
  // What each range operation of the branch that ran read, in order.
  std::vector<RangeResult> ranges;
};

struct Lease {
  std::int64_t id = 0;
  std::chrono::seconds ttl{0};
};

// Calls one at a time over one kept-alive connection (to the first endpoint that answers;
// the next one is tried when a call fails to connect or its connection breaks). Each call,
// retries included, ends within `timeout` (a host name other than an address may take its
// resolver longer once). Not thread-safe: give each thread its own client; in particular
// lease renewals need a client of their own, or a slow claim would delay them.
// Errors:
// - Code::unavailable: nothing was done (no endpoint answered in time, or etcd said so: no
//   leader, too many requests). Safe to try again.
// - Code::timeout: a write (put, remove, txn, grant) was sent but its answer was lost, or
//   etcd could not say whether its proposal committed. Its effect is unknown: do not send it
//   blindly again; read what it would have changed (a claim: is the key ours, under our
//   lease?) and decide. Reads, renewals and revocations are retried instead, and end in
//   Code::unavailable.
// - Code::invalid_argument, not_found, conflict, internal: etcd refused the request, with
//   its own message.
class EtcdClient {
 public:
  EtcdClient(std::vector<Endpoint> endpoints, std::chrono::milliseconds timeout);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  // A new lease of `ttl` (etcd's minimum is 2 s); `id` 0 lets etcd choose it.
  Result<Lease> grant(std::chrono::seconds ttl, std::int64_t id = 0);
  // Renews the lease: its TTL from now, or nullopt if etcd no longer has it (expired or
  // revoked: everything held under it is gone).
  Result<std::optional<std::chrono::seconds>> keepalive(std::int64_t lease);
  // Ends the lease and deletes its keys. Revoking a lease that is gone is not an error.
  Result<void> revoke(std::int64_t lease);

  Result<RangeResult> range(std::string_view key, std::string_view range_end = {});
  // Returns the revision of the write.
  Result<std::int64_t> put(std::string_view key, std::string_view value, std::int64_t lease = 0);
  // Returns how many keys were deleted.
  Result<std::int64_t> remove(std::string_view key, std::string_view range_end = {});
  // If every comparison holds, runs `success`, otherwise `failure` (at most 128 operations).
  Result<TxnResult> txn(const std::vector<Compare>& compares, const std::vector<Operation>& success,
                        const std::vector<Operation>& failure = {});

  // The endpoint of the current connection (or the next to try).
  const Endpoint& endpoint() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A change the watch saw.
struct WatchEvent {
  enum class Type { put, remove };
  Type type = Type::put;
  KeyValue kv;  // for a removal: the key and its mod_revision (the deletion's revision)
};

// Watches a key range on its own thread, reconnecting (to the next endpoint, with a short
// backoff) when the stream breaks or its etcd member loses its leader, and resuming after the
// last revision it delivered, so no change is lost or seen twice across reconnects. If etcd
// has compacted the revisions it needs, `on_reset` is called instead: the caller reads the
// range afresh (its returned revision is where the watch goes on from).
// Callbacks run on the watch's thread, one at a time: they must not destroy the watch, and
// the watch must not be destroyed while holding a lock a callback takes. on_reset needs a
// client of its own (EtcdClient is not thread-safe). If on_events throws, its batch is not
// delivered again: on_reset is called instead.
class EtcdWatch {
 public:
  struct Callbacks {
    // Required. A batch of changes, in revision order.
    std::function<void(const std::vector<WatchEvent>&)> on_events;
    // Required. The changes since the last revision are no longer in etcd: read the range
    // again and return the revision read at; the watch resumes after it.
    std::function<std::int64_t()> on_reset;
    // The stream connected (true) or broke (false); for metrics and logs.
    std::function<void(bool)> on_connection;
  };
  // Watches [key, range_end) for changes after revision `after`.
  EtcdWatch(std::vector<Endpoint> endpoints, std::string key, std::string range_end,
            std::int64_t after, Callbacks callbacks);
  // Stops the thread; no callback runs after it returns.
  ~EtcdWatch();
  EtcdWatch(const EtcdWatch&) = delete;
  EtcdWatch& operator=(const EtcdWatch&) = delete;

  // The revision of the last change delivered (or `after`).
  std::int64_t revision() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::cluster
