// Context::call: one actor calls another without blocking; the answer (or the error) comes
// back as an event of the caller, even after it was evicted; a rolled-back event calls nobody.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <future>
#include <thread>

#include "cairn/runtime.hpp"
#include "cairn/testing.hpp"
#include "temp_dir.hpp"

using namespace cairn;
using namespace std::chrono_literals;

namespace {

// Doubles numbers and counts how often it was asked.
class Doubler final : public Actor {
 public:
  explicit Doubler(Context& ctx) : ctx_(ctx) {
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS asked (n INTEGER)");
  }
  Methods methods() override {
    return {{"double", [this](const json& n) -> Result<json> {
               ctx_.sql().exec("INSERT INTO asked VALUES (1)");
               if (!n.is_number_integer()) return fail(Code::invalid_argument, "not an integer");
               return json(n.get<int>() * 2);
             }},
            {"asked", [this](const json&) -> Result<json> {
               return ctx_.sql().exec("SELECT count(*) AS n FROM asked").one().to_json()["n"];
             }}};
  }

 private:
  Context& ctx_;
};

// Asks the doubler and keeps every reply it gets.
class Asker final : public Actor {
 public:
  explicit Asker(Context& ctx) : ctx_(ctx) {
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS replies (reply TEXT)");
  }
  Methods methods() override {
    return {{"ask", [this](const json& args) -> Result<json> {
               auto called = ctx_.call(args.value("binding", "DOUBLER"), "d", args.value("method", "double"),
                                       args["n"], args.value("reply", "got"), {{"asked", args["n"]}});
               if (!called) return called.error();
               if (args.value("throw", false)) throw std::runtime_error("after call");
               return json(true);
             }},
            {"got", [this](const json& reply) -> Result<json> {
               ctx_.sql().exec("INSERT INTO replies VALUES (?)", reply.dump());
               return json(true);
             }},
            {"replies", [this](const json&) -> Result<json> {
               json out = json::array();
               for (const auto& row : ctx_.sql().exec("SELECT reply FROM replies ORDER BY rowid")) {
                 out.push_back(json::parse(std::get<std::string>(row["reply"])));
               }
               return out;
             }}};
  }

 private:
  Context& ctx_;
};

Registry classes() {
  Registry registry;
  registry.add<Doubler>("DOUBLER");
  registry.add<Asker>("ASKER");
  return registry;
}

bool replies(testing::TestRuntime& t, std::size_t n) {
  for (int i = 0; i < 2000; ++i) {
    if (t.call("ASKER", "a", "replies").value().size() >= n) return true;
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

}  // namespace

TEST_CASE("an actor's call is answered as an event of the caller, with its context") {
  testing::TestRuntime t(classes);
  REQUIRE(t.call("ASKER", "a", "ask", {{"n", 21}}).ok());
  REQUIRE(replies(t, 1));
  CHECK(t.call("ASKER", "a", "replies").value()[0] == json{{"result", 42}, {"context", {{"asked", 21}}}});

  // The callee's error comes back as an error, with its code and status.
  REQUIRE(t.call("ASKER", "a", "ask", {{"n", "x"}}).ok());
  REQUIRE(replies(t, 2));
  auto error = t.call("ASKER", "a", "replies").value()[1]["error"];
  CHECK(error["code"] == "invalid_argument");
  CHECK(error["status"] == 400);
  REQUIRE(t.call("ASKER", "a", "ask", {{"n", 1}, {"method", "nope"}}).ok());
  REQUIRE(replies(t, 3));
  CHECK(t.call("ASKER", "a", "replies").value()[2]["error"]["code"] == "not_found");
}

TEST_CASE("a call made by an event that rolls back is never made") {
  testing::TestRuntime t(classes);
  CHECK_FALSE(t.call("ASKER", "a", "ask", {{"n", 1}, {"throw", true}}).ok());
  REQUIRE(t.call("ASKER", "a", "ask", {{"n", 2}}).ok());
  REQUIRE(replies(t, 1));
  CHECK(t.call("DOUBLER", "d", "asked").value() == 1);  // only the committed one
  CHECK(t.call("ASKER", "a", "replies").value().size() == 1);
}

TEST_CASE("the reply reaches a caller that was evicted meanwhile") {
  testing::TestRuntime t(classes);
  REQUIRE(t.call("ASKER", "a", "ask", {{"n", 5}}).ok());
  t.evict("ASKER", "a");  // may be before or after the reply: either way it is kept
  REQUIRE(replies(t, 1));
  CHECK(t.call("ASKER", "a", "replies").value()[0]["result"] == 10);
}

TEST_CASE("a call to an unknown binding or without a reply method is refused at once") {
  testing::TestRuntime t(classes);
  auto unknown = t.call("ASKER", "a", "ask", {{"n", 1}, {"binding", "NOPE"}});
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().code == Code::not_found);
  auto no_reply = t.call("ASKER", "a", "ask", {{"n", 1}, {"reply", "missing"}});
  REQUIRE_FALSE(no_reply.ok());
  CHECK(no_reply.error().code == Code::invalid_argument);
  CHECK(t.call("DOUBLER", "d", "asked").value() == 0);
}

namespace {

// Each shard served by one of two runtimes (two nodes in one process).
class Half final : public Ownership {
 public:
  Half(unsigned shard, bool has_it) : shard_(shard), has_it_(has_it) {}
  std::optional<std::int64_t> epoch(unsigned shard) const override {
    if ((shard == shard_) == has_it_) return 1;
    return std::nullopt;
  }

