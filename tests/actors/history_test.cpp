// Point-in-time restores of a flight from its history of changes: book, cancel, book again,
// then restore to each moment and compare the seat maps; a restore that is itself undone;
// retention by age and by size; what cuts the history (schema changes, an import, history off)
// and the refusals that follow; a whole backup brought back to a moment.
#include "flight/flight.hpp"

#include <doctest/doctest.h>

#include "cairn/admin.hpp"
#include "cairn/runtime.hpp"
#include "cairn/testing.hpp"
#include "temp_dir.hpp"

using namespace cairn;
using cairn::testing::TempDir;
using namespace std::chrono_literals;

namespace {

json seat(const json& seats, const std::string& number) {
  for (const auto& s : seats) {
    if (s["seatNumber"] == number) return s;
  }
  return nullptr;
}

struct HistoryFixture {
  TempDir dir;
  std::shared_ptr<ManualClock> clock =
      std::make_shared<ManualClock>(Clock::time_point{std::chrono::seconds(1'795'392'000)});
  std::chrono::seconds retention = 24h;
  std::int64_t max_bytes = limits::default_history_max_bytes;
  std::unique_ptr<Runtime> runtime;

  HistoryFixture() { start(); }
  void start() {
    runtime.reset();
    Registry registry;
    registry.add("FLIGHT", [](Context& ctx) { return std::make_unique<actors::Flight>(ctx, actors::FlightOptions{120s}); });
    RuntimeOptions options;
    options.data_dir = dir.path();
    options.threads = 2;
    options.clock = clock;
    options.history_retention = retention;
    options.history_max_bytes = max_bytes;
    runtime = std::make_unique<Runtime>(std::move(registry), options);
  }
  std::int64_t now_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock->now().time_since_epoch()).count();
  }
  Stub flight(const std::string& id = "LX-100") { return *runtime->get("FLIGHT", id); }
  json seats(const std::string& id = "LX-100") { return testing::call(flight(id), "getSeats").value(); }
  json book(const std::string& seat, const std::string& name, const std::string& id = "LX-100") {
    auto booked = testing::call(flight(id), "assignSeat", {{"seatNumber", seat}, {"name", name}});
    INFO(seat << ": " << (booked.ok() ? std::string() : booked.error().message));
    REQUIRE(booked.ok());
    return *booked;
  }
  void cancel(const std::string& seat, const json& booking) {
    REQUIRE(testing::call(flight(), "cancelBooking",
                          {{"seatNumber", seat}, {"bookingToken", booking["bookingToken"]}})
                .ok());
  }
  Result<json> restore(std::int64_t at, const std::string& id = "LX-100") { return Admin(*runtime).restore("FLIGHT", id, at); }
  json history(const std::string& id = "LX-100") { return (*Admin(*runtime).inspect("FLIGHT", id))["history"]; }
  // A moment between two steps: one second after the last.
  std::int64_t step() {
    clock->advance(1s);
    auto at = now_ms();
    clock->advance(1s);
    return at;
  }
};

}  // namespace

TEST_CASE("book, cancel, book again: a restore to each moment gives that moment's seat map") {
  HistoryFixture f;
  (void)f.seats();  // the flight is made: its schema cuts the history here
  auto empty_at = f.step();
  auto empty = f.seats();
  auto ann = f.book("1A", "Ann");
  auto booked_at = f.step();
  auto booked = f.seats();
  f.cancel("1A", ann);
  auto cancelled_at = f.step();
  auto cancelled = f.seats();
  f.book("1A", "Bob");
  f.book("2B", "Cy");
  auto rebooked_at = f.step();
  auto rebooked = f.seats();
  CHECK(booked != empty);
  CHECK(cancelled == empty);
  CHECK(rebooked != booked);

  for (auto [at, expected] : std::vector<std::pair<std::int64_t, json>>{
           {booked_at, booked}, {empty_at, empty}, {rebooked_at, rebooked}, {cancelled_at, cancelled}}) {
    CAPTURE(at);
    auto restored = f.restore(at);
    REQUIRE(restored.ok());
    CHECK((*restored)["restored_to_ms"] == at);
    CHECK(f.seats() == expected);
    f.clock->advance(1s);
  }
  // Every restore was itself recorded: going back to a moment between two restores works.
  auto facts = f.history();
  CHECK(facts["on"] == true);
  CHECK(facts["changes"].get<int>() >= 8);
  CHECK(facts["restorable_from_ms"].get<std::int64_t>() < empty_at);
}

TEST_CASE("a restore survives a restart and wakes the flight on the restored data") {
  HistoryFixture f;
  (void)f.seats();
  auto before = f.step();
  f.book("3C", "Ann");
  f.step();
  REQUIRE(f.restore(before).ok());
  f.start();
  CHECK(f.seats() == [&] {
    auto fresh = f.seats("other");
    return fresh;
  }());
  // The restored flight takes bookings again (its instance was made anew on the data).
  f.book("3C", "Bob");
}

TEST_CASE("a restore is refused before the history starts, after now, and across a schema change") {
  HistoryFixture f;
  auto before_flight = f.now_ms() - 1000;
  f.clock->advance(2s);
  (void)f.seats();
  auto refused = f.restore(before_flight);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == Code::conflict);
  CHECK(refused.error().message.find("the history reaches back only to") != std::string::npos);
  auto future = f.restore(f.now_ms() + 60'000);
  REQUIRE_FALSE(future.ok());
  CHECK(future.error().code == Code::invalid_argument);
  auto unknown = f.restore(f.now_ms(), "never-made");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().code == Code::not_found);
  // The runtime's own tables (an alarm's, for a hold) are not the actor's schema: no cut.
  auto before_hold = f.step();
  REQUIRE(testing::call(f.flight(), "holdSeat", {{"seatNumber", "4D"}}).ok());
  f.step();
  CHECK(f.restore(before_hold).ok());
}

