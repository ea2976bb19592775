// The admin listener of the real cairn-server: the token, metrics after known traffic, the
// names index across evictions and restarts, read-only SQL, export -> delete -> import, a
// backup under booking load restored into a new data directory, and cairnctl end to end.
#include <doctest/doctest.h>

#include <sqlite3.h>

#include <algorithm>
#include <csignal>
#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "cairn/admin.hpp"
#include "clients.hpp"
#include "process_facts.hpp"
#include "run_program.hpp"
#include "server_process.hpp"
#include "temp_dir.hpp"

using namespace cairn::testing;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::string token = "test-admin-token-0123456789";

struct AdminServer {
  TempDir dir;
  std::filesystem::path data = dir.path() / "data";
  std::filesystem::path token_file = dir.path() / "token";
  std::unique_ptr<ServerProcess> server;

  explicit AdminServer(std::vector<std::string> extra = {}) {
    std::ofstream(token_file) << token << "\n";
    start(std::move(extra));
  }
  void start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--admin-port", "0", "--admin-token-file", token_file.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    server = std::make_unique<ServerProcess>(data, args);
  }
  std::uint16_t port() const { return server->port(); }
  std::uint16_t admin_port() const { return server->admin_port(); }

  HttpReply admin(http::verb method, const std::string& target, const std::string& body = {},
                  const std::string& type = "application/json") const {
    HttpClient client(admin_port());
    client.header("Authorization", "Bearer " + token);
    return client.request(method, target, body, type);
  }
  json admin_json(http::verb method, const std::string& target, const std::string& body = {}) const {
    auto reply = admin(method, target, body);
    INFO(target << " -> " << reply.status << " " << reply.body);
    REQUIRE(reply.status / 100 == 2);
    return json::parse(reply.body);
  }
  // The value of one sample of /metrics (0 if absent).
  double metric(const std::string& sample) const {
    return metric_sample(admin(http::verb::get, "/metrics").body, sample);
  }
};

bool book(std::uint16_t port, const std::string& flight, const std::string& seat, const std::string& name) {
  return http_post(port, "/book-seat?flightId=" + flight, json{{"seatNumber", seat}, {"name", name}}.dump())
             .status == 200;
}

std::string occupant(std::uint16_t port, const std::string& flight, const std::string& seat) {
  auto seats = json::parse(http_get(port, "/seats?flightId=" + flight).body);
  for (const auto& s : seats) {
    if (s["seatNumber"] == seat) return s["occupant"].is_string() ? s["occupant"].get<std::string>() : "";
  }
  return "?";
}

std::vector<std::string> listed(const json& page) {
  std::vector<std::string> out;
  for (const auto& a : page["actors"]) out.push_back(a["name"].get<std::string>());
  return out;
}

std::string integrity(const std::filesystem::path& file) {
  sqlite3* db = nullptr;
  std::string verdict = "cannot open";
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      verdict = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return verdict;
}

}  // namespace

TEST_CASE("the admin listener is its own port and every admin route needs the token") {
  AdminServer s;
  REQUIRE(s.admin_port() != 0);
  CHECK(s.admin_port() != s.port());
  REQUIRE(book(s.port(), "t1", "1A", "Ann"));
  const std::vector<std::pair<http::verb, std::string>> routes{
      {http::verb::get, "/metrics"},
      {http::verb::get, "/admin/bindings"},
      {http::verb::get, "/admin/bindings/FLIGHT/actors"},
      {http::verb::get, "/admin/bindings/FLIGHT/actors/t1"},
      {http::verb::delete_, "/admin/bindings/FLIGHT/actors/t1"},
      {http::verb::post, "/admin/bindings/FLIGHT/actors/t1/query"},
      {http::verb::get, "/admin/bindings/FLIGHT/actors/t1/export"},
      {http::verb::put, "/admin/bindings/FLIGHT/actors/t2/import"},
      {http::verb::post, "/admin/bindings/FLIGHT/actors/t1/evict"},
      {http::verb::post, "/admin/backup"},
      {http::verb::get, "/admin/nothing-here"},
  };
  for (const auto& [method, target] : routes) {
    CAPTURE(target);
    for (const char* header : {"", "Bearer wrong-token-0123456789abc", "Basic dGVzdA==", "Bearer "}) {
      HttpClient client(s.admin_port());
      if (*header != '\0') client.header("Authorization", header);
      auto reply = client.request(method, target, R"({"sql":"DELETE FROM seats","dir":"/tmp/x"})");
      CHECK(reply.status == 401);
      CHECK(reply.header("WWW-Authenticate").find("Bearer") == 0);
      CHECK(json::parse(reply.body)["status"] == 401);
    }
  }
  // Nothing the refused requests asked for happened.
  CHECK(occupant(s.port(), "t1", "1A") == "Ann");
  CHECK(http_get(s.admin_port(), "/healthz").status == 200);
  // The inspector's own files need no token, and say what they are (with their charset).
  for (auto [file, type] : std::vector<std::pair<std::string, std::string>>{
           {"/", "text/html; charset=utf-8"},
           {"/inspector.js", "text/javascript; charset=utf-8"},
           {"/inspector.css", "text/css; charset=utf-8"}}) {
    CAPTURE(file);
    auto page = http_get(s.admin_port(), file);
    CHECK(page.status == 200);
    CHECK(page.header("Content-Type") == type);
  }
  // The public listener serves none of it.
  CHECK(http_get(s.port(), "/metrics").status == 404);
  CHECK(http_get(s.port(), "/admin/bindings").status == 404);
  // The admin listener serves no actor.
  CHECK(s.admin(http::verb::get, "/seats?flightId=t1").status == 404);
  // With the token: bindings.
  auto bindings = s.admin_json(http::verb::get, "/admin/bindings");
  CHECK(bindings["bindings"][0]["binding"] == "FLIGHT");
  CHECK(bindings["bindings"][0]["actors"] == 1);
}

