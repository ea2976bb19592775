// Replication (cairn/replication.hpp): the batch codec, the follower's ShardMirror and its
// epoch fence, and a runtime whose shards are mirrored: the link is cut at a random point under
// load (the owner dies, or loses its follower, there), the owner's disk is then taken as lost,
// and the follower's copy must hold every write the runtime acknowledged, with every database
// passing PRAGMA integrity_check.
#include "cairn/replication.hpp"

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "cairn/actor.hpp"
#include "cairn/admin.hpp"
#include "cairn/context.hpp"
#include "cairn/registry.hpp"
#include "cairn/runtime.hpp"
#include "cairn/testing.hpp"
#include "database.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"

using namespace cairn;
using cairn::testing::TempDir;
using json = nlohmann::json;

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class Journal final : public Actor {
 public:
  explicit Journal(Context& ctx) : ctx_(ctx) {
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, payload BLOB)");
  }
  Methods methods() override {
    return {
        {"add", [this](const json& args) -> Result<json> {
           ctx_.sql().exec("INSERT INTO entries VALUES (?, zeroblob(?))", args.at("key").get<std::string>(),
                           args.at("bytes").get<std::int64_t>());
           return json{{"ok", true}};
         }},
        {"keys", [this](const json&) -> Result<json> {
           json keys = json::array();
           for (const auto& row : ctx_.sql().exec("SELECT key FROM entries")) keys.push_back(std::get<std::string>(row["key"]));
           return keys;
         }},
    };
  }

 private:
  Context& ctx_;
};

Registry journal_registry() {
  Registry r;
  r.add<Journal>("JOURNAL");
  return r;
}

RuntimeOptions options_for(const std::filesystem::path& dir, std::shared_ptr<Replicator> replicator) {
  RuntimeOptions o;
  o.data_dir = dir;
  o.threads = 4;
  o.storage_threads = 4;
  o.max_live_instances = 5;  // fewer than the actors: evictions close and reopen databases
  o.idle_timeout = std::chrono::milliseconds(0);
  o.replicator = std::move(replicator);
  return o;
}

std::string integrity_of(const std::filesystem::path& file) {
  sqlite3* db = nullptr;
  std::string result;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, nullptr) == SQLITE_OK) {
      while (sqlite3_step(stmt) == SQLITE_ROW) result += reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return result;
}

}  // namespace

TEST_CASE("a replication batch survives its wire form, and a malformed one is refused with a reason") {
  ReplicaBatch batch{977, 12345678901234LL, {}};
  batch.ops.push_back({ReplicaOp::Kind::write, "FLIGHT/ab.sqlite-wal", 32, std::string("\0frame\xff", 7)});
  batch.ops.push_back({ReplicaOp::Kind::truncate, "FLIGHT/ab.sqlite-wal", 0, {}});
  batch.ops.push_back({ReplicaOp::Kind::remove, "FLIGHT/cd.sqlite", 0, {}});
  batch.ops.push_back({ReplicaOp::Kind::sync, "FLIGHT/ab.sqlite-wal", 0, {}});
  auto wire = encode(batch);
  std::string error;
  auto back = decode(wire, error);
  REQUIRE_MESSAGE(back, error);
  CHECK(back->shard == 977);
  CHECK(back->epoch == 12345678901234LL);
  REQUIRE(back->ops.size() == 4);
  CHECK(back->ops[0].bytes == std::string("\0frame\xff", 7));
  CHECK(back->ops[0].offset == 32);
  CHECK(back->ops[1].kind == ReplicaOp::Kind::truncate);
  CHECK(back->ops[2].path == "FLIGHT/cd.sqlite");
  CHECK(back->ops[3].kind == ReplicaOp::Kind::sync);

  auto refused = [&](std::string data) {
    std::string why;
    bool bad = !decode(data, why);
    CHECK_MESSAGE(!why.empty(), "no reason given");
    return bad;
  };
  CHECK(refused(""));
  CHECK(refused("XXXX" + wire.substr(4)));
  for (std::size_t cut = 4; cut < wire.size(); cut += 3) CHECK(refused(wire.substr(0, cut)));
  CHECK(refused(wire + "x"));
  for (const char* path : {"../escape", "/etc/passwd", "FLIGHT//x", "FLIGHT/./x", "", "FLIGHT/.."}) {
    ReplicaBatch evil{1, 1, {{ReplicaOp::Kind::write, path, 0, "x"}}};
    INFO(path);
    CHECK(refused(encode(evil)));
  }
  ReplicaBatch bad_kind{1, 1, {{ReplicaOp::Kind::sync, "a", 0, {}}}};
  auto wire_kind = encode(bad_kind);
  wire_kind[4 + 4 + 8 + 8 + 8 + 4] = 9;  // the first op's kind
  CHECK(refused(wire_kind));
  ReplicaBatch far_shard{1, 1, {}};
  auto wire_shard = encode(far_shard);
  wire_shard[4 + 1] = 0x10;  // shard 4097
  CHECK(refused(wire_shard));
  // A count of operations far past what the bytes hold is refused before anything is reserved.
  auto wire_count = encode(far_shard);
  wire_count[4 + 4 + 8 + 8 + 8 + 3] = 0x7f;
  CHECK(refused(wire_count));
}

