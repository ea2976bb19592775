// The etcd client against a real etcd (Debian's etcd-server) started by each test on free
// loopback ports: leases, reads and writes, transactions as claims and fences, the watch
// stream across an etcd restart, and etcd's encoding traps.
#include <doctest/doctest.h>

#include <atomic>
#include <mutex>

#include "cairn/cluster/etcd.hpp"
#include "etcd_json.hpp"
#include "etcd_process.hpp"
#include "tcp_proxy.hpp"
#include "wait.hpp"

using namespace cairn;
using namespace cairn::cluster;
using namespace std::chrono_literals;
using cairn::testing::EtcdProcess;

namespace {

EtcdClient client_of(const EtcdProcess& etcd) { return EtcdClient({etcd.endpoint()}, 2000ms); }

// Collects what a watch delivers.
struct Seen {
  std::mutex mutex;
  std::vector<WatchEvent> events;
  std::atomic<int> connects{0};
  std::atomic<int> breaks{0};

  std::atomic<int> resets{0};

  // on_reset reads the range afresh with a client of its own (not thread-safe to share).
  EtcdWatch::Callbacks callbacks(Endpoint endpoint, std::string key, std::string range_end) {
    EtcdWatch::Callbacks out;
    out.on_events = [this](const std::vector<WatchEvent>& batch) {
      std::lock_guard lock(mutex);
      events.insert(events.end(), batch.begin(), batch.end());
    };
    out.on_connection = [this](bool up) { ++(up ? connects : breaks); };
    out.on_reset = [this, endpoint, key, range_end] {
      EtcdClient reader({endpoint}, 2000ms);
      auto read_at = reader.range(key, range_end).value().revision;
      ++resets;  // after the read: the test writes only once it has happened
      return read_at;
    };
    return out;
  }
  std::size_t size() {
    std::lock_guard lock(mutex);
    return events.size();
  }
  std::vector<WatchEvent> copy() {
    std::lock_guard lock(mutex);
    return events;
  }
};

}  // namespace

TEST_CASE("etcd endpoints: parsed from a list, and a bad one named") {
  auto two = parse_endpoints("http://127.0.0.1:2379,http://etcd-2:12379/");
  REQUIRE(two.ok());
  REQUIRE(two.value().size() == 2);
  CHECK(two.value()[0].host == "127.0.0.1");
  CHECK(two.value()[0].port == "2379");
  CHECK(two.value()[1].host == "etcd-2");
  CHECK(two.value()[1].port == "12379");
  CHECK(parse_endpoints("http://[::1]:2379").value()[0].host == "::1");
  for (const char* bad : {"", "127.0.0.1:2379", "https://x:1", "http://x", "http://x:0", "http://x:99999",
                          "http://x:12a", "http://a/b:1"}) {
    auto parsed = parse_endpoints(bad);
    REQUIRE_MESSAGE(!parsed.ok(), bad);
    CHECK(parsed.error().code == Code::invalid_argument);
  }
  CHECK(parse_endpoints("http://ok:1,ftp://bad:2").error().message.find("ftp://bad:2") != std::string::npos);
}

