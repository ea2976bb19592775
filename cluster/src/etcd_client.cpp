// EtcdClient: unary calls of etcd's v3 JSON gateway over one kept-alive Beast connection.
#include "cairn/cluster/etcd.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <sys/socket.h>

#include <cerrno>
#include <optional>
#include <stdexcept>

#include "etcd_json.hpp"

namespace cairn::cluster {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;

Result<std::vector<Endpoint>> parse_endpoints(std::string_view list) {
  std::vector<Endpoint> out;
  while (!list.empty()) {
    auto comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    auto bad = [&](const char* why) {
      return fail(Code::invalid_argument, "etcd endpoint '" + std::string(item) + "': " + why +
                                              " (expected http://HOST:PORT)");
    };
    if (!item.starts_with("http://")) return bad("not http://");
    std::string_view rest = item.substr(7);
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    auto colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return bad("no host and port");
    std::string_view host = rest.substr(0, colon);
    std::string_view port = rest.substr(colon + 1);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
        std::stoul(std::string(port)) == 0 || std::stoul(std::string(port)) > 65535) {
      return bad("bad port");
    }
    if (host.find('/') != std::string_view::npos) return bad("a path is not allowed");
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    out.push_back(Endpoint{std::string(host), std::string(port)});
  }
  if (out.empty()) return fail(Code::invalid_argument, "no etcd endpoint given (expected http://HOST:PORT[,...])");
  return out;
}

