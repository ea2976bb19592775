// PendingReply: the exactly-once return path of an event.
#include "events.hpp"

#include <spdlog/spdlog.h>

#include "cairn/limits.hpp"
#include "socket_table.hpp"

namespace cairn {
namespace {

// A fetch's answer made by the runtime from an error: a 500 (what an actor threw, a rollback
// it caused) is marked, so the public gateway shows its text to no client.
Response error_response(const Error& error) {
  Response out = Response::error(error);
  if (error.code == Code::internal) out.headers.emplace_back(detail::internal_error_header, "1");
  return out;
}

// Runs a caller's callback. It is the caller's code, run on an actor's thread: whatever it
// throws is logged and goes no further (CAF 0.17 would kill the host, and a destructor
// would terminate the process).
template <class F>
void run_callback(F&& f) noexcept {
  try {
    f();
  } catch (const std::exception& e) {
    spdlog::error("a caller's reply callback threw (ignored): {}", e.what());
  } catch (...) {
    spdlog::error("a caller's reply callback threw (ignored): unknown exception");
  }
}

}  // namespace

SocketCredit::SocketCredit(std::shared_ptr<detail::SocketEntry> entry) : entry_(std::move(entry)) {
  waiting_ = entry_->waiting.fetch_add(1, std::memory_order_acq_rel) + 1;
}

SocketCredit::~SocketCredit() {
  if (queued_) queued_->fetch_sub(1, std::memory_order_relaxed);
  auto left = entry_->waiting.fetch_sub(1, std::memory_order_acq_rel) - 1;
  // Exactly one of this and RuntimeCore::deliver_socket_message takes the paused flag.
  if (left <= limits::max_socket_messages_waiting / 2 && entry_->paused.load(std::memory_order_acquire) &&
      entry_->paused.exchange(false, std::memory_order_acq_rel)) {
    entry_->sink->resume_reading();
  }
}

void PendingReply::answer(Response response) {
  if (!finish()) return;
  run_callback([&] {
    if (auto* fetch = std::get_if<Stub::FetchCallback>(&callback_)) {
      (*fetch)(std::move(response));
      return;
    }
    auto& call = std::get<Stub::CallCallback>(callback_);
    if (response.status >= 400) {
      call(Error{Code::internal, response.body});
    } else {
      call(nlohmann::json::parse(response.body, nullptr, false));
    }
  });
}

void PendingReply::answer(Result<nlohmann::json> result) {
  if (!finish()) return;
  run_callback([&] {
    if (auto* call = std::get_if<Stub::CallCallback>(&callback_)) {
      (*call)(std::move(result));
      return;
    }
    auto& fetch = std::get<Stub::FetchCallback>(callback_);
    fetch(result ? Response::json(200, *result) : error_response(result.error()));
  });
}

void PendingReply::fail(const Error& error) {
  if (!finish()) return;
  run_callback([&] {
    std::visit([&](auto& cb) {
      using T = std::decay_t<decltype(cb)>;
      if constexpr (std::is_same_v<T, Stub::FetchCallback>) {
        cb(error_response(error));
      } else {
        cb(error);
      }
    }, callback_);
  });
}

}  // namespace cairn