TEST_CASE("a shard's mirror applies writes in order, and refuses an older epoch even after a restart") {
  TempDir dir;
  std::string error;
  {
    ShardMirror mirror(dir.path() / "_replicas");
    ReplicaBatch first{5, 7, {}, 1, 0};  // a run's first batch: a seed
    first.ops.push_back({ReplicaOp::Kind::reset, ".", 0, {}});
    first.ops.push_back({ReplicaOp::Kind::write, "JOURNAL/a.sqlite", 0, "hello world"});
    first.ops.push_back({ReplicaOp::Kind::write, "JOURNAL/a.sqlite", 6, "there"});
    first.ops.push_back({ReplicaOp::Kind::truncate, "JOURNAL/a.sqlite", 9, {}});
    first.ops.push_back({ReplicaOp::Kind::write, "JOURNAL/b.sqlite", 0, "gone soon"});
    first.ops.push_back({ReplicaOp::Kind::remove, "JOURNAL/b.sqlite", 0, {}});
    first.ops.push_back({ReplicaOp::Kind::sync, "JOURNAL/a.sqlite", 0, {}});
    REQUIRE_MESSAGE(mirror.apply(first, error) == ShardMirror::Outcome::applied, error);
    auto file = dir.path() / "_replicas" / "0005" / "JOURNAL" / "a.sqlite";
    CHECK(read_file(file) == "hello the");
    CHECK_FALSE(std::filesystem::exists(dir.path() / "_replicas" / "0005" / "JOURNAL" / "b.sqlite"));
    CHECK(mirror.epoch(5) == 7);
    CHECK(mirror.epoch(6) == 0);

    ReplicaBatch old{5, 6, {{ReplicaOp::Kind::write, "JOURNAL/a.sqlite", 0, "HELLO"}}};
    CHECK(mirror.apply(old, error) == ShardMirror::Outcome::stale_epoch);
    CHECK(error.find("older") != std::string::npos);
    CHECK(read_file(file) == "hello the");
    // In its run, in order: the next batch is taken; a copy of it, one that skips ahead, one
    // of an older run, and one of a new epoch that is no seed, are refused and change nothing.
    ReplicaBatch next{5, 7, {{ReplicaOp::Kind::write, "JOURNAL/a.sqlite", 0, "H"}}, 1, 1};
    REQUIRE_MESSAGE(mirror.apply(next, error) == ShardMirror::Outcome::applied, error);
    CHECK(read_file(file) == "Hello the");
    for (auto [seed, index] : {std::pair{1, 1}, std::pair{1, 3}, std::pair{0, 2}}) {
      ReplicaBatch late{5, 7, {{ReplicaOp::Kind::truncate, "JOURNAL/a.sqlite", 0, {}}},
                        static_cast<std::uint64_t>(seed), static_cast<std::uint64_t>(index)};
      INFO(seed << "." << index);
      CHECK(mirror.apply(late, error) == ShardMirror::Outcome::failed);
      CHECK(error.find("out of order") != std::string::npos);
    }
    ReplicaBatch unseeded{5, 8, {{ReplicaOp::Kind::truncate, "JOURNAL/a.sqlite", 0, {}}}, 1, 2};
    CHECK(mirror.apply(unseeded, error) == ShardMirror::Outcome::failed);
    CHECK(read_file(file) == "Hello the");
    CHECK(mirror.epoch(5) == 7);
    ReplicaBatch newer{5, 8, {{ReplicaOp::Kind::reset, ".", 0, {}}, {ReplicaOp::Kind::write, "JOURNAL/a.sqlite", 0, "Hello the"}},
                       1, 0};
    REQUIRE(mirror.apply(newer, error) == ShardMirror::Outcome::applied);
    CHECK(read_file(file) == "Hello the");
  }
  {
    // A seed: the copy emptied, then the owner's files whole (what seed_ops reads).
    ShardMirror mirror(dir.path() / "_replicas");
    TempDir owner;
    std::filesystem::create_directories(owner.path() / "JOURNAL");
    std::ofstream(owner.path() / "JOURNAL" / "c.sqlite") << "the owner's c";
    // The node's own marks on a promoted copy are not the shard's: they are not sent.
    std::ofstream(owner.path() / ".promoted") << "17\n";
    std::ofstream(owner.path() / ".handed-n0-0123456789abcdef");
    auto ops = seed_ops(owner.path());
    REQUIRE(ops.size() == 4);
    CHECK(ops[0].kind == ReplicaOp::Kind::reset);
    ReplicaBatch older_seed{5, 8, ops, 1, 0};  // a seed no newer than the run it would end
    CHECK(mirror.apply(older_seed, error) == ShardMirror::Outcome::failed);
    ReplicaBatch seed{5, 8, ops, 2, 0};
    std::string wire_error;
    REQUIRE(decode(encode(seed), wire_error));
    REQUIRE_MESSAGE(mirror.apply(seed, error) == ShardMirror::Outcome::applied, error);
    CHECK_FALSE(std::filesystem::exists(dir.path() / "_replicas" / "0005" / "JOURNAL" / "a.sqlite"));
    CHECK(read_file(dir.path() / "_replicas" / "0005" / "JOURNAL" / "c.sqlite") == "the owner's c");
    CHECK(mirror.epoch(5) == 8);  // the fence stays
    ReplicaBatch misplaced{5, 8, {{ReplicaOp::Kind::reset, "JOURNAL", 0, {}}}};
    CHECK_FALSE(decode(encode(misplaced), wire_error));
  }
  // A follower that restarts still refuses the epoch it had moved past.
  ShardMirror again(dir.path() / "_replicas");
  ReplicaBatch stale{5, 7, {{ReplicaOp::Kind::write, "JOURNAL/a.sqlite", 0, "X"}}};
  CHECK(again.apply(stale, error) == ShardMirror::Outcome::stale_epoch);
  CHECK(again.epoch(5) == 8);
}