TEST_CASE("metrics move with known traffic: a booking, a hibernation") {
  AdminServer s;
  REQUIRE(http_get(s.port(), "/seats?flightId=m1").status == 200);
  const std::string booked = R"(cairn_http_requests_total{listener="public",route="/book-seat",status="200"})";
  const std::string conflict = R"(cairn_http_requests_total{listener="public",route="/book-seat",status="409"})";
  double events = s.metric("cairn_events_total");
  double commits = s.metric("cairn_commits_total");
  double commit_count = s.metric("cairn_commit_duration_seconds_count");
  CHECK(s.metric(booked) == 0);
  REQUIRE(book(s.port(), "m1", "2B", "Bo"));
  REQUIRE(!book(s.port(), "m1", "2B", "Cy"));  // taken: 409
  CHECK(s.metric(booked) == 1);
  CHECK(s.metric(conflict) == 1);
  CHECK(s.metric("cairn_events_total") >= events + 2);
  CHECK(s.metric("cairn_commits_total") >= commits + 1);
  CHECK(s.metric("cairn_commit_duration_seconds_count") >= commit_count + 1);
  CHECK(s.metric(R"(cairn_http_request_duration_seconds_count{listener="public",route="/book-seat"})") == 2);
  CHECK(s.metric(R"(cairn_actors{binding="FLIGHT"})") == 1);
  // A WebSocket keeps the instance's place while it is evicted: live -> hibernated.
  WsClient socket(s.port(), "/ws?flightId=m1");
  CHECK(s.metric(R"(cairn_instances{binding="FLIGHT",state="live"})") == 1);
  CHECK(s.metric(R"(cairn_instances{binding="FLIGHT",state="hibernated"})") == 0);
  CHECK(s.metric(R"(cairn_websockets{binding="FLIGHT"})") == 1);
  double forced = s.metric(R"(cairn_evictions_total{reason="forced"})");
  CHECK(s.admin_json(http::verb::post, "/admin/bindings/FLIGHT/actors/m1/evict")["evicted"] == true);
  bool moved = false;
  for (int i = 0; i < 200 && !moved; ++i) {
    moved = s.metric(R"(cairn_instances{binding="FLIGHT",state="hibernated"})") == 1 &&
            s.metric(R"(cairn_instances{binding="FLIGHT",state="live"})") == 0;
    if (!moved) std::this_thread::sleep_for(10ms);
  }
  CHECK(moved);
  CHECK(s.metric(R"(cairn_evictions_total{reason="forced"})") == forced + 1);
  CHECK(s.metric(R"(cairn_websockets{binding="FLIGHT"})") == 1);
  CHECK(s.metric("process_open_fds") > 0);
  CHECK(s.metric(R"(cairn_database_bytes{binding="FLIGHT"})") > 0);
  auto text = s.admin(http::verb::get, "/metrics");
  CHECK(text.content_type.find("text/plain; version=0.0.4") == 0);
  CHECK(text.body.find("# TYPE cairn_commit_duration_seconds histogram") != std::string::npos);
  CHECK(text.body.find("# TYPE cairn_alarm_lateness_seconds histogram") != std::string::npos);
}

