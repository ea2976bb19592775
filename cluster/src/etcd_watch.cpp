// EtcdWatch: one streamed /v3/watch request (a chunked response that never ends, one JSON
// message per line), read on the watch's own thread and re-opened when it breaks.
#include "cairn/cluster/etcd.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>

#include "etcd_json.hpp"

namespace cairn::cluster {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;

namespace {
constexpr auto connect_timeout = std::chrono::seconds(5);
constexpr auto first_backoff = std::chrono::milliseconds(100);
constexpr auto max_backoff = std::chrono::seconds(2);
constexpr std::size_t max_message_bytes = 64 * 1024 * 1024;

// A peer that vanished (a cut cable, a paused VM) sends no FIN: without keepalive probes a
// stream that is idle anyway would wait for it forever. Dead after ~5 s idle + 3 probes.
void enable_keepalive(tcp::socket& socket) {
  beast::error_code ignored;
  socket.set_option(asio::socket_base::keep_alive(true), ignored);
  int idle = 5, interval = 1, count = 3;
  ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}
}  // namespace

struct EtcdWatch::Impl {
  std::vector<Endpoint> endpoints;
  std::string key;
  std::string range_end;
  Callbacks callbacks;
  std::atomic<std::int64_t> revision{0};

  asio::io_context io;
  tcp::resolver resolver{io};
  asio::steady_timer timer{io};
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  std::optional<http::response_parser<http::empty_body>> parser;
  // Held by reference by the parser: lives as long as the Impl.
  std::function<std::size_t(std::uint64_t, std::string_view, beast::error_code&)> on_chunk;
  std::string pending;  // bytes of a message not yet ended by a newline
  http::request<http::string_body> request;
  std::size_t current = 0;
  std::chrono::milliseconds backoff = first_backoff;
  bool stopped = false;     // on the io thread only
  bool connected = false;   // on the io thread only
  std::thread thread;

  void start() {
    if (stopped) return;
    const Endpoint& to = endpoints[current];
    resolver.async_resolve(to.host, to.port, [this](beast::error_code ec, tcp::resolver::results_type addresses) {
      if (stopped) return;
      if (ec) return retry("cannot resolve: " + ec.message());
      stream.emplace(io);
      stream->expires_after(connect_timeout);
      stream->async_connect(addresses, [this](beast::error_code e, const tcp::endpoint&) {
        if (stopped) return;
        if (e) return retry("cannot connect: " + e.message());
        enable_keepalive(stream->socket());
        send();
      });
    });
  }

  void send() {
    json create{{"key", detail::base64_encode(key)},
                {"start_revision", detail::int64_text(revision.load() + 1)}};
    if (!range_end.empty()) create["range_end"] = detail::base64_encode(range_end);
    request = {http::verb::post, "/v3/watch", 11};
    request.set(http::field::host, endpoints[current].host);
    request.set(http::field::content_type, "application/json");
    request.body() = json{{"create_request", create}}.dump();
    request.prepare_payload();
    stream->expires_after(connect_timeout);
    http::async_write(*stream, request, [this](beast::error_code ec, std::size_t) {
      if (stopped) return;
      if (ec) return retry("cannot send the watch: " + ec.message());
      stream->expires_never();  // an idle watch is normal; TCP keepalive finds dead peers
      pending.clear();
      buffer.clear();
      parser.emplace();
      parser->body_limit(boost::none);  // the stream never ends: no limit on its total
      parser->on_chunk_body(on_chunk);
      http::async_read(*stream, buffer, *parser, [this](beast::error_code e, std::size_t) {
        if (stopped) return;
        // A watch stream ends only when it breaks (or etcd cancels it).
        retry(e ? "the watch stream broke: " + e.message() : std::string("etcd ended the watch stream"));
      });
    });
  }

  std::size_t chunk(std::string_view body, beast::error_code& ec) {
    if (stopped) {
      ec = asio::error::operation_aborted;
      return body.size();
    }
    pending.append(body);
    if (pending.size() > max_message_bytes) {
      ec = http::error::body_limit;
      return body.size();
    }
    std::size_t start = 0;
    for (auto newline = pending.find('\n'); newline != std::string::npos; newline = pending.find('\n', start)) {
      std::string_view line(pending.data() + start, newline - start);
      start = newline + 1;
      if (line.find_first_not_of(" \r\t") == std::string_view::npos) continue;
      if (!message(line)) {
        ec = asio::error::connection_aborted;  // read afresh from a new stream
        break;
      }
    }
    pending.erase(0, start);
    return body.size();
  }