std::string prefix_end(std::string_view prefix) {
  // etcd's rule: increment the last byte that is not 0xff and drop what follows it; a
  // prefix of only 0xff bytes (or none) ranges to the end of the key space ("\0").
  std::string end(prefix);
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

struct EtcdClient::Impl {
  // A kept-alive connection unused for longer than this is replaced before a call, rather
  // than risking a request on a connection the server may have closed meanwhile (a call
  // whose answer is lost is not retried: its effect would be unknown).
  static constexpr auto max_idle = std::chrono::seconds(30);

  std::vector<Endpoint> endpoints;
  std::chrono::milliseconds timeout;
  std::size_t current = 0;
  asio::io_context io;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  std::chrono::steady_clock::time_point last_used;

  using Deadline = std::chrono::steady_clock::time_point;

  // Runs the asynchronous operation started by `start` until it sets its outcome or the
  // deadline passes. The outcome is shared with the handler, so a handler that runs later
  // (an abandoned resolve) writes to live memory; stream operations end by their own
  // deadline (tcp_stream), a resolve is abandoned.
  template <class Start>
  beast::error_code run(Deadline deadline, Start&& start) {
    auto outcome = std::make_shared<std::optional<beast::error_code>>();
    start(outcome);
    io.restart();
    while (!*outcome && std::chrono::steady_clock::now() < deadline) {
      io.run_for(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()) +
                 std::chrono::milliseconds(1));
      if (io.stopped()) io.restart();
    }
    return *outcome ? **outcome : beast::error_code(asio::error::timed_out);
  }

  void close() {
    if (stream) {
      beast::error_code ignored;
      stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream->close();
    }
    stream.reset();
    buffer.clear();
  }

  beast::error_code connect(Deadline deadline) {
    close();
    const Endpoint& to = endpoints[current];
    std::vector<tcp::endpoint> addresses;
    beast::error_code ec;
    auto port = static_cast<unsigned short>(std::stoul(to.port));
    auto numeric = asio::ip::make_address(to.host, ec);
    if (!ec) {
      addresses.emplace_back(numeric, port);  // no resolver (and no wait) for an address
    } else {
      auto resolver = std::make_shared<tcp::resolver>(io);
      auto found = std::make_shared<std::vector<tcp::endpoint>>();
      ec = run(deadline, [&](auto outcome) {
        resolver->async_resolve(to.host, to.port,
                                [outcome, found, resolver](beast::error_code e, tcp::resolver::results_type r) {
                                  for (const auto& entry : r) found->push_back(entry.endpoint());
                                  *outcome = e;
                                });
      });
      if (ec) return ec;
      addresses = *found;
    }
    stream.emplace(io);
    stream->expires_at(deadline);
    ec = run(deadline, [&](auto outcome) {
      stream->async_connect(addresses, [outcome](beast::error_code e, const tcp::endpoint&) { *outcome = e; });
    });
    if (ec) {
      close();
      return ec;
    }
    stream->socket().set_option(tcp::no_delay(true), ec);
    last_used = std::chrono::steady_clock::now();
    return {};
  }

  // etcd's refusal, as an error. `idempotent` false: a 5xx whose proposal may still commit
  // (etcd's "request timed out", "leader changed") is reported as Code::timeout, outcome
  // unknown; those that say nothing was done ("no leader", "too many requests") as
  // Code::unavailable.
  Error etcd_error(unsigned status, const std::string& body, std::string_view path, bool idempotent) const {
    std::string message = body;
    try {
      auto parsed = json::parse(body);
      if (parsed.is_object()) {
        message = parsed.value("message", parsed.value("error", body));
      }
    } catch (const json::exception&) {
    }
    bool not_done = message.find("no leader") != std::string::npos ||
                    message.find("too many requests") != std::string::npos ||
                    message.find("not capable") != std::string::npos;
    Code code = status == 400   ? Code::invalid_argument
                : status == 404 ? Code::not_found
                : status == 409 ? Code::conflict
                : status == 429 ? Code::unavailable
                : status >= 500 ? (idempotent || not_done ? Code::unavailable : Code::timeout)
                                : Code::internal;
    std::string what = "etcd " + endpoints[current].to_string() + std::string(path) + " answered " +
                       std::to_string(status) + ": " + message;
    if (code == Code::timeout) what += " (whether it took effect is unknown)";
    return Error{code, what};
  }

  // A kept-alive connection the server has closed (etcd restarted, or timed it out) has its
  // FIN waiting: seen here, before a request is risked on it.
  bool still_open() {
    char byte = 0;
    ssize_t n = ::recv(stream->socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
    return false;  // closed (0), or bytes nobody asked for: either way, not usable
  }

  // `idempotent`: a call that may be sent again if its answer was lost (a read, a renewal).
  Result<json> call(std::string_view path, const json& body, bool idempotent = false) {
    const Deadline deadline = std::chrono::steady_clock::now() + timeout;
    http::request<http::string_body> request{http::verb::post, std::string(path), 11};
    request.set(http::field::content_type, "application/json");
    request.keep_alive(true);
    request.body() = body.dump();
    Error last{Code::unavailable, "no etcd endpoint answered"};
    // Each endpoint once, plus one more try on a fresh connection if a kept-alive one was
    // found broken before the request went out.
    for (std::size_t tries = 0; tries <= endpoints.size() && std::chrono::steady_clock::now() < deadline; ++tries) {
      if (stream && (std::chrono::steady_clock::now() - last_used > max_idle || !still_open())) close();
      if (!stream) {
        if (auto ec = connect(deadline)) {
          last = Error{Code::unavailable, "etcd " + endpoints[current].to_string() + " unreachable: " + ec.message()};
          current = (current + 1) % endpoints.size();
          continue;
        }
      }
      request.set(http::field::host, endpoints[current].host);
      request.prepare_payload();
      stream->expires_at(deadline);
      beast::error_code ec = run(deadline, [&](auto outcome) {
        http::async_write(*stream, request, [outcome](beast::error_code e, std::size_t) { *outcome = e; });
      });
      if (ec) {
        // Not fully sent: etcd acts only on a whole request, so trying again is safe.
        last = Error{Code::unavailable, "etcd " + endpoints[current].to_string() + ": " + ec.message()};
        close();
        continue;
      }
      http::response_parser<http::string_body> parser;
      parser.body_limit(64 * 1024 * 1024);
      ec = run(deadline, [&](auto outcome) {
        http::async_read(*stream, buffer, parser, [outcome](beast::error_code e, std::size_t) { *outcome = e; });
      });
      if (ec) {
        close();
        if (idempotent) {  // a read or a renewal: the next endpoint may answer in time
          last = Error{Code::unavailable, "etcd " + endpoints[current].to_string() + std::string(path) +
                                              " sent no answer: " + ec.message()};
          current = (current + 1) % endpoints.size();
          continue;
        }
        return fail(Code::timeout, "etcd " + endpoints[current].to_string() + std::string(path) +
                                       " sent no answer (" + ec.message() + "); whether it took effect is unknown");
      }
      last_used = std::chrono::steady_clock::now();
      auto response = parser.release();
      if (!response.keep_alive()) close();
      if (response.result_int() != 200) return etcd_error(response.result_int(), response.body(), path, idempotent);
      try {
        auto parsed = json::parse(response.body());
        if (!parsed.is_object()) throw std::invalid_argument("not a JSON object");
        if (parsed.contains("error")) return etcd_error(500, response.body(), path, idempotent);
        return parsed;
      } catch (const std::exception& e) {
        return fail(Code::internal, "etcd " + endpoints[current].to_string() + std::string(path) +
                                        " answered what is not JSON: " + e.what());
      }
    }
    return last;
  }
};

namespace {

// Runs `parse` on an answer, turning a malformed one into an error.
template <class T, class Parse>
Result<T> decode(Result<json> answer, std::string_view what, Parse&& parse) {
  if (!answer.ok()) return answer.error();
  try {
    return parse(answer.value());
  } catch (const std::exception& e) {
    return fail(Code::internal, "etcd's answer to " + std::string(what) + " is malformed: " + e.what());
  }
}

const char* target_name(Compare::Target target) {
  switch (target) {
    case Compare::Target::version: return "VERSION";
    case Compare::Target::create_revision: return "CREATE";
    case Compare::Target::mod_revision: return "MOD";
    case Compare::Target::value: return "VALUE";
    case Compare::Target::lease: return "LEASE";
  }
  return "VERSION";
}

const char* op_name(Compare::Op op) {
  switch (op) {
    case Compare::Op::equal: return "EQUAL";
    case Compare::Op::not_equal: return "NOT_EQUAL";
    case Compare::Op::greater: return "GREATER";
    case Compare::Op::less: return "LESS";
  }
  return "EQUAL";
}

json range_request(std::string_view key, std::string_view range_end) {
  json out{{"key", detail::base64_encode(key)}};
  if (!range_end.empty()) out["range_end"] = detail::base64_encode(range_end);
  return out;
}

json compare_json(const Compare& compare) {
  json out{{"key", detail::base64_encode(compare.key)},
           {"target", target_name(compare.target)},
           {"result", op_name(compare.op)}};
  switch (compare.target) {
    case Compare::Target::version: out["version"] = detail::int64_text(compare.number); break;
    case Compare::Target::create_revision: out["create_revision"] = detail::int64_text(compare.number); break;
    case Compare::Target::mod_revision: out["mod_revision"] = detail::int64_text(compare.number); break;
    case Compare::Target::value: out["value"] = detail::base64_encode(compare.value); break;
    case Compare::Target::lease: out["lease"] = detail::int64_text(compare.number); break;
  }
  return out;
}

json operation_json(const Operation& op) {
  switch (op.kind) {
    case Operation::Kind::put: {
      json put{{"key", detail::base64_encode(op.key)}, {"value", detail::base64_encode(op.value)}};
      if (op.lease != 0) put["lease"] = detail::int64_text(op.lease);
      return json{{"request_put", put}};
    }
    case Operation::Kind::range: return json{{"request_range", range_request(op.key, op.range_end)}};
    case Operation::Kind::remove: return json{{"request_delete_range", range_request(op.key, op.range_end)}};
  }
  return json::object();
}

}  // namespace

EtcdClient::EtcdClient(std::vector<Endpoint> endpoints, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  if (endpoints.empty()) throw std::invalid_argument("EtcdClient needs at least one endpoint");
  impl_->endpoints = std::move(endpoints);
  impl_->timeout = timeout;
}

EtcdClient::~EtcdClient() { impl_->close(); }

const Endpoint& EtcdClient::endpoint() const { return impl_->endpoints[impl_->current]; }

Result<Lease> EtcdClient::grant(std::chrono::seconds ttl, std::int64_t id) {
  json body{{"TTL", detail::int64_text(ttl.count())}};
  if (id != 0) body["ID"] = detail::int64_text(id);
  return decode<Lease>(impl_->call("/v3/lease/grant", body), "lease/grant", [](const json& answer) {
    if (answer.contains("error") && answer["error"].is_string() && !answer["error"].get<std::string>().empty()) {
      throw std::invalid_argument(answer["error"].get<std::string>());
    }
    Lease lease{detail::int64_field(answer, "ID"), std::chrono::seconds(detail::int64_field(answer, "TTL"))};
    if (lease.id == 0 || lease.ttl.count() <= 0) throw std::invalid_argument("no lease ID or TTL");
    return lease;
  });
}

Result<std::optional<std::chrono::seconds>> EtcdClient::keepalive(std::int64_t lease) {
  json body{{"ID", detail::int64_text(lease)}};
  return decode<std::optional<std::chrono::seconds>>(
      impl_->call("/v3/lease/keepalive", body, true), "lease/keepalive",
      [](const json& answer) -> std::optional<std::chrono::seconds> {
        // A stream's message comes wrapped in "result". A lease etcd no longer has is
        // renewed "successfully" with no TTL: it is lost.
        const json& result = answer.contains("result") ? answer["result"] : answer;
        auto ttl = detail::int64_field(result, "TTL");
        if (ttl <= 0) return std::nullopt;
        return std::chrono::seconds(ttl);
      });
}

Result<void> EtcdClient::revoke(std::int64_t lease) {
  auto answer = impl_->call("/v3/lease/revoke", json{{"ID", detail::int64_text(lease)}}, true);
  if (!answer.ok() && answer.error().code != Code::not_found) return answer.error();
  return {};
}

Result<RangeResult> EtcdClient::range(std::string_view key, std::string_view range_end) {
  return decode<RangeResult>(impl_->call("/v3/kv/range", range_request(key, range_end), true), "kv/range",
                             [](const json& answer) { return detail::range_from_json(answer); });
}

Result<std::int64_t> EtcdClient::put(std::string_view key, std::string_view value, std::int64_t lease) {
  json body{{"key", detail::base64_encode(key)}, {"value", detail::base64_encode(value)}};
  if (lease != 0) body["lease"] = detail::int64_text(lease);
  return decode<std::int64_t>(impl_->call("/v3/kv/put", body), "kv/put", [](const json& answer) {
    return detail::int64_field(answer.at("header"), "revision");
  });
}

Result<std::int64_t> EtcdClient::remove(std::string_view key, std::string_view range_end) {
  return decode<std::int64_t>(impl_->call("/v3/kv/deleterange", range_request(key, range_end)), "kv/deleterange",
                              [](const json& answer) { return detail::int64_field(answer, "deleted"); });
}

Result<TxnResult> EtcdClient::txn(const std::vector<Compare>& compares, const std::vector<Operation>& success,
                                  const std::vector<Operation>& failure) {
  json body{{"compare", json::array()}, {"success", json::array()}, {"failure", json::array()}};
  for (const auto& compare : compares) body["compare"].push_back(compare_json(compare));
  for (const auto& op : success) body["success"].push_back(operation_json(op));
  for (const auto& op : failure) body["failure"].push_back(operation_json(op));
  return decode<TxnResult>(impl_->call("/v3/kv/txn", body), "kv/txn", [](const json& answer) {
    TxnResult out;
    out.succeeded = answer.value("succeeded", false);
    out.revision = detail::int64_field(answer.at("header"), "revision");
    if (auto responses = answer.find("responses"); responses != answer.end() && responses->is_array()) {
      for (const auto& response : *responses) {
        if (auto range = response.find("response_range"); range != response.end()) {
          out.ranges.push_back(detail::range_from_json(*range));
        }
      }
    }
    return out;
  });
}

}  // namespace cairn::cluster