TEST_CASE("an actor's recent events and the busiest and failing actors through the admin listener") {
  AdminServer s;
  REQUIRE(http_get(s.port(), "/seats?flightId=r1").status == 200);
  REQUIRE(book(s.port(), "r1", "1A", "Al"));
  REQUIRE(!book(s.port(), "r1", "1A", "Bea"));  // taken: 409
  REQUIRE(http_get(s.port(), "/seats?flightId=r2").status == 200);
  auto actor = s.admin_json(http::verb::get, "/admin/bindings/FLIGHT/actors/r1");
  auto events = actor["recent_events"];
  REQUIRE(events.size() == 3);
  CHECK(events[0]["kind"] == "fetch");
  CHECK(events[0]["what"] == "POST /book-seat");
  CHECK(events[0]["status"] == 409);
  CHECK(events[1]["status"] == 200);
  CHECK(events[2]["what"] == "GET /seats");
  CHECK(events[2]["batch"].get<int>() >= 1);
  CHECK(actor["now_ms"].get<std::int64_t>() >= events[0]["at_ms"].get<std::int64_t>());

  auto top = s.admin_json(http::verb::get, "/admin/top?seconds=60&limit=5");
  CHECK(top["seconds"] == 60);
  REQUIRE(top["busiest"].size() == 2);
  CHECK(top["busiest"][0]["name"] == "r1");
  CHECK(top["busiest"][0]["binding"] == "FLIGHT");
  CHECK(top["busiest"][0]["events"] == 3);
  CHECK(top["busiest"][1]["name"] == "r2");
  CHECK(top["failing"].empty());  // a 409 is the caller's mistake, not the actor's failure
  CHECK(top["slowest"][0]["p99_ms"].get<double>() > 0);
  CHECK(s.admin_json(http::verb::get, "/admin/top")["seconds"] == 60);

  for (const char* bad : {"/admin/top?seconds=5", "/admin/top?seconds=301", "/admin/top?seconds=99999999999999999999",
                          "/admin/top?limit=0", "/admin/top?limit=101", "/admin/top?limit=ten"}) {
    auto reply = s.admin(http::verb::get, bad);
    INFO(bad << " -> " << reply.body);
    CHECK(reply.status == 400);
    CHECK(json::parse(reply.body)["error"].is_string());
  }
  auto wrong = s.admin(http::verb::post, "/admin/top");
  CHECK(wrong.status == 405);
  CHECK(wrong.body.find("GET /admin/top") != std::string::npos);
}

TEST_CASE("a read-only query reads rows, and one that tries to write fails and changes nothing") {
  AdminServer s;
  REQUIRE(book(s.port(), "q1", "3C", "Di"));
  auto rows = s.admin_json(http::verb::post, "/admin/bindings/FLIGHT/actors/q1/query",
                           R"({"sql":"SELECT seatId, occupant FROM seats WHERE occupant IS NOT NULL"})");
  CHECK(rows["columns"] == json::array({"seatId", "occupant"}));
  CHECK(rows["rows"] == json::array({json::array({"3C", "Di"})}));
  auto limited = s.admin_json(http::verb::post, "/admin/bindings/FLIGHT/actors/q1/query",
                              R"({"sql":"SELECT seatId FROM seats","max_rows":5})");
  CHECK(limited["rows"].size() == 5);
  CHECK(limited["truncated"] == true);
  for (const char* sql : {"UPDATE seats SET occupant = 'Eve'", "DELETE FROM seats", "DROP TABLE seats",
                          "PRAGMA query_only = 0", "SELECT 1; DELETE FROM seats"}) {
    CAPTURE(sql);
    auto refused = s.admin(http::verb::post, "/admin/bindings/FLIGHT/actors/q1/query", json{{"sql", sql}}.dump());
    CHECK(refused.status == 400);
    CHECK(json::parse(refused.body)["error"].get<std::string>().size() > 0);
  }
  CHECK(occupant(s.port(), "q1", "3C") == "Di");
  CHECK(json::parse(http_get(s.port(), "/seats?flightId=q1").body).size() == 60);
  CHECK(s.admin(http::verb::post, "/admin/bindings/FLIGHT/actors/q1/query", "not json").status == 400);
  CHECK(s.admin(http::verb::post, "/admin/bindings/FLIGHT/actors/q1/query", R"({"sql":"SELECT 1","max_rows":0})").status == 400);
  CHECK(s.admin(http::verb::post, "/admin/bindings/FLIGHT/actors/nobody/query", R"({"sql":"SELECT 1"})").status == 404);
  CHECK(s.admin(http::verb::get, "/admin/bindings/FLIGHT/actors/q1/query").status == 405);
  CHECK(s.admin(http::verb::get, "/admin/bindings/NOPE/actors").status == 404);
}

