// cairn-bench-alarms: how many alarms per second the runtime fires across many actors, and
// how late they arrive.
//
// An in-process Runtime (real clock, fresh data dir, the server's defaults for threads,
// durability and the live-instance cap, so most alarms wake an evicted instance) with
// --actors actors of a class whose on_alarm only notes the time. Prints, in one run:
//   1. baseline: ordinary events (an RPC that writes one row) across the same actors, per s;
//   2. arming: set_alarm calls per s (each a commit plus a durable index entry);
//   3. burst: every actor's alarm due at the same instant -> alarms fired per s, lateness
//      p50/p99 (later ones wait behind the earlier ones: this is the queue, not the timer);
//   4. paced: alarms spread evenly at --rate per s (default 1,000) -> lateness p50/p99/max.
// Ratios are against the baseline of the same run. Writes only under its own temp dir.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "cairn/runtime.hpp"
#include "temp_dir.hpp"

namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;
using json = nlohmann::json;

// Shared with the actors: when each actor's alarm of the current round is due, and when it
// fired (ms since the epoch by the runtime's clock).
struct Round {
  std::vector<std::atomic<std::int64_t>> due;
  std::vector<std::atomic<std::int64_t>> fired;
  std::atomic<std::size_t> count{0};
  explicit Round(std::size_t n) : due(n), fired(n) {}
  void reset() {
    for (auto& f : fired) f = 0;
    count = 0;
  }
};
Round* current = nullptr;

std::int64_t epoch_ms(cairn::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
double since_ms(SteadyClock::time_point t) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - t).count();
}

class Sleeper final : public cairn::Actor {
 public:
  explicit Sleeper(cairn::Context& ctx) : ctx_(ctx) {
    index_ = std::stoul(ctx_.id().name());
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS touches (n INTEGER)");
  }
  cairn::Methods methods() override {
    return {
        {"touch", [this](const json&) -> cairn::Result<json> {
           ctx_.sql().exec("INSERT INTO touches VALUES (1)");
           return json(true);
         }},
        {"arm", [this](const json& args) -> cairn::Result<json> {
           auto at = cairn::Clock::time_point{std::chrono::milliseconds(args.get<std::int64_t>())};
           auto set = ctx_.set_alarm(at);
           if (!set) return set.error();
           return json(true);
         }},
    };
  }
  void on_alarm(const cairn::AlarmInfo&) override {
    auto now = epoch_ms(ctx_.now());
    std::int64_t expected = 0;
    if (current->fired[index_].compare_exchange_strong(expected, now)) ++current->count;
  }