TEST_CASE("etcd encoding: base64 both ways, 64-bit numbers as strings, prefix ends") {
  for (std::string bytes : {std::string(), std::string("a"), std::string("ab"), std::string("abc"),
                            std::string("shard/\0\xff", 8)}) {
    CHECK(cluster::detail::base64_decode(cluster::detail::base64_encode(bytes)) == bytes);
  }
  CHECK(cluster::detail::base64_decode("YQ==") == "a");
  CHECK(cluster::detail::base64_decode("YWI=") == "ab");
  for (const char* bad : {"abc", "!!!!", "====", "A===", "Y=Q=", "YQ==\r\n\r\n", " YQ=", "YQ=="
                          "YQ=="}) {
    CHECK_THROWS_MESSAGE(cluster::detail::base64_decode(bad), bad);
  }
  nlohmann::json big = nlohmann::json::parse(R"({"ID":"9007199254740993","TTL":"5","N":12})");
  CHECK(cluster::detail::int64_field(big, "ID") == 9007199254740993LL);  // 2^53 + 1: a double would lose it
  CHECK(cluster::detail::int64_field(big, "N") == 12);
  CHECK(cluster::detail::int64_field(big, "absent", 7) == 7);
  CHECK_THROWS(cluster::detail::int64_field(nlohmann::json::parse(R"({"x":"12x"})"), "x"));
  CHECK_THROWS(cluster::detail::int64_field(nlohmann::json::parse(R"({"x":1.5})"), "x"));
  CHECK(prefix_end("shards/") == "shards0");
  CHECK(prefix_end(std::string("a\xff", 2)) == "b");
  CHECK(prefix_end(std::string("\xff", 1)) == std::string(1, '\0'));
}

TEST_CASE("etcd: put, range by key and prefix, remove, binary keys and values") {
  EtcdProcess etcd;
  auto etcd_client = client_of(etcd);
  std::string binary("v\0\xff\x01", 4);
  auto first = etcd_client.put("nodes/a", binary);
  REQUIRE(first.ok());
  REQUIRE(etcd_client.put("nodes/b", "B").ok());
  REQUIRE(etcd_client.put("other", "x").ok());
  auto one = etcd_client.range("nodes/a");
  REQUIRE(one.ok());
  REQUIRE(one.value().kvs.size() == 1);
  CHECK(one.value().kvs[0].value == binary);
  CHECK(one.value().kvs[0].mod_revision == first.value());
  CHECK(one.value().kvs[0].create_revision == first.value());
  CHECK(one.value().kvs[0].version == 1);
  auto nodes = etcd_client.range("nodes/", prefix_end("nodes/"));
  REQUIRE(nodes.ok());
  REQUIRE(nodes.value().kvs.size() == 2);
  CHECK(nodes.value().kvs[1].key == "nodes/b");
  CHECK(nodes.value().revision >= first.value() + 2);
  CHECK(etcd_client.range("missing").value().kvs.empty());
  CHECK(etcd_client.remove("nodes/", prefix_end("nodes/")).value() == 2);
  CHECK(etcd_client.remove("nodes/a").value() == 0);
  CHECK(etcd_client.range("nodes/", prefix_end("nodes/")).value().kvs.empty());
}

TEST_CASE("etcd leases: keys live under them, a keepalive renews, a lost lease is noticed") {
  EtcdProcess etcd;
  auto etcd_client = client_of(etcd);
  // An ID above 2^53 chosen by us: it must come back exactly, not through a double.
  constexpr std::int64_t big_id = 9007199254740993LL;
  auto lease = etcd_client.grant(5s, big_id);
  REQUIRE(lease.ok());
  CHECK(lease.value().id == big_id);
  CHECK(lease.value().ttl == 5s);
  REQUIRE(etcd_client.put("nodes/me", "addr", big_id).ok());
  CHECK(etcd_client.range("nodes/me").value().kvs.at(0).lease == big_id);
  auto renewed = etcd_client.keepalive(big_id);
  REQUIRE(renewed.ok());
  REQUIRE(renewed.value().has_value());
  CHECK(*renewed.value() == 5s);
  // Granting an ID that exists is refused with etcd's reason.
  auto again = etcd_client.grant(5s, big_id);
  REQUIRE(!again.ok());
  CHECK(again.error().message.find("lease") != std::string::npos);

  REQUIRE(etcd_client.revoke(big_id).ok());
  CHECK(etcd_client.range("nodes/me").value().kvs.empty());  // gone with its lease
  auto lost = etcd_client.keepalive(big_id);
  REQUIRE(lost.ok());
  CHECK(!lost.value().has_value());  // etcd answers 200 without a TTL: the lease is lost
  CHECK(etcd_client.revoke(big_id).ok());  // revoking what is gone is not an error

  // A lease left alone expires by itself (etcd's minimum TTL is 2 s).
  auto short_lease = etcd_client.grant(2s);
  REQUIRE(short_lease.ok());
  CHECK(short_lease.value().id != 0);
  REQUIRE(etcd_client.put("nodes/short", "x", short_lease.value().id).ok());
  REQUIRE(testing::eventually([&] { return etcd_client.range("nodes/short").value().kvs.empty(); }, 6000ms));
  CHECK(!etcd_client.keepalive(short_lease.value().id).value().has_value());
}