TEST_CASE("actors are listed by name, evicted ones and ones made before a restart included") {
  AdminServer s;
  for (const char* flight : {"LX-1", "LX-2", "BA-7", "LX-3"}) REQUIRE(book(s.port(), flight, "1A", "N"));
  s.admin_json(http::verb::post, "/admin/bindings/FLIGHT/actors/LX-1/evict");
  auto lx = s.admin_json(http::verb::get, "/admin/bindings/FLIGHT/actors?prefix=LX-");
  CHECK(listed(lx) == std::vector<std::string>{"LX-1", "LX-2", "LX-3"});
  s.server->stop();
  s.start();
  auto page = s.admin_json(http::verb::get, "/admin/bindings/FLIGHT/actors?limit=2");
  CHECK(listed(page) == std::vector<std::string>{"BA-7", "LX-1"});
  REQUIRE(page["next"] == "LX-1");
  for (const auto& a : page["actors"]) CHECK(a["live"] == false);
  auto rest = s.admin_json(http::verb::get, "/admin/bindings/FLIGHT/actors?limit=2&after=LX-1");
  CHECK(listed(rest) == std::vector<std::string>{"LX-2", "LX-3"});
  auto inspected = s.admin_json(http::verb::get, "/admin/bindings/FLIGHT/actors/LX-2");
  CHECK(inspected["live"] == false);
  CHECK(inspected["instance"] == false);  // looked at without being woken
  CHECK(inspected["database_bytes"].get<long>() > 0);
  CHECK(s.admin_json(http::verb::get, "/admin/bindings")["bindings"][0]["live"] == 0);
  CHECK(s.admin(http::verb::get, "/admin/bindings/FLIGHT/actors?limit=x").status == 400);
  CHECK(s.admin(http::verb::get, "/admin/bindings/FLIGHT/actors/never-booked").status == 404);
}

TEST_CASE("export, delete, import: the same rows come back, and delete closes the sockets") {
  AdminServer s;
  for (const char* seat : {"1A", "4D", "9F"}) REQUIRE(book(s.port(), "rt", seat, std::string("P") + seat));
  const std::string all = R"({"sql":"SELECT * FROM seats ORDER BY seatId","max_rows":100})";
  auto before = s.admin_json(http::verb::post, "/admin/bindings/FLIGHT/actors/rt/query", all);
  auto exported = s.admin(http::verb::get, "/admin/bindings/FLIGHT/actors/rt/export");
  REQUIRE(exported.status == 200);
  CHECK(exported.content_type == "application/vnd.sqlite3");
  CHECK(exported.body.substr(0, 15) == "SQLite format 3");
  WsClient socket(s.port(), "/ws?flightId=rt");
  auto deleted = s.admin_json(http::verb::delete_, "/admin/bindings/FLIGHT/actors/rt");
  CHECK(deleted["deleted"] == true);
  CHECK(deleted["sockets_closed"] == 1);
  CHECK(socket.read_until_closed() == 4004);
  CHECK(s.admin(http::verb::get, "/admin/bindings/FLIGHT/actors/rt").status == 404);
  CHECK(listed(s.admin_json(http::verb::get, "/admin/bindings/FLIGHT/actors")).empty());
  auto imported = s.admin(http::verb::put, "/admin/bindings/FLIGHT/actors/rt/import", exported.body,
                          "application/vnd.sqlite3");
  INFO(imported.body);
  REQUIRE(imported.status == 201);
  CHECK(s.admin_json(http::verb::post, "/admin/bindings/FLIGHT/actors/rt/query", all) == before);
  CHECK(occupant(s.port(), "rt", "4D") == "P4D");
  // Into a flight that has data, or garbage: refused, nothing changes.
  REQUIRE(book(s.port(), "other", "2A", "Z"));
  CHECK(s.admin(http::verb::put, "/admin/bindings/FLIGHT/actors/other/import", exported.body).status == 409);
  CHECK(s.admin(http::verb::put, "/admin/bindings/FLIGHT/actors/fresh/import", "garbage").status == 400);
  CHECK(occupant(s.port(), "other", "2A") == "Z");
  CHECK(s.admin(http::verb::delete_, "/admin/bindings/FLIGHT/actors/never-made").status == 404);
}

