// The public edge against the real server (cairn-calls-server: its WHOAMI actor answers what
// the gateway told it of each request): who is calling behind trusted proxies only, request
// ids and traces, bearer tokens, rate limits in bounded memory, CORS, the application's hook,
// and 500s that tell the client nothing of the exception.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "clients.hpp"
#include "jwt_sign.hpp"
#include "process_facts.hpp"
#include "raw_socket.hpp"
#include "server_process.hpp"
#include "temp_dir.hpp"

using namespace cairn::testing;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

ServerProcess edge_server(const TempDir& dir, std::vector<std::string> extra, std::string log_file = {}) {
  std::vector<std::string> args{CAIRN_CALLS_SERVER_PATH, "--host", "127.0.0.1", "--port", "0", "--data-dir",
                                (dir.path() / "data").string(), "--threads", "2", "--log-level", "warn"};
  args.insert(args.end(), extra.begin(), extra.end());
  PassedToServer passed;
  passed.stderr_file = std::move(log_file);
  return ServerProcess(args, passed);
}

std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

json whoami(HttpClient& client, const std::string& name = "a") {
  auto reply = client.request(http::verb::get, "/objects/WHOAMI/" + name + "/");
  REQUIRE(reply.status == 200);
  return json::parse(reply.body);
}

}  // namespace

TEST_CASE("who is calling: the peer's address and a spoofed X-Forwarded-For ignored unless the proxy is trusted") {
  TempDir dir;
  const std::string incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  {
    auto server = edge_server(dir, {});
    HttpClient client(server.port());
    client.header("X-Forwarded-For", "203.0.113.9");
    client.header("Forwarded", "for=198.51.100.7");
    client.header("X-Request-Id", "chosen-by-the-client");
    client.header("x-cairn-client", "192.0.2.1");  // never believed from a client, in any spelling
    client.header("traceparent", incoming);
    auto reply = client.request(http::verb::get, "/objects/WHOAMI/a/");
    REQUIRE(reply.status == 200);
    auto seen = json::parse(reply.body);
    CHECK(seen["client_address"] == "127.0.0.1");
    CHECK(seen["x_cairn_client"].is_null());
    // A request id of the server's own, in the response, the actor's Request and its header.
    std::string id = seen["request_id"];
    CHECK(id.size() == 16);
    CHECK(id != "chosen-by-the-client");
    CHECK(reply.header("X-Request-Id") == id);
    CHECK(seen["x_request_id"] == id);
    // The caller's trace goes on, with the gateway's span.
    std::string traceparent = seen["traceparent"];
    CHECK(traceparent.substr(0, 36) == incoming.substr(0, 36));
    CHECK(traceparent.substr(36, 16) != incoming.substr(36, 16));
    // The hook of the application ran, and its header reached the actor.
    CHECK(seen["x_hooked"] == "WHOAMI");
    CHECK(seen["claims"].is_null());
    // Every error body names its request.
    auto missing = client.request(http::verb::get, "/objects/NOSUCH/a/");
    CHECK(missing.status == 404);
    CHECK(json::parse(missing.body)["request_id"] == missing.header("X-Request-Id"));
    // The hook's own refusal.
    client.header("X-Block", "1");
    auto blocked = client.request(http::verb::get, "/objects/WHOAMI/a/");
    CHECK(blocked.status == 403);
    CHECK(json::parse(blocked.body)["error"] == "blocked by the application's hook");
  }
  {
    auto server = edge_server(dir, {"--trusted-proxy", "127.0.0.0/8", "--trusted-proxy", "10.0.0.0/8"});
    HttpClient client(server.port());
    client.header("X-Forwarded-For", "198.51.100.1, 203.0.113.9, 10.1.2.3");
    client.header("X-Request-Id", "from-the-proxy-42");
    auto seen = whoami(client);
    CHECK(seen["client_address"] == "203.0.113.9");
    CHECK(seen["request_id"] == "from-the-proxy-42");
    HttpClient forwarded(server.port());
    forwarded.header("X-Forwarded-For", "2001:db8::7");
    forwarded.header("X-Request-Id", "bad id with spaces");
    auto seen_v6 = whoami(forwarded);
    CHECK(seen_v6["client_address"] == "2001:db8::7");
    CHECK(seen_v6["request_id"] != "bad id with spaces");
  }
}

