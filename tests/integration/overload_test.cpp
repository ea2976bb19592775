// Overload: a hot actor flooded past --max-queued-events answers the excess 503 overloaded at
// once (every 200 still durable, after a kill -9), while another actor answers promptly; an
// actor slower than the request timeout gets 504 and its late answer is dropped harmlessly.
#include <doctest/doctest.h>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "cairn/gateway/gateway.hpp"
#include "cairn/runtime.hpp"
#include "clients.hpp"
#include "server_process.hpp"
#include "temp_dir.hpp"

using namespace cairn::testing;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

// An actor whose /slow takes `slow_for` and then records that it ran.
class Slow final : public cairn::Actor {
 public:
  explicit Slow(cairn::Context& ctx) : ctx_(ctx) {
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS runs (n INTEGER)");
  }
  cairn::Response fetch(const cairn::Request& request) override {
    if (request.path() == "/slow") {
      std::this_thread::sleep_for(400ms);
      ctx_.sql().exec("INSERT INTO runs VALUES (1)");
      return cairn::Response::json(200, {{"slow", true}});
    }
    auto runs = ctx_.sql().exec("SELECT count(*) AS n FROM runs").one()["n"];
    return cairn::Response::json(200, {{"runs", std::get<std::int64_t>(runs)}});
  }

 private:
  cairn::Context& ctx_;
};

}  // namespace

TEST_CASE("a flood past --max-queued-events gets 503 overloaded, every 200 is durable, others are prompt") {
  TempDir dir;
  auto server = std::make_unique<ServerProcess>(
      dir.path(), std::vector<std::string>{"--max-queued-events", "4", "--threads", "2"});
  auto port = server->port();
  std::mutex mutex;
  std::map<std::string, std::string> booked;  // name -> seat, answered 200
  std::vector<std::string> refused;           // names answered 503 overloaded
  std::atomic<int> conflicts{0};
  std::atomic<int> others{0};
  std::atomic<bool> bad_overload_answer{false};
  constexpr int clients = 24;
  constexpr int per_client = 25;
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      HttpClient client(port);
      for (int i = 0; i < per_client; ++i) {
        std::string name = "c" + std::to_string(c) + "-" + std::to_string(i);
        std::string seat = std::to_string(1 + (c * per_client + i) % 10) + std::string(1, "ABCDEF"[i % 6]);
        auto reply = client.request(http::verb::post, "/book-seat?flightId=hot",
                                    json{{"seatNumber", seat}, {"name", name}}.dump());
        std::lock_guard lock(mutex);
        if (reply.status == 200) {
          booked[name] = seat;
        } else if (reply.status == 409) {
          ++conflicts;
        } else if (reply.status == 503) {
          auto body = json::parse(reply.body);
          if (body["overloaded"] != true || body["retryable"] != true || reply.header("Retry-After") != "1") {
            bad_overload_answer = true;
          }
          refused.push_back(name);
        } else {
          ++others;
        }
      }
    });
  }
  // Meanwhile another actor answers promptly (each probe a cold start of a new flight).
  std::chrono::milliseconds slowest{0};
  for (int i = 0; i < 20; ++i) {
    auto start = Clock::now();
    auto reply = http_get(port, "/seats?flightId=calm-" + std::to_string(i));
    CHECK(reply.status == 200);
    slowest = std::max(slowest, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start));
    std::this_thread::sleep_for(10ms);
  }
  for (auto& t : threads) t.join();
  std::printf("overload: %zu served 200, %d served 409, %zu refused 503 (%.1f%% of %d), other %d; "
              "slowest other-actor GET %lld ms\n",
              booked.size(), conflicts.load(), refused.size(),
              100.0 * static_cast<double>(refused.size()) / (clients * per_client), clients * per_client,
              others.load(), static_cast<long long>(slowest.count()));
  CHECK(refused.size() > 0);
  CHECK(booked.size() > 0);
  CHECK(others == 0);
  CHECK_FALSE(bad_overload_answer);
  CHECK(slowest < 2s);

  // Every 200 survives a kill -9; no refused booking ran.
  ::kill(server->pid(), SIGKILL);
  server->stop();
  server = std::make_unique<ServerProcess>(dir.path());
  std::map<std::string, std::string> on_seat;  // name -> seat, as stored
  for (const auto& s : json::parse(http_get(server->port(), "/seats?flightId=hot").body)) {
    if (s["occupant"].is_string()) on_seat[s["occupant"]] = s["seatNumber"];
  }
  for (const auto& [name, seat] : booked) {
    CAPTURE(name);
    CHECK(on_seat[name] == seat);
  }
  for (const auto& name : refused) {
    CAPTURE(name);
    CHECK(on_seat.count(name) == 0);
  }
}

TEST_CASE("an answer later than the request timeout is 504, dropped when it comes, and the connection goes on") {
  TempDir dir;
  cairn::Registry registry;
  registry.add<Slow>("SLOW");
  cairn::RuntimeOptions options;
  options.data_dir = dir.path();
  options.threads = 2;
  cairn::Runtime runtime(std::move(registry), options);
  cairn::gateway::GatewayOptions web;
  web.port = 0;
  web.object_bindings = {"SLOW"};
  web.request_timeout = 100ms;
  cairn::gateway::Gateway gateway(runtime, web);
  gateway.start();

  HttpClient client(gateway.port());
  auto start = Clock::now();
  auto late = client.request(http::verb::get, "/objects/SLOW/a/slow");
  CHECK(Clock::now() - start < 350ms);
  CHECK(late.status == 504);
  auto body = json::parse(late.body);
  CHECK(body["retryable"] == true);
  CHECK(body["code"] == "timeout");
  CHECK(body["error"].get<std::string>().find("--request-timeout") != std::string::npos);
  // Another actor is not held up by the slow one.
  CHECK(http_get(gateway.port(), "/objects/SLOW/b/count").status == 200);
  // The same connection's next requests get their own answers, never the slow one's late
  // one; queued behind the slow event (504 while it runs), the first 200 sees that it ran.
  std::optional<HttpReply> counted;
  for (auto deadline = Clock::now() + 5s; !counted && Clock::now() < deadline;) {
    auto next = client.request(http::verb::get, "/objects/SLOW/a/count");
    CHECK(next.body.find("slow") == std::string::npos);
    if (next.status == 200) {
      counted = next;
    } else {
      CHECK(next.status == 504);
    }
  }
  REQUIRE(counted);
  CHECK(json::parse(counted->body)["runs"] == 1);

  gateway.stop_accepting();
  runtime.shutdown();
  gateway.stop();
}
