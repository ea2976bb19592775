// Hostile clients against the real cairn-server: slow and idle connections, too many
// connections, oversized requests and frames, bad UTF-8, odd methods, pipelining, names that
// try to escape. After each, the server still serves everyone else.
#include <doctest/doctest.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "clients.hpp"
#include "raw_socket.hpp"
#include "server_process.hpp"
#include "temp_dir.hpp"

using namespace cairn::testing;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

// The server still answers a new client.
void check_still_serving(std::uint16_t port) {
  auto reply = http_get(port, "/seats?flightId=alive");
  CHECK(reply.status == 200);
}

json body_of(const std::string& response) {
  auto at = response.find("\r\n\r\n");
  if (at == std::string::npos) return nullptr;
  return json::parse(response.substr(at + 4), nullptr, false);
}

// A path (relative to the data dir) the runtime's layout allows: the runtime's own _cairn/
// folder, or _shards/NNNN/FLIGHT/<64 hex>.sqlite[-wal|-shm] (and those folders), NNNN being
// the file's own shard (the top 10 bits of its id).
bool in_data_layout(const std::string& relative) {
  if (relative == "_cairn" || relative.rfind("_cairn/", 0) == 0 || relative == "_shards") return true;
  std::vector<std::string> parts;
  for (const auto& part : std::filesystem::path(relative)) parts.push_back(part.string());
  if (parts.size() < 2 || parts.size() > 4 || parts[0] != "_shards") return false;
  const std::string& shard = parts[1];
  if (shard.size() != 4 || shard.find_first_not_of("0123456789") != std::string::npos || std::stoi(shard) >= 1024) {
    return false;
  }
  if (parts.size() >= 3 && parts[2] != "FLIGHT") return false;
  if (parts.size() < 4) return true;
  const std::string& file = parts[3];
  if (file.size() < 64 + 7) return false;
  for (std::size_t i = 0; i < 64; ++i) {
    if (!std::isxdigit(static_cast<unsigned char>(file[i])) || std::isupper(static_cast<unsigned char>(file[i]))) {
      return false;
    }
  }
  if (static_cast<int>(std::stoul(file.substr(0, 3), nullptr, 16) >> 2) != std::stoi(shard)) return false;
  std::string rest = file.substr(64);
  return rest == ".sqlite" || rest == ".sqlite-wal" || rest == ".sqlite-shm";
}

// True if `html` has an inline event handler attribute (" onclick=" and the like).
bool has_inline_handler(const std::string& html) {
  for (std::size_t at = html.find(" on"); at != std::string::npos; at = html.find(" on", at + 1)) {
    std::size_t i = at + 3;
    while (i < html.size() && std::islower(static_cast<unsigned char>(html[i]))) ++i;
    if (i > at + 3 && i < html.size() && html[i] == '=') return true;
  }
  return false;
}

}  // namespace

TEST_CASE("a header that never ends is cut off after the header timeout, others are served") {
  TempDir dir;
  ServerProcess server(dir.path(), {"--header-timeout", "0.5"});
  RawSocket slow(server.port());
  auto start = Clock::now();
  REQUIRE(slow.send("GET /seats?flightId=1 HTTP/1.1\r\nHost: x\r\n"));
  // Trickle a header line every 100 ms, as slowloris does, until the server hangs up.
  bool cut = false;
  while (Clock::now() - start < 5s) {
    check_still_serving(server.port());
    if (!slow.send("X-Slow: 1\r\n")) {
      cut = true;
      break;
    }
    slow.read_until_closed(100ms);
    if (slow.closed()) {
      cut = true;
      break;
    }
  }
  auto took = Clock::now() - start;
  CHECK(cut);
  CHECK(took >= 400ms);
  CHECK(took < 3s);
  check_still_serving(server.port());
}