TEST_CASE("bearer tokens: a missing or forged or expired or misaddressed token is 401 and a valid one's claims reach the actor") {
  TempDir dir;
  const std::string secret = "0123456789abcdef0123456789abcdef-test";
  auto secret_file = dir.path() / "jwt-secret";
  std::ofstream(secret_file) << secret << "\n";  // the newline is no part of the key
  auto server = edge_server(dir, {"--auth-hs256-secret-file", secret_file.string(), "--auth-issuer",
                                  "https://login.example.com/", "--auth-audience", "seat-booking", "--auth-required",
                                  "WHOAMI", "--auth-required", "POST /objects/COUNTER/*", "--auth-required",
                                  "POST /objects/TALLY/vip/*"});
  auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  json claims{{"sub", "alice"}, {"iss", "https://login.example.com/"}, {"aud", "seat-booking"}, {"exp", now + 300},
              {"role", "agent"}};
  auto with_token = [&](const std::string& authorization) {
    HttpClient client(server.port());
    if (!authorization.empty()) client.header("Authorization", authorization);
    return client.request(http::verb::get, "/objects/WHOAMI/a/");
  };
  auto none = with_token("");
  CHECK(none.status == 401);
  CHECK(none.header("WWW-Authenticate").rfind("Bearer", 0) == 0);
  CHECK(json::parse(none.body)["code"] == "unauthenticated");
  CHECK(with_token("Bearer " + hs256_token(claims, std::string(40, 'x'))).status == 401);
  auto expired = claims;
  expired["exp"] = now - 3600;
  auto late = with_token("Bearer " + hs256_token(expired, secret));
  CHECK(late.status == 401);
  CHECK(json::parse(late.body)["error"].get<std::string>().find("expired") != std::string::npos);
  auto elsewhere = claims;
  elsewhere["aud"] = "billing";
  CHECK(with_token("Bearer " + hs256_token(elsewhere, secret)).status == 401);
  CHECK(with_token("Basic YWxpY2U6c2VjcmV0").status == 401);
  auto good = with_token("Bearer " + hs256_token(claims, secret));
  REQUIRE(good.status == 200);
  auto seen = json::parse(good.body);
  CHECK(seen["claims"]["sub"] == "alice");
  CHECK(seen["claims"]["role"] == "agent");
  // A path rule holds however the actor's name is spelled in the URL.
  HttpClient sneaky(server.port());
  CHECK(sneaky.request(http::verb::post, "/objects/TALLY/vip/ask", "{}").status == 401);
  CHECK(sneaky.request(http::verb::post, "/objects/TALLY/%76ip/ask", "{}").status == 401);
  CHECK(sneaky.request(http::verb::post, "/objects/TALLY/other/ask", "{}").status == 400);  // no rule: the actor's answer
  // Rules by method and path: reading a counter needs no token, adding to it does.
  HttpClient anonymous(server.port());
  CHECK(anonymous.request(http::verb::get, "/objects/COUNTER/c/value").status == 200);
  CHECK(anonymous.request(http::verb::post, "/objects/COUNTER/c/increment", "{}").status == 401);
}