TEST_CASE("etcd transactions: one claim of a free key wins, and a fence on the revision holds") {
  EtcdProcess etcd;
  auto etcd_client = client_of(etcd);
  auto claim = [&](const std::string& node) {
    return etcd_client.txn({Compare::absent("shards/7")}, {Operation::put("shards/7", node)},
                           {Operation::range("shards/7")});
  };
  auto won = claim("node-a");
  REQUIRE(won.ok());
  CHECK(won.value().succeeded);
  CHECK(won.value().ranges.empty());
  auto lost = claim("node-b");
  REQUIRE(lost.ok());
  CHECK(!lost.value().succeeded);
  REQUIRE(lost.value().ranges.size() == 1);
  REQUIRE(lost.value().ranges[0].kvs.size() == 1);
  const KeyValue owner = lost.value().ranges[0].kvs[0];
  CHECK(owner.value == "node-a");
  CHECK(owner.mod_revision == won.value().revision);  // the claim's revision: the epoch

  // A hand-off: compare-and-set on the epoch. A stale writer (old epoch) is refused.
  auto moved = etcd_client.txn({Compare::modified_at("shards/7", owner.mod_revision)},
                               {Operation::put("shards/7", "node-b")});
  REQUIRE(moved.ok());
  CHECK(moved.value().succeeded);
  auto stale = etcd_client.txn({Compare::modified_at("shards/7", owner.mod_revision)},
                               {Operation::put("shards/7", "node-a")});
  REQUIRE(stale.ok());
  CHECK(!stale.value().succeeded);
  CHECK(etcd_client.range("shards/7").value().kvs.at(0).value == "node-b");
  // By value, and several operations at once.
  auto both = etcd_client.txn({Compare::value_is("shards/7", "node-b")},
                              {Operation::put("shards/8", "node-b"), Operation::remove("shards/7"),
                               Operation::range("shards/", prefix_end("shards/"))});
  REQUIRE(both.ok());
  CHECK(both.value().succeeded);
  REQUIRE(both.value().ranges.size() == 1);
  REQUIRE(both.value().ranges[0].kvs.size() == 1);
  CHECK(both.value().ranges[0].kvs[0].key == "shards/8");
  // More operations than etcd allows in one txn: its refusal, as an error.
  std::vector<Operation> too_many;
  for (int i = 0; i < 129; ++i) too_many.push_back(Operation::put("k" + std::to_string(i), "v"));
  auto refused = etcd_client.txn({}, too_many);
  REQUIRE(!refused.ok());
  CHECK(refused.error().code == Code::invalid_argument);
}

TEST_CASE("etcd client: an unreachable endpoint is unavailable, and the next endpoint is used") {
  EtcdProcess etcd;
  testing::RefusingPort refusing;
  Endpoint dead = refusing.endpoint();
  EtcdClient only_dead({dead}, 500ms);
  auto start = std::chrono::steady_clock::now();
  auto failed = only_dead.range("x");
  REQUIRE(!failed.ok());
  CHECK(failed.error().code == Code::unavailable);
  CHECK(retryable(failed.error().code));
  CHECK(std::chrono::steady_clock::now() - start < 3s);
  EtcdClient with_fallback({dead, etcd.endpoint()}, 500ms);
  REQUIRE(with_fallback.put("k", "v").ok());
  CHECK(with_fallback.endpoint().port == etcd.endpoint().port);
  // etcd goes away and comes back: the kept-alive connection is replaced.
  etcd.restart();
  auto after = with_fallback.range("k");
  REQUIRE(after.ok());
  CHECK(after.value().kvs.at(0).value == "v");
  // A write, too, goes over a fresh connection rather than the one etcd closed.
  etcd.restart();
  REQUIRE(with_fallback.put("k", "w").ok());
  CHECK(with_fallback.range("k").value().kvs.at(0).value == "w");
}

