// cairn-crash-test: the durability promise under kill -9. Each cycle starts cairn-server on a
// data dir, books seats at full speed from many connections over many flights, kills the
// server with SIGKILL at a random moment, checks every database's integrity (on a copy),
// restarts it on the same dir and checks: every booking answered 200 is on its seat with
// its name, no seat holds a name it was not promised to, no booking answered 4xx is present,
// and what was durable before stays durable. Prints the totals; exits 1 on any violation.
// ctest runs it (label `crash`) for 10 cycles; by hand: --cycles 100 or more.
#include <signal.h>
#include <sqlite3.h>

#include <CLI/CLI.hpp>

#include "cairn/cli/duration.hpp"
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "clients.hpp"
#include "server_process.hpp"
#include "temp_dir.hpp"

using namespace cairn::testing;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string server;
  std::vector<std::string> server_flags;  // extra flags for every start
  std::string durability = "full";
  int cycles = 10;
  int flights = 40;  // new flights per cycle
  int clients = 16;
  int min_run_ms = 200;
  int max_run_ms = 1500;
  unsigned seed = 0;  // 0: random
};

// What the clients learned in one cycle, by flight.
struct Outcomes {
  std::mutex mutex;
  std::map<std::string, std::map<std::string, std::string>> acknowledged;  // flight -> seat -> name
  std::map<std::string, std::set<std::string>> rejected;                   // flight -> names (4xx)
  std::map<std::string, std::map<std::string, std::string>> attempted;     // flight -> name -> seat
  std::uint64_t acks = 0;
  std::uint64_t unknown = 0;
  std::uint64_t double_acks = 0;  // 200 for a seat already answered 200 to another name
};

struct Totals {
  std::uint64_t acknowledged = 0, lost = 0, doubled = 0, rejected_present = 0, phantom = 0,
                changed = 0, unknown = 0, unknown_landed = 0, corrupt = 0, databases_checked = 0;
  long long slowest_restart_ms = 0;
};

std::vector<std::string> server_args(const Options& o, const std::filesystem::path& data) {
  std::vector<std::string> args{o.server, "--host", "127.0.0.1", "--port", "0", "--data-dir", data.string(),
                                "--public-dir", "", "--durability", o.durability, "--threads", "8",
                                "--log-level", "error"};
  args.insert(args.end(), o.server_flags.begin(), o.server_flags.end());
  return args;
}

void drive(const Options& o, std::uint16_t port, int cycle, int client, std::atomic<bool>& stop,
           Outcomes& out, unsigned seed) {
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> flight_of(0, o.flights - 1), row(1, 10), letter(0, 5);
  std::optional<HttpClient> connection;
  try {
    connection.emplace(port);
  } catch (const std::exception&) {
    return;
  }
  for (int i = 0; !stop.load(); ++i) {
    std::string flight = "c" + std::to_string(cycle) + "-f" + std::to_string(flight_of(random));
    std::string seat = std::to_string(row(random)) + std::string(1, "ABCDEF"[letter(random)]);
    std::string name = "c" + std::to_string(cycle) + "-" + std::to_string(client) + "-" + std::to_string(i);
    {
      std::lock_guard lock(out.mutex);
      out.attempted[flight][name] = seat;
    }
    int status = 0;
    try {
      status = connection->request(http::verb::post, "/book-seat?flightId=" + flight,
                                   json{{"seatNumber", seat}, {"name", name}}.dump())
                   .status;
    } catch (const std::exception&) {
      std::lock_guard lock(out.mutex);
      ++out.unknown;  // the server died with the request in flight
      return;
    }
    std::lock_guard lock(out.mutex);
    if (status == 200) {
      ++out.acks;
      auto [it, fresh] = out.acknowledged[flight].emplace(seat, name);
      if (!fresh) ++out.double_acks;
    } else if (status >= 400 && status < 500) {
      out.rejected[flight].insert(name);
    } else {
      ++out.unknown;
    }
  }
}

