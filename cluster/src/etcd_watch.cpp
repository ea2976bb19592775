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
  // Held by reference by the parser: declared before it, so it outlives it.
  std::function<std::size_t(std::uint64_t, std::string_view, beast::error_code&)> on_chunk;
  std::optional<http::response_parser<http::empty_body>> parser;
  std::string pending;  // bytes of a message not yet ended by a newline
  http::request<http::string_body> request;
  std::size_t current = 0;
  std::chrono::milliseconds backoff = first_backoff;
  bool stopped = false;     // on the io thread only
  bool connected = false;   // on the io thread only
  std::string last_problem; // the last reason logged for a reconnect (io thread)
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
    // progress_notify: etcd says now and then how far the stream is, so a quiet range's
    // revision keeps up (a reconnect after compaction then needs no fresh read).
    json create{{"key", detail::base64_encode(key)},
                {"start_revision", detail::int64_text(revision.load() + 1)},
                {"progress_notify", true}};
    if (!range_end.empty()) create["range_end"] = detail::base64_encode(range_end);
    request = {http::verb::post, "/v3/watch", 11};
    request.set(http::field::host, endpoints[current].host);
    request.set(http::field::content_type, "application/json");
    // A member cut off from its cluster's leader would keep the stream open and silent;
    // with this, etcd cancels the watch instead, and we go to another endpoint.
    request.set("Grpc-Metadata-Hasleader", "true");
    request.body() = json{{"create_request", create}}.dump();
    request.prepare_payload();
    stream->expires_after(connect_timeout);
    http::async_write(*stream, request, [this](beast::error_code ec, std::size_t) {
      if (stopped) return;
      if (ec) return retry("cannot send the watch: " + ec.message());
      pending.clear();
      buffer.clear();
      parser.emplace();
      parser->body_limit(boost::none);  // the stream never ends: no limit on its total
      parser->on_chunk_body(on_chunk);
      http::async_read_header(*stream, buffer, *parser, [this](beast::error_code e2, std::size_t) {
        if (stopped) return;
        if (e2) return retry("no answer to the watch: " + e2.message());
        if (parser->get().result_int() != 200) {
          return retry("etcd answered the watch with " + std::to_string(parser->get().result_int()));
        }
        stream->expires_never();  // an idle watch is normal; TCP keepalive finds dead peers
        http::async_read(*stream, buffer, *parser, [this](beast::error_code e3, std::size_t) {
          if (stopped) return;
          // A watch stream ends only when it breaks (or etcd cancels it).
          retry(e3 ? "the watch stream broke: " + e3.message() : std::string("etcd ended the watch stream"));
        });
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
      if (detail::int64_field(result, "compact_revision") > 0) {
        // The revisions after ours were compacted away: the caller reads the range afresh.
        reset("etcd compacted the revisions the watch needed");
        return false;
      }
      if (result.value("canceled", false)) {
        spdlog::warn("etcd watch: etcd cancelled it ({}); re-opening the watch", result.value("cancel_reason", "no reason given"));
        return false;
      }
      bool created = result.value("created", false);
      if (created && !connected) {
        connected = true;
        backoff = first_backoff;
        last_problem.clear();
        notify_connection(true);
      }
      auto events = result.find("events");
      if (events == result.end() || !events->is_array() || events->empty()) {
        // A progress notification: every change up to the header's revision was sent.
        if (!created) {
          if (auto header = result.find("header"); header != result.end()) {
            auto at = detail::int64_field(*header, "revision");
            if (at > revision.load()) revision.store(at);
          }
        }
        return true;
      }
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
      try {
        callbacks.on_events(batch);
      } catch (const std::exception& e) {
        // Not delivered again (the promise is: never twice), nor lost: the caller reads afresh.
        spdlog::error("etcd watch: on_events threw ({}); asking for a fresh read", e.what());
        revision.store(newest);
        reset("on_events failed");
        return false;
      }
      revision.store(newest);
    } catch (const std::exception& e) {
      spdlog::warn("etcd watch: cannot use a message ({}); re-opening the watch", e.what());
      return false;
    }
    return true;
  }

  // The caller reads afresh; the watch goes on after what it read.
  void reset(const char* why) {
    try {
      revision.store(callbacks.on_reset());
    } catch (const std::exception& e) {
      spdlog::error("etcd watch: {}, and on_reset threw ({}); trying again", why, e.what());
    }
  }

  void notify_connection(bool up) {
    if (!callbacks.on_connection) return;
    try {
      callbacks.on_connection(up);
    } catch (const std::exception& e) {
      spdlog::error("etcd watch: on_connection threw: {}", e.what());
    }
  }

  void retry(const std::string& why) {
    if (stopped) return;
    if (stream) {
      beast::error_code ignored;
      stream->socket().close(ignored);
      stream.reset();
    }
    parser.reset();
    std::string problem = endpoints[current].to_string() + ": " + why;
    if (connected) {
      connected = false;
      notify_connection(false);
    }
    if (problem != last_problem) {  // said once, not at every retry
      spdlog::warn("etcd watch on {}; reconnecting", problem);
      last_problem = problem;
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
  if (!callbacks.on_events || !callbacks.on_reset) {
    throw std::invalid_argument("EtcdWatch needs on_events and on_reset callbacks");
  }
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
  if (std::this_thread::get_id() == impl_->thread.get_id()) {
    spdlog::critical("an EtcdWatch was destroyed from its own callback; that cannot be done");
    std::abort();
  }
  asio::post(impl_->io, [impl = impl_.get()] { impl->stop(); });
  impl_->thread.join();
}

std::int64_t EtcdWatch::revision() const { return impl_->revision.load(); }

}  // namespace cairn::cluster