  // One message of the stream; false to re-open it (after a reset).
  bool message(std::string_view line) {
    json parsed;
    try {
      parsed = json::parse(line);
    } catch (const json::exception& e) {
      spdlog::warn("etcd watch: a message that is not JSON ({}); re-opening the watch", e.what());
      return false;
    }
    if (parsed.contains("error")) {
      spdlog::warn("etcd watch: etcd reported {}; re-opening the watch", parsed["error"].dump());
      return false;
    }
    const json& result = parsed.contains("result") ? parsed["result"] : parsed;
    try {
      if (detail::int64_field(result, "compact_revision") > 0 || result.value("canceled", false)) {
        // The revisions after ours were compacted away: the caller reads the range afresh.
        std::int64_t read_at = callbacks.on_reset ? callbacks.on_reset() : revision.load();
        revision.store(read_at);
        return false;
      }
      if (result.value("created", false) && !connected) {
        connected = true;
        backoff = first_backoff;
        if (callbacks.on_connection) callbacks.on_connection(true);
      }
      auto events = result.find("events");
      if (events == result.end() || !events->is_array()) return true;
      std::vector<WatchEvent> batch;
      std::int64_t last = revision.load();
      for (const auto& event : *events) {
        WatchEvent out;
        out.type = event.value("type", "PUT") == "DELETE" ? WatchEvent::Type::remove : WatchEvent::Type::put;
        out.kv = detail::key_value_from_json(event.at("kv"));
        if (out.kv.mod_revision <= last) continue;  // seen before a reconnect
        batch.push_back(std::move(out));
      }
      if (batch.empty()) return true;
      std::int64_t newest = batch.back().kv.mod_revision;
      if (callbacks.on_events) callbacks.on_events(batch);
      revision.store(newest);
    } catch (const std::exception& e) {
      spdlog::warn("etcd watch: cannot use a message ({}); re-opening the watch", e.what());
      return false;
    }
    return true;
  }

  void retry(const std::string& why) {
    if (stopped) return;
    if (stream) {
      beast::error_code ignored;
      stream->socket().close(ignored);
      stream.reset();
    }
    parser.reset();
    if (connected) {
      connected = false;
      spdlog::warn("etcd watch on {}: {}; reconnecting", endpoints[current].to_string(), why);
      if (callbacks.on_connection) callbacks.on_connection(false);
    }
    current = (current + 1) % endpoints.size();
    timer.expires_after(backoff);
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, max_backoff);
    timer.async_wait([this](beast::error_code ec) {
      if (!ec && !stopped) start();
    });
  }

  void stop() {
    stopped = true;
    timer.cancel();
    resolver.cancel();
    if (stream) {
      beast::error_code ignored;
      stream->socket().close(ignored);
    }
  }
};

EtcdWatch::EtcdWatch(std::vector<Endpoint> endpoints, std::string key, std::string range_end,
                     std::int64_t after, Callbacks callbacks)
    : impl_(std::make_unique<Impl>()) {
  if (endpoints.empty()) throw std::invalid_argument("EtcdWatch needs at least one endpoint");
  auto& impl = *impl_;
  impl.endpoints = std::move(endpoints);
  impl.key = std::move(key);
  impl.range_end = std::move(range_end);
  impl.callbacks = std::move(callbacks);
  impl.revision.store(after);
  impl.on_chunk = [&impl](std::uint64_t, std::string_view body, beast::error_code& ec) {
    return impl.chunk(body, ec);
  };
  impl.start();
  impl.thread = std::thread([&impl] { impl.io.run(); });
}

EtcdWatch::~EtcdWatch() {
  asio::post(impl_->io, [impl = impl_.get()] { impl->stop(); });
  impl_->thread.join();
}

std::int64_t EtcdWatch::revision() const { return impl_->revision.load(); }

}  // namespace cairn::cluster