TEST_CASE("an import cuts the history, and so does a time with history off") {
  HistoryFixture f;
  (void)f.seats();
  auto booked_at = f.step();
  f.book("1A", "Ann");
  f.step();
  // History off for a while: what changed then cannot be undone.
  f.retention = 0s;
  f.start();
  f.book("2A", "Bob");
  CHECK(f.history()["on"] == false);
  f.retention = 24h;
  f.start();
  f.step();
  auto refused = f.restore(booked_at);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("history was off") != std::string::npos);
  // Moments after the gap are fine.
  auto after_gap = f.step();
  f.book("3A", "Cy");
  f.step();
  CHECK(f.restore(after_gap).ok());

  auto copy = *Admin(*f.runtime).export_database("FLIGHT", "LX-100");
  REQUIRE(Admin(*f.runtime).import_database("FLIGHT", "copy", copy).ok());
  f.step();
  auto imported = f.restore(after_gap, "copy");
  REQUIRE_FALSE(imported.ok());
  CHECK(imported.error().message.find("imported") != std::string::npos);
}

TEST_CASE("history older than the retention is pruned and the earliest moment moves up") {
  HistoryFixture f;
  f.retention = 60s;
  f.start();
  (void)f.seats();
  auto early = f.step();
  f.book("1A", "Ann");
  f.clock->advance(120s);
  auto later = f.step();
  f.book("1B", "Bob");  // this commit prunes what is older than 60 s
  f.step();
  auto facts = f.history();
  CHECK(facts["restorable_from_ms"].get<std::int64_t>() > early);
  CHECK(facts["cut_because"] == "older history pruned");
  auto refused = f.restore(early);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("older history pruned") != std::string::npos);
  REQUIRE(f.restore(later).ok());
  auto seats = f.seats();
  CHECK(seat(seats, "1A")["occupant"] == "Ann");  // booked before `later`: it stays
  CHECK(seat(seats, "1B")["occupant"].is_null());
}

TEST_CASE("history beyond its byte budget is pruned oldest first") {
  HistoryFixture f;
  f.max_bytes = 4096;
  f.start();
  (void)f.seats();
  for (int row = 1; row <= 10; ++row) {
    for (char col : std::string("ABCDEF")) {
      auto seat = std::to_string(row) + col;
      f.book(seat, "a passenger with a long name to fill the history, " + seat);
      f.clock->advance(10ms);
    }
  }
  auto facts = f.history();
  CHECK(facts["bytes"].get<std::int64_t>() <= 4096);
  CHECK(facts["cut_because"] == "older history pruned");
  CHECK(facts["changes"].get<int>() < 60);
  CHECK(facts["changes"].get<int>() > 5);
}