TEST_CASE("rate limits: 429 with Retry-After past the burst and back after the window while a flood of clients stays bounded") {
  TempDir dir;
  auto token_file = dir.path() / "admin-token";
  { std::ofstream(token_file) << "edge-test-admin-token-0123456789\n"; }
  auto server = edge_server(dir, {"--trusted-proxy", "127.0.0.1", "--rate-limit", "GET /objects/WHOAMI/* 2/s 2",
                                  "--rate-limit", "GET /flood 1000/s 5", "--rate-limit-clients", "2000",
                                  "--admin-port", "0", "--admin-token-file", token_file.string()});
  HttpClient client(server.port());
  client.header("X-Forwarded-For", "203.0.113.9");
  CHECK(client.request(http::verb::get, "/objects/WHOAMI/a/").status == 200);
  CHECK(client.request(http::verb::get, "/objects/WHOAMI/a/").status == 200);
  auto refused = client.request(http::verb::get, "/objects/WHOAMI/a/");
  CHECK(refused.status == 429);
  CHECK(refused.header("Retry-After") == "1");
  auto body = json::parse(refused.body);
  CHECK(body["code"] == "resource_exhausted");
  CHECK(body["request_id"] == refused.header("X-Request-Id"));
  // Another client has its own bucket; other routes are not limited by this rule.
  HttpClient other(server.port());
  other.header("X-Forwarded-For", "203.0.113.10");
  CHECK(other.request(http::verb::get, "/objects/WHOAMI/a/").status == 200);
  CHECK(client.request(http::verb::get, "/objects/COUNTER/a/value").status == 200);
  // One token comes back every half second.
  std::this_thread::sleep_for(600ms);
  CHECK(client.request(http::verb::get, "/objects/WHOAMI/a/").status == 200);

  // 100,000 distinct addresses, each one request (pipelined, 500 at a time, on 4
  // connections): the limiter forgets the least recently seen past --rate-limit-clients.
  HttpClient admin(server.admin_port());
  admin.header("Authorization", "Bearer edge-test-admin-token-0123456789");
  long before = rss_kib(server.pid());
  constexpr int total = 100'000;
  constexpr int batch = 500;
  std::vector<std::thread> senders;
  std::atomic<int> answered{0};
  std::atomic<int> limited{0};
  for (int t = 0; t < 4; ++t) {
    senders.emplace_back([&, t] {
      RawSocket socket(server.port());
      for (int first = t * (total / 4); first < (t + 1) * (total / 4); first += batch) {
        std::string requests;
        for (int i = first; i < first + batch; ++i) {
          requests += "GET /flood HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10." + std::to_string(i >> 16) + "." +
                      std::to_string((i >> 8) & 255) + "." + std::to_string(i & 255) + "\r\n\r\n";
        }
        if (!socket.send(requests)) return;
        auto text = socket.read_responses(batch, 20s);
        answered += static_cast<int>(RawSocket::complete_responses(text));
        for (auto at = text.find(" 429 "); at != std::string::npos; at = text.find(" 429 ", at + 1)) ++limited;
      }
    });
  }
  for (auto& sender : senders) sender.join();
  long after = rss_kib(server.pid());
  auto metrics = admin.request(http::verb::get, "/metrics").body;
  double remembered = metric_sample(metrics, "cairn_http_rate_limited_clients", -1);
  std::printf("rate limiter flood: %d requests from %d addresses answered; RSS %ld KiB before, %ld KiB after; "
              "%.0f clients remembered (at most 2,000 per limit)\n",
              answered.load(), total, before, after, remembered);
  CHECK(answered.load() == total);
  CHECK(limited.load() == 0);  // one request each: within every burst
  CHECK(remembered > 0);
  CHECK(remembered <= 2 * 2000 + 2 * 16);
  // Bounded: 100,000 remembered clients would be tens of MiB; allow the allocator its slack.
  // (Not under AddressSanitizer: its quarantine keeps freed memory, hundreds of MiB of it;
  // the limiter's own count above is the bound there.)
#if !defined(__SANITIZE_ADDRESS__)
  CHECK(after - before < 32 * 1024);
#endif
  CHECK(metric_sample(metrics, "cairn_http_edge_refusals_total{reason=\"rate_limited\"}", -1) >= 1);
}

TEST_CASE("CORS: preflights answered and headers for allowed origins only and WebSocket upgrades from other origins refused") {
  TempDir dir;
  auto server = edge_server(dir, {"--cors-origin", "https://app.example.com"});
  HttpClient client(server.port());
  auto raw = [&](const std::string& text) {
    HttpClient one(server.port());
    return one.raw(text);
  };
  auto preflight = raw("OPTIONS /objects/WHOAMI/a/ HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example.com\r\n"
                       "Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n\r\n");
  CHECK(preflight.status == 204);
  CHECK(preflight.header("Access-Control-Allow-Origin") == "https://app.example.com");
  CHECK(preflight.header("Access-Control-Allow-Methods").find("POST") != std::string::npos);
  CHECK(preflight.header("Access-Control-Allow-Headers") == "content-type");
  auto refused = raw("OPTIONS /objects/WHOAMI/a/ HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example.com\r\n"
                     "Access-Control-Request-Method: POST\r\n\r\n");
  CHECK(refused.status == 403);
  CHECK(refused.header("Access-Control-Allow-Origin").empty());
  client.header("Origin", "https://app.example.com");
  auto allowed = client.request(http::verb::get, "/objects/WHOAMI/a/");
  CHECK(allowed.status == 200);
  CHECK(allowed.header("Access-Control-Allow-Origin") == "https://app.example.com");
  CHECK(allowed.header("Access-Control-Expose-Headers").find("X-Request-Id") != std::string::npos);
  HttpClient stranger(server.port());
  stranger.header("Origin", "https://evil.example.com");
  auto plain = stranger.request(http::verb::get, "/objects/WHOAMI/a/");
  CHECK(plain.status == 200);  // the browser, not the server, keeps the page from reading it
  CHECK(plain.header("Access-Control-Allow-Origin").empty());
  auto upgrade = [&](const std::string& origin) {
    std::string text = "GET /objects/WHOAMI/a/ HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(server.port()) +
                       "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 13\r\n";
    if (!origin.empty()) text += "Origin: " + origin + "\r\n";
    RawSocket socket(server.port());
    socket.send(text + "\r\n");
    auto answer = socket.read_responses(1, 5s);
    return status_of(answer);
  };
  CHECK(upgrade("https://evil.example.com") == 403);
  CHECK(upgrade("https://app.example.com") == 101);
  CHECK(upgrade("http://127.0.0.1:" + std::to_string(server.port())) == 101);  // the listener's own pages
  CHECK(upgrade("") == 101);  // not a browser
}