 private:
  cairn::Context& ctx_;
  std::size_t index_ = 0;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// Set when a call or an alarm of the workload failed: the program then exits 1, whatever its
// figures (a benchmark whose workload broke measures nothing).
bool workload_failed = false;

// Calls `method` on every actor with at most `window` calls in flight; returns calls per s.
double call_all(cairn::Runtime& runtime, std::size_t actors, const std::string& method,
                const std::function<json(std::size_t)>& args, std::size_t window) {
  std::mutex mutex;
  std::condition_variable done;
  std::size_t in_flight = 0;
  std::size_t finished = 0;
  std::size_t failed = 0;
  auto start = SteadyClock::now();
  for (std::size_t i = 0; i < actors; ++i) {
    {
      std::unique_lock lock(mutex);
      done.wait(lock, [&] { return in_flight < window; });
      ++in_flight;
    }
    runtime.get("SLEEPER", std::to_string(i))->call(method, args(i), [&](cairn::Result<json> r) {
      std::lock_guard lock(mutex);
      --in_flight;
      ++finished;
      if (!r) ++failed;
      done.notify_all();
    });
  }
  std::unique_lock lock(mutex);
  done.wait_for(lock, 300s, [&] { return finished == actors; });
  if (failed > 0 || finished != actors) {
    std::fprintf(stderr, "%s: %zu of %zu calls failed or did not finish\n", method.c_str(),
                 failed + (actors - finished), actors);
    workload_failed = true;
  }
  return static_cast<double>(actors) / (since_ms(start) / 1000.0);
}

// Waits (bounded) until every actor of the round fired; returns lateness per actor in ms.
std::vector<double> await_round(std::size_t actors, std::chrono::seconds limit) {
  auto deadline = SteadyClock::now() + limit;
  while (current->count.load() < actors && SteadyClock::now() < deadline) std::this_thread::sleep_for(5ms);
  std::vector<double> late;
  late.reserve(actors);
  for (std::size_t i = 0; i < actors; ++i) {
    auto fired = current->fired[i].load();
    if (fired != 0) late.push_back(static_cast<double>(fired - current->due[i].load()));
  }
  if (late.size() < actors) {
    std::fprintf(stderr, "only %zu of %zu alarms fired in time\n", late.size(), actors);
    workload_failed = true;
  }
  return late;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cairn alarm benchmark"};
  std::size_t actors = 10'000;
  std::size_t threads = 8;
  std::size_t max_live = cairn::limits::default_max_live_instances;
  std::string durability = "full";
  double rate = 1'000;
  std::size_t window = 256;
  app.add_option("--actors", actors, "actors, one alarm each per round")->check(CLI::Range(1, 1'000'000));
  app.add_option("--threads", threads, "actor threads")->check(CLI::Range(1, 256));
  app.add_option("--max-live-instances", max_live, "instances in memory at most")->check(CLI::Range(1, 1'000'000));
  app.add_option("--durability", durability, "full or normal")->check(CLI::IsMember({"full", "normal"}));
  app.add_option("--rate", rate, "alarms per second in the paced round")->check(CLI::Range(1.0, 1e6));
  app.add_option("--window", window, "calls in flight while arming")->check(CLI::Range(1, 100'000));
  CLI11_PARSE(app, argc, argv);
  cairn::raise_descriptor_limit();

  cairn::testing::TempDir dir;
  cairn::Registry registry;
  registry.add<Sleeper>("SLEEPER");
  cairn::RuntimeOptions options;
  options.data_dir = dir.path();
  options.threads = threads;
  options.max_live_instances = max_live;
  options.durability = durability == "full" ? cairn::Durability::full : cairn::Durability::normal;
  cairn::Runtime runtime(std::move(registry), options);
  Round round(actors);
  current = &round;
  std::printf("cairn-bench-alarms: %zu actors, %zu threads, max %zu live, durability %s\n", actors,
              threads, max_live, durability.c_str());

  // 1. Baseline: the first touch creates each actor's database; the second is the ordinary
  // event the alarms are compared with (an LRU wake for most actors, as an alarm is).
  call_all(runtime, actors, "touch", [](std::size_t) { return json(); }, window);
  double events = call_all(runtime, actors, "touch", [](std::size_t) { return json(); }, window);
  std::printf("baseline  ordinary events (one row each):   %8.0f /s\n", events);

  // 2 + 3. Burst: everyone's alarm at one instant, a little after arming will be done.
  auto now_ms = [&] { return epoch_ms(options.clock->now()); };
  auto arm_start = SteadyClock::now();
  std::int64_t burst_at = now_ms() + 3'600'000;  // far away while arming
  for (auto& d : round.due) d = burst_at;
  double arms = call_all(runtime, actors, "arm", [&](std::size_t) { return json(burst_at); }, window);
  std::printf("arming    set_alarm events:                 %8.0f /s  (%.2fx baseline, %.1f s)\n", arms,
              arms / events, since_ms(arm_start) / 1000);
  // Due once re-arming is surely done (it runs at about the arming rate).
  burst_at = now_ms() + static_cast<std::int64_t>(static_cast<double>(actors) / arms * 1500.0) + 1'000;
  for (auto& d : round.due) d = burst_at;
  round.reset();
  call_all(runtime, actors, "arm", [&](std::size_t) { return json(burst_at); }, window);
  if (now_ms() > burst_at) {
    std::fprintf(stderr, "re-arming ended %lld ms after the burst was due\n",
                 static_cast<long long>(now_ms() - burst_at));
  }
  auto late = await_round(actors, 300s);
  double last = late.empty() ? 0 : *std::max_element(late.begin(), late.end());
  double burst_rate = last > 0 ? static_cast<double>(late.size()) / (last / 1000.0) : 0;
  std::printf("burst     %zu alarms due at once:         %8.0f /s  (%.2fx baseline)  lateness p50 %.0f ms, p99 %.0f ms, last %.0f ms\n",
              late.size(), burst_rate, burst_rate / events, percentile(late, 50), percentile(late, 99), last);

  // 4. Paced: evenly spread at --rate, starting after arming.
  auto spread = static_cast<double>(actors) / rate * 1000.0;  // ms
  std::vector<std::int64_t> offsets(actors);
  for (std::size_t i = 0; i < actors; ++i) offsets[i] = static_cast<std::int64_t>(spread * static_cast<double>(i) / static_cast<double>(actors));
  std::int64_t paced_at = now_ms() + static_cast<std::int64_t>(static_cast<double>(actors) / arms * 1500.0) + 1'000;
  for (std::size_t i = 0; i < actors; ++i) round.due[i] = paced_at + offsets[i];
  round.reset();
  call_all(runtime, actors, "arm", [&](std::size_t i) { return json(paced_at + offsets[i]); }, window);
  late = await_round(actors, std::chrono::seconds(static_cast<long long>(spread / 1000) + 300));
  std::printf("paced     %zu alarms at %.0f /s:          lateness p50 %.1f ms, p99 %.1f ms, max %.0f ms\n",
              late.size(), rate, percentile(late, 50), percentile(late, 99),
              late.empty() ? 0 : *std::max_element(late.begin(), late.end()));
  auto stats = runtime.stats();
  std::printf("runtime   alarms run %llu, instances started %llu, evictions %llu\n",
              static_cast<unsigned long long>(stats.alarms_run),
              static_cast<unsigned long long>(stats.instances_started),
              static_cast<unsigned long long>(stats.evictions));
  runtime.shutdown();
  if (workload_failed) std::fprintf(stderr, "cairn-bench-alarms: the workload failed (above): its figures mean nothing\n");
  return workload_failed ? 1 : 0;
}