TEST_CASE("an idle keep-alive connection is closed after the keep-alive timeout") {
  TempDir dir;
  ServerProcess server(dir.path(), {"--keep-alive-timeout", "0.5"});
  RawSocket idle(server.port());
  REQUIRE(idle.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto first = idle.read_responses(1, 5s);
  CHECK(status_of(first) == 200);
  auto start = Clock::now();
  idle.read_until_closed(5s);
  CHECK(idle.closed());
  auto took = Clock::now() - start;
  CHECK(took >= 400ms);
  CHECK(took < 3s);
  check_still_serving(server.port());
}

TEST_CASE("past --max-connections a new connection gets 503 at once and a freed slot serves again") {
  TempDir dir;
  ServerProcess server(dir.path(), {"--max-connections", "4"});
  std::vector<std::unique_ptr<RawSocket>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<RawSocket>(server.port()));
    REQUIRE(held.back()->send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    CHECK(status_of(held.back()->read_responses(1, 5s)) == 200);  // each is open and counted
  }
  RawSocket refused(server.port());
  auto start = Clock::now();
  auto answer = refused.read_until_closed(5s);
  CHECK(Clock::now() - start < 1s);
  CHECK(refused.closed());
  CHECK(status_of(answer) == 503);
  CHECK(answer.find("Retry-After: 1") != std::string::npos);
  auto body = body_of(answer);
  REQUIRE(body.is_object());
  CHECK(body["status"] == 503);
  CHECK(body["retryable"] == true);
  CHECK(body["error"].get<std::string>().find("--max-connections") != std::string::npos);

  held.pop_back();  // one slot is free again
  std::optional<HttpReply> served;
  for (auto deadline = Clock::now() + 5s; !served && Clock::now() < deadline;) {
    try {
      auto reply = http_get(server.port(), "/healthz");
      if (reply.status == 200) served = reply;
    } catch (const std::exception&) {
    }
    if (!served) std::this_thread::sleep_for(20ms);  // the server notices the close
  }
  REQUIRE(served);
  auto health = json::parse(served->body);
  CHECK(health["connections_refused"].get<int>() >= 1);
}