TEST_CASE("etcd client: a request sent but never answered is a timeout whose effect is unknown") {
  // A listener that never accepts: the kernel completes the connection, nobody answers.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::listen(fd, 16) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  EtcdClient silent({{"127.0.0.1", std::to_string(ntohs(address.sin_port))}}, 300ms);
  auto start = std::chrono::steady_clock::now();
  auto put = silent.put("k", "v");
  REQUIRE(!put.ok());
  CHECK(put.error().code == Code::timeout);
  CHECK(put.error().message.find("unknown") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  ::close(fd);
}

TEST_CASE("etcd watch: sees puts and deletes in order, and goes on after etcd restarts without loss or repeats") {
  EtcdProcess etcd;
  auto etcd_client = client_of(etcd);
  REQUIRE(etcd_client.put("shards/0", "before").ok());  // before the watch's start: not seen
  auto start = etcd_client.range("shards/", prefix_end("shards/"));
  REQUIRE(start.ok());
  Seen seen;
  EtcdWatch watch({etcd.endpoint()}, "shards/", prefix_end("shards/"), start.value().revision,
                  seen.callbacks(etcd.endpoint(), "shards/", prefix_end("shards/")));
  REQUIRE(testing::eventually([&] { return seen.connects.load() == 1; }, 5000ms));
  auto r1 = etcd_client.put("shards/1", "a").value();
  REQUIRE(etcd_client.put("elsewhere", "x").ok());  // outside the range: not seen
  REQUIRE(etcd_client.remove("shards/0").ok());
  REQUIRE(testing::eventually([&] { return seen.size() == 2; }, 5000ms));
  auto events = seen.copy();
  CHECK(events[0].type == WatchEvent::Type::put);
  CHECK(events[0].kv.key == "shards/1");
  CHECK(events[0].kv.value == "a");
  CHECK(events[0].kv.mod_revision == r1);
  CHECK(events[1].type == WatchEvent::Type::remove);
  CHECK(events[1].kv.key == "shards/0");
  CHECK(events[1].kv.mod_revision > r1);

  etcd.restart();
  REQUIRE(testing::eventually([&] { return seen.connects.load() == 2; }, 10000ms));
  CHECK(seen.breaks.load() == 1);
  auto etcd_client2 = client_of(etcd);
  auto r3 = etcd_client2.put("shards/2", "b").value();
  REQUIRE(testing::eventually([&] { return seen.size() == 3; }, 5000ms));
  std::this_thread::sleep_for(200ms);  // nothing more comes (no repeat of the first two)
  events = seen.copy();
  REQUIRE(events.size() == 3);
  CHECK(events[2].kv.key == "shards/2");
  CHECK(events[2].kv.mod_revision == r3);
  CHECK(watch.revision() == r3);
}

TEST_CASE("etcd watch: changes made while it was disconnected are delivered when it is back") {
  EtcdProcess etcd;
  testing::RefusingPort refusing;
  Endpoint dead = refusing.endpoint();
  auto etcd_client = client_of(etcd);
  auto from = etcd_client.put("nodes/x", "0").value();
  Seen seen;
  // The first endpoint is dead: the watch must find the live one, and still start after `from`.
  EtcdWatch watch({dead, etcd.endpoint()}, "nodes/", prefix_end("nodes/"), from,
                  seen.callbacks(etcd.endpoint(), "nodes/", prefix_end("nodes/")));
  for (int i = 1; i <= 5; ++i) REQUIRE(etcd_client.put("nodes/x", std::to_string(i)).ok());
  REQUIRE(testing::eventually([&] { return seen.size() == 5; }, 10000ms));
  auto events = seen.copy();
  for (int i = 0; i < 5; ++i) CHECK(events[static_cast<std::size_t>(i)].kv.value == std::to_string(i + 1));
}

TEST_CASE("etcd watch: revisions compacted away make it ask the caller to read afresh") {
  EtcdProcess etcd;
  auto etcd_client = client_of(etcd);
  auto old = etcd_client.put("a/1", "x").value();
  std::int64_t latest = 0;
  for (int i = 0; i < 3; ++i) latest = etcd_client.put("a/1", std::to_string(i)).value();
  // Compacted up to the latest revision, as an operator (or etcd's auto-compaction) would.
  std::string command = std::string(CAIRN_ETCDCTL_PATH) + " --endpoints=" + etcd.url() + " compact " +
                        std::to_string(latest) + " >/dev/null 2>&1";
  REQUIRE(std::system(command.c_str()) == 0);
  Seen seen;
  EtcdWatch watch({etcd.endpoint()}, "a/", prefix_end("a/"), old, seen.callbacks(etcd.endpoint(), "a/", prefix_end("a/")));
  // The watch counts the reset inside on_reset and takes its revision from what it returns:
  // both are waited for (a check right after the count raced the store in a CI rehearsal).
  REQUIRE(testing::eventually([&] { return seen.resets.load() == 1 && watch.revision() >= latest; }, 5000ms));
  auto after = etcd_client.put("a/2", "new").value();
  REQUIRE(testing::eventually([&] { return seen.size() == 1; }, 10000ms));
  CHECK(seen.copy()[0].kv.mod_revision == after);
  CHECK(seen.copy()[0].kv.key == "a/2");
  CHECK(seen.resets.load() == 1);
}

TEST_CASE("etcd watch: a stream cut while etcd lives on resumes with what changed meanwhile, once each") {
  EtcdProcess etcd;
  testing::TcpProxy proxy(etcd.port());
  auto etcd_client = client_of(etcd);  // direct, not through the proxy
  auto from = etcd_client.put("shards/1", "a").value();
  Seen seen;
  EtcdWatch watch({{"127.0.0.1", std::to_string(proxy.port())}}, "shards/", prefix_end("shards/"), from,
                  seen.callbacks(etcd.endpoint(), "shards/", prefix_end("shards/")));
  REQUIRE(testing::eventually([&] { return seen.connects.load() == 1; }, 5000ms));
  REQUIRE(etcd_client.put("shards/1", "b").ok());
  REQUIRE(testing::eventually([&] { return seen.size() == 1; }, 5000ms));
  proxy.cut();
  REQUIRE(testing::eventually([&] { return seen.breaks.load() == 1; }, 5000ms));
  // Changes while the watch cannot see them.
  std::vector<std::int64_t> revisions;
  for (const char* value : {"c", "d"}) revisions.push_back(etcd_client.put("shards/1", value).value());
  revisions.push_back(etcd_client.remove("shards/1").value() == 1 ? etcd_client.range("x").value().revision : 0);
  proxy.heal();
  REQUIRE(testing::eventually([&] { return seen.size() == 4; }, 10000ms));
  REQUIRE(etcd_client.put("shards/2", "e").ok());  // and it goes on after
  REQUIRE(testing::eventually([&] { return seen.size() == 5; }, 5000ms));
  auto events = seen.copy();
  REQUIRE(events.size() == 5);
  CHECK(events[1].kv.value == "c");
  CHECK(events[1].kv.mod_revision == revisions[0]);
  CHECK(events[2].kv.value == "d");
  CHECK(events[3].type == WatchEvent::Type::remove);
  CHECK(events[3].kv.mod_revision == revisions[2]);
  CHECK(events[4].kv.key == "shards/2");
  CHECK(seen.resets.load() == 0);
}