 private:
  unsigned shard_;
  bool has_it_;
};

// Hands a call to the other node's runtime, as the cluster's forwarding does over HTTP: from
// a thread of its own, both ways (a CAF actor system must not be entered from another one's
// worker threads: the actor would be scheduled there).
class ToOther final : public RemoteCalls {
 public:
  ToOther() : thread_([this] { run(); }) {}
  ~ToOther() override { stop(); }
  void stop() {
    {
      std::lock_guard lock(mutex_);
      if (stopped_) return;
      stopped_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  void call(const ActorId& target, std::string method, nlohmann::json args, Done done, Here, TraceContext) override {
    ++calls;
    post([this, target, method = std::move(method), args = std::move(args), done = std::move(done)]() mutable {
      auto stub = other.load()->get(target.binding(), target.name());
      if (!stub) return done(stub.error());
      stub->call(std::move(method), std::move(args), [this, done = std::move(done)](Result<json> answer) mutable {
        post([done = std::move(done), answer = std::move(answer)]() mutable { done(std::move(answer)); });
      });
    });
  }
  std::atomic<Runtime*> other{nullptr};
  std::atomic<int> calls{0};

 private:
  void post(std::function<void()> work) {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(work));
    wake_.notify_all();
  }
  void run() {
    std::unique_lock lock(mutex_);
    while (true) {
      wake_.wait(lock, [this] { return stopped_ || !queue_.empty(); });
      if (queue_.empty()) return;
      auto work = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      work();
      lock.lock();
    }
  }
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  bool stopped_ = false;
  std::thread thread_;
};

Result<json> call_and_wait(Runtime& runtime, const std::string& binding, const std::string& name,
                           const std::string& method, json args = {}) {
  std::promise<Result<json>> answered;
  auto future = answered.get_future();
  runtime.get(binding, name)->call(method, std::move(args), [&answered](Result<json> r) {
    answered.set_value(std::move(r));
  });
  return future.get();
}

}  // namespace

TEST_CASE("a call to an actor whose shard another node serves goes there, and its answer comes back to the caller") {
  testing::TempDir dir_a, dir_b;
  unsigned doubler_shard = ActorId::make("DOUBLER", "d").value().shard();
  REQUIRE(ActorId::make("ASKER", "a").value().shard() != doubler_shard);
  auto to_b = std::make_shared<ToOther>();
  auto to_a = std::make_shared<ToOther>();
  RuntimeOptions a_options;
  a_options.data_dir = dir_a.path();
  a_options.ownership = std::make_shared<Half>(doubler_shard, false);  // everything but the doubler
  a_options.remote_calls = to_b;
  RuntimeOptions b_options;
  b_options.data_dir = dir_b.path();
  b_options.ownership = std::make_shared<Half>(doubler_shard, true);  // the doubler only
  b_options.remote_calls = to_a;
  Runtime a(classes(), a_options);
  Runtime b(classes(), b_options);
  to_b->other = &b;
  to_a->other = &a;

  REQUIRE(call_and_wait(a, "ASKER", "a", "ask", {{"n", 21}}).ok());
  std::optional<json> replies_now;
  for (int i = 0; i < 2000; ++i) {
    replies_now = call_and_wait(a, "ASKER", "a", "replies").value();
    if (!replies_now->empty()) break;
    std::this_thread::sleep_for(1ms);
  }
  REQUIRE(replies_now->size() == 1);
  CHECK((*replies_now)[0] == json{{"result", 42}, {"context", {{"asked", 21}}}});
  CHECK(to_b->calls.load() == 1);
  // The doubler ran on b (its database is there, none on a); b's answer came back to a.
  CHECK(call_and_wait(b, "DOUBLER", "d", "asked").value() == 1);
  CHECK(to_b->calls.load() == 1);  // asked on b directly: not sent anywhere
  // A stub on a for b's actor goes to b too (code outside actors, e.g. a route of the app).
  CHECK(call_and_wait(a, "DOUBLER", "d", "double", json(4)).value() == 8);
  CHECK(to_b->calls.load() == 2);
  CHECK(call_and_wait(b, "DOUBLER", "d", "asked").value() == 2);
  // An error of the remote actor comes back with its code.
  auto missing = call_and_wait(a, "DOUBLER", "d", "nope");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == Code::not_found);
  CHECK(to_a->calls.load() == 0);  // the asker's shard is a's: answers were delivered there
  to_b->stop();
  to_a->stop();
}