TEST_CASE("a throwing actor's 500 tells the client nothing but the request id while the log and the admin API have the text") {
  TempDir dir;
  auto token_file = dir.path() / "admin-token";
  { std::ofstream(token_file) << "edge-test-admin-token-0123456789\n"; }
  auto log = dir.path() / "server.log";
  std::string id;
  {
    auto server = edge_server(dir, {"--log-level", "info", "--log-format", "json", "--admin-port", "0",
                                    "--admin-token-file", token_file.string()},
                              log.string());
    HttpClient client(server.port());
    auto reply = client.request(http::verb::get, "/objects/WHOAMI/a/throw?password=hunter2");
    CHECK(reply.status == 500);
    id = reply.header("X-Request-Id");
    REQUIRE(id.size() == 16);
    CHECK(reply.body.find("hunter2") == std::string::npos);
    CHECK(reply.header("X-Cairn-Internal-Error").empty());
    auto body = json::parse(reply.body);
    CHECK(body["code"] == "internal");
    CHECK(body["request_id"] == id);
    CHECK(body["error"].get<std::string>().find(id) != std::string::npos);
    HttpClient admin(server.admin_port());
    admin.header("Authorization", "Bearer edge-test-admin-token-0123456789");
    auto errors = admin.request(http::verb::get, "/admin/errors?request_id=" + id);
    REQUIRE(errors.status == 200);
    auto listed = json::parse(errors.body)["errors"];
    REQUIRE(listed.size() == 1);
    CHECK(listed[0]["status"] == 500);
    CHECK(listed[0]["path"] == "/objects/WHOAMI/a/throw");
    CHECK(listed[0]["detail"].get<std::string>().find("hunter2") != std::string::npos);
    CHECK(whoami(client)["request_id"] != id);
  }
  // The log: the exception under the request's id (the runtime's line and the gateway's), and
  // the access log's line with its fields; the query (it may hold secrets) is in none.
  auto text = read_text(log);
  bool exception_logged = false;
  bool access_logged = false;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    auto entry = json::parse(line, nullptr, false);
    if (!entry.is_object() || entry.value("request_id", "") != id) continue;
    auto message = entry.value("message", "");
    if (message.find("the database password is hunter2") != std::string::npos) exception_logged = true;
    if (message.rfind("access ", 0) == 0) {
      access_logged = true;
      CHECK(entry["status"] == 500);
      CHECK(entry["path"] == "/objects/WHOAMI/a/throw");
      CHECK(entry["method"] == "GET");
      CHECK(entry["client"] == "127.0.0.1");
      CHECK(entry["trace_id"].get<std::string>().size() == 32);
    }
  }
  CHECK(exception_logged);
  CHECK(access_logged);
  CHECK(text.find("password=hunter2") == std::string::npos);
}