TEST_CASE("a seed in pieces rebuilds the owner's files whole, and the copy before it stays whole until its last piece") {
  TempDir owner, follower;
  std::string error;
  std::filesystem::create_directories(owner.path() / "JOURNAL");
  std::string big(10'000, 'x');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  std::ofstream(owner.path() / "JOURNAL" / "big.sqlite") << big;
  std::ofstream(owner.path() / "JOURNAL" / "small.sqlite") << "small";
  std::ofstream(owner.path() / "JOURNAL" / "empty.sqlite");
  std::ofstream(owner.path() / "JOURNAL" / "edge.sqlite") << std::string(1000, 'e');  // ends a piece exactly

  // Read whole, the same files as in pieces of 1,000 bytes.
  auto whole = seed_ops(owner.path());
  CHECK(whole.back().kind != ReplicaOp::Kind::more);
  SeedReader reader(owner.path(), 1000);
  std::vector<std::vector<ReplicaOp>> pieces;
  while (!reader.done()) pieces.push_back(reader.next());
  CHECK(pieces.size() >= 12);
  CHECK(pieces.front().front().kind == ReplicaOp::Kind::reset);
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    std::size_t bytes = 0;
    for (const auto& op : pieces[i]) bytes += op.bytes.size();
    CHECK(bytes <= 1000);
    CHECK((pieces[i].back().kind == ReplicaOp::Kind::more) == (i + 1 < pieces.size()));
    std::string wire_error;
    REQUIRE(decode(encode(ReplicaBatch{6, 30, pieces[i], 1, i}), wire_error));
  }

  ShardMirror mirror(follower.path() / "_replicas");
  ReplicaBatch before{6, 30, {{ReplicaOp::Kind::reset, ".", 0, {}},
                              {ReplicaOp::Kind::write, "JOURNAL/old.sqlite", 0, "the copy before"},
                              {ReplicaOp::Kind::sync, "JOURNAL/old.sqlite", 0, {}}},
                      1, 0};
  REQUIRE_MESSAGE(mirror.apply(before, error) == ShardMirror::Outcome::applied, error);
  // The pieces of a second seed: the copy before stays as it was, and whole, until the last;
  // no hand-off promotes it meanwhile (the stream's position is the seed's, not the copy's).
  for (std::size_t i = 0; i + 1 < pieces.size(); ++i) {
    REQUIRE_MESSAGE(mirror.apply(ReplicaBatch{6, 30, pieces[i], 2, i}, error) == ShardMirror::Outcome::applied, error);
    CHECK(mirror.whole(6));
    CHECK(read_file(mirror.shard_dir(6) / "JOURNAL" / "old.sqlite") == "the copy before");
    CHECK_FALSE(mirror.promote(6, follower.path() / "_shards" / "0006", ReplicaPosition{30, 2, i}, error));
  }
  // A piece out of order is refused (the owner seeds again).
  CHECK(mirror.apply(ReplicaBatch{6, 30, pieces.back(), 2, pieces.size()}, error) == ShardMirror::Outcome::failed);
  CHECK(read_file(mirror.shard_dir(6) / "JOURNAL" / "old.sqlite") == "the copy before");
  // Seeded again, to its end.
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    REQUIRE_MESSAGE(mirror.apply(ReplicaBatch{6, 30, pieces[i], 3, i}, error) == ShardMirror::Outcome::applied, error);
  }
  CHECK(mirror.whole(6));
  CHECK_FALSE(std::filesystem::exists(mirror.shard_dir(6) / "JOURNAL" / "old.sqlite"));
  CHECK(read_file(mirror.shard_dir(6) / "JOURNAL" / "big.sqlite") == big);
  CHECK(read_file(mirror.shard_dir(6) / "JOURNAL" / "small.sqlite") == "small");
  CHECK(read_file(mirror.shard_dir(6) / "JOURNAL" / "edge.sqlite") == std::string(1000, 'e'));
  CHECK(std::filesystem::exists(mirror.shard_dir(6) / "JOURNAL" / "empty.sqlite"));
  // The run goes on after the seed's last piece, in the copy.
  ReplicaBatch next{6, 30, {{ReplicaOp::Kind::write, "JOURNAL/small.sqlite", 0, "SMALL"},
                            {ReplicaOp::Kind::sync, "JOURNAL/small.sqlite", 0, {}}},
                    3, pieces.size()};
  REQUIRE_MESSAGE(mirror.apply(next, error) == ShardMirror::Outcome::applied, error);
  CHECK(read_file(mirror.shard_dir(6) / "JOURNAL" / "small.sqlite") == "SMALL");
  // A `more` with no seed under way, or not last, is refused.
  CHECK(mirror.apply(ReplicaBatch{6, 30, {{ReplicaOp::Kind::more, ".", 0, {}}}, 3, pieces.size() + 1}, error) ==
        ShardMirror::Outcome::failed);
  std::string wire_error;
  CHECK_FALSE(decode(encode(ReplicaBatch{6, 30, {{ReplicaOp::Kind::more, ".", 0, {}}, next.ops[0]}, 3, 9}), wire_error));
  CHECK_FALSE(decode(encode(ReplicaBatch{6, 30, {next.ops[0], {ReplicaOp::Kind::reset, ".", 0, {}}}, 3, 9}), wire_error));
  CHECK(wire_error.find("first") != std::string::npos);

  // A takeover in the middle of a seed takes the copy before it; the seed's own copy goes.
  auto own = follower.path() / "_shards" / "0006";
  REQUIRE_MESSAGE(mirror.apply(ReplicaBatch{6, 30, pieces[0], 4, 0}, error) == ShardMirror::Outcome::applied, error);
  CHECK(std::filesystem::exists(mirror.shard_dir(6).string() + ".seed"));
  REQUIRE_MESSAGE(mirror.promote(6, own, error), error);
  CHECK(read_file(own / "JOURNAL" / "small.sqlite") == "SMALL");
  CHECK_FALSE(std::filesystem::exists(mirror.shard_dir(6).string() + ".seed"));

  // Many small files: at most 256 to a piece (the follower keeps each open while it applies).
  TempDir many;
  std::filesystem::create_directories(many.path() / "JOURNAL");
  for (int i = 0; i < 300; ++i) std::ofstream(many.path() / "JOURNAL" / ("f" + std::to_string(i) + ".sqlite")) << "x";
  SeedReader small_files(many.path(), std::size_t{1} << 20);
  auto first = small_files.next();
  CHECK_FALSE(small_files.done());
  CHECK(first.back().kind == ReplicaOp::Kind::more);
  CHECK(small_files.next().back().kind != ReplicaOp::Kind::more);
  CHECK(small_files.done());
}

