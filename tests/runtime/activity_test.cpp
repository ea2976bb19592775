// What the runtime remembers of its actors' events for operators (activity.hpp): the
// latency histogram's buckets and quantiles, the event ring, the top lists' windows and
// bounds, and, on an in-process runtime, each event's kind, status and commit as the admin
// API shows them, kept across an eviction, and the busiest and failing actors.
#include <doctest/doctest.h>

#include <stdexcept>

#include "activity.hpp"
#include "cairn/admin.hpp"
#include "cairn/limits.hpp"
#include "cairn/runtime.hpp"
#include "cairn/testing.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"

using namespace cairn;
using cairn::detail::ActivityTable;
using cairn::detail::BatchActivity;
using cairn::detail::EventRecord;
using cairn::detail::EventRing;
using cairn::detail::LatencyHistogram;
using cairn::testing::TempDir;
using json = nlohmann::json;
using namespace std::chrono_literals;

TEST_CASE("latency buckets are half a power of two wide and quantiles are their upper bounds") {
  CHECK(LatencyHistogram::bucket_of(0) == 0);
  CHECK(LatencyHistogram::bucket_of(1) == 0);
  CHECK(LatencyHistogram::bucket_of(2) == 2);
  CHECK(LatencyHistogram::bucket_of(3) == 3);    // 2.83 <= 3 < 4
  CHECK(LatencyHistogram::bucket_of(1000) == 19);  // 2^9.5 = 724 <= 1000 < 1024
  CHECK(LatencyHistogram::bucket_of(1024) == 20);
  CHECK(LatencyHistogram::bucket_of(std::uint64_t{1} << 40) == LatencyHistogram::buckets - 1);
  for (std::uint64_t us : {1u, 7u, 100u, 999u, 5000u, 123456u}) {
    auto bucket = LatencyHistogram::bucket_of(us);
    CHECK(LatencyHistogram::upper_bound_us(bucket) > static_cast<double>(us));
    CHECK(LatencyHistogram::upper_bound_us(bucket) <= static_cast<double>(us) * 1.42 + 1.0);
  }

  LatencyHistogram h;
  CHECK(h.quantile_ms(0.99) == 0);
  for (int i = 0; i < 98; ++i) h.add(100);  // 0.1 ms
  h.add(10'000);                            // 10 ms
  h.add(1'000'000);                         // 1 s
  CHECK(h.count() == 100);
  CHECK(h.quantile_ms(0.5) == doctest::Approx(LatencyHistogram::upper_bound_us(13) / 1000));
  CHECK(h.quantile_ms(0.99) == doctest::Approx(LatencyHistogram::upper_bound_us(26) / 1000));  // 10 ms's
  CHECK(h.quantile_ms(1.0) > 1000.0);
  CHECK(h.quantile_ms(1.0) < 1420.0);
  LatencyHistogram other;
  other.add(100, 100);
  h.merge(other);
  CHECK(h.count() == 200);
  CHECK(h.quantile_ms(0.99) == doctest::Approx(LatencyHistogram::upper_bound_us(13) / 1000));
}

TEST_CASE("the event ring keeps the newest events and numbers them") {
  EventRing ring(3);
  for (int i = 0; i < 5; ++i) ring.push(EventRecord{i, 0, 200, 0, EventRecord::Kind::call, "m" + std::to_string(i), false});
  CHECK(ring.total() == 5);
  auto shown = ring.json();
  REQUIRE(shown.size() == 3);
  CHECK(shown[0]["what"] == "m4");
  CHECK(shown[2]["what"] == "m2");
  CHECK(shown[0]["batch"] == 0);  // committed in none
  EventRing open(1);
  open.push(EventRecord{0, 0, 200, 0, EventRecord::Kind::call, "m", true});
  CHECK(open.json()[0]["batch"].is_null());  // its batch has not ended
  std::vector<std::string> since;
  ring.each_since(1, [&](EventRecord& r) { since.push_back(r.what); });  // 1 is gone
  CHECK(since == std::vector<std::string>{"m2", "m3", "m4"});
  ring.push(EventRecord{9, 0, 200, 0, EventRecord::Kind::fetch, std::string(500, 'x'), false});
  CHECK(ring.json()[0]["what"].get<std::string>().size() == limits::event_record_what_bytes);
  CHECK(ring.json()[0]["batch"] == 0);  // not open: committed in none
}

TEST_CASE("a long text is cut to its own small string and never inside a UTF-8 character") {
  using cairn::detail::cut_utf8;
  CHECK(cut_utf8("short", 64) == "short");
  std::string accents;
  for (int i = 0; i < 40; ++i) accents += "\xc3\xa9";  // é, 2 bytes each
  auto cut = cut_utf8(accents, 63);
  CHECK(cut.size() == 62);
  CHECK(cut.capacity() < 128);
  CHECK(cut_utf8("\xe2\x82\xac\xe2\x82\xac", 4) == "\xe2\x82\xac");  // not half a euro sign
  EventRing ring(2);
  std::string huge(16 * 1024, 'p');
  ring.push(EventRecord{0, 0, 200, 0, EventRecord::Kind::fetch, huge, false});
  std::size_t capacity = 0;
  ring.each_since(0, [&](EventRecord& r) { capacity = r.what.capacity(); });
  CHECK(capacity < 256);
}

namespace {

BatchActivity batch(std::uint32_t events, std::uint32_t errors, std::uint64_t micros) {
  BatchActivity b;
  b.events = events;
  b.errors = errors;
  b.latency.add(micros, events);
  return b;
}

std::vector<std::string> names(const json& list) {
  std::vector<std::string> out;
  for (const auto& row : list) out.push_back(row["name"].get<std::string>());
  return out;
}

}  // namespace

TEST_CASE("the top lists rank a window of slots and forget older ones") {
  ActivityTable table(8);
  auto t0 = ActivityTable::clock::time_point{} + 1000h;
  auto a = ActorId::make("B", "a").value();
  auto b = ActorId::make("B", "b").value();
  auto c = ActorId::make("B", "c").value();
  table.add(a, batch(10, 0, 100), t0);
  table.add(b, batch(3, 2, 50'000), t0);
  table.add(c, batch(1, 0, 2'000), t0 + limits::activity_slot);
  table.add(a, batch(5, 0, 100), t0 + limits::activity_slot);

  auto now = t0 + limits::activity_slot;
  auto top = table.top(60s, 10, now);
  CHECK(names(top["busiest"]) == std::vector<std::string>{"a", "b", "c"});
  CHECK(top["busiest"][0]["events"] == 15);
  CHECK(names(top["slowest"]) == std::vector<std::string>{"b", "c", "a"});
  CHECK(names(top["failing"]) == std::vector<std::string>{"b"});
  CHECK(top["failing"][0]["errors"] == 2);
  CHECK(top["slowest"][0]["p99_ms"].get<double>() > 50.0);
  CHECK(top["slowest"][0]["p99_ms"].get<double>() < 71.0);

  // The last slot alone: b's slot is outside it.
  auto recent = table.top(std::chrono::duration_cast<std::chrono::seconds>(limits::activity_slot), 10, now);
  CHECK(names(recent["busiest"]) == std::vector<std::string>{"a", "c"});
  CHECK(recent["failing"].empty());
  CHECK(names(table.top(60s, 1, now)["busiest"]) == std::vector<std::string>{"a"});

  // After the table's whole span nothing is left, and a slot reused later starts empty.
  auto later = t0 + limits::activity_slot * static_cast<int>(limits::activity_slots + 1);
  CHECK(table.top(300s, 10, later)["busiest"].empty());
  table.add(c, batch(1, 0, 100), later);
  CHECK(names(table.top(300s, 10, later)["busiest"]) == std::vector<std::string>{"c"});
}

TEST_CASE("a slot past its actor bound keeps the ones with errors and the most events") {
  ActivityTable table(8);
  auto t0 = ActivityTable::clock::time_point{} + 1000h;
  auto failing = ActorId::make("B", "failing").value();
  table.add(failing, batch(1, 1, 100), t0);
  auto busy = ActorId::make("B", "busy").value();
  table.add(busy, batch(1000, 0, 100), t0);
  for (std::size_t i = 0; i < limits::activity_actors_per_slot + 10; ++i) {
    table.add(ActorId::make("B", "quiet-" + std::to_string(i)).value(), batch(1, 0, 100), t0);
  }
  auto top = table.top(60s, limits::admin_max_top, t0);
  CHECK(top["busiest"][0]["name"] == "busy");
  CHECK(names(top["failing"]) == std::vector<std::string>{"failing"});
}

TEST_CASE("parked rings come back to the actor's next host and are bounded") {
  ActivityTable table(4);
  auto a = ActorId::make("B", "a").value();
  EventRing ring(4);
  ring.push(EventRecord{1, 0, 200, 1, EventRecord::Kind::call, "x", false});
  table.park(a, std::move(ring));
  auto back = table.unpark(a);
  CHECK(back.total() == 1);
  CHECK(table.unpark(a).total() == 0);  // taken
  for (std::size_t i = 0; i <= limits::parked_event_rings; ++i) {
    EventRing r(4);
    r.push(EventRecord{1, 0, 200, 1, EventRecord::Kind::call, "x", false});
    table.park(ActorId::make("B", "n" + std::to_string(i)).value(), std::move(r));
  }
  CHECK(table.unpark(ActorId::make("B", "n0").value()).total() == 0);  // the oldest went
  CHECK(table.unpark(ActorId::make("B", "n1").value()).total() == 1);
  ActivityTable off(0);
  CHECK_FALSE(off.enabled());
  CHECK(off.unpark(a).capacity() == 0);
}

namespace {

// Teller: a fetch answering the status asked for, a write, a method that throws, an alarm.
class Teller final : public Actor {
 public:
  explicit Teller(Context& ctx) : ctx_(ctx) {}
  Response fetch(const Request& request) override {
    auto status = request.query_param("status");
    return Response{status && status->has_value() ? std::stoi(**status) : 200, {}, "ok"};
  }
  Methods methods() override {
    return {
        {"write", [this](const json&) -> Result<json> {
           ctx_.sql().exec("CREATE TABLE IF NOT EXISTS t (x)");
           ctx_.sql().exec("INSERT INTO t VALUES (1)");
           return json(true);
         }},
        {"boom", [](const json&) -> Result<json> { throw std::runtime_error("boom"); }},
        {"refuse", [](const json&) -> Result<json> { return Error{Code::invalid_argument, "no"}; }},
        {"alarm", [this](const json&) -> Result<json> {
           auto set = ctx_.set_alarm("wake", ctx_.now() + 1min);
           if (!set) return set.error();
           return json(true);
         }},
    };
  }
  void on_alarm(const AlarmInfo&) override {}

 private:
  Context& ctx_;
};

struct Fixture {
  TempDir dir;
  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>(Clock::time_point{std::chrono::hours(24 * 365 * 50)});
  std::unique_ptr<Runtime> runtime;
  explicit Fixture(std::size_t recent_events = limits::default_recent_events) {
    Registry registry;
    registry.add<Teller>("TELLER");
    RuntimeOptions options;
    options.data_dir = dir.path();
    options.threads = 2;
    options.clock = clock;
    options.recent_events = recent_events;
    runtime = std::make_unique<Runtime>(std::move(registry), options);
  }
  Response get(const std::string& name, const std::string& target) {
    Request request;
    request.method = "GET";
    request.target = target;
    return testing::fetch(*runtime->get("TELLER", name), request);
  }
  Result<json> call(const std::string& name, const std::string& method) {
    return testing::call(*runtime->get("TELLER", name), method);
  }
};

}  // namespace

TEST_CASE("an actor's recent events say what ran, how it ended and the commit it joined") {
  Fixture f;
  REQUIRE(f.call("t1", "write").ok());
  CHECK(f.get("t1", "/hello?status=418&secret=x").status == 418);
  CHECK(f.call("t1", "boom").error().code == Code::internal);
  CHECK(f.call("t1", "refuse").error().code == Code::invalid_argument);
  REQUIRE(f.call("t1", "alarm").ok());
  f.clock->advance(2min);
  f.runtime->fire_due_alarms();
  Admin admin(*f.runtime);
  json events;
  REQUIRE(testing::eventually([&] {
    auto seen = admin.inspect("TELLER", "t1");
    if (!seen) return false;
    events = (*seen)["recent_events"];
    return events.size() == 6;
  }));
  // Newest first.
  CHECK(events[0]["kind"] == "alarm");
  CHECK(events[0]["what"] == "wake");
  CHECK(events[1]["what"] == "alarm");
  CHECK(events[2]["kind"] == "call");
  CHECK(events[2]["what"] == "refuse");
  CHECK(events[2]["status"] == 400);
  CHECK(events[3]["what"] == "boom");
  CHECK(events[3]["status"] == 500);
  CHECK(events[4]["kind"] == "fetch");
  CHECK(events[4]["what"] == "GET /hello");  // no query: it may carry secrets
  CHECK(events[4]["status"] == 418);
  CHECK(events[5]["what"] == "write");
  CHECK(events[5]["status"] == 200);
  auto now_ms = (*admin.inspect("TELLER", "t1"))["now_ms"].get<std::int64_t>();
  for (const auto& e : events) {
    CHECK(e["batch"].get<int>() >= 1);  // each has committed
    CHECK(e["duration_ms"].get<double>() >= 0);
    CHECK(e["at_ms"].get<std::int64_t>() <= now_ms);
    CHECK(e["at_ms"].get<std::int64_t>() > now_ms - 3 * 60 * 1000);
  }

  // Kept across an eviction: the next host (the inspection's own) shows them.
  REQUIRE(admin.evict("TELLER", "t1").value());
  auto evicted = admin.inspect("TELLER", "t1");
  REQUIRE(evicted.ok());
  CHECK((*evicted)["recent_events"].size() == 6);
  CHECK_FALSE((*evicted)["instance"].get<bool>());  // a new host, which made no object
  REQUIRE(f.call("t1", "write").ok());
  auto after = (*admin.inspect("TELLER", "t1"))["recent_events"];
  CHECK(after.size() == 7);
  CHECK(after[0]["what"] == "write");

  // The top lists: t1 is the busiest and the failing one.
  REQUIRE(f.call("t2", "write").ok());
  auto top = admin.top(60s, 10);
  REQUIRE(top.ok());
  CHECK((*top)["busiest"][0]["name"] == "t1");
  CHECK((*top)["busiest"][0]["events"] == 7);  // taken before the deletion below
  CHECK((*top)["busiest"][1]["name"] == "t2");
  REQUIRE((*top)["failing"].size() == 1);
  CHECK((*top)["failing"][0]["name"] == "t1");
  CHECK((*top)["failing"][0]["errors"] == 1);
  // Deleted: a new actor of the same name starts with no history.
  REQUIRE(admin.remove("TELLER", "t1").ok());
  REQUIRE(f.call("t1", "write").ok());
  auto fresh = (*admin.inspect("TELLER", "t1"))["recent_events"];
  REQUIRE(fresh.size() == 1);
  CHECK(fresh[0]["what"] == "write");
  CHECK(admin.top(5s, 10).error().code == Code::invalid_argument);
  CHECK(admin.top(301s, 10).error().code == Code::invalid_argument);
  CHECK(admin.top(60s, 0).error().code == Code::invalid_argument);
  CHECK(admin.top(60s, limits::admin_max_top + 1).error().code == Code::invalid_argument);
}

TEST_CASE("with recent events off an actor keeps none and the top lists are empty") {
  Fixture f(0);
  REQUIRE(f.call("t1", "write").ok());
  Admin admin(*f.runtime);
  auto seen = admin.inspect("TELLER", "t1");
  REQUIRE(seen.ok());
  CHECK((*seen)["recent_events"].is_null());
  CHECK((*admin.top(60s, 10))["busiest"].empty());
}
