// cairn-load: the load-test harness for servers that speak the seat-booking API (cairn's or
// any other). Runs one scenario, prints a table, checks what the server promised, and exits
// 0 (every check passed), 1 (a check failed) or 2 (bad flags, server unreachable).
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "cairn/cli/duration.hpp"
#include "cairn/cli/program.hpp"
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "report.hpp"
#include "scenarios.hpp"

namespace {

// A live line on stderr: elapsed time, operations done, the rate over the last second.
class Progress {
 public:
  Progress(bool on, double duration) : on_(on), duration_(duration) {
    if (on_) thread_ = std::thread([this] { loop(); });
  }
  ~Progress() {
    if (!on_) return;
    {
      std::lock_guard lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    std::cerr << "\r\033[K" << std::flush;
  }

 private:
  void loop() {
    auto start = std::chrono::steady_clock::now();
    std::uint64_t last = 0;
    std::unique_lock lock(m_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stop_; })) {
      double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      auto done = cairn::load::progress_count.load();
      int filled = duration_ > 0 ? static_cast<int>(std::min(1.0, t / duration_) * 30) : 0;
      std::cerr << fmt::format("\r[{:<30}] {:6.1f} s  {:>10} done  {:>9.0f}/s ", std::string(filled, '#'), t, done,
                               static_cast<double>(done - last) * 2)
                << std::flush;
      last = done;
    }
  }
  bool on_;
  double duration_;
  std::thread thread_;
  std::mutex m_;
  std::condition_variable cv_;
  bool stop_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  cairn::load::Options o;
  std::string json_file, html_file;
  bool no_progress = false;
  CLI::App app{"cairn-load: load tests for a seat-booking server (cairn-server or any server with the same API)"};
  std::string scenario_help = "the scenario:";
  std::vector<std::string> names;
  for (const auto& s : cairn::load::scenarios()) {
    scenario_help += "\n  " + s.name + ": " + s.summary;
    names.push_back(s.name);
  }
  app.add_option("scenario", o.scenario, scenario_help)->required()->check(CLI::IsMember(names));
  app.add_option("--url", o.url, "the server, http(s)://HOST:PORT; several, comma-separated (a cluster's nodes): connections take turns")->capture_default_str();
  app.add_option("--cacert", o.cacert, "https: trust the certificates in this PEM file instead of the system's")
      ->check(CLI::ExistingFile);
  app.add_option("-c,--connections", o.connections, "connections (closed loop: requests in flight; mixed: concurrent users)")
      ->capture_default_str()->check(CLI::Range(1u, 100000u));
  app.add_option("-r,--rate", o.rate, "open loop: requests (mixed: users) per second, latency from each one's intended start; 0 = closed loop")
      ->capture_default_str()->check(CLI::Range(0.0, 10'000'000.0));
  cairn::cli::add_duration(app, "-d,--duration", o.duration, "time to measure (seconds unless a unit follows)")->capture_default_str()->check(CLI::Range(0.1, 86400.0));
  app.add_option("-n,--requests", o.requests, "stop after this many requests (0: no cap)")->capture_default_str();
  app.add_option("-f,--flights", o.flights, "flights to spread over")->capture_default_str()->check(CLI::Range(1u, 10'000'000u));
  app.add_option("-s,--sockets", o.sockets, "fanout, hibernate: WebSockets per flight")->capture_default_str()->check(CLI::Range(1u, 1'000'000u));
  app.add_option("--contention", o.contention, "book: share of bookings aimed at a seat already tried (0..1)")
      ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  app.add_option("-t,--threads", o.threads, "the harness's I/O threads")->capture_default_str()->check(CLI::Range(1u, 64u));
  app.add_option("--prefix", o.prefix, "flight ids start with this (default: fresh for every run)");
  cairn::cli::add_duration(app, "--timeout", o.timeout, "time before a request counts as timed out")->capture_default_str()->check(CLI::Range(0.1, 3600.0));
  cairn::cli::add_duration(app, "--idle-wait", o.idle_wait, "hibernate: most seconds to wait for the server to evict the flights")
      ->capture_default_str()->check(CLI::Range(0.0, 3600.0));
  app.add_option("--path", o.path, "get: the path to GET")->capture_default_str();
  app.add_option("--header", o.headers, "\"Name: value\" sent with every HTTP request (repeat for more), e.g. a bearer token")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--dir", o.dir, "disk: the directory to append in; newfiles: to create files in (they are left there)")->capture_default_str();
  app.add_flag("--expect-overload", o.expect_overload, "503 answers are expected (overload tests), not errors");
  app.add_option("--server-pid", o.server_pid, "the server's pid: print its CPU use beside the harness's");
  app.add_option("--json", json_file, "also write the result as JSON to this file");
  app.add_option("--report", html_file, "also write a self-contained HTML report (charts) to this file");
  app.add_flag("--no-progress", no_progress, "no live progress line (it is shown only on a terminal anyway)");
  cairn::cli::add_version(app, "cairn-load");
  if (int status = cairn::cli::parse(app, argc, argv, "cairn-load"); status >= 0) return status;
  if (o.prefix.empty()) {
    std::random_device rd;
    o.prefix = fmt::format("lt{:08x}", rd());
  }
  o.progress = !no_progress && ::isatty(STDERR_FILENO);

  cairn::load::RunResult result;
  try {
    Progress progress(o.progress, o.duration);
    result = cairn::load::run(o);
  } catch (const std::exception& e) {
    std::cerr << "cairn-load: " << e.what() << "\n";
    return 2;
  }
  cairn::load::print_table(std::cout, result);
  if (!json_file.empty()) {
    std::ofstream out(json_file);
    out << cairn::load::to_json(result).dump(2) << "\n";
    if (!out) {
      std::cerr << "cairn-load: cannot write " << json_file << "\n";
      return 2;
    }
  }
  if (!html_file.empty()) {
    std::ofstream out(html_file);
    out << cairn::load::to_html(result);
    if (!out) {
      std::cerr << "cairn-load: cannot write " << html_file << "\n";
      return 2;
    }
  }
  return result.passed() ? 0 : 1;
}