TEST_CASE("a copy is whole only after a seed applied to its end, and a promoted copy refuses every batch until fenced at its claim") {
  TempDir dir;
  std::string error;
  ShardMirror mirror(dir.path() / "_replicas");
  auto own = dir.path() / "_shards" / "0003";
  CHECK_FALSE(mirror.whole(3));
  // A seed cut short (an operation fails part-way): the copy is marked as not whole.
  ReplicaBatch cut{3, 10, {{ReplicaOp::Kind::reset, ".", 0, {}},
                           {ReplicaOp::Kind::write, "JOURNAL/a.sqlite", 0, "half"},
                           {ReplicaOp::Kind::truncate, "JOURNAL/a.sqlite", std::int64_t{1} << 62, {}},
                           {ReplicaOp::Kind::sync, "JOURNAL/a.sqlite", 0, {}}},
                   1, 0};
  CHECK(mirror.apply(cut, error) == ShardMirror::Outcome::failed);
  CHECK_FALSE(mirror.whole(3));
  CHECK_FALSE(ShardMirror(dir.path() / "_replicas").whole(3));  // after a restart too
  CHECK_FALSE(mirror.promote(3, own, error));
  CHECK(error.find("not whole") != std::string::npos);
  ReplicaBatch seed{3, 10, {{ReplicaOp::Kind::reset, ".", 0, {}},
                            {ReplicaOp::Kind::write, "JOURNAL/a.sqlite", 0, "whole"},
                            {ReplicaOp::Kind::sync, "JOURNAL/a.sqlite", 0, {}}},
                    2, 0};
  REQUIRE_MESSAGE(mirror.apply(seed, error) == ShardMirror::Outcome::applied, error);
  CHECK(mirror.whole(3));
  // A later seed cut short (a restarted owner's) leaves the whole copy as it was: it can still
  // be taken over.
  ReplicaBatch cut_again{3, 11, cut.ops, 1, 0};
  cut_again.ops[1].bytes = "torn";
  CHECK(mirror.apply(cut_again, error) == ShardMirror::Outcome::failed);
  CHECK(mirror.whole(3));
  CHECK(read_file(mirror.shard_dir(3) / "JOURNAL" / "a.sqlite") == "whole");
  CHECK(mirror.epoch(3) == 11);  // the fence moved on all the same
  seed.epoch = 11;
  seed.seed = 2;
  REQUIRE_MESSAGE(mirror.apply(seed, error) == ShardMirror::Outcome::applied, error);
  // Taken over: the files move to the node's own shards, and the owner's next batch is refused.
  REQUIRE_MESSAGE(mirror.promote(3, own, error), error);
  CHECK(read_file(own / "JOURNAL" / "a.sqlite") == "whole");
  CHECK_FALSE(mirror.whole(3));
  ReplicaBatch next{3, 11, {{ReplicaOp::Kind::write, "JOURNAL/a.sqlite", 0, "W"}}, 2, 1};
  CHECK(mirror.apply(next, error) == ShardMirror::Outcome::stale_epoch);
  CHECK(read_file(own / "JOURNAL" / "a.sqlite") == "whole");
  // The claim was made at epoch 12: older owners stay refused, after a restart too; a later
  // owner's seed is taken into a new copy.
  REQUIRE_MESSAGE(mirror.fence(3, 12, error), error);
  CHECK(mirror.apply(ReplicaBatch{3, 11, seed.ops, 9, 0}, error) == ShardMirror::Outcome::stale_epoch);
  CHECK(ShardMirror(dir.path() / "_replicas").apply(ReplicaBatch{3, 11, seed.ops, 9, 0}, error) ==
        ShardMirror::Outcome::stale_epoch);
  REQUIRE(mirror.apply(ReplicaBatch{3, 13, seed.ops, 1, 0}, error) == ShardMirror::Outcome::applied);
  CHECK(mirror.whole(3));
  CHECK(read_file(own / "JOURNAL" / "a.sqlite") == "whole");
  // A promotion whose claim is refused goes back: the next batch must be a seed.
  std::filesystem::remove_all(own);
  REQUIRE_MESSAGE(mirror.promote(3, own, error), error);
  REQUIRE_MESSAGE(mirror.demote(3, own, error), error);
  CHECK_FALSE(std::filesystem::exists(own));
  CHECK(read_file(mirror.shard_dir(3) / "JOURNAL" / "a.sqlite") == "whole");
  CHECK(mirror.apply(ReplicaBatch{3, 13, {{ReplicaOp::Kind::write, "JOURNAL/a.sqlite", 0, "X"}}, 1, 1}, error) ==
        ShardMirror::Outcome::failed);
  CHECK(mirror.apply(ReplicaBatch{3, 14, seed.ops, 1, 0}, error) == ShardMirror::Outcome::applied);
}

