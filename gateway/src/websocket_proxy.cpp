// WebSocketProxy: the upgrade sent to the owner, then messages relayed both ways.
#include "websocket_proxy.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <spdlog/spdlog.h>

#include "cairn/limits.hpp"

namespace cairn::gateway {

namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

namespace {

// The client's header fields the owner's actor sees (the handshake's own are Beast's, and the
// cluster's are set by this node, never taken from a client).
bool relayed_to_owner(const http::fields::value_type& field) {
  switch (field.name()) {
    case http::field::host:
    case http::field::connection:
    case http::field::upgrade:
    case http::field::sec_websocket_key:
    case http::field::sec_websocket_version:
    case http::field::sec_websocket_extensions:
    case http::field::content_length:
    case http::field::transfer_encoding:
      return false;
    default:
      break;
  }
  auto name = field.name_string();
  return !beast::iequals(name, "X-Cairn-Cluster-Token") && !beast::iequals(name, "X-Cairn-Hop");
}

// How long an idle relayed connection to the owner lives: as long as a client's (Beast's
// suggested server idle timeout), with pings so that an owner gone silent is noticed.
constexpr auto upstream_idle = std::chrono::seconds(300);
// A relay's read buffers are let go after a message larger than this.
constexpr std::size_t small_buffer = 16 * 1024;

}  // namespace

void WebSocketProxy::connect_upstream(net::io_context& ioc, const std::string& host, const std::string& port,
                                      const Request& request, const std::string& token,
                                      std::chrono::steady_clock::time_point deadline,
                                      std::function<void(Attempt)> done) {
  struct Connect {
    std::unique_ptr<Upstream> ws;
    Response response;
    std::string key;
    std::string host_header;
    std::string target;
    std::vector<std::pair<std::string, std::string>> headers;
    std::function<void(Attempt)> done;
  };
  auto c = std::make_shared<Connect>();
  c->key = host + ":" + port;
  c->done = std::move(done);
  auto host_field = request.find(http::field::host);
  c->host_header = host_field != request.end() ? std::string(host_field->value()) : c->key;
  c->target = std::string(request.target());
  for (const auto& field : request) {
    if (relayed_to_owner(field)) c->headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  c->headers.emplace_back("X-Cairn-Cluster-Token", token);
  c->headers.emplace_back("X-Cairn-Hop", "1");
  beast::error_code ec;
  auto address = net::ip::make_address(host, ec);
  if (ec) {
    return c->done({nullptr, std::nullopt, Error{Code::unavailable, "node address " + host + " is not an IP address"}});
  }
  unsigned long port_number = 0;
  try {
    port_number = std::stoul(port);
  } catch (const std::exception&) {
  }
  if (port_number == 0 || port_number > 65535) {
    return c->done({nullptr, std::nullopt, Error{Code::unavailable, "node port " + port + " is not a port"}});
  }
  c->ws = std::make_unique<Upstream>(ioc);
  auto& lowest = beast::get_lowest_layer(*c->ws);
  lowest.expires_at(deadline);
  lowest.async_connect(tcp::endpoint(address, static_cast<unsigned short>(port_number)), [c, deadline](
                                                                                             beast::error_code e) {
    if (e) {
      return c->done({nullptr, std::nullopt,
                      Error{Code::unavailable, "cannot reach node " + c->key + ": " + e.message()}});
    }
    auto& stream = beast::get_lowest_layer(*c->ws);
    stream.socket().set_option(tcp::no_delay(true), e);
    stream.expires_never();  // the WebSocket's own timeouts from here on
    websocket::stream_base::timeout timeouts;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    timeouts.handshake_timeout = std::max(left, std::chrono::milliseconds(1));
    timeouts.idle_timeout = upstream_idle;
    timeouts.keep_alive_pings = true;
    c->ws->set_option(timeouts);
    // Whatever the owner may send a local client (a message larger than its outbound bound
    // closes that client instead).
    c->ws->read_message_max(limits::max_websocket_outbound_bytes);
    c->ws->auto_fragment(false);
    // The stream keeps its decorator: it must not hold `c` (which holds the stream).
    c->ws->set_option(websocket::stream_base::decorator([headers = c->headers](websocket::request_type& req) {
      for (const auto& [name, value] : headers) req.insert(name, value);
    }));
    c->ws->async_handshake(c->response, c->host_header, c->target, [c](beast::error_code failed) {
      if (!failed) {
        // Beast times the close handshake with handshake_timeout too: a whole one from here.
        websocket::stream_base::timeout open_timeouts;
        open_timeouts.handshake_timeout = std::chrono::seconds(30);
        open_timeouts.idle_timeout = upstream_idle;
        open_timeouts.keep_alive_pings = true;
        c->ws->set_option(open_timeouts);
        return c->done({std::move(c->ws), std::move(c->response), std::nullopt});
      }
      if (failed == websocket::error::upgrade_declined) return c->done({nullptr, std::move(c->response), std::nullopt});
      // The upgrade reached the owner, which may have let its actor see it: not sent again.
      c->done({nullptr, std::nullopt,
               Error{Code::timeout, "node " + c->key + " did not complete the WebSocket upgrade: " + failed.message() +
                                        "; connect again"}});
    });
  });
}

WebSocketProxy::WebSocketProxy(cairn::net::MaybeTlsStream&& client, std::unique_ptr<Upstream> upstream,
                               std::shared_ptr<SharedState> shared)
    : client_(std::move(client)), upstream_(std::move(upstream)), shared_(std::move(shared)) {}

WebSocketProxy::~WebSocketProxy() {
  if (id_ != 0) shared_->forget_proxy(id_);
}

void WebSocketProxy::run(Request request, const Response& accepted) {
  client_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
  client_.read_message_max(limits::max_websocket_message_bytes);
  client_.auto_fragment(false);
  std::string protocol;
  if (auto chosen = accepted.find(http::field::sec_websocket_protocol); chosen != accepted.end()) {
    protocol = std::string(chosen->value());
  }
  client_.set_option(websocket::stream_base::decorator([protocol](websocket::response_type& res) {
    res.set(http::field::server, "cairn");
    if (!protocol.empty()) res.set(http::field::sec_websocket_protocol, protocol);
  }));
  beast::get_lowest_layer(client_).expires_never();
  id_ = shared_->proxy_opened(weak_from_this());
  client_.async_accept(request, [self = shared_from_this()](beast::error_code ec) {
    if (ec) {
      self->client_side_.done = true;
      return self->cut_upstream();  // the owner's actor sees the socket fail, as for a local one
    }
    self->open_ = true;
    if (self->client_side_.close_pending) {
      // Closed (the gateway is stopping) while the handshake was under way.
      self->close_client(0, {});
      return self->close_upstream(0, {});
    }
    self->read_client();
    self->read_upstream();
  });
}

void WebSocketProxy::read_client() {
  client_.async_read(from_client_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
    self->on_client_read(ec);
  });
}

void WebSocketProxy::on_client_read(beast::error_code ec) {
  if (ec == websocket::error::closed) {
    // The client closed cleanly (Beast answered its close): the owner hears the same code.
    client_side_.done = true;
    auto reason = client_.reason();
    int code = reason.code == websocket::close_code::none ? 1005 : static_cast<int>(reason.code);
    // 1005 (no code) cannot be sent: the owner gets a close without a code, as this node did.
    return close_upstream(code == 1005 ? -1 : code, std::string(reason.reason.c_str()));
  }
  if (ec == websocket::error::message_too_big) {
    // Beast fails the client with 1009; the owner's actor hears it as it would locally.
    client_side_.done = true;
    return close_upstream(1009, "a WebSocket message may be at most " +
                                    std::to_string(limits::max_websocket_message_bytes) + " bytes");
  }
  if (ec) {
    client_side_.done = true;
    if (!upstream_side_.closing && !upstream_side_.done) cut_upstream();
    return;
  }
  if (upstream_side_.done || upstream_side_.closing || upstream_side_.close_pending) return;
  upstream_->binary(client_.got_binary());
  upstream_side_.writing = true;
  upstream_->async_write(from_client_.data(), [self = shared_from_this()](beast::error_code e, std::size_t) {
    self->on_upstream_written(e);
  });
}

void WebSocketProxy::on_upstream_written(beast::error_code ec) {
  upstream_side_.writing = false;
  from_client_.consume(from_client_.size());
  if (from_client_.capacity() > small_buffer) from_client_.shrink_to_fit();  // an idle relay keeps no big buffer
  if (ec) return;  // the upstream's read reports the failure
  if (upstream_side_.close_pending) return close_upstream(0, {});
  if (!client_side_.done && !client_side_.closing) read_client();
}

void WebSocketProxy::read_upstream() {
  upstream_->async_read(from_upstream_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
    self->on_upstream_read(ec);
  });
}

