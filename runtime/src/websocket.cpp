// WebSocket handle (sends and closes go to the host's outbox, released after commit) and
// AutoResponse rules.
#include "cairn/websocket.hpp"

#include <stdexcept>

#include "cairn/limits.hpp"
#include "outbox.hpp"
#include "socket_table.hpp"

namespace cairn {

WebSocket::WebSocket(std::shared_ptr<detail::SocketEntry> entry, Outbox* outbox)
    : entry_(std::move(entry)), outbox_(outbox) {}

SocketId WebSocket::id() const noexcept { return entry_->id; }
const std::vector<std::string>& WebSocket::tags() const noexcept { return entry_->tags; }

void WebSocket::send(std::string_view text) {
  outbox_->send(entry_->id, std::make_shared<const std::string>(text), false);
}

void WebSocket::send(std::shared_ptr<const std::string> text) {
  outbox_->send(entry_->id, std::move(text), false);
}

void WebSocket::send_binary(std::string_view bytes) {
  outbox_->send(entry_->id, std::make_shared<const std::string>(bytes), true);
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
  outbox_->close(entry_->id, code, std::string(reason));
}

nlohmann::json WebSocket::attachment() const {
  if (entry_->attachment.empty()) return nullptr;
  return nlohmann::json::parse(entry_->attachment);
}

Result<void> WebSocket::set_attachment(const nlohmann::json& value) {
  std::string text = value.is_null() ? std::string() : value.dump();
  if (text.size() > limits::max_websocket_attachment_bytes) {
    return fail(Code::invalid_argument,
                "a WebSocket attachment may be at most " +
                    std::to_string(limits::max_websocket_attachment_bytes) +
                    " bytes of JSON (limits::max_websocket_attachment_bytes), not " +
                    std::to_string(text.size()));
  }
  outbox_->attachment_changed(entry_, std::exchange(entry_->attachment, std::move(text)));
  return {};
}

AutoResponse AutoResponse::pair(std::string request, std::string response) {
  AutoResponse rule;
  rule.exact = Exact{std::move(request), std::move(response)};
  return rule;
}

AutoResponse AutoResponse::heartbeat() {
  AutoResponse rule;
  rule.json_rule = JsonRule{"type", "ping", {{"type", "pong"}}, {{"id", ""}, {"clientTime", 0}}};
  return rule;
}

std::optional<std::string> AutoResponse::answer(std::string_view message) const {
  if (exact && message == exact->request) return exact->response;
  if (!json_rule || message.size() > limits::max_auto_response_bytes) return std::nullopt;
  // Cheap test before a parse: a JSON object, and the field's name somewhere in it.
  std::size_t first = message.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || message[first] != '{' ||
      message.find(json_rule->field) == std::string_view::npos) {
    return std::nullopt;
  }
  auto parsed = nlohmann::json::parse(message, nullptr, false);
  if (!parsed.is_object()) return std::nullopt;
  auto field = parsed.find(json_rule->field);
  if (field == parsed.end() || *field != json_rule->value) return std::nullopt;
  // Reply members first, in the rule's order, then the echoed ones.
  nlohmann::ordered_json reply = nlohmann::ordered_json::object();
  for (const auto& [key, value] : json_rule->reply.items()) reply[key] = value;
  for (const auto& [name, fallback] : json_rule->echo) {
    auto member = parsed.find(name);
    reply[name] = member != parsed.end() ? *member : fallback;
  }
  return reply.dump();
}

Result<void> AutoResponse::validate() const {
  const std::string limit = std::to_string(limits::max_auto_response_bytes) +
                            " bytes (limits::max_auto_response_bytes)";
  if (!exact && !json_rule) {
    return fail(Code::invalid_argument, "an auto-response needs a string pair or a JSON rule");
  }
  if (exact) {
    if (exact->request.empty()) {
      return fail(Code::invalid_argument, "an auto-response request must not be empty");
    }
    if (exact->request.size() > limits::max_auto_response_bytes ||
        exact->response.size() > limits::max_auto_response_bytes) {
      return fail(Code::invalid_argument, "an auto-response request and response may be at most " + limit);
    }
  }
  if (json_rule) {
    if (json_rule->field.empty()) {
      return fail(Code::invalid_argument, "a JSON auto-response rule needs a field to match");
    }
    if (!json_rule->reply.is_object()) {
      return fail(Code::invalid_argument, "a JSON auto-response reply must be a JSON object");
    }
    std::size_t size = json_rule->reply.dump().size();
    for (const auto& [name, fallback] : json_rule->echo) size += name.size() + fallback.dump().size();
    if (size > limits::max_auto_response_bytes) {
      return fail(Code::invalid_argument, "a JSON auto-response reply may be at most " + limit);
    }
  }
  return {};
}

}  // namespace cairn
