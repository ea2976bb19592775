// CopyPromoter (gateway/src/promotion.hpp): a follower's copy made this node's by a hand-off
// or a takeover, and put back when the hand-off does not go through, never losing the copy.
#include "promotion.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "cairn/actor.hpp"
#include "cairn/registry.hpp"
#include "cairn/replication.hpp"
#include "cairn/runtime.hpp"
#include "cairn/testing.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"

using namespace cairn;
using namespace cairn::gateway;
using cairn::testing::TempDir;

namespace {

class Idle final : public Actor {
 public:
  explicit Idle(Context&) {}
};

// Writes a row in its own database on every request.
class Writer final : public Actor {
 public:
  explicit Writer(Context& ctx) : ctx_(ctx) {}
  Response fetch(const Request&) override {
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS t (v INTEGER)");
    ctx_.sql().exec("INSERT INTO t VALUES (1)");
    return Response::json(200, nlohmann::json{{"ok", true}});
  }

 private:
  Context& ctx_;
};

std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A node's data directory with a runtime, its mirror and its promoter.
struct Node {
  TempDir dir;
  std::shared_ptr<ShardMirror> mirror = std::make_shared<ShardMirror>(dir.path() / "_replicas");
  std::unique_ptr<Runtime> runtime;
  std::unique_ptr<CopyPromoter> promoter;
  Node() {
    Registry registry;
    registry.add<Idle>("IDLE");
    registry.add<Writer>("WRITER");
    RuntimeOptions options;
    options.data_dir = dir.path();
    options.threads = 2;
    options.storage_threads = 1;
    runtime = std::make_unique<Runtime>(std::move(registry), options);
    promoter = std::make_unique<CopyPromoter>(*runtime, mirror, dir.path());
  }
  // The owner at `epoch` seeds shard `shard` with one file holding `content` (run `run`).
  void seed(unsigned shard, std::int64_t epoch, std::uint64_t run, const std::string& content) {
    std::string error;
    ReplicaBatch batch{shard, epoch,
                       {{ReplicaOp::Kind::reset, ".", 0, {}},
                        {ReplicaOp::Kind::write, "IDLE/file.sqlite", 0, content},
                        {ReplicaOp::Kind::sync, "IDLE/file.sqlite", 0, {}}},
                       run, 0};
    REQUIRE_MESSAGE(mirror->apply(batch, error) == ShardMirror::Outcome::applied, error);
  }
  std::filesystem::path own(unsigned shard) const { return runtime->shard_dir(shard); }
};

}  // namespace

TEST_CASE("a hand-off's promotion is all or none, and a copy put back (abort, or the owner's next batch) is whole and can be handed in again") {
  Node node;
  node.seed(1, 40, 1, "one");
  node.seed(2, 40, 1, "two");
  // Shard 2's copy is behind the owner: neither is promoted.
  auto refused = node.promoter->hand_in({{1, ReplicaPosition{40, 1, 0}}, {2, ReplicaPosition{40, 1, 1}}}, "n0-aaaa");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("shard 2") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(node.own(1)));
  CHECK(node.mirror->whole(1));
  CHECK(node.mirror->whole(2));

  // Level (shard 1, put back, was seeded again by the owner's next batch): both promoted,
  // marked with the move.
  node.seed(1, 40, 2, "one");
  auto made = node.promoter->hand_in({{1, ReplicaPosition{40, 2, 0}}, {2, ReplicaPosition{40, 1, 0}}}, "n0-bbbb");
  REQUIRE_MESSAGE(made.ok(), (made.ok() ? "" : made.error().message));
  CHECK(read_file(node.own(1) / "IDLE" / "file.sqlite") == "one");
  CHECK(std::filesystem::exists(node.own(1) / ".handed-n0-bbbb"));
  CHECK(node.mirror->handed(1) == 40);
  // Asked again (its answer was lost): done already.
  CHECK(node.promoter->hand_in({{1, ReplicaPosition{40, 2, 0}}}, "n0-bbbb").ok());

  // The abort of another move changes nothing; this move's puts the copy back, whole.
  node.promoter->hand_back(1, "n0-cccc");
  CHECK(std::filesystem::exists(node.own(1)));
  node.promoter->hand_back(1, "n0-bbbb");
  CHECK_FALSE(std::filesystem::exists(node.own(1)));
  CHECK(node.mirror->whole(1));
  CHECK(read_file(node.mirror->shard_dir(1) / "IDLE" / "file.sqlite") == "one");

  // Shard 2: its owner writes on at the epoch it handed at, or at a later one (it claimed the
  // shard again): put back, unless this node owns the shard, or the batch is older.
  CHECK_FALSE(node.promoter->put_back_for_batch(2, 41, true));
  CHECK_FALSE(node.promoter->put_back_for_batch(2, 39, false));
  CHECK(std::filesystem::exists(node.own(2)));
  CHECK(node.promoter->put_back_for_batch(2, 41, false));
  CHECK_FALSE(std::filesystem::exists(node.own(2)));
  CHECK(node.mirror->whole(2));

  // The owner's next batch must be a seed; after it the copy can be handed in again.
  std::string error;
  CHECK(node.mirror->apply(ReplicaBatch{2, 41, {}, 1, 1}, error) == ShardMirror::Outcome::failed);
  node.seed(2, 41, 1, "two again");
  CHECK(node.promoter->hand_in({{2, ReplicaPosition{41, 1, 0}}}, "n0-dddd").ok());
  node.promoter->claimed(2, 50);  // claimed here at epoch 50: fenced, unmarked
  CHECK_FALSE(std::filesystem::exists(node.own(2) / ".handed-n0-dddd"));
  CHECK(node.mirror->handed(2) == 0);
  CHECK(node.mirror->apply(ReplicaBatch{2, 49, {{ReplicaOp::Kind::reset, ".", 0, {}}}, 7, 0}, error) ==
        ShardMirror::Outcome::stale_epoch);
}

