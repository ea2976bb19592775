// cairn-load end to end: a short run of each scenario against the real cairn-server passes,
// and its checks catch a deliberately broken server (tests/loadtest/broken_server.cpp).
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "run_program.hpp"
#include "server_process.hpp"
#include "temp_dir.hpp"

using cairn::testing::run_program;
using cairn::testing::ServerProcess;
using nlohmann::json;

namespace {

struct Run {
  int exit_status;
  std::string output;
  json result;
};

Run load(std::uint16_t port, std::vector<std::string> args, const std::filesystem::path& dir) {
  auto json_file = (dir / "result.json").string();
  std::vector<std::string> argv{CAIRN_LOAD_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  for (std::string a : std::vector<std::string>{"--url", "http://127.0.0.1:" + std::to_string(port), "--json",
                                                 json_file, "--timeout", "20"}) {
    argv.push_back(a);
  }
  std::filesystem::remove(json_file);
  auto r = run_program(argv, std::chrono::seconds(90));
  json result;
  std::ifstream in(json_file);
  if (in) result = json::parse(in, nullptr, false);
  return {r.exit_status, r.output, result};
}

std::uint64_t count(const json& result, const std::string& series) {
  return result["series"].contains(series) ? result["series"][series]["count"].get<std::uint64_t>() : 0;
}

}  // namespace

// One real cairn-server per test case (flights of different runs never meet: each run has
// its own prefix).
struct Server {
  cairn::testing::TempDir data;
  ServerProcess process{data.path() / "data", {"--idle-timeout", "0.5"}};
  std::uint16_t port() const { return process.port(); }
  std::string pid() const { return std::to_string(process.pid()); }
};

TEST_CASE("cairn-load seats passes against cairn-server") {
  Server f;
  auto r = load(f.port(), {"seats", "-d", "1", "-f", "3", "-c", "4", "--server-pid", f.pid()}, f.data.path());
  INFO(r.output);
  CHECK(r.exit_status == 0);
  CHECK(count(r.result, "GET /seats") > 50);
  CHECK(r.result["cpu"]["server_seconds"].get<double>() > 0);
}

TEST_CASE("cairn-load book closed loop with contention passes against cairn-server") {
  Server f;
  auto r = load(f.port(), {"book", "-d", "2", "-f", "5", "-c", "8", "--contention", "0.3"}, f.data.path());
  INFO(r.output);
  CHECK(r.exit_status == 0);
  CHECK(r.result["extra"]["acknowledged"].get<int>() > 20);
  CHECK(r.result["extra"]["lost"] == 0);
  CHECK(r.result["expected"]["409 seat taken"].get<int>() > 0);
}

TEST_CASE("cairn-load book open loop passes against cairn-server") {
  Server f;
  auto r = load(f.port(), {"book", "-d", "1", "-f", "5", "-c", "4", "--rate", "100"}, f.data.path());
  INFO(r.output);
  CHECK(r.exit_status == 0);
  // 100/s for 1 s: about 100 bookings, not as many as the server could take.
  CHECK(count(r.result, "POST /book-seat") >= 80);
  CHECK(count(r.result, "POST /book-seat") <= 101);
}

TEST_CASE("cairn-load hot passes against cairn-server") {
  Server f;
  auto r = load(f.port(), {"hot", "-d", "1", "-c", "4"}, f.data.path());
  INFO(r.output);
  CHECK(r.exit_status == 0);
  CHECK(count(r.result, "write (hold or release)") > 20);
}

TEST_CASE("cairn-load newfiles makes durable new files, a file and its WAL each, and leaves them") {
  cairn::testing::TempDir dir;
  auto json_file = (dir.path() / "result.json").string();
  auto r = run_program({CAIRN_LOAD_PATH, "newfiles", "-d", "0.3", "-c", "2", "--dir", dir.path().string(), "--json",
                        json_file},
                       std::chrono::seconds(60));
  INFO(r.output);
  REQUIRE(r.exit_status == 0);
  std::ifstream in(json_file);
  auto result = json::parse(in);
  auto made = count(result, "new database file + WAL");
  CHECK(made > 0);
  std::filesystem::path files = result["extra"]["directory"].get<std::string>();
  CHECK(files.parent_path() == dir.path());
  std::size_t on_disk = 0, wal_bytes = 0;
  for (const auto& entry : std::filesystem::directory_iterator(files)) {
    ++on_disk;
    if (entry.path().string().ends_with("-wal")) wal_bytes += entry.file_size();
  }
  CHECK(on_disk == 2 * made);
  CHECK(wal_bytes == made * 32 * 1024);
}

TEST_CASE("cairn-load coldstart passes against cairn-server") {
  Server f;
  auto r = load(f.port(), {"coldstart", "-d", "1", "-c", "4"}, f.data.path());
  INFO(r.output);
  CHECK(r.exit_status == 0);
  CHECK(r.result["extra"]["flights_created"].get<int>() > 10);
}

TEST_CASE("cairn-load fanout passes against cairn-server") {
  Server f;
  auto r = load(f.port(), {"fanout", "-d", "1", "-f", "2", "-s", "20"}, f.data.path());
  INFO(r.output);
  CHECK(r.exit_status == 0);
  CHECK(count(r.result, "broadcast (booking seen by every socket)") > 5);
  CHECK(count(r.result, "broadcast (cancellation seen by every socket)") > 5);
  CHECK(r.result["extra"]["sockets_connected"] == 40);
}

TEST_CASE("cairn-load hibernate passes against cairn-server") {
  Server f;
  auto r = load(f.port(), {"hibernate", "-f", "4", "-s", "5", "--idle-wait", "15"}, f.data.path());
  INFO(r.output);
  CHECK(r.exit_status == 0);
  CHECK(r.result["extra"]["live_instances_before_wake"] == 0);
  CHECK(count(r.result, "wake (message to an evicted flight until its answer)") == 4);
}

TEST_CASE("cairn-load mixed passes against cairn-server") {
  Server f;
  auto r = load(f.port(), {"mixed", "-d", "1", "-f", "2", "-c", "4"}, f.data.path());
  INFO(r.output);
  CHECK(r.exit_status == 0);
  CHECK(count(r.result, "5 booking seen on the user's socket") > 5);
  CHECK(r.result["extra"]["holds"] == true);
}

TEST_CASE("cairn-load get with an HTML report passes against cairn-server") {
  Server f;
  auto report = (f.data.path() / "report.html").string();
  auto r = load(f.port(), {"get", "--path", "/healthz", "-d", "1", "--report", report}, f.data.path());
  INFO(r.output);
  CHECK(r.exit_status == 0);
  std::ifstream in(report);
  std::string html((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(html.find("<svg") != std::string::npos);
  CHECK(html.find("GET /healthz") != std::string::npos);
}

TEST_CASE("cairn-load: its checks catch a server that loses or double-books") {
  cairn::testing::TempDir data;
  SUBCASE("loses acknowledged bookings") {
    ServerProcess server({CAIRN_BROKEN_SERVER_PATH, "--host", "127.0.0.1", "--port", "0", "--data-dir",
                          (data.path() / "data").string(), "--break", "1", "--log-level", "warn"});
    auto r = load(server.port(), {"book", "-d", "2", "-f", "3", "-c", "4"}, data.path());
    INFO(r.output);
    CHECK(r.exit_status == 1);
    CHECK(r.result["extra"]["lost"].get<int>() > 0);
    CHECK(r.output.find("check FAIL: every acknowledged booking present") != std::string::npos);
  }
  SUBCASE("double-books taken seats") {
    ServerProcess server({CAIRN_BROKEN_SERVER_PATH, "--host", "127.0.0.1", "--port", "0", "--data-dir",
                          (data.path() / "data").string(), "--break", "2", "--log-level", "warn"});
    auto r = load(server.port(), {"book", "-d", "2", "-f", "3", "-c", "4", "--contention", "0.5"}, data.path());
    INFO(r.output);
    CHECK(r.exit_status == 1);
    CHECK(r.result["extra"]["double_booked"].get<int>() > 0);
  }
  SUBCASE("and an unreachable server is exit status 2, not a pass") {
    auto r = run_program({CAIRN_LOAD_PATH, "book", "--url", "http://127.0.0.1:1", "-d", "1", "--timeout", "2"},
                         std::chrono::seconds(30));
    INFO(r.output);
    CHECK(r.exit_status == 2);
    CHECK(r.output.find("refused") != std::string::npos);
  }
}