TEST_CASE("a hand-off promotes a copy only where the owner's stream stands, and a copy put back keeps its fence") {
  TempDir dir;
  std::string error;
  ShardMirror mirror(dir.path() / "_replicas");
  auto own = dir.path() / "_shards" / "0007";
  ReplicaBatch seed{7, 20, {{ReplicaOp::Kind::reset, ".", 0, {}},
                            {ReplicaOp::Kind::write, "JOURNAL/a.sqlite", 0, "first"},
                            {ReplicaOp::Kind::sync, "JOURNAL/a.sqlite", 0, {}}},
                    3, 0};
  REQUIRE_MESSAGE(mirror.apply(seed, error) == ShardMirror::Outcome::applied, error);
  ReplicaBatch next{7, 20, {{ReplicaOp::Kind::write, "JOURNAL/a.sqlite", 0, "second"},
                            {ReplicaOp::Kind::sync, "JOURNAL/a.sqlite", 0, {}}},
                    3, 1};
  REQUIRE_MESSAGE(mirror.apply(next, error) == ShardMirror::Outcome::applied, error);
  // The owner sent one batch more than the copy applied (it was lost), or is at another run
  // or epoch: the copy is not promoted, and stays the mirror's.
  for (auto at : {ReplicaPosition{20, 3, 2}, ReplicaPosition{20, 4, 1}, ReplicaPosition{21, 3, 1},
                  ReplicaPosition{20, 3, 0}}) {
    CHECK_FALSE(mirror.promote(7, own, at, error));
    CHECK(error.find("not where its owner's stream is") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(own));
    CHECK(mirror.whole(7));
  }
  CHECK(mirror.handed(7) == 0);
  // Level with the owner: promoted, and marked as handed at the owner's epoch.
  REQUIRE_MESSAGE(mirror.promote(7, own, ReplicaPosition{20, 3, 1}, error), error);
  CHECK(read_file(own / "JOURNAL" / "a.sqlite") == "second");
  CHECK(mirror.handed(7) == 20);
  CHECK(mirror.apply(ReplicaBatch{7, 20, next.ops, 3, 2}, error) == ShardMirror::Outcome::stale_epoch);
  // Put back (the hand-off did not go through): the fence at 20 holds, in this process and
  // the next, and the owner's next batch must be a seed.
  REQUIRE_MESSAGE(mirror.demote(7, own, error), error);
  CHECK(mirror.handed(7) == 0);
  CHECK(read_file(mirror.shard_dir(7) / "JOURNAL" / "a.sqlite") == "second");
  CHECK(mirror.whole(7));  // it can still be taken over
  CHECK(mirror.apply(ReplicaBatch{7, 19, seed.ops, 9, 0}, error) == ShardMirror::Outcome::stale_epoch);
  CHECK(ShardMirror(dir.path() / "_replicas").apply(ReplicaBatch{7, 19, seed.ops, 9, 0}, error) ==
        ShardMirror::Outcome::stale_epoch);
  CHECK(mirror.apply(ReplicaBatch{7, 20, next.ops, 3, 2}, error) == ShardMirror::Outcome::failed);
  REQUIRE_MESSAGE(mirror.apply(ReplicaBatch{7, 20, seed.ops, 4, 0}, error) == ShardMirror::Outcome::applied, error);
  // A restart forgets where the run stood: no promotion until the next batch is applied.
  ShardMirror again(dir.path() / "_replicas");
  CHECK_FALSE(again.promote(7, own, ReplicaPosition{20, 4, 0}, error));
  REQUIRE_MESSAGE(again.apply(ReplicaBatch{7, 20, seed.ops, 5, 0}, error) == ShardMirror::Outcome::applied, error);
  REQUIRE_MESSAGE(again.promote(7, own, ReplicaPosition{20, 5, 0}, error), error);
  // Put back by a process that did not promote it (a restart in between): whole, and fenced.
  {
    ShardMirror later(dir.path() / "_replicas");
    REQUIRE_MESSAGE(later.demote(7, own, error), error);
    CHECK(later.whole(7));
    CHECK(later.apply(ReplicaBatch{7, 19, seed.ops, 9, 0}, error) == ShardMirror::Outcome::stale_epoch);
  }
  CHECK(ShardMirror(dir.path() / "_replicas").whole(7));
  ShardMirror fresh(dir.path() / "_replicas");
  REQUIRE_MESSAGE(fresh.apply(ReplicaBatch{7, 20, seed.ops, 6, 0}, error) == ShardMirror::Outcome::applied, error);
  REQUIRE_MESSAGE(fresh.promote(7, own, ReplicaPosition{20, 6, 0}, error), error);
  REQUIRE_MESSAGE(fresh.fence(7, 23, error), error);
  CHECK(fresh.handed(7) == 0);
}