void WebSocketProxy::on_upstream_read(beast::error_code ec) {
  if (ec == websocket::error::closed) {
    // The owner closed (its actor, a hand-off's 1012, a slow client's 1008): passed on.
    upstream_side_.done = true;
    auto reason = upstream_->reason();
    int code = reason.code == websocket::close_code::none ? 1000 : static_cast<int>(reason.code);
    return close_client(code, std::string(reason.reason.c_str()));
  }
  if (ec) {
    upstream_side_.done = true;
    if (ec != net::error::operation_aborted) {
      spdlog::debug("proxied WebSocket: the owner's connection failed: {}", ec.message());
    }
    return close_client(1012, "the node serving this actor went away; connect again");
  }
  if (client_side_.done || client_side_.closing || client_side_.close_pending) return;
  client_.binary(upstream_->got_binary());
  client_side_.writing = true;
  client_.async_write(from_upstream_.data(), [self = shared_from_this()](beast::error_code e, std::size_t) {
    self->on_client_written(e);
  });
}

void WebSocketProxy::on_client_written(beast::error_code ec) {
  client_side_.writing = false;
  from_upstream_.consume(from_upstream_.size());
  if (from_upstream_.capacity() > small_buffer) from_upstream_.shrink_to_fit();
  if (ec) return;  // the client's read reports the failure
  if (client_side_.close_pending) return close_client(0, {});
  if (!upstream_side_.done && !upstream_side_.closing) read_upstream();
}

