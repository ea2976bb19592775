// The per-actor bound on waiting requests (RuntimeOptions::max_queued_events) and the error
// vocabulary of overload and storage failures.
#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <vector>

#include "cairn/runtime.hpp"
#include "cairn/testing.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"

using namespace cairn;
using cairn::testing::TempDir;

namespace {

// An actor whose "wait" blocks its event until the test opens the gate.
std::shared_future<void> gate;
std::atomic<int> waiting{0};

class Gated final : public Actor {
 public:
  explicit Gated(Context&) {}
  Methods methods() override {
    return {{"wait", [](const json&) -> Result<json> {
               ++waiting;
               gate.wait();
               return json("done");
             }},
            {"quick", [](const json&) -> Result<json> { return json("quick"); }}};
  }
};

}  // namespace

TEST_CASE("past max_queued_events a request to the actor is refused at once as overloaded") {
  TempDir dir;
  std::promise<void> open;
  gate = open.get_future().share();
  waiting = 0;
  Registry registry;
  registry.add<Gated>("GATED");
  RuntimeOptions options;
  options.data_dir = dir.path();
  options.threads = 2;
  options.max_queued_events = 3;
  Runtime runtime(std::move(registry), options);
  auto stub = *runtime.get("GATED", "hot");

  std::mutex mutex;
  std::vector<Result<json>> answers;
  auto record = [&](Result<json> r) {
    std::lock_guard lock(mutex);
    answers.push_back(std::move(r));
  };
  for (int i = 0; i < 3; ++i) stub.call("wait", {}, record);  // one runs, two queue
  REQUIRE(testing::eventually([&] { return waiting == 1; }));
  for (int i = 0; i < 5; ++i) stub.call("quick", {}, record);  // over the bound: refused now
  {
    std::lock_guard lock(mutex);
    REQUIRE(answers.size() == 5);
    for (const auto& a : answers) {
      REQUIRE(!a.ok());
      CHECK(a.error().code == Code::overloaded);
      CHECK(a.error().message.find("--max-queued-events") != std::string::npos);
    }
  }
  CHECK(runtime.stats().overloaded == 5);
  // Another actor is not affected by this one's queue.
  CHECK(testing::call(*runtime.get("GATED", "calm"), "quick").ok());

  open.set_value();
  REQUIRE(testing::eventually([&] {
    std::lock_guard lock(mutex);
    return answers.size() == 8;
  }));
  // Answered requests free their places: the actor takes requests again.
  CHECK(testing::call(stub, "quick").value() == "quick");
}

TEST_CASE("overload, timeout and storage errors are retryable and map to 503, 504 and 507") {
  CHECK(http_status(Code::overloaded) == 503);
  CHECK(http_status(Code::unavailable) == 503);
  CHECK(http_status(Code::timeout) == 504);
  CHECK(http_status(Code::storage_full) == 507);
  CHECK(http_status(Code::headers_too_large) == 431);
  for (Code code : {Code::overloaded, Code::unavailable, Code::timeout, Code::storage_full}) {
    CHECK(retryable(code));
    CHECK(Error{code, "x"}.to_json()["retryable"] == true);
  }
  for (Code code : {Code::invalid_argument, Code::conflict, Code::internal, Code::too_large}) {
    CHECK_FALSE(retryable(code));
    CHECK_FALSE(Error{code, "x"}.to_json().contains("retryable"));
  }
  // Every error body names its code, stably, beside the message and the status.
  for (Code code : {Code::invalid_argument, Code::unauthenticated, Code::forbidden, Code::not_found,
                    Code::method_not_allowed, Code::conflict, Code::too_large, Code::headers_too_large,
                    Code::resource_exhausted, Code::internal, Code::unavailable, Code::overloaded, Code::timeout,
                    Code::storage_full}) {
    auto body = json::parse(Response::error(code, "x").body);
    CHECK(body["code"] == code_name(code));
    CHECK(body["status"] == http_status(code));
  }
  CHECK(json::parse(Response::error(Code::resource_exhausted, "x").body)["code"] == "resource_exhausted");
  // 429 and 503 both say when to come back.
  for (Code code : {Code::resource_exhausted, Code::overloaded, Code::unavailable}) {
    auto answer = Response::error(code, "later");
    bool said = false;
    for (const auto& [name, value] : answer.headers) said = said || (name == "Retry-After" && value == "1");
    CHECK_MESSAGE(said, code_name(code));
  }
  auto busy = Response::error(Code::overloaded, "full");
  CHECK(busy.status == 503);
  CHECK(json::parse(busy.body)["overloaded"] == true);
  CHECK(find_header(busy.headers, "retry-after") == "1");
  CHECK_FALSE(find_header(Response::error(Code::timeout, "late").headers, "Retry-After"));
  auto refused = Response::method_not_allowed("GET, HEAD", "use GET");
  CHECK(refused.status == 405);
  CHECK(find_header(refused.headers, "Allow") == "GET, HEAD");
}

TEST_CASE("max_queued_events must be at least 1") {
  TempDir dir;
  RuntimeOptions options;
  options.data_dir = dir.path();
  options.max_queued_events = 0;
  CHECK_THROWS_AS(Runtime(Registry{}, options), std::invalid_argument);
}