// Six actors in one shard (their files share the shard's batches) and three elsewhere.
std::vector<std::string> journal_names() {
  std::vector<std::string> names{"journal-0"};
  auto shard = ActorId::make("JOURNAL", "journal-0")->shard();
  for (int k = 1; names.size() < 6; ++k) {
    auto name = "journal-" + std::to_string(k);
    if (ActorId::make("JOURNAL", name)->shard() == shard) names.push_back(name);
  }
  for (const char* other : {"elsewhere-a", "elsewhere-b", "elsewhere-c"}) names.push_back(other);
  return names;
}

struct CheckpointPages {
  explicit CheckpointPages(int pages) { set_wal_checkpoint_pages(pages); }
  ~CheckpointPages() { set_wal_checkpoint_pages(1000); }
};

TEST_CASE("a mirrored runtime's follower holds every acknowledged write when the link is cut at a random point") {
  CheckpointPages often(8);  // checkpoints every few commits: the main files are mirrored too
  auto names = journal_names();
  auto first_seed = std::random_device{}();
  MESSAGE("seed " << first_seed);
  std::uint64_t acknowledged_total = 0, refused_total = 0;
  for (unsigned round = 0; round < 6; ++round) {
    auto seed = first_seed + round;
    INFO("seed " << seed);
    std::mt19937_64 random(seed);
    TempDir owner, follower, promoted;
    auto mirror = std::make_shared<ShardMirror>(follower.path() / "_replicas");
    auto replicator = std::make_shared<LocalReplicator>(mirror, 1);
    std::map<std::string, std::set<std::string>> acked;  // actor -> keys answered ok
    {
      Runtime runtime(journal_registry(), options_for(owner.path(), replicator));
      // The cut comes after 1 to 1,500 operations: in the first databases' creation, or later.
      replicator->cut_after(1 + random() % 1500);
      std::mutex mutex;
      std::condition_variable cv;
      int outstanding = 0;
      for (int n = 0; n < 400; ++n) {
        const auto& name = names[random() % names.size()];
        std::string key = std::to_string(round) + "-" + std::to_string(n);
        {
          std::unique_lock lock(mutex);
          cv.wait(lock, [&] { return outstanding < 8; });
          ++outstanding;
        }
        json args{{"key", key}, {"bytes", random() % 3 == 0 ? 5000 : 20}};
        runtime.get("JOURNAL", name)->call("add", std::move(args), [&, name, key](Result<json> result) {
          std::lock_guard lock(mutex);
          if (result) {
            acked[name].insert(key);
            ++acknowledged_total;
          } else {
            ++refused_total;
          }
          --outstanding;
          cv.notify_all();
        });
      }
      std::unique_lock lock(mutex);
      cv.wait(lock, [&] { return outstanding == 0; });
    }
    // The owner's disk is lost: the follower's copy of each shard becomes the data directory.
    std::filesystem::create_directories(promoted.path() / "_shards");
    if (std::filesystem::exists(follower.path() / "_replicas")) {
      for (const auto& shard : std::filesystem::directory_iterator(follower.path() / "_replicas")) {
        std::filesystem::rename(shard.path(), promoted.path() / "_shards" / shard.path().filename());
      }
    }
    for (const auto& entry : std::filesystem::recursive_directory_iterator(promoted.path())) {
      if (entry.path().extension() != ".sqlite") continue;
      INFO(entry.path().string());
      CHECK(integrity_of(entry.path()) == "ok");
    }
    Runtime runtime(journal_registry(), options_for(promoted.path(), nullptr));
    for (const auto& [name, keys] : acked) {
      auto present = cairn::testing::call(*runtime.get("JOURNAL", name), "keys");
      REQUIRE_MESSAGE(present.ok(), name << ": " << (present.ok() ? "" : present.error().message));
      std::set<std::string> found;
      for (const auto& key : *present) found.insert(key.get<std::string>());
      for (const auto& key : keys) {
        INFO("actor " << name << ", key " << key);
        CHECK(found.count(key) == 1);
      }
    }
  }
  MESSAGE(acknowledged_total << " writes acknowledged (every one found on the follower), " << refused_total
                             << " refused after the cut");
  CHECK(acknowledged_total > 0);
  CHECK(refused_total > 0);
}

