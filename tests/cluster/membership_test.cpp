// Membership against a real etcd: three nodes (in this process, each with its own etcd
// clients) share the 1,024 shards, each owned by exactly one; a node cut off from etcd fences
// itself before its lease can expire, its shards are claimed by no one else, and it comes back
// with new epochs.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <thread>
#include <vector>
#include <memory>

#include "cairn/actor_id.hpp"
#include "cairn/cluster/membership.hpp"
#include "etcd_process.hpp"
#include "tcp_proxy.hpp"
#include "wait.hpp"

using namespace cairn;
using namespace cairn::cluster;
using namespace std::chrono_literals;
using cairn::testing::EtcdProcess;
using cairn::testing::TcpProxy;

namespace {

MembershipOptions node_options(const Endpoint& etcd, const std::string& id) {
  MembershipOptions o;
  o.etcd = {etcd};
  o.prefix = "test/";
  o.node_id = id;
  o.advertise = "http://127.0.0.1:1/" + id;
  o.lease_ttl = 3s;
  o.renew_every = 500ms;
  o.fence_margin = 1000ms;
  o.etcd_timeout = 500ms;
  o.settle = 300ms;
  return o;
}

// Shards per owner as `m` sees them; "" counts unowned ones.
std::map<std::string, unsigned> owners_seen_by(const Membership& m) {
  std::map<std::string, unsigned> out;
  for (unsigned s = 0; s < ActorId::shard_count; ++s) {
    auto owner = m.owner(s);
    ++out[owner ? owner->node : ""];
  }
  return out;
}

bool all_owned(const Membership& m) { return owners_seen_by(m).count("") == 0; }

}  // namespace

TEST_CASE("membership: options are checked, with the bad one named") {
  EtcdProcess etcd;
  auto good = node_options(etcd.endpoint(), "a");
  auto bad_id = good;
  bad_id.node_id = "a b";
  CHECK_THROWS_WITH_AS(Membership{bad_id}, doctest::Contains("node id 'a b'"), std::invalid_argument);
  auto bad_url = good;
  bad_url.advertise = "127.0.0.1:80";
  CHECK_THROWS_WITH_AS(Membership{bad_url}, doctest::Contains("advertise"), std::invalid_argument);
  auto bad_margin = good;
  bad_margin.renew_every = 2500ms;
  CHECK_THROWS_AS(Membership{bad_margin}, std::invalid_argument);
}

TEST_CASE("membership: three nodes share every shard, one owner each, and all see the same map") {
  EtcdProcess etcd;
  std::vector<std::unique_ptr<Membership>> nodes;
  for (const char* id : {"a", "b", "c"}) nodes.push_back(std::make_unique<Membership>(node_options(etcd.endpoint(), id)));
  for (auto& node : nodes) {
    REQUIRE(testing::eventually([&] { return all_owned(*node); }, 15000ms));
  }
  auto seen = owners_seen_by(*nodes[0]);
  CHECK(seen.size() == 3);
  for (const auto& [node, count] : seen) {
    INFO(node);
    CHECK(count >= 300);  // 1024 / 3 = 341, give or take a node that settled late
    CHECK(count <= 400);
  }
  unsigned owned_total = 0;
  for (auto& node : nodes) {
    CHECK(owners_seen_by(*node) == seen);  // every node sees the same owners
    owned_total += static_cast<unsigned>(node->owned().size());
    CHECK(!node->fenced());
    CHECK(node->nodes().size() == 3);
    CHECK(node->coordinator().has_value());
  }
  CHECK(owned_total == ActorId::shard_count);  // each shard owned by exactly one node
  for (unsigned s = 0; s < ActorId::shard_count; ++s) {
    int owners = 0;
    std::int64_t epoch = 0;
    for (auto& node : nodes) owners += node->owns(s, &epoch) ? 1 : 0;
    CHECK(owners == 1);
    CHECK(epoch > 0);
  }
}

