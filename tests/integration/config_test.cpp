// cairn-server's configuration: --config FILE (TOML, sections), CAIRN_* environment
// variables, flags, in that order of precedence; --print-config; --version on every program;
// exit status 2 with one line naming the key and the file for anything wrong.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <csignal>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "clients.hpp"
#include "run_program.hpp"
#include "server_process.hpp"
#include "temp_dir.hpp"

using namespace cairn::testing;
using namespace std::chrono_literals;

namespace {

// Runs cairn-server with `env` (NAME=VALUE) and `args`.
ProgramResult server(std::vector<std::string> env, std::vector<std::string> args) {
  std::vector<std::string> all{"/usr/bin/env", "-u", "CAIRN_THREADS", "-u", "CAIRN_CONFIG"};
  all.insert(all.end(), env.begin(), env.end());
  all.push_back(CAIRN_SERVER_PATH);
  all.insert(all.end(), args.begin(), args.end());
  return run_program(all, 30s);
}

// The line `key = value` of a printed configuration ("" if absent).
std::string line_of(const std::string& printed, const std::string& key) {
  auto at = printed.find("\n" + key + " = ");
  if (at == std::string::npos && printed.rfind(key + " = ", 0) == 0) at = std::string::npos - 1;
  if (at == std::string::npos) return "";
  auto start = at == std::string::npos - 1 ? 0 : at + 1;
  return printed.substr(start, printed.find('\n', start) - start);
}

}  // namespace

TEST_CASE(
    "configuration: file < environment < flag, sections name flag prefixes, and --print-config "
    "reads back") {
  TempDir dir;
  auto file = dir.path() / "cairn.toml";
  std::ofstream(dir.path() / "token") << "an-admin-token-of-the-test\n";
  std::ofstream(file) << "# a cairn-server configuration\n"
                         "threads = 3\n"
                         "durability = \"normal\"\n"
                         "idle-timeout = \"7s\"\n"
                         "[admin]\n"
                         "port = 9123\n"
                         "token-file = \""
                      << (dir.path() / "token").string()
                      << "\"\n"
                         "[limits]\n"
                         "max-queued-events = 11\n";
  auto from_file = server({}, {"--config", file.string(), "--print-config"});
  INFO(from_file.output);
  REQUIRE(from_file.exit_status == 0);
  CHECK(line_of(from_file.output, "threads") == "threads = 3");
  CHECK(line_of(from_file.output, "durability") == "durability = \"normal\"");
  CHECK(line_of(from_file.output, "admin-port") == "admin-port = 9123");
  CHECK(line_of(from_file.output, "max-queued-events") == "max-queued-events = 11");
  CHECK(line_of(from_file.output, "idle-timeout") == "idle-timeout = 7");
  CHECK(from_file.output.find("\n# port = 8787\n") !=
        std::string::npos);  // the default, as a comment
  auto from_env = server({"CAIRN_THREADS=5"}, {"--config", file.string(), "--print-config"});
  CHECK(line_of(from_env.output, "threads") == "threads = 5");
  CHECK(line_of(from_env.output, "durability") == "durability = \"normal\"");
  auto from_flag =
      server({"CAIRN_THREADS=5"}, {"--config", file.string(), "--threads", "6", "--print-config"});
  CHECK(line_of(from_flag.output, "threads") == "threads = 6");
  // The file named by the environment, too; and what it prints is a configuration again.
  auto printed = dir.path() / "printed.toml";
  std::ofstream(printed) << from_file.output;
  auto again = server({"CAIRN_CONFIG=" + printed.string()}, {"--print-config"});
  INFO(again.output);
  CHECK(again.exit_status == 0);
  CHECK(again.output == from_file.output);
}

TEST_CASE("configuration: a server runs from a file and the environment") {
  TempDir dir;
  auto file = dir.path() / "cairn.toml";
  std::ofstream(file) << "durability = \"normal\"\n[admin]\nport = 0\ntoken-file = \""
                      << (dir.path() / "token").string() << "\"\n";
  std::ofstream(dir.path() / "token") << "an-admin-token-of-the-test\n";
  ::setenv("CAIRN_CONFIG", file.c_str(), 1);
  ServerProcess server(dir.path() / "data", {"--admin-port", "0"});
  ::unsetenv("CAIRN_CONFIG");
  REQUIRE(server.admin_port() != 0);
  CHECK(http_post(server.port(), "/book-seat?flightId=CF1", R"({"seatNumber":"1A","name":"Ann"})")
            .status == 200);
  HttpClient admin(server.admin_port());
  admin.header("Authorization", "Bearer an-admin-token-of-the-test");
  auto metrics = admin.request(http::verb::get, "/metrics").body;
  CHECK(metrics.find("cairn_build_info{version=\"") != std::string::npos);
}

TEST_CASE(
    "configuration: an unknown key, a bad value or a missing file exits 2 with one line naming "
    "it") {
  TempDir dir;
  auto unknown = dir.path() / "unknown.toml";
  std::ofstream(unknown) << "threads = 2\nthredas = 3\n";
  auto got = server({}, {"--config", unknown.string()});
  CHECK(got.exit_status == 2);
  CHECK(got.output.find("thredas") != std::string::npos);
  CHECK(got.output.find(unknown.string()) != std::string::npos);
  CHECK(got.output.find('\n') == got.output.size() - 1);  // one line

  auto section = dir.path() / "section.toml";
  std::ofstream(section) << "[admin]\nportt = 1\n";
  got = server({}, {"--config", section.string()});
  CHECK(got.exit_status == 2);
  CHECK(got.output.find("admin.portt") != std::string::npos);

  auto bad = dir.path() / "bad.toml";
  std::ofstream(bad) << "threads = 9999\n";
  got = server({}, {"--config", bad.string()});
  CHECK(got.exit_status == 2);
  CHECK(got.output.find("--threads") != std::string::npos);
  CHECK(got.output.find(bad.string()) != std::string::npos);

  got = server({"CAIRN_DURABILITY=sometimes"}, {"--print-config"});
  CHECK(got.exit_status == 2);
  CHECK(got.output.find("--durability") != std::string::npos);

  got = server({}, {"--config", (dir.path() / "absent.toml").string()});
  CHECK(got.exit_status == 2);
  CHECK(got.output.find("absent.toml") != std::string::npos);

  got = server({}, {"--no-such-flag"});
  CHECK(got.exit_status == 2);
}