TEST_CASE("an actor deleted on a mirrored runtime is gone from the follower when the delete is answered") {
  TempDir owner, follower;
  auto mirror = std::make_shared<ShardMirror>(follower.path() / "_replicas");
  auto replicator = std::make_shared<LocalReplicator>(mirror, 1);
  Runtime runtime(journal_registry(), options_for(owner.path(), replicator));
  auto id = *ActorId::make("JOURNAL", "doomed");
  auto copy = mirror->shard_dir(id.shard()) / "JOURNAL" / (id.hex() + ".sqlite");
  REQUIRE(cairn::testing::call(*runtime.get("JOURNAL", "doomed"), "add", {{"key", "k"}, {"bytes", 10}}).ok());
  REQUIRE(std::filesystem::exists(copy));
  CHECK(mirror->epoch(id.shard()) == 1);
  auto deleted = Admin(runtime).remove("JOURNAL", "doomed");
  REQUIRE_MESSAGE(deleted.ok(), (deleted.ok() ? "" : deleted.error().message));
  CHECK_FALSE(std::filesystem::exists(copy));
  CHECK_FALSE(std::filesystem::exists(copy.string() + "-wal"));
}

namespace {
// An actor whose alarm writes a row: it shows where the alarm fired.
class Waker final : public Actor {
 public:
  explicit Waker(Context& ctx) : ctx_(ctx) {
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS fired (at INTEGER)");
  }
  Methods methods() override {
    return {
        {"arm", [this](const json& args) -> Result<json> {
           auto at = Clock::time_point(std::chrono::milliseconds(args.at("at").get<std::int64_t>()));
           if (auto set = ctx_.set_alarm(at); !set) return set.error();
           return json{{"ok", true}};
         }},
        {"fired", [this](const json&) -> Result<json> {
           return json(std::get<std::int64_t>(ctx_.sql().exec("SELECT count(*) AS n FROM fired").one()["n"]));
         }},
    };
  }
  void on_alarm(const AlarmInfo&) override { ctx_.sql().exec("INSERT INTO fired VALUES (1)"); }