TEST_CASE("membership: a node cut off from etcd fences itself before its lease expires, nobody takes its shards, and it returns with new epochs") {
  EtcdProcess etcd;
  TcpProxy proxy(etcd.port());
  Membership a(node_options(etcd.endpoint(), "a"));
  Membership b(node_options(etcd.endpoint(), "b"));
  Membership c(node_options({"127.0.0.1", std::to_string(proxy.port())}, "c"));
  REQUIRE(testing::eventually([&] { return all_owned(a) && all_owned(c) && c.owned().size() > 200; }, 15000ms));
  std::map<unsigned, std::int64_t> before;
  for (unsigned s : c.owned()) {
    std::int64_t epoch = 0;
    REQUIRE(c.owns(s, &epoch));
    before[s] = epoch;
  }
  EtcdClient direct({etcd.endpoint()}, 1000ms);
  auto c_keys = [&] {
    auto read = direct.range("test/shards/", prefix_end("test/shards/"));
    REQUIRE(read.ok());
    std::size_t count = 0;
    for (const auto& kv : read.value().kvs) count += kv.value.find("\"node\":\"c\"") != std::string::npos ? 1 : 0;
    return count;
  };
  REQUIRE(c_keys() == before.size());

  proxy.cut();
  auto cut_at = std::chrono::steady_clock::now();
  REQUIRE(testing::eventually([&] { return c.fenced(); }, 5000ms));
  auto fenced_after = std::chrono::steady_clock::now() - cut_at;
  // Fenced while etcd still holds its claims: no output can leave after another could own them.
  CHECK(c_keys() == before.size());
  CHECK(fenced_after < 3s);
  CHECK(c.owned().empty());
  for (const auto& [shard, epoch] : before) CHECK(!c.owns(shard));
  // Its lease expires: the claims vanish, and no other node takes them (the data is on c).
  REQUIRE(testing::eventually([&] { return c_keys() == 0; }, 6000ms));
  std::this_thread::sleep_for(1000ms);  // several control rounds of a and b
  for (const auto& [shard, epoch] : before) {
    CHECK(!a.owns(shard));
    CHECK(!b.owns(shard));
    CHECK(!a.owner(shard).has_value());
  }

  proxy.heal();
  REQUIRE(testing::eventually([&] { return c.owned().size() == before.size(); }, 15000ms));
  CHECK(c.stats().joins >= 2);
  for (const auto& [shard, epoch] : before) {
    std::int64_t now_epoch = 0;
    REQUIRE(c.owns(shard, &now_epoch));
    CHECK(now_epoch > epoch);  // a new claim, never the stale one
  }
  REQUIRE(testing::eventually([&] { return a.owner(before.begin()->first).has_value(); }, 5000ms));
  CHECK(a.owner(before.begin()->first)->node == "c");
}

TEST_CASE("membership: the coordinator's departure elects another, and a lone node owns everything") {
  EtcdProcess etcd;
  auto a = std::make_unique<Membership>(node_options(etcd.endpoint(), "a"));
  REQUIRE(testing::eventually([&] { return a->owned().size() == ActorId::shard_count; }, 15000ms));
  CHECK(a->coordinator() == "a");
  Membership b(node_options(etcd.endpoint(), "b"));
  REQUIRE(testing::eventually([&] { return b.nodes().size() == 2 && b.coordinator() == "a"; }, 5000ms));
  CHECK(b.owned().empty());  // every shard was assigned already: b gets them only by hand-off
  a.reset();  // leaves: revokes its lease
  REQUIRE(testing::eventually([&] { return b.coordinator() == "b"; }, 8000ms));
  CHECK(b.nodes().size() == 1);
  CHECK(b.owned().empty());  // a's shards wait for a (their data is there)
}

namespace {

// What a node's ShardMover does with the moves asked of it, minus the files: hands each
// group over by compare-and-set. Returns how many shards went.
std::size_t make_moves(Membership& m) {
  std::map<std::string, std::vector<unsigned>> by_target;
  for (const auto& move : m.moves_to_make()) by_target[move.to].push_back(move.shard);
  std::size_t moved = 0;
  for (const auto& [to, shards] : by_target) {
    for (std::size_t at = 0; at < shards.size(); at += 24) {
      std::vector<unsigned> group(shards.begin() + static_cast<std::ptrdiff_t>(at),
                                  shards.begin() + static_cast<std::ptrdiff_t>(std::min(shards.size(), at + 24)));
      auto handed = m.hand_over(group, to);
      REQUIRE(handed.ok());
      if (handed.value()) {
        moved += group.size();
        // Not this node's from the moment the transaction went through, watch or not.
        for (unsigned s : group) CHECK(!m.epoch(s));
      }
    }
  }
  return moved;
}

}  // namespace