TEST_CASE("a takeover uses a copy a hand-off promoted and never finished, and a stale copy of the node's own never hides the follower's") {
  Node node;
  node.seed(3, 60, 1, "handed");
  REQUIRE(node.promoter->hand_in({{3, ReplicaPosition{60, 1, 0}}}, "n1-eeee").ok());
  // Its owner died before the hand-over: the takeover takes the promoted copy as it is.
  REQUIRE(node.promoter->take_over(3, 777));
  CHECK(read_file(node.own(3) / "IDLE" / "file.sqlite") == "handed");
  CHECK(read_file(node.own(3) / ".promoted") == "777\n");
  node.promoter->finish_takeover(3, 70);
  CHECK_FALSE(std::filesystem::exists(node.own(3) / ".promoted"));
  std::string error;
  CHECK(node.mirror->apply(ReplicaBatch{3, 69, {{ReplicaOp::Kind::reset, ".", 0, {}}}, 9, 0}, error) ==
        ShardMirror::Outcome::stale_epoch);

  // What this node had of shard 4 long ago is put aside for the follower's copy, which is newer.
  std::filesystem::create_directories(node.own(4) / "IDLE");
  std::ofstream(node.own(4) / "IDLE" / "file.sqlite") << "stale";
  node.seed(4, 80, 1, "current");
  REQUIRE(node.promoter->hand_in({{4, ReplicaPosition{80, 1, 0}}}, "n1-ffff").ok());
  CHECK(read_file(node.own(4) / "IDLE" / "file.sqlite") == "current");
  // A hand-off's copy whose mirror has a newer one since (the owner seeded again after its
  // hand-off failed) is not taken over: the mirror's is.
  node.promoter->hand_back(4, "n1-ffff");
  node.seed(4, 81, 1, "newer");
  std::filesystem::create_directories(node.own(4) / "IDLE");
  std::ofstream(node.own(4) / "IDLE" / "file.sqlite") << "older";
  std::ofstream(node.own(4) / ".handed-n1-ffff");
  REQUIRE(node.promoter->take_over(4, 900));
  CHECK(read_file(node.own(4) / "IDLE" / "file.sqlite") == "newer");
}

TEST_CASE("a takeover never puts aside a shard this node serves: with instances open it is refused, and both copies are kept") {
  Node node;
  auto stub = node.runtime->get("WRITER", "live").value();
  REQUIRE(testing::fetch(stub, testing::get("/")).status == 200);
  unsigned shard = ActorId::make("WRITER", "live")->shard();
  REQUIRE(node.runtime->shard_instances(shard) == 1);
  node.seed(shard, 50, 1, "follower's");
  // A stale view of the cluster (this node's own claim not yet seen) asks for it again.
  CHECK_FALSE(node.promoter->take_over(shard, 123));
  CHECK(std::filesystem::exists(node.own(shard) / "WRITER"));
  CHECK_FALSE(std::filesystem::exists(node.own(shard) / ".promoted"));
  CHECK(read_file(node.mirror->shard_dir(shard) / "IDLE" / "file.sqlite") == "follower's");
  CHECK(testing::fetch(stub, testing::get("/")).status == 200);
  CHECK(node.runtime->shard_instances(shard) == 1);
}

TEST_CASE("a stale copy is put aside, but a follower's copy a takeover left unmarked goes back to the follower's copies") {
  Node node;
  // This node's own copy of shard 6, from when it owned it: stale once another node has it.
  std::filesystem::create_directories(node.own(6) / "IDLE");
  std::ofstream(node.own(6) / "IDLE" / "file.sqlite") << "old";
  CHECK_FALSE(node.promoter->discard_stale(6, [] { return false; }));  // not stale: kept
  CHECK(std::filesystem::exists(node.own(6)));
  CHECK(node.promoter->discard_stale(6, [] { return true; }));
  CHECK_FALSE(std::filesystem::exists(node.own(6)));

  // A takeover moved the follower's copy of shard 7 here, and the process ended before it
  // wrote its mark: the copy goes back to the mirror, whole, never to the trash.
  node.seed(7, 40, 1, "the only copy");
  REQUIRE(node.promoter->take_over(7, 555));
  std::filesystem::remove(node.own(7) / ".promoted");
  CHECK(node.promoter->discard_stale(7, [] { return true; }));
  CHECK_FALSE(std::filesystem::exists(node.own(7)));
  CHECK(read_file(node.mirror->shard_dir(7) / "IDLE" / "file.sqlite") == "the only copy");
  // A copy with a mark is never touched.
  node.seed(8, 41, 1, "marked");
  REQUIRE(node.promoter->take_over(8, 556));
  CHECK_FALSE(node.promoter->discard_stale(8, [] { return true; }));
  CHECK(read_file(node.own(8) / "IDLE" / "file.sqlite") == "marked");
}