TEST_CASE("a backup taken under booking load restores every booking acknowledged before it") {
  AdminServer s;
  constexpr int flights = 16;
  std::mutex mutex;
  std::vector<std::tuple<std::chrono::steady_clock::time_point, std::string, std::string, std::string>> acked;
  std::atomic<bool> stop{false};
  std::vector<std::thread> bookers;
  for (int t = 0; t < 4; ++t) {
    bookers.emplace_back([&, t] {
      int i = 0;
      auto until = std::chrono::steady_clock::now() + 20s;
      while (!stop && std::chrono::steady_clock::now() < until && i < 2000) {
        // Each thread its own rows (t+1, t+5, t+9): no two threads race for a seat.
        int rows = t < 2 ? 3 : 2;
        if (i >= flights * rows * 6) break;
        std::string flight = "bk-" + std::to_string(i % flights);
        std::string seat = std::to_string(t + 1 + 4 * (i / flights % rows)) + "ABCDEF"[i / (flights * rows) % 6];
        std::string name = "t" + std::to_string(t) + "-" + std::to_string(i);
        ++i;
        if (book(s.port(), flight, seat, name)) {
          std::lock_guard lock(mutex);
          acked.emplace_back(std::chrono::steady_clock::now(), flight, seat, name);
        }
      }
    });
  }
  // The backup starts once every flight exists (has an acknowledged booking), whatever the
  // machine's speed; the load goes on during it.
  auto flights_booked = [&] {
    std::lock_guard lock(mutex);
    std::set<std::string> seen;
    for (const auto& entry : acked) seen.insert(std::get<1>(entry));
    return seen.size();
  };
  for (auto until = std::chrono::steady_clock::now() + 20s;
       flights_booked() < flights && std::chrono::steady_clock::now() < until;) {
    std::this_thread::sleep_for(5ms);
  }
  REQUIRE(flights_booked() == flights);
  auto backup_started = std::chrono::steady_clock::now();
  auto backup_dir = s.dir.path() / "backup";
  auto report = s.admin_json(http::verb::post, "/admin/backup", json{{"dir", backup_dir.string()}}.dump());
  std::this_thread::sleep_for(200ms);
  stop = true;
  for (auto& t : bookers) t.join();
  CHECK(report["actors"] == flights);
  CHECK(s.admin(http::verb::post, "/admin/backup", json{{"dir", backup_dir.string()}}.dump()).status == 409);
  CHECK(s.admin(http::verb::post, "/admin/backup", R"({"dir":"relative/path"})").status == 400);
  s.server->stop();

  auto restored = s.dir.path() / "restored";
  auto restore = run_program({CAIRNCTL_PATH, "restore", backup_dir.string(), "--data-dir", restored.string()}, 60s);
  INFO(restore.output);
  REQUIRE(restore.exit_status == 0);
  std::size_t checked = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(restored)) {
    if (entry.path().extension() != ".sqlite") continue;
    CHECK(integrity(entry.path()) == "ok");
    ++checked;
  }
  CHECK(checked == flights + 2);  // the flights, the names and alarm indexes
  ServerProcess again(restored);
  std::size_t before_backup = 0;
  for (const auto& [at, flight, seat, name] : acked) {
    if (at >= backup_started) continue;
    ++before_backup;
    CAPTURE(flight);
    CAPTURE(seat);
    CHECK(occupant(again.port(), flight, seat) == name);
  }
  CHECK(before_backup > 0);
  CHECK(acked.size() > before_backup);  // the load went on while the backup ran
  MESSAGE("bookings acknowledged before the backup: " << before_backup << " of " << acked.size());
}

TEST_CASE("an actor brought back to a moment over HTTP and with cairnctl, and the refusals") {
  AdminServer s({"--history-retention", "1h"});
  auto unix_now = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  };
  auto pause = [] { std::this_thread::sleep_for(20ms); };
  REQUIRE(http_get(s.port(), "/seats?flightId=pitr").status == 200);  // the flight is made
  pause();
  auto empty_at = unix_now();
  pause();
  REQUIRE(book(s.port(), "pitr", "1A", "Ann"));
  pause();
  auto booked_at = unix_now();
  pause();
  REQUIRE(book(s.port(), "pitr", "2B", "Bob"));
  const std::string route = "/admin/bindings/FLIGHT/actors/pitr/restore";
  auto restored = s.admin_json(http::verb::post, route, json{{"at", cairn::format_moment(booked_at)}}.dump());
  CHECK(restored["restored_to_ms"] == booked_at);
  CHECK(restored["changes_undone"] == 1);
  CHECK(occupant(s.port(), "pitr", "1A") == "Ann");
  CHECK(occupant(s.port(), "pitr", "2B") == "");
  // Bookings go on after it, and the history shows in the inspection.
  REQUIRE(book(s.port(), "pitr", "3C", "Cy"));
  auto facts = s.admin_json(http::verb::get, "/admin/bindings/FLIGHT/actors/pitr")["history"];
  CHECK(facts["on"] == true);
  CHECK(facts["changes"].get<int>() >= 3);
  // Refusals: a clear 4xx, and nothing changed.
  for (auto [body, status] : std::vector<std::pair<std::string, int>>{
           {R"({"at": "yesterday"})", 400},
           {R"({})", 400},
           {R"({"at": -5})", 400},
           {"not json", 400},
           {json{{"at", unix_now() + 3'600'000}}.dump(), 400},
           {json{{"at", empty_at - 3'600'000}}.dump(), 409}}) {
    CAPTURE(body);
    auto reply = s.admin(http::verb::post, route, body);
    CHECK(reply.status == status);
    CHECK(json::parse(reply.body)["status"] == status);
  }
  CHECK(s.admin(http::verb::get, route).status == 405);
  CHECK(s.admin(http::verb::post, "/admin/bindings/FLIGHT/actors/nobody/restore", R"({"at": 1})").status == 404);
  CHECK(occupant(s.port(), "pitr", "3C") == "Cy");
  // cairnctl: back to before any booking, by RFC 3339 time.
  std::string url = "http://127.0.0.1:" + std::to_string(s.admin_port());
  auto ctl = run_program({CAIRNCTL_PATH, "--url", url, "--token-file", s.token_file.string(), "restore", "FLIGHT",
                          "pitr", "--at", cairn::format_moment(empty_at)},
                         60s);
  CHECK(ctl.exit_status == 0);
  CHECK(ctl.output.find("restored FLIGHT 'pitr' to " + cairn::format_moment(empty_at)) != std::string::npos);
  for (const char* seat : {"1A", "2B", "3C"}) CHECK(occupant(s.port(), "pitr", seat) == "");
  auto no_time = run_program({CAIRNCTL_PATH, "--url", url, "--token-file", s.token_file.string(), "restore", "FLIGHT", "pitr"}, 30s);
  CHECK(no_time.exit_status == 1);
  CHECK(no_time.output.find("needs --at") != std::string::npos);
  // A server without history says how to get one.
  AdminServer plain;
  REQUIRE(book(plain.port(), "nohist", "1A", "Ann"));
  auto none = plain.admin(http::verb::post, "/admin/bindings/FLIGHT/actors/nohist/restore", json{{"at", unix_now()}}.dump());
  CHECK(none.status == 409);
  CHECK(none.body.find("--history-retention") != std::string::npos);
}