void WebSocketProxy::close_client(int code, std::string reason) {
  if (client_side_.done || client_side_.closing) return;
  if (code != 0) client_side_.reason = websocket::close_reason(static_cast<websocket::close_code>(code), reason);
  if (client_side_.writing || !open_) {
    client_side_.close_pending = true;  // done when the write (or the handshake) is
    return;
  }
  client_side_.close_pending = false;
  client_side_.closing = true;
  client_.async_close(client_side_.reason, [self = shared_from_this()](beast::error_code) {
    self->client_side_.done = true;
  });
}

void WebSocketProxy::close_upstream(int code, std::string reason) {
  if (upstream_side_.done || upstream_side_.closing) return;
  if (code > 0) upstream_side_.reason = websocket::close_reason(static_cast<websocket::close_code>(code), reason);
  if (code < 0) upstream_side_.reason = websocket::close_reason{};
  if (upstream_side_.writing) {
    upstream_side_.close_pending = true;
    return;
  }
  upstream_side_.close_pending = false;
  upstream_side_.closing = true;
  upstream_->async_close(upstream_side_.reason, [self = shared_from_this()](beast::error_code) {
    self->upstream_side_.done = true;
  });
}

void WebSocketProxy::cut_upstream() {
  upstream_side_.done = true;
  beast::error_code ignored;
  beast::get_lowest_layer(*upstream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
  beast::get_lowest_layer(*upstream_).socket().close(ignored);
}

void WebSocketProxy::close(int code, std::string reason) {
  close_client(code, reason);
  close_upstream(code, std::move(reason));
}

}  // namespace cairn::gateway