TEST_CASE("membership: a node that joins gets shards by moves from their owners, a bounded number at a time, and one that leaves gives them all away") {
  EtcdProcess etcd;
  auto options_a = node_options(etcd.endpoint(), "a");
  options_a.max_moves = 64;
  Membership a(options_a);
  REQUIRE(testing::eventually([&] { return a.owned().size() == ActorId::shard_count; }, 15000ms));
  auto options_b = node_options(etcd.endpoint(), "b");
  options_b.max_moves = 64;
  Membership b(options_b);
  REQUIRE(testing::eventually([&] { return a.nodes().size() == 2 && !a.moves().empty(); }, 5000ms));

  // Only an owner at its epoch hands a shard over.
  auto not_mine = a.moves().front().shard;
  CHECK(b.hand_over({not_mine}, "a").value() == false);
  CHECK(!a.hand_over({}, "b").ok());

  // A hand-over whose outcome is unknown is settled: one that went through has no move left
  // (false: the assignment says it went); one that did not cannot go through once settled.
  {
    auto asked = a.moves();
    REQUIRE(asked.size() >= 2);
    auto went = asked[0], stays = asked[1];
    REQUIRE(a.hand_over({went.shard}, went.to).value());
    CHECK(a.settle_hand_over({went.shard}).value() == false);
    CHECK(a.assignment(went.shard).value() == went.to);
    // (The coordinator may ask for its move again at once: a new move, which a later
    // hand-over may use; the settled one can never go through.)
    CHECK(a.settle_hand_over({stays.shard}).value() == true);
    CHECK(a.assignment(stays.shard).value() == "a");
  }

  std::size_t most_in_flight = 0;
  std::size_t moved = 0;
  auto balanced = [&] {
    most_in_flight = std::max(most_in_flight, a.moves().size());
    moved += make_moves(a);
    auto seen = owners_seen_by(b);
    return seen["a"] == 512 && seen["b"] == 512 && b.owned().size() == 512;
  };
  REQUIRE(testing::eventually(balanced, 30000ms));
  CHECK(moved == 511);  // and one above
  CHECK(most_in_flight <= 64);
  CHECK(most_in_flight > 0);
  REQUIRE(testing::eventually([&] { return a.moves().empty(); }, 5000ms));
  std::this_thread::sleep_for(600ms);  // balanced: nothing more is asked
  CHECK(a.moves().empty());

  // b leaves: every shard it owns is asked to go to a, and b claims nothing more.
  auto asked = b.leave();
  REQUIRE(asked.ok());
  CHECK(asked.value() == 512);
  REQUIRE(testing::eventually([&] { return a.leaving_nodes() == std::vector<std::string>{"b"}; }, 5000ms));
  // Nothing is handed to a node that is leaving.
  CHECK(a.hand_over({a.owned().front()}, "b").value() == false);
  CHECK(a.other_nodes() == 0);
  CHECK(b.assigned_here() == 512);
  REQUIRE(testing::eventually(
      [&] {
        make_moves(b);
        return b.owned().empty() && a.owned().size() == ActorId::shard_count;
      },
      30000ms));
  CHECK(b.moves_to_make().empty());
  CHECK(all_owned(a));
}