TEST_CASE("cairnctl end to end against a real server") {
  AdminServer s;
  REQUIRE(book(s.port(), "ctl-1", "5E", "Fay"));
  REQUIRE(book(s.port(), "ctl-2", "6F", "Gus"));
  std::string url = "http://127.0.0.1:" + std::to_string(s.admin_port());
  auto ctl = [&](std::vector<std::string> args) {
    std::vector<std::string> all{CAIRNCTL_PATH, "--url", url, "--token-file", s.token_file.string()};
    all.insert(all.end(), args.begin(), args.end());
    return run_program(all, 60s);
  };
  auto bindings = ctl({"bindings"});
  CHECK(bindings.exit_status == 0);
  CHECK(bindings.output.find("FLIGHT") != std::string::npos);
  auto list = ctl({"actors", "list", "FLIGHT", "--prefix", "ctl-"});
  CHECK(list.exit_status == 0);
  CHECK(list.output.find("ctl-1") != std::string::npos);
  CHECK(list.output.find("ctl-2") != std::string::npos);
  auto inspect = ctl({"actors", "inspect", "FLIGHT", "ctl-1"});
  CHECK(inspect.exit_status == 0);
  CHECK(inspect.output.find("seats") != std::string::npos);
  auto sql = ctl({"sql", "FLIGHT", "ctl-1", "SELECT seatId, occupant FROM seats WHERE occupant IS NOT NULL"});
  CHECK(sql.exit_status == 0);
  CHECK(sql.output.find("seatId  occupant") != std::string::npos);
  CHECK(sql.output.find("5E      Fay") != std::string::npos);
  auto write = ctl({"sql", "FLIGHT", "ctl-1", "DELETE FROM seats"});
  CHECK(write.exit_status == 1);
  CHECK(write.output.rfind("cairnctl: 400: ", 0) == 0);
  auto file = (s.dir.path() / "ctl-1.sqlite").string();
  CHECK(ctl({"export", "FLIGHT", "ctl-1", file}).exit_status == 0);
  CHECK(ctl({"delete", "FLIGHT", "ctl-1"}).exit_status == 0);
  CHECK(ctl({"actors", "inspect", "FLIGHT", "ctl-1"}).exit_status == 1);
  CHECK(ctl({"import", "FLIGHT", "ctl-1", file}).exit_status == 0);
  CHECK(occupant(s.port(), "ctl-1", "5E") == "Fay");
  auto evict = ctl({"evict", "FLIGHT", "ctl-2"});
  CHECK(evict.exit_status == 0);
  CHECK(evict.output.find("evicted") != std::string::npos);
  auto backup_dir = (s.dir.path() / "ctl-backup").string();
  auto backup = ctl({"backup", backup_dir});
  CHECK(backup.exit_status == 0);
  CHECK(std::filesystem::exists(std::filesystem::path(backup_dir) / "manifest.json"));
  auto restored = (s.dir.path() / "ctl-restored").string();
  CHECK(ctl({"restore", backup_dir, "--data-dir", restored}).exit_status == 0);
  auto again = ctl({"restore", backup_dir, "--data-dir", restored});
  CHECK(again.exit_status == 1);
  CHECK(again.output.find("not empty") != std::string::npos);
  CHECK(ctl({"metrics"}).output.find("cairn_events_total") != std::string::npos);
  // Errors: one clear line and a non-zero exit.
  auto wrong = run_program({CAIRNCTL_PATH, "--url", url, "bindings"}, 30s);
  CHECK(wrong.exit_status == 1);
  auto bad_token = s.dir.path() / "bad";
  std::ofstream(bad_token) << "not-the-token-at-all\n";
  auto refused = run_program({CAIRNCTL_PATH, "--url", url, "--token-file", bad_token.string(), "bindings"}, 30s);
  CHECK(refused.exit_status == 1);
  CHECK(refused.output.rfind("cairnctl: 401: ", 0) == 0);
  CHECK(std::count(refused.output.begin(), refused.output.end(), '\n') == 1);
  auto down = run_program({CAIRNCTL_PATH, "--url", "http://127.0.0.1:1", "--token-file", s.token_file.string(),
                           "bindings"}, 30s);
  CHECK(down.exit_status == 1);
  CHECK(down.output.find("cannot connect") != std::string::npos);
  CHECK(ctl({"actors", "inspect", "FLIGHT", "nobody"}).output.find("404") != std::string::npos);
}