 private:
  Context& ctx_;
};
}  // namespace

TEST_CASE("a follower that takes a shard over rebuilds its names and alarms from the files, and the alarms fire there") {
  TempDir owner, follower, promoted;
  auto clock = std::make_shared<ManualClock>(Clock::time_point{std::chrono::hours(24 * 365 * 50)});
  auto now_ms = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock->now().time_since_epoch()).count();
  };
  auto registry = [] {
    Registry r;
    r.add<Waker>("WAKER");
    return r;
  };
  auto options = [&](const std::filesystem::path& dir, std::shared_ptr<Replicator> replicator) {
    auto o = options_for(dir, std::move(replicator));
    o.clock = clock;
    return o;
  };
  auto mirror = std::make_shared<ShardMirror>(follower.path() / "_replicas");
  auto replicator = std::make_shared<LocalReplicator>(mirror, 1);
  std::set<unsigned> shards;
  const std::vector<std::string> names{"a", "b", "c"};
  {
    Runtime runtime(registry(), options(owner.path(), replicator));
    for (const auto& name : names) {
      shards.insert(ActorId::make("WAKER", name)->shard());
      auto result = cairn::testing::call(*runtime.get("WAKER", name), "arm", {{"at", now_ms() + 60'000}});
      REQUIRE_MESSAGE(result.ok(), (result.ok() ? "" : result.error().message));
    }
  }
  std::filesystem::create_directories(promoted.path() / "_shards");
  for (unsigned shard : shards) {
    std::filesystem::rename(mirror->shard_dir(shard), promoted.path() / "_shards" / mirror->shard_dir(shard).filename());
  }
  Runtime runtime(registry(), options(promoted.path(), nullptr));
  std::set<std::string> adopted;
  std::size_t alarms = 0;
  for (unsigned shard : shards) {
    auto rows = runtime.adopt_shard_files(shard);
    for (const auto& row : rows["names"]) adopted.insert(row["name"].get<std::string>());
    alarms += rows["alarms"].size();
  }
  CHECK(adopted == std::set<std::string>{"a", "b", "c"});
  CHECK(alarms == 3);
  auto listed = Admin(runtime).list("WAKER", "", "", 10);
  REQUIRE(listed.ok());
  CHECK((*listed)["actors"].size() == 3);
  CHECK(runtime.stats().actors_with_alarms == 3);
  clock->advance(std::chrono::milliseconds(60'000));
  runtime.fire_due_alarms();
  for (const std::string name : {"a", "b", "c"}) {
    INFO(name);
    CHECK(cairn::testing::eventually([&] {
      auto fired = cairn::testing::call(*runtime.get("WAKER", name), "fired");
      return fired.ok() && *fired == 1;
    }));
  }
}
