// PendingReply: the exactly-once return path of an event.
#include "events.hpp"

namespace cairn {

void PendingReply::answer(Response response) {
  if (!finish()) return;
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
}

void PendingReply::answer(Result<nlohmann::json> result) {
  if (!finish()) return;
  if (auto* call = std::get_if<Stub::CallCallback>(&callback_)) {
    (*call)(std::move(result));
    return;
  }
  auto& fetch = std::get<Stub::FetchCallback>(callback_);
  fetch(result ? Response::json(200, *result) : Response::error(result.error()));
}

void PendingReply::fail(const Error& error) {
  if (!finish()) return;
  std::visit([&](auto& cb) {
    using T = std::decay_t<decltype(cb)>;
    if constexpr (std::is_same_v<T, Stub::FetchCallback>) {
      cb(Response::error(error));
    } else {
      cb(error);
    }
  }, callback_);
}

}  // namespace cairn