namespace {

// Reads on one flight and bookings on another until stopped: traffic for cairnctl top.
struct Traffic {
  std::atomic<bool> stop{false};
  std::thread thread;
  explicit Traffic(std::uint16_t port) {
    thread = std::thread([this, port] {
      for (int i = 0; !stop && i < 100'000; ++i) {
        http_get(port, "/seats?flightId=top-1");
        if (i < 60) book(port, "top-2", std::to_string(i / 6 + 1) + "ABCDEF"[i % 6], "p" + std::to_string(i));
        std::this_thread::sleep_for(5ms);
      }
    });
  }
  ~Traffic() {
    stop = true;
    thread.join();
  }
};

// The rate cairnctl top shows on the line of route `route` (-1 if absent).
double route_rate(const std::string& screen, const std::string& route) {
  std::istringstream lines(screen);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(route + " ", 0) == 0) return std::stod(line.substr(route.size()));
  }
  return -1;
}

}  // namespace

TEST_CASE("cairnctl top without a terminal prints frames of rates and the busiest actors") {
  AdminServer s;
  // An actor whose name would clear the screen if printed raw (C1 CSI in UTF-8: the gateway
  // refuses C0 controls in names, not these), made the busiest.
  for (int i = 0; i < 300; ++i) REQUIRE(http_get(s.port(), "/seats?flightId=%C2%9B2Jevil").status == 200);
  Traffic traffic(s.port());
  std::string url = "http://127.0.0.1:" + std::to_string(s.admin_port());
  auto top = run_program({CAIRNCTL_PATH, "--url", url, "--token-file", s.token_file.string(), "top", "--interval",
                          "0.4", "--iterations", "4"},
                         60s);
  INFO(top.output);
  CHECK(top.exit_status == 0);
  auto last = top.output.substr(top.output.rfind("cairn top "));
  CHECK(route_rate(last, "/seats") > 0);
  CHECK(last.find("REQUESTS/s") != std::string::npos);
  CHECK(last.find("FLIGHT/top-1") != std::string::npos);
  CHECK(last.find("\x1b[") == std::string::npos);  // no terminal, and no name: no escape sequences
  CHECK(last.find("FLIGHT/\\x9b2Jevil") != std::string::npos);  // shown escaped
  CHECK(last.find("\xc2\x9b") == std::string::npos);
  auto bad_token = s.dir.path() / "bad";
  std::ofstream(bad_token) << "not-the-token-at-all\n";
  auto refused = run_program({CAIRNCTL_PATH, "--url", url, "--token-file", bad_token.string(), "top"}, 30s);
  CHECK(refused.exit_status == 1);
  CHECK(refused.output.rfind("cairnctl: 401: ", 0) == 0);  // before any frame
}

TEST_CASE("cairnctl top in a terminal under tmux shows the rates and quits on q") {
  AdminServer s;
  Traffic traffic(s.port());
  std::string url = "http://127.0.0.1:" + std::to_string(s.admin_port());
  std::string socket = "cairn-top-test-" + std::to_string(::getpid());
  auto tmux = [&](std::vector<std::string> args) {
    std::vector<std::string> all{CAIRN_TMUX_PATH, "-L", socket, "-f", "/dev/null"};
    all.insert(all.end(), args.begin(), args.end());
    return run_program(all, 20s);
  };
  std::string command = std::string("'") + CAIRNCTL_PATH + "' --url " + url + " --token-file '" +
                        s.token_file.string() + "' top --interval 0.5; echo \"cairnctl exited $?\"; sleep 60";
  REQUIRE(tmux({"new-session", "-d", "-x", "150", "-y", "60", "sh", "-c", command}).exit_status == 0);
  auto server_pid = tmux({"display-message", "-p", "#{pid}"});
  REQUIRE(server_pid.exit_status == 0);
  // Our own tmux server, ended by its PID however the test ends (its pane's programs with it).
  struct Ender {
    pid_t pid;
    ~Ender() { ::kill(pid, SIGTERM); }
  } ender{std::stoi(server_pid.output)};
  std::string screen;
  bool shown = false;
  for (int i = 0; i < 100 && !shown; ++i) {
    std::this_thread::sleep_for(150ms);
    screen = tmux({"capture-pane", "-p"}).output;
    shown = route_rate(screen, "/seats") > 0 && screen.find("FLIGHT/top-1") != std::string::npos;
  }
  INFO(screen);
  CHECK(shown);
  CHECK(screen.find("(q quits)") != std::string::npos);
  CHECK(tmux({"send-keys", "q"}).exit_status == 0);
  bool exited = false;
  for (int i = 0; i < 100 && !exited; ++i) {
    std::this_thread::sleep_for(100ms);
    screen = tmux({"capture-pane", "-p"}).output;
    exited = screen.find("cairnctl exited 0") != std::string::npos;
  }
  INFO(screen);
  CHECK(exited);
  CHECK(screen.find("REQUESTS/s") == std::string::npos);  // the alternate screen is gone
}

