// ClusterCalls: calls of actors on other nodes, over HTTP.
#include "remote_calls.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

namespace cairn::gateway {

namespace net = boost::asio;
namespace http = boost::beast::http;

namespace {

// The error an owner answered (its JSON names the code; the status decides otherwise).
Error answered_error(const ForwardPool::Response& got) {
  auto body = nlohmann::json::parse(got.body(), nullptr, false);
  std::string message = body.is_object() && body.contains("error") && body["error"].is_string()
                            ? body["error"].get<std::string>()
                            : "the owner answered " + std::to_string(got.result_int());
  if (body.is_object() && body.contains("code") && body["code"].is_string()) {
    const auto& name = body["code"].get_ref<const std::string&>();
    for (Code code : {Code::invalid_argument, Code::unauthenticated, Code::forbidden, Code::not_found,
                      Code::method_not_allowed, Code::conflict, Code::too_large, Code::headers_too_large,
                      Code::resource_exhausted, Code::internal, Code::unavailable, Code::overloaded, Code::timeout,
                      Code::storage_full}) {
      if (name == code_name(code)) return Error{code, std::move(message)};
    }
  }
  switch (got.result_int()) {
    case 400: return Error{Code::invalid_argument, std::move(message)};
    case 404: return Error{Code::not_found, std::move(message)};
    case 503: return Error{Code::unavailable, std::move(message)};
    case 504: return Error{Code::timeout, std::move(message)};
    default: return Error{Code::internal, std::move(message)};
  }
}

}  // namespace

struct ClusterCalls::Pending {
  ActorId target;
  std::shared_ptr<ForwardPool::Request> request;
  std::chrono::steady_clock::time_point until;
  std::string method;
  nlohmann::json args;
  Done done;
  Here here;
  net::steady_timer timer;
  Pending(ActorId t, net::io_context& ioc) : target(std::move(t)), timer(ioc) {}
};

ClusterCalls::ClusterCalls(std::function<ShardLocation(unsigned)> locate, std::string token,
                           std::chrono::milliseconds timeout)
    : locate_(std::move(locate)),
      token_(std::move(token)),
      timeout_(timeout),
      work_(net::make_work_guard(ioc_)),
      pool_(ioc_),
      thread_([this] { ioc_.run(); }) {}

ClusterCalls::~ClusterCalls() { stop(); }

void ClusterCalls::stop() {
  // Calls still out are dropped unanswered: only the runtime's end stops this, and its
  // callers go with it.
  work_.reset();
  ioc_.stop();
  if (!thread_.joinable()) return;
  if (thread_.get_id() == std::this_thread::get_id()) {
    thread_.detach();  // the last reference went on this thread: it ends on its own
  } else {
    thread_.join();
  }
}

void ClusterCalls::call(const ActorId& target, std::string method, nlohmann::json args, Done done, Here here,
                        TraceContext trace) {
  auto pending = std::make_shared<Pending>(target, ioc_);
  pending->until = std::chrono::steady_clock::now() + timeout_;
  pending->done = std::move(done);
  pending->here = std::move(here);
  pending->method = method;
  pending->args = args;
  auto request = std::make_shared<ForwardPool::Request>(http::verb::post, remote_call_path, 11);
  request->set(http::field::content_type, "application/json");
  request->set("X-Cairn-Cluster-Token", token_);
  request->set("X-Cairn-Hop", "1");
  request->keep_alive(true);
  nlohmann::json body{{"binding", target.binding()},
                      {"name", target.name()},
                      {"method", std::move(method)},
                      {"args", std::move(args)}};
  // The request the call descends from, for the callee on the other node.
  if (!trace.request_id.empty()) body["request_id"] = std::move(trace.request_id);
  if (!trace.traceparent.empty()) body["traceparent"] = std::move(trace.traceparent);
  request->body() = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  request->prepare_payload();
  pending->request = std::move(request);
  net::post(ioc_, [this, pending] { attempt(pending); });
}

void ClusterCalls::attempt(std::shared_ptr<Pending> pending) {
  unsigned shard = pending->target.shard();
  auto where = locate_(shard);
  if (where.kind == ShardLocation::Kind::here) {
    // It became this node's while the call waited (a takeover): delivered here.
    return pending->here(std::move(pending->method), std::move(pending->args), std::move(pending->done));
  }
  if (where.kind == ShardLocation::Kind::nowhere) {
    return later(std::move(pending), Error{Code::unavailable, "shard " + std::to_string(shard) +
                                                                  " has no owner now; try again shortly"});
  }
  pending->request->set(http::field::host, where.host + ":" + where.port);
  pool_.send(where.host, where.port, pending->request, pending->until,
             [this, pending](Result<ForwardPool::Response> answer) mutable { answered(std::move(pending), answer); });
}

void ClusterCalls::answered(std::shared_ptr<Pending> pending, Result<ForwardPool::Response>& answer) {
  if (!answer.ok()) {
    Error error = answer.error();
    if (error.code == Code::unavailable) return later(std::move(pending), std::move(error));
    failed_.fetch_add(1, std::memory_order_relaxed);
    return pending->done(std::move(error));
  }
  auto& got = answer.value();
  if (got.result_int() == 421 && got.count("X-Cairn-Misdirected") > 0) {
    return later(std::move(pending), Error{Code::unavailable, "shard " + std::to_string(pending->target.shard()) +
                                                                  " is moving; try again shortly"});
  }
  answered_.fetch_add(1, std::memory_order_relaxed);
  if (got.result_int() == 200) {
    auto body = nlohmann::json::parse(got.body(), nullptr, false);
    if (body.is_object() && body.contains("result")) return pending->done(std::move(body["result"]));
    return pending->done(Error{Code::internal, "the owner's answer to a call is not {\"result\": ...}"});
  }
  pending->done(answered_error(got));
}

void ClusterCalls::later(std::shared_ptr<Pending> pending, Error last) {
  constexpr auto pause = std::chrono::milliseconds(50);
  if (std::chrono::steady_clock::now() + pause >= pending->until) {
    failed_.fetch_add(1, std::memory_order_relaxed);
    return pending->done(std::move(last));
  }
  retried_.fetch_add(1, std::memory_order_relaxed);
  pending->timer.expires_after(pause);
  pending->timer.async_wait([this, pending](boost::system::error_code ec) {
    if (!ec) attempt(pending);
  });
}

ClusterCalls::Stats ClusterCalls::stats() const {
  return {answered_.load(std::memory_order_relaxed), retried_.load(std::memory_order_relaxed),
          failed_.load(std::memory_order_relaxed)};
}

}  // namespace cairn::gateway