TEST_CASE("every program says its version, commit and build type") {
  for (const char* program : {CAIRN_SERVER_PATH, CAIRNCTL_PATH, CAIRN_LOAD_PATH}) {
    auto got = run_program({program, "--version"}, 10s);
    INFO(program, got.output);
    CHECK(got.exit_status == 0);
    CHECK(got.output.find("0.") != std::string::npos);
    CHECK(got.output.find("(commit ") != std::string::npos);
    CHECK(got.output.find(" build)") != std::string::npos);
  }
}

TEST_CASE(
    "/livez and /readyz: after SIGTERM, /readyz answers 503 for the drain period while requests "
    "are still served") {
  TempDir dir;
  ServerProcess server(dir.path() / "data", {"--drain-period", "2s"});
  CHECK(http_get(server.port(), "/livez").status == 200);
  auto ready = http_get(server.port(), "/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.body.find("ready") != std::string::npos);
  HttpClient client(server.port());  // kept alive across the stop signal
  REQUIRE(client.request(http::verb::get, "/seats?flightId=DR1").status == 200);
  auto signalled = std::chrono::steady_clock::now();
  REQUIRE(::kill(server.pid(), SIGTERM) == 0);
  bool saw_draining = false;
  while (std::chrono::steady_clock::now() - signalled < 1500ms) {
    auto readyz = client.request(http::verb::get, "/readyz");
    if (readyz.status == 503) {
      saw_draining = true;
      CHECK(readyz.body.find("draining") != std::string::npos);
      CHECK(client.request(http::verb::get, "/livez").status == 200);
      CHECK(client
                .request(http::verb::post, "/book-seat?flightId=DR1",
                         R"({"seatNumber":"1A","name":"Late"})")
                .status == 200);
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  CHECK(saw_draining);
  CHECK(server.stop() == 0);
  CHECK(std::chrono::steady_clock::now() - signalled >= 2s);  // it waited the drain period
}

TEST_CASE(
    "application flags of run_app: strings with choices, free strings, booleans and whole "
    "numbers, from flags, the environment and the file") {
  TempDir dir;
  auto calls = [&](std::vector<std::string> env, std::vector<std::string> args) {
    std::vector<std::string> all{"/usr/bin/env", "-u", "CAIRN_CONFIG"};
    all.insert(all.end(), env.begin(), env.end());
    all.push_back(CAIRN_CALLS_SERVER_PATH);
    all.insert(all.end(), args.begin(), args.end());
    return run_program(all, 30s);
  };
  auto defaults = calls({}, {"--print-config"});
  INFO(defaults.output);
  REQUIRE(defaults.exit_status == 0);
  CHECK(defaults.output.find("\n# greeting = \"hello\"\n") != std::string::npos);
  CHECK(defaults.output.find("\n# loud = false\n") != std::string::npos);
  CHECK(defaults.output.find("\n# repeat = 1\n") != std::string::npos);

  auto file = dir.path() / "calls.toml";
  std::ofstream(file) << "motto = \"from the file\"\nloud = true\nrepeat = 3\n";
  auto set = calls({"CAIRN_GREETING=hi"}, {"--config", file.string(), "--print-config"});
  INFO(set.output);
  REQUIRE(set.exit_status == 0);
  CHECK(line_of(set.output, "greeting") == "greeting = \"hi\"");
  CHECK(line_of(set.output, "motto") == "motto = \"from the file\"");
  CHECK(line_of(set.output, "loud") == "loud = true");
  CHECK(line_of(set.output, "repeat") == "repeat = 3");
  // false from the environment beats true from the file, and prints as false
  auto quiet = calls({"CAIRN_LOUD=false"}, {"--config", file.string(), "--print-config"});
  CHECK(line_of(quiet.output, "loud") == "loud = false");

  auto bad_choice = calls({}, {"--greeting", "howdy"});
  CHECK(bad_choice.exit_status == 2);
  CHECK(bad_choice.output.find("--greeting") != std::string::npos);
  auto bad_number = calls({"CAIRN_REPEAT=11"}, {});
  CHECK(bad_number.exit_status == 2);
  CHECK(bad_number.output.find("--repeat") != std::string::npos);
  auto bad_bool = calls({}, {"--loud=maybe"});
  CHECK(bad_bool.exit_status == 2);

  // The values reach the application's classes.
  ::setenv("CAIRN_MOTTO", "from the environment", 1);
  ServerProcess server({CAIRN_CALLS_SERVER_PATH, "--host", "127.0.0.1", "--port", "0", "--data-dir",
                        (dir.path() / "data").string(), "--config", file.string(), "--greeting", "hi",
                        "--loud=false", "--log-level", "warn"});
  ::unsetenv("CAIRN_MOTTO");
  auto got = http_get(server.port(), "/objects/TALLY/t1/flags");
  REQUIRE(got.status == 200);
  auto body = nlohmann::json::parse(got.body);
  CHECK(body["greeting"] == "hi");
  CHECK(body["motto"] == "from the environment");
  CHECK(body["loud"] == false);
  CHECK(body["repeat"] == 3);
}
