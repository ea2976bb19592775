// ReplyRouter: events carry only an address for their answer (ReplyTo); the callbacks stay
// in the caller's node's router, answered exactly once, 503 when the event is dropped, and
// never while the directory's lock is held (DeferReplies).
#include "reply_router.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

using namespace cairn;
using json = nlohmann::json;

namespace {

struct Recorder {
  std::atomic<int> calls{0};
  std::optional<Result<json>> last;
  std::shared_ptr<PendingReply> reply() {
    return std::make_shared<PendingReply>(Stub::CallCallback([this](Result<json> r) {
      ++calls;
      last = std::move(r);
    }));
  }
};

}  // namespace

TEST_CASE("a reply is answered once, through the router of its node") {
  ReplyRouter router(ReplyRouter::next_node_id());
  Recorder recorder;
  auto to = router.add(recorder.reply());
  CHECK(to.node == router.node());
  CHECK(router.size() == 1);
  router.answer(to, Result<json>(json(42)));
  router.answer(to, Result<json>(json(43)));  // too late: nobody waits any more
  router.fail(to, Error{Code::internal, "late"});
  CHECK(recorder.calls == 1);
  CHECK(recorder.last->value() == 42);
  CHECK(router.size() == 0);
}

TEST_CASE("an event dropped unanswered answers 503, a copy of it does not") {
  ReplyRouter router(ReplyRouter::next_node_id());
  Recorder kept, dropped;
  auto kept_to = router.add(kept.reply());
  {
    Event event{CallEvent{"m", json::object()}, kept_to};
    Event copy(event);  // a copy never owns the reply
    (void)copy;
    Event taken(std::move(event));  // the moved-to one does
    CHECK(taken.take_reply() == kept_to);  // a host took it: it answers from now on
  }
  CHECK(kept.calls == 0);
  router.answer(kept_to, Result<json>(json("ok")));
  CHECK(kept.calls == 1);
  {
    Event event{CallEvent{"m", json::object()}, router.add(dropped.reply())};
  }
  CHECK(dropped.calls == 1);
  REQUIRE(!dropped.last->ok());
  CHECK(dropped.last->error().code == Code::unavailable);
}

TEST_CASE("replies failed while a DeferReplies lives run when it ends") {
  ReplyRouter router(ReplyRouter::next_node_id());
  Recorder recorder;
  {
    DeferReplies outer;
    {
      DeferReplies inner;  // nested: only the outermost one runs them
      Event event{CallEvent{"m", json::object()}, router.add(recorder.reply())};
    }
    CHECK(recorder.calls == 0);  // as if the directory's lock were still held here
  }
  CHECK(recorder.calls == 1);
}

TEST_CASE("a router that goes away fails every reply still waiting") {
  Recorder recorder;
  ReplyTo to;
  {
    ReplyRouter router(ReplyRouter::next_node_id());
    to = router.add(recorder.reply());
  }
  CHECK(recorder.calls == 1);
  CHECK(recorder.last->error().code == Code::unavailable);
  { Event late{CallEvent{"m", json::object()}, to}; }  // its router is gone: nothing happens
  CHECK(recorder.calls == 1);
}

TEST_CASE("many threads add and answer replies, each exactly once") {
  ReplyRouter router(ReplyRouter::next_node_id());
  std::atomic<int> answered{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        auto to = router.add(std::make_shared<PendingReply>(Stub::CallCallback([&](Result<json>) { ++answered; })));
        router.answer(to, Result<json>(json(i)));
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(answered == 8000);
  CHECK(router.size() == 0);
}