TEST_CASE("a backup brought back to a moment: every actor as it was, or nothing") {
  HistoryFixture f;
  (void)f.seats("A");
  (void)f.seats("B");
  auto at = f.step();
  auto a_then = f.seats("A");
  auto b_then = f.seats("B");
  f.book("1A", "Ann", "A");
  f.book("1B", "Bob", "B");
  f.step();
  TempDir backup_parent;
  auto backup = backup_parent.path() / "backup";
  REQUIRE(Admin(*f.runtime).backup(backup).ok());
  f.runtime.reset();

  TempDir target_parent;
  auto target = target_parent.path() / "data";
  auto restored = restore_backup(backup, target, at);
  REQUIRE(restored.ok());
  CHECK((*restored)["restored_to_ms"] == at);
  RuntimeOptions options;
  options.data_dir = target;
  Registry registry;
  registry.add("FLIGHT", [](Context& ctx) { return std::make_unique<actors::Flight>(ctx, actors::FlightOptions{120s}); });
  {
    Runtime restored_runtime(std::move(registry), options);
    CHECK(testing::call(*restored_runtime.get("FLIGHT", "A"), "getSeats").value() == a_then);
    CHECK(testing::call(*restored_runtime.get("FLIGHT", "B"), "getSeats").value() == b_then);
  }
  // Too early for its history: refused, and the data directory is left empty.
  TempDir refused_parent;
  auto refused_dir = refused_parent.path() / "data";
  auto refused = restore_backup(backup, refused_dir, at - 3'600'000);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == Code::conflict);
  CHECK(refused.error().message.find("nothing was restored") != std::string::npos);
  std::error_code ec;
  CHECK((!std::filesystem::exists(refused_dir, ec) || std::filesystem::is_empty(refused_dir, ec)));
}

TEST_CASE("moments are read as RFC 3339 or milliseconds, and anything else is refused") {
  CHECK(parse_moment("2026-12-02T10:15:00Z").value() == 1'796'206'500'000);
  CHECK(parse_moment("2026-12-02T10:15:00.25Z").value() == 1'796'206'500'250);
  CHECK(parse_moment("2026-12-02T11:15:00+01:00").value() == 1'796'206'500'000);
  CHECK(parse_moment("2026-12-02 10:15:00z").value() == 1'796'206'500'000);
  CHECK(parse_moment("1796206500000").value() == 1'796'206'500'000);
  CHECK(format_moment(1'796'206'500'250) == "2026-12-02T10:15:00.250Z");
  for (const char* bad : {"", "yesterday", "2026-12-02", "2026-13-02T10:15:00Z", "2026-02-30T10:15:00Z",
                          "2026-12-02T10:15:00", "2026-12-02T10:15:00Zjunk", "-5", "2026-12-02T10:15:00.Z"}) {
    CAPTURE(bad);
    auto parsed = parse_moment(bad);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error().code == Code::invalid_argument);
  }
}

namespace {

// A class whose second migration step only changes rows (no DDL).
class Priced final : public Actor {
 public:
  Priced(Context& ctx, int steps) : ctx_(ctx) {
    static const std::vector<Migration> all{
        {"prices", "CREATE TABLE prices (item TEXT PRIMARY KEY, cents INTEGER NOT NULL)"},
        {"prices in cents, not euros", "UPDATE prices SET cents = cents * 100"},
    };
    ctx_.sql().migrate(std::vector<Migration>(all.begin(), all.begin() + steps));
  }
  Methods methods() override {
    return {{"set", [this](const json& a) -> Result<json> {
               ctx_.sql().exec("INSERT OR REPLACE INTO prices VALUES (?, ?)", a.at("item").get<std::string>(),
                               a.at("cents").get<std::int64_t>());
               return json(true);
             }},
            {"get", [this](const json&) -> Result<json> { return ctx_.sql().exec("SELECT * FROM prices").to_array(); }}};
  }

 private:
  Context& ctx_;
};

}  // namespace

TEST_CASE("a migration step that only changes rows cuts the history: a restore cannot undo it behind the version") {
  TempDir dir;
  auto clock = std::make_shared<ManualClock>(Clock::time_point{std::chrono::seconds(1'795'392'000)});
  auto start = [&](int steps) {
    Registry registry;
    registry.add("PRICED", [steps](Context& ctx) { return std::make_unique<Priced>(ctx, steps); });
    RuntimeOptions options;
    options.data_dir = dir.path();
    options.clock = clock;
    options.history_retention = 24h;
    return std::make_unique<Runtime>(std::move(registry), options);
  };
  auto runtime = start(1);
  REQUIRE(testing::call(*runtime->get("PRICED", "p"), "set", {{"item", "tea"}, {"cents", 3}}).ok());
  clock->advance(1s);
  auto before_step = std::chrono::duration_cast<std::chrono::milliseconds>(clock->now().time_since_epoch()).count();
  clock->advance(1s);
  runtime.reset();
  runtime = start(2);  // the new version's data step runs on the next event
  CHECK(testing::call(*runtime->get("PRICED", "p"), "get").value()[0]["cents"] == 300);
  clock->advance(1s);
  auto refused = Admin(*runtime).restore("PRICED", "p", before_step);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == Code::conflict);
  CHECK(refused.error().message.find("the schema changed") != std::string::npos);
  CHECK(testing::call(*runtime->get("PRICED", "p"), "get").value()[0]["cents"] == 300);
}