TEST_CASE("a request's id and trace followed from the access log through Context::call to the callee's log line and its alarm") {
  TempDir dir;
  auto log = dir.path() / "server.log";
  const std::string incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  std::string id;
  json traces;
  {
    auto server = edge_server(dir, {"--log-level", "info"}, log.string());
    HttpClient client(server.port());
    client.header("traceparent", incoming);
    auto relayed = client.request(http::verb::post, "/objects/WHOAMI/caller/relay?to=callee", "{}");
    REQUIRE(relayed.status == 202);
    id = relayed.header("X-Request-Id");
    REQUIRE(id.size() == 16);
    // The callee's note, its alarm 50 ms later, and the caller's answer: each an event.
    auto deadline = std::chrono::steady_clock::now() + 10s;
    HttpClient reader(server.port());
    while (std::chrono::steady_clock::now() < deadline) {
      traces = json::parse(reader.request(http::verb::get, "/objects/WHOAMI/callee/traces").body);
      auto answered = json::parse(reader.request(http::verb::get, "/objects/WHOAMI/caller/traces").body);
      if (traces.size() >= 2 && answered.size() >= 1) {
        traces.insert(traces.end(), answered.begin(), answered.end());
        break;
      }
      std::this_thread::sleep_for(50ms);
    }
  }
  REQUIRE(traces.size() == 3);
  std::vector<std::string> kinds;
  for (const auto& trace : traces) {
    kinds.push_back(trace["kind"]);
    CHECK(trace["request_id"] == id);
    CHECK(trace["traceparent"].get<std::string>().substr(3, 32) == incoming.substr(3, 32));
  }
  CHECK(kinds == std::vector<std::string>{"note", "alarm", "noted"});
  // The log: the access line, the callee's own line and its alarm's, all under the request.
  auto text = read_text(log);
  auto tagged = " request_id=" + id + " trace_id=" + incoming.substr(3, 32);
  auto line_with = [&](const std::string& what) {
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      if (line.find(what) != std::string::npos && line.find(tagged) != std::string::npos) return true;
    }
    return false;
  };
  CHECK(line_with("access 127.0.0.1 \"POST /objects/WHOAMI/caller/relay\" 202"));
  CHECK(line_with("whoami: note received"));
  CHECK(line_with("whoami: alarm fired"));
}

TEST_CASE("the README's configuration for the demo: booking needs a token and holds are rate limited and one origin may call") {
  TempDir dir;
  // The README's own block, with the secret where this test keeps it.
  std::string readme = read_text(std::filesystem::path(CAIRN_EXAMPLES_DIR) / ".." / "README.md");
  auto section = readme.find("## Securing the public listener");
  REQUIRE(section != std::string::npos);
  auto start = readme.find("```toml\n", section);
  REQUIRE(start != std::string::npos);
  start += 8;
  std::string config = readme.substr(start, readme.find("```", start) - start);
  const std::string secret = "the-demo's-jwt-secret-of-32-bytes-or-more";
  auto secret_file = dir.path() / "jwt-secret";
  { std::ofstream(secret_file) << secret; }
  auto at = config.find("/etc/cairn/jwt-secret");
  REQUIRE(at != std::string::npos);
  config.replace(at, std::string("/etc/cairn/jwt-secret").size(), secret_file.string());
  auto config_file = dir.path() / "cairn.toml";
  { std::ofstream(config_file) << config; }
  ServerProcess server(dir.path() / "data", {"--config", config_file.string()});
  HttpClient page(server.port());
  page.header("Origin", "https://seats.example.com");
  auto seats = page.request(http::verb::get, "/seats?flightId=SEC-1");
  CHECK(seats.status == 200);
  CHECK(seats.header("Access-Control-Allow-Origin") == "https://seats.example.com");
  auto booking = R"({"seatNumber":"1A","name":"Ann"})";
  auto anonymous = page.request(http::verb::post, "/book-seat?flightId=SEC-1", booking);
  CHECK(anonymous.status == 401);
  auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  json claims{{"sub", "ann"}, {"iss", "https://login.example.com/"}, {"aud", "seat-booking"}, {"exp", now + 60}};
  HttpClient signed_in(server.port());
  signed_in.header("Authorization", "Bearer " + hs256_token(claims, secret));
  CHECK(signed_in.request(http::verb::post, "/book-seat?flightId=SEC-1", booking).status == 200);
  // Holds: a burst of 5, then 429 (2 a second after that).
  int held = 0;
  int limited = 0;
  for (const char* seat : {"2A", "2B", "2C", "2D", "2E", "2F", "3A", "3B", "3C", "3D"}) {
    auto hold = page.request(http::verb::post, "/hold-seat?flightId=SEC-1", json{{"seatNumber", seat}}.dump());
    if (hold.status == 200) ++held;
    if (hold.status == 429) ++limited;
  }
  CHECK(held >= 5);
  CHECK(limited >= 1);
  CHECK(held + limited == 10);
}