TEST_CASE("the server refuses an admin port without a usable token file") {
  TempDir dir;
  auto no_token = run_program({CAIRN_SERVER_PATH, "--port", "0", "--data-dir", (dir.path() / "d").string(),
                               "--admin-port", "0"}, 30s);
  CHECK(no_token.exit_status != 0);
  CHECK(no_token.output.find("admin-token-file") != std::string::npos);
  auto short_token = dir.path() / "short";
  std::ofstream(short_token) << "abc\n";
  auto weak = run_program({CAIRN_SERVER_PATH, "--port", "0", "--data-dir", (dir.path() / "d").string(),
                           "--admin-port", "0", "--admin-token-file", short_token.string()}, 30s);
  CHECK(weak.exit_status != 0);
  CHECK(weak.output.find("at least 16") != std::string::npos);
}

TEST_CASE("json logs: one object per line with an access line per request and no body or token") {
  TempDir dir;
  auto log = dir.path() / "server.log";
  auto token_file = dir.path() / "token";
  std::ofstream(token_file) << token << "\n";
  // Through a shell only to send stderr to a file; exec keeps the server's pid.
  std::string command = std::string("exec '") + CAIRN_SERVER_PATH + "' --host 127.0.0.1 --port 0 --data-dir '" +
                        (dir.path() / "data").string() + "' --log-format json --log-level debug 2> '" +
                        log.string() + "'";
  {
    ServerProcess server(std::vector<std::string>{"/bin/sh", "-c", command});
    REQUIRE(book(server.port(), "log-1", "1A", "SecretName"));
    HttpClient client(server.port());
    client.header("Authorization", "Bearer " + token);
    CHECK(client.request(http::verb::get, "/seats?flightId=log-1&secret=shh").status == 200);
    CHECK(server.stop() == 0);
  }
  std::ifstream in(log);
  std::size_t lines = 0, requests = 0;
  for (std::string line; std::getline(in, line);) {
    ++lines;
    auto parsed = json::parse(line, nullptr, false);
    INFO(line);
    REQUIRE(parsed.is_object());
    CHECK(parsed.contains("time"));
    CHECK(parsed.contains("level"));
    auto message = parsed["message"].get<std::string>();
    if (message.rfind("access 127.0.0.1 \"POST /book-seat\" 200", 0) == 0 ||
        message.rfind("access 127.0.0.1 \"GET /seats\" 200", 0) == 0) {
      ++requests;
      CHECK(parsed["status"] == 200);
      CHECK(parsed["request_id"].get<std::string>().size() == 16);
    }
    CHECK(line.find("SecretName") == std::string::npos);
    CHECK(line.find(token) == std::string::npos);
    CHECK(line.find("shh") == std::string::npos);
  }
  CHECK(lines > 2);
  CHECK(requests == 2);
}

TEST_CASE("cairnctl gives up after --timeout on a server that accepts and never answers") {
  TempDir dir;
  std::ofstream(dir.path() / "token") << "a-token-nobody-will-check\n";
  std::uint16_t port = 0;
  int silent = bind_loopback(port);  // the kernel completes connections; nobody answers
  REQUIRE(::listen(silent, 16) == 0);
  auto started = std::chrono::steady_clock::now();
  auto got = run_program({CAIRNCTL_PATH, "--url", "http://127.0.0.1:" + std::to_string(port), "--token-file",
                          (dir.path() / "token").string(), "--timeout", "1s", "bindings"},
                         30s);
  auto took = std::chrono::steady_clock::now() - started;
  ::close(silent);
  INFO(got.output);
  CHECK(got.exit_status == 1);
  CHECK(got.output.find("no answer") != std::string::npos);
  CHECK(took < 10s);
}
