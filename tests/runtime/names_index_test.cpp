// The names index (runtime/src/names_index.*): what its callers rely on when changes race
// with its syncs.
#include "names_index.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>

#include "cairn/actor_id.hpp"
#include "fault_vfs.hpp"
#include "temp_dir.hpp"

using cairn::ActorId;
using cairn::detail::NamesIndex;
using cairn::testing::Fault;
using cairn::testing::FaultVfs;
using cairn::testing::TempDir;

TEST_CASE("a name forgotten while the names index syncs leaves the index whole") {
  // The sync covers the rows written before it started; a row forgotten meanwhile (an empty
  // actor evicted, a shard moved away) must not make it drop rows it did not cover.
  FaultVfs::install();
  TempDir dir;
  NamesIndex names(dir.path() / "names.sqlite");
  auto a = ActorId::make("LEDGER", "forgotten").value();
  auto b = ActorId::make("LEDGER", "recorded-next").value();
  auto c = ActorId::make("LEDGER", "recorded-after").value();
  auto version = names.record(a);
  REQUIRE(version != 0);
  FaultVfs::arm(Fault::slow_fsync, "names.sqlite-wal");  // the next sync takes a second
  std::thread syncer([&] {
    std::string error;
    CHECK(names.sync_through(version, error));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  FaultVfs::clear();  // the sync under way stays slow; later ones are not
  names.remove(a);    // forgets a's unsynced row, then waits for the sync and makes its own
  auto next = names.record(b);
  syncer.join();
  std::string error;
  CHECK(names.sync_through(next, error));
  auto after = names.record(c);
  CHECK(names.sync_through(after, error));
  CHECK_FALSE(names.contains(a.hex()));
  CHECK(names.contains(b.hex()));
  CHECK(names.contains(c.hex()));
  auto all = names.all();
  REQUIRE(all.size() == 2);
  CHECK(all[0].name == "recorded-after");
  CHECK(all[1].name == "recorded-next");
}