// PRAGMA integrity_check on a copy of every database in `data` (SQLite recovers the copy's
// WAL as a restart would); returns {checked, failed}.
std::pair<std::uint64_t, std::uint64_t> check_integrity(const std::filesystem::path& data) {
  TempDir scratch;
  std::filesystem::copy(data, scratch.path() / "copy", std::filesystem::copy_options::recursive);
  std::uint64_t checked = 0, failed = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(scratch.path() / "copy")) {
    if (entry.path().extension() != ".sqlite") continue;
    sqlite3* db = nullptr;
    std::string verdict = "cannot open";
    if (sqlite3_open_v2(entry.path().c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
      sqlite3_stmt* stmt = nullptr;
      if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, nullptr) == SQLITE_OK &&
          sqlite3_step(stmt) == SQLITE_ROW) {
        verdict = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
      }
      sqlite3_finalize(stmt);
    }
    sqlite3_close(db);
    ++checked;
    if (verdict != "ok") {
      ++failed;
      std::fprintf(stderr, "integrity_check %s: %s\n", entry.path().filename().c_str(), verdict.c_str());
    }
  }
  return {checked, failed};
}

std::map<std::string, std::string> seats_of(HttpClient& client, const std::string& flight) {
  auto reply = client.request(http::verb::get, "/seats?flightId=" + flight);
  if (reply.status != 200) throw std::runtime_error("GET /seats answered " + std::to_string(reply.status));
  std::map<std::string, std::string> out;  // seat -> occupant
  for (const auto& s : json::parse(reply.body)) {
    if (s["occupant"].is_string()) out[s["seatNumber"]] = s["occupant"];
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"cairn-crash-test: bookings, kill -9, restart, check"};
  app.add_option("--server", o.server, "the cairn-server binary")->required();
  app.add_option("--server-flag", o.server_flags, "a flag for the server (repeatable)")->allow_extra_args(false);
  app.add_option("--durability", o.durability, "full or normal")->check(CLI::IsMember({"full", "normal"}));
  app.add_option("--cycles", o.cycles, "kill/restart cycles")->check(CLI::Range(1, 100000));
  app.add_option("--flights", o.flights, "new flights per cycle")->check(CLI::Range(1, 10000));
  app.add_option("--clients", o.clients, "concurrent connections")->check(CLI::Range(1, 256));
  cairn::cli::add_duration(app, "--min-run-ms", o.min_run_ms, "shortest load before the kill", cairn::cli::Unit::milliseconds)->check(CLI::Range(0, 600000));
  cairn::cli::add_duration(app, "--max-run-ms", o.max_run_ms, "longest load before the kill", cairn::cli::Unit::milliseconds)->check(CLI::Range(1, 600000));
  app.add_option("--seed", o.seed, "random seed (0: random)");
  CLI11_PARSE(app, argc, argv);
  if (o.seed == 0) o.seed = std::random_device{}();
  if (o.max_run_ms < o.min_run_ms) o.max_run_ms = o.min_run_ms;
  std::printf("crash test: durability %s, %d cycles, %d clients, seed %u\n", o.durability.c_str(),
              o.cycles, o.clients, o.seed);
  std::mt19937 random(o.seed);

  TempDir dir;
  auto data = dir.path() / "data";
  // What must be on disk: flight -> seat -> name (acknowledged, or seen durable after a restart).
  std::map<std::string, std::map<std::string, std::string>> durable;
  std::map<std::string, std::set<std::string>> rejected_names;
  std::map<std::string, std::map<std::string, std::string>> attempted;
  Totals totals;
  auto server = std::make_unique<ServerProcess>(server_args(o, data));
  for (int cycle = 1; cycle <= o.cycles; ++cycle) {
    Outcomes out;
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int c = 0; c < o.clients; ++c) {
      clients.emplace_back(drive, std::cref(o), server->port(), cycle, c, std::ref(stop), std::ref(out),
                           static_cast<unsigned>(random()));
    }
    std::uniform_int_distribution<int> run_ms(o.min_run_ms, o.max_run_ms);
    std::this_thread::sleep_for(std::chrono::milliseconds(run_ms(random)));
    ::kill(server->pid(), SIGKILL);  // mid-flight, with requests outstanding
    stop = true;
    for (auto& t : clients) t.join();
    server->stop();  // reaps it

    auto [checked, corrupt] = check_integrity(data);
    totals.databases_checked += checked;
    totals.corrupt += corrupt;

    auto start = Clock::now();
    server = std::make_unique<ServerProcess>(server_args(o, data));
    HttpClient client(server->port());
    if (client.request(http::verb::get, "/healthz").status != 200) {
      std::fprintf(stderr, "cycle %d: the restarted server does not answer /healthz\n", cycle);
      return 1;
    }
    long long restart_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    totals.slowest_restart_ms = std::max(totals.slowest_restart_ms, restart_ms);

    totals.acknowledged += out.acks;
    totals.unknown += out.unknown;
    totals.doubled += out.double_acks;
    for (auto& [flight, seats] : out.acknowledged) {
      for (auto& [seat, name] : seats) durable[flight].emplace(seat, name);
    }
    for (auto& [flight, names] : out.rejected) rejected_names[flight].insert(names.begin(), names.end());
    for (auto& [flight, names] : out.attempted) attempted[flight].insert(names.begin(), names.end());

    // Every flight ever booked: what was durable is still there, nothing else appeared.
    std::uint64_t lost = 0, doubled = 0, rejected_present = 0, phantom = 0, landed = 0;
    for (const auto& [flight, tried] : attempted) {
      auto stored = seats_of(client, flight);
      auto& expected = durable[flight];
      for (const auto& [seat, name] : expected) {
        auto it = stored.find(seat);
        if (it == stored.end()) {
          ++lost;
          std::fprintf(stderr, "cycle %d: LOST %s %s (%s)\n", cycle, flight.c_str(), seat.c_str(), name.c_str());
        } else if (it->second != name) {
          ++doubled;
          std::fprintf(stderr, "cycle %d: DOUBLE %s %s: promised %s, holds %s\n", cycle, flight.c_str(),
                       seat.c_str(), name.c_str(), it->second.c_str());
        }
      }
      for (const auto& [seat, name] : stored) {
        if (rejected_names[flight].count(name)) ++rejected_present;
        auto at = tried.find(name);
        if (at == tried.end() || at->second != seat) {
          ++phantom;  // a name on a seat it never asked for
          std::fprintf(stderr, "cycle %d: PHANTOM %s %s holds %s\n", cycle, flight.c_str(), seat.c_str(),
                       name.c_str());
        } else if (!expected.count(seat)) {
          ++landed;  // an unknown outcome that made it to disk: durable from now on
          expected.emplace(seat, name);
        }
      }
    }
    totals.lost += lost;
    totals.doubled += doubled;
    totals.rejected_present += rejected_present;
    totals.phantom += phantom;
    totals.unknown_landed += landed;
    std::printf("cycle %d: %llu acknowledged, %llu unknown (%llu landed), restart %lld ms, lost %llu, "
                "double %llu\n",
                cycle, static_cast<unsigned long long>(out.acks), static_cast<unsigned long long>(out.unknown),
                static_cast<unsigned long long>(landed), restart_ms, static_cast<unsigned long long>(lost),
                static_cast<unsigned long long>(doubled));
    std::fflush(stdout);
  }
  int status = server->stop();
  auto [checked, corrupt] = check_integrity(data);
  totals.databases_checked += checked;
  totals.corrupt += corrupt;

  std::printf("crash test (%s): cycles %d, acknowledged %llu, lost %llu, double %llu, rejected present %llu, "
              "phantom %llu, unknown outcomes %llu (landed %llu), integrity checks %llu (failed %llu), "
              "slowest restart %lld ms, clean stop exit %d\n",
              o.durability.c_str(), o.cycles, static_cast<unsigned long long>(totals.acknowledged),
              static_cast<unsigned long long>(totals.lost), static_cast<unsigned long long>(totals.doubled),
              static_cast<unsigned long long>(totals.rejected_present),
              static_cast<unsigned long long>(totals.phantom), static_cast<unsigned long long>(totals.unknown),
              static_cast<unsigned long long>(totals.unknown_landed),
              static_cast<unsigned long long>(totals.databases_checked),
              static_cast<unsigned long long>(totals.corrupt), totals.slowest_restart_ms, status);
  bool ok = totals.lost == 0 && totals.doubled == 0 && totals.rejected_present == 0 && totals.phantom == 0 &&
            totals.corrupt == 0 && totals.acknowledged > 0 && status == 0 && totals.slowest_restart_ms < 20'000;
  return ok ? 0 : 1;
}