TEST_CASE("oversized request lines and headers are 431, an oversized body 413") {
  TempDir dir;
  ServerProcess server(dir.path());
  {
    RawSocket client(server.port());
    client.send("GET /seats?flightId=" + std::string(20'000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
    auto answer = client.read_until_closed(5s);
    CHECK(status_of(answer) == 431);
    CHECK(body_of(answer)["error"].get<std::string>().find("16384") != std::string::npos);
  }
  {
    RawSocket client(server.port());
    client.send("GET /seats?flightId=1 HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20'000, 'b') +
                "\r\n\r\n");
    CHECK(status_of(client.read_until_closed(5s)) == 431);
  }
  {
    HttpClient client(server.port());
    auto reply = client.request(http::verb::post, "/book-seat?flightId=1",
                                std::string(70'000, ' ') + "{}");
    CHECK(reply.status == 413);
    CHECK(json::parse(reply.body)["error"].get<std::string>().find("65536") != std::string::npos);
  }
  check_still_serving(server.port());
}

TEST_CASE("a WebSocket frame over the limit is closed 1009 and invalid UTF-8 text 1007") {
  TempDir dir;
  ServerProcess server(dir.path());
  {
    WsClient ws(server.port(), "/ws?flightId=frames");
    ws.send(std::string((1 << 20) + 1, 'x'));
    CHECK(ws.read_until_closed() == 1009);
  }
  {
    WsClient ws(server.port(), "/ws?flightId=frames");
    ws.send(std::string("{\"type\":\"\xff\xfe\"}"));
    CHECK(ws.read_until_closed() == 1007);
  }
  // The flight and its other sockets are unharmed.
  WsClient ws(server.port(), "/ws?flightId=frames");
  ws.send(R"({"type":"getSeats"})");
  auto seats = ws.read();
  REQUIRE(seats);
  CHECK(json::parse(*seats).size() == 60);
}

TEST_CASE("unknown and wrong methods are 405 with Allow") {
  TempDir dir;
  ServerProcess server(dir.path());
  HttpClient client(server.port());
  struct Case {
    std::string method, target, allow;
  };
  for (const auto& c : std::vector<Case>{{"BREW", "/seats?flightId=1", "GET"},
                                         {"DELETE", "/book-seat?flightId=1", "POST"},
                                         {"PUT", "/healthz", "GET, HEAD"},
                                         {"POST", "/index.html", "GET, HEAD"}}) {
    CAPTURE(c.method);
    CAPTURE(c.target);
    auto reply = client.request(c.method, c.target);
    CHECK(reply.status == 405);
    CHECK(reply.header("Allow") == c.allow);
    CHECK(json::parse(reply.body)["status"] == 405);
  }
}

TEST_CASE("pipelined requests are answered in order on one connection") {
  TempDir dir;
  ServerProcess server(dir.path());
  RawSocket client(server.port());
  std::string book = R"({"seatNumber":"1A","name":"Pipe"})";
  client.send("GET /seats?flightId=pipe HTTP/1.1\r\nHost: x\r\n\r\n"
              "POST /book-seat?flightId=pipe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              "Content-Length: " + std::to_string(book.size()) + "\r\n\r\n" + book +
              "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
              "GET /seats?flightId=pipe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  auto text = client.read_until_closed(10s);
  REQUIRE(RawSocket::complete_responses(text) == 4);
  std::vector<json> bodies;
  std::size_t at = 0;
  for (int i = 0; i < 4; ++i) {
    CHECK(status_of(text.substr(at)) == 200);
    auto end = text.find("\r\n\r\n", at);
    auto cl = text.find("Content-Length: ", at);
    std::size_t length = std::stoul(text.substr(cl + 16));
    bodies.push_back(json::parse(text.substr(end + 4, length)));
    at = end + 4 + length;
  }
  CHECK(bodies[0][0]["occupant"].is_null());
  CHECK(bodies[1]["status"] == 200);
  CHECK(bodies[2]["status"] == "ok");
  CHECK(bodies[3][0]["occupant"] == "Pipe");
}

TEST_CASE("hostile actor names are refused or hashed, never a path outside the data dir") {
  TempDir dir;
  ServerProcess server(dir.path());
  HttpClient client(server.port());
  for (const std::string& bad : {std::string("/seats?flightId="), "/seats?flightId=" + std::string(257, 'n'),
                                 std::string("/seats?flightId=a%00b"), std::string("/seats?flightId=%01"),
                                 std::string("/seats?flightId=%zz"), std::string("/seats?flightId=%"),
                                 std::string("/objects/FLIGHT//seats"),
                                 "/objects/FLIGHT/" + std::string(300, 'x') + "/seats",
                                 std::string("/objects/FLIGHT/a%00/seats")}) {
    CAPTURE(bad);
    auto reply = client.request(http::verb::get, bad);
    CHECK(reply.status == 400);
    CHECK(json::parse(reply.body)["status"] == 400);
  }
  // Names that look like paths are just names: served, stored under their hash.
  for (const std::string& odd : {std::string("/seats?flightId=../../etc/passwd"),
                                 std::string("/seats?flightId=%2e%2e%2f%2e%2e%2f"),
                                 std::string("/seats?flightId=..%5C..%5Cx"),
                                 std::string("/objects/FLIGHT/%2e%2e/seats"),
                                 std::string("/objects/FLIGHT/..%2F..%2Ftmp/seats"),
                                 "/seats?flightId=" + std::string(256, 'n')}) {
    CAPTURE(odd);
    CHECK(client.request(http::verb::get, odd).status == 200);
  }
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.path())) {
    auto relative = std::filesystem::relative(entry.path(), dir.path()).string();
    CAPTURE(relative);
    CHECK(in_data_layout(relative));
  }
  // Static files never leave public/.
  for (const std::string& escape : {std::string("/../CMakeLists.txt"), std::string("/%2e%2e/CMakeLists.txt"),
                                    std::string("/..%2fCMakeLists.txt"), std::string("/%2e%2e%5cCMakeLists.txt"),
                                    std::string("//etc/passwd")}) {
    CAPTURE(escape);
    CHECK(client.request(http::verb::get, escape).status == 404);
  }
  check_still_serving(server.port());
}

TEST_CASE("every response carries nosniff and a Content-Security-Policy the page satisfies") {
  TempDir dir;
  // The default policy: this origin only, no plugins, no framing; a page's own inline code
  // allowed (a user's --public-dir works as written).
  ServerProcess server(dir.path());
  HttpClient client(server.port());
  for (std::string target : {"/", "/app.js", "/style.css", "/seats?flightId=1", "/healthz",
                                    "/nope", "/seats"}) {
    CAPTURE(target);
    auto reply = client.request(http::verb::get, target);
    CHECK(reply.header("X-Content-Type-Options") == "nosniff");
    auto csp = reply.header("Content-Security-Policy");
    CHECK(csp.find("default-src 'self'") != std::string::npos);
    CHECK(csp.find("object-src 'none'") != std::string::npos);
    CHECK(csp.find("frame-ancestors 'none'") != std::string::npos);
    CHECK(csp.find("unsafe-eval") == std::string::npos);
  }
  // strict: no inline code at all; none: no header; anything else is sent as written.
  for (auto [setting, wanted] : std::vector<std::pair<std::string, std::string>>{
           {"strict", "default-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; "
                      "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"},
           {"none", ""},
           {"default-src 'none'", "default-src 'none'"}}) {
    CAPTURE(setting);
    TempDir other;
    ServerProcess configured(other.path(), {"--content-security-policy", setting});
    auto reply = HttpClient(configured.port()).request(http::verb::get, "/");
    CHECK(reply.header("Content-Security-Policy") == wanted);
  }
  // The page has no inline script or style for the policy to block.
  auto page = client.request(http::verb::get, "/").body;
  CHECK(page.find("<script type=\"module\" src=\"app.js\"></script>") != std::string::npos);
  // The module it imports (the gateway's own /cairn-client.js) is a script of 'self' too.
  auto module = client.request(http::verb::get, "/cairn-client.js");
  CHECK(module.status == 200);
  CHECK(module.header("Content-Type") == "text/javascript; charset=utf-8");
  CHECK(module.header("X-Content-Type-Options") == "nosniff");
  CHECK(page.find("<script>") == std::string::npos);
  CHECK(page.find("<style>") == std::string::npos);
  CHECK(page.find("style=\"") == std::string::npos);
  CHECK_FALSE(has_inline_handler(page));
}