TEST_CASE("membership: with replication every shard gets a follower, and a dead owner's shards go to their in-sync followers only") {
  EtcdProcess etcd;
  struct Seen {
    std::mutex mutex;
    std::map<unsigned, std::optional<std::int64_t>> finished;
    std::vector<unsigned> prepared;
    std::vector<unsigned> prepared_after_taken;  // a shard this node already took over
  };
  std::map<std::string, std::shared_ptr<Seen>> seen;
  std::map<std::string, std::unique_ptr<Membership>> nodes;
  for (const char* id : {"a", "b", "c"}) {
    auto o = node_options(etcd.endpoint(), id);
    o.replicate = true;
    o.data_id = std::string("disk-") + id;
    auto log = seen[id] = std::make_shared<Seen>();
    nodes[id] = std::make_unique<Membership>(o);
    nodes[id]->on_takeover(Takeover{[log](unsigned shard, std::int64_t) {
                                      std::lock_guard lock(log->mutex);
                                      log->prepared.push_back(shard);
                                      // Preparing it again would put aside the copy it serves.
                                      if (auto f = log->finished.find(shard); f != log->finished.end() && f->second) {
                                        log->prepared_after_taken.push_back(shard);
                                      }
                                      return true;
                                    },
                                    [log](unsigned shard, std::optional<std::int64_t> epoch) {
                                      std::lock_guard lock(log->mutex);
                                      log->finished[shard] = epoch;
                                    }});
  }
  auto& a = *nodes["a"];
  auto followed = [&](unsigned s) {
    auto owner = a.owner(s);
    auto set = a.replicas(s);
    return owner && set && !set->follower.empty() && set->follower != owner->node && set->in_sync.size() >= 1 &&
           set->in_sync.front() == owner->node;
  };
  REQUIRE(testing::eventually([&] {
    for (unsigned s = 0; s < ActorId::shard_count; ++s) {
      if (!followed(s)) return false;
    }
    return true;
  }, 20000ms));
  // Each node follows about a third.
  std::map<std::string, unsigned> follows;
  for (unsigned s = 0; s < ActorId::shard_count; ++s) ++follows[a.replicas(s)->follower];
  for (const auto& [node, count] : follows) {
    INFO(node);
    CHECK(count >= 250);
  }
  // c counts the follower of every other shard of its own in sync, and of one it then drops.
  auto& c = *nodes["c"];
  auto mine = c.owned();
  REQUIRE(mine.size() > 10);
  std::map<unsigned, std::string> in_sync;  // shard -> its follower
  std::vector<unsigned> alone;
  std::map<unsigned, std::int64_t> old_epoch;
  for (std::size_t i = 0; i < mine.size(); ++i) {
    auto s = mine[i];
    auto follower = c.follower(s);
    REQUIRE(follower);
    CHECK_FALSE(follower->in_sync);
    CHECK_FALSE(follower->address.empty());
    old_epoch[s] = *c.epoch(s);
    if (i % 2 == 0) {
      REQUIRE(c.record_in_sync(s, follower->node, true).value());
      CHECK(c.follower(s)->in_sync);
      in_sync[s] = follower->node;
    } else {
      alone.push_back(s);
    }
  }
  auto dropped = mine.front();
  REQUIRE(c.record_in_sync(dropped, in_sync[dropped], false).value());
  CHECK_FALSE(c.follower(dropped)->in_sync);
  in_sync.erase(dropped);
  alone.push_back(dropped);
  // A stale follower name is refused; dropping a node that is not the follower is a no-op.
  CHECK_FALSE(c.record_in_sync(mine[1], "nobody", true).value());
  CHECK(c.record_in_sync(mine[1], "nobody", false).value());
  // c dies (its lease revoked: its claims go at once).
  nodes.erase("c");
  REQUIRE(testing::eventually([&] {
    for (const auto& [s, follower] : in_sync) {
      auto owner = a.owner(s);
      if (!owner || owner->node != follower) return false;
      // a may see the claim before the claimer's own finish hook has run.
      auto& log = *seen[follower];
      std::lock_guard lock(log.mutex);
      if (!log.finished.contains(s) || log.finished[s] != owner->epoch) return false;
    }
    return true;
  }, 15000ms));
  for (const auto& [s, follower] : in_sync) {
    INFO("shard " << s);
    CHECK(a.owner(s)->epoch > old_epoch[s]);
    CHECK(a.assignment(s).value() == follower);
    auto& log = *seen[follower];
    std::lock_guard lock(log.mutex);
    REQUIRE(log.finished.count(s) == 1);
    CHECK(log.finished[s] == a.owner(s)->epoch);
  }
  CHECK(nodes["a"]->stats().takeovers + nodes["b"]->stats().takeovers == in_sync.size());
  // The shards whose follower was not in sync wait for c: nobody took them.
  std::this_thread::sleep_for(1000ms);
  for (auto s : alone) {
    INFO("shard " << s);
    CHECK_FALSE(a.owner(s).has_value());
    CHECK(a.assignment(s).value() == "c");
  }
  for (const auto& [id, log] : seen) {
    INFO("node " << id);
    std::lock_guard lock(log->mutex);
    CHECK(log->prepared.size() == log->finished.size());
    CHECK(log->prepared_after_taken.empty());
  }
  // The shards taken over get a new follower: the other live node, in sync with nobody yet.
  CHECK(testing::eventually([&] {
    for (const auto& [s, owner] : in_sync) {
      auto set = a.replicas(s);
      if (!set || set->follower.empty() || set->follower == owner || set->in_sync != std::vector<std::string>{owner}) {
        return false;
      }
    }
    return true;
  }, 10000ms));
}
