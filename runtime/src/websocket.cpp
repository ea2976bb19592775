// WebSocket handle: sends and closes go to the host's outbox (released after commit).
#include "cairn/websocket.hpp"

#include <stdexcept>

#include "outbox.hpp"

namespace cairn {

void WebSocket::send(std::string_view text) {
  outbox_->send(id_, std::make_shared<const std::string>(text), false);
}

void WebSocket::send(std::shared_ptr<const std::string> text) {
  outbox_->send(id_, std::move(text), false);
}

void WebSocket::send_binary(std::string_view bytes) {
  outbox_->send(id_, std::make_shared<const std::string>(bytes), true);
}

void WebSocket::close(int code, std::string_view reason) {
  // RFC 6455: an application may send 1000 or a code in 3000-4999; a reason fits in 123 bytes.
  if (code != 1000 && (code < 3000 || code > 4999)) {
    throw std::invalid_argument("a WebSocket close code must be 1000 or 3000-4999, not " +
                                std::to_string(code));
  }
  if (reason.size() > 123) {
    throw std::invalid_argument("a WebSocket close reason may be at most 123 bytes");
  }
  outbox_->close(id_, code, std::string(reason));
}

}  // namespace cairn
