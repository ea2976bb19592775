// cairn-server: the seat-booking demo. Registers Flight as FLIGHT, routes the tutorial's
// URLs to it by ?flightId=, serves public/, and stops cleanly on SIGINT/SIGTERM (serve()).
#include <CLI/CLI.hpp>
#include <chrono>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cairn/gateway/serve.hpp"
#include "cairn/runtime.hpp"
#include "flight/flight.hpp"

int main(int argc, char** argv) {
  CLI::App app{"cairn seat-booking server"};
  // A flag given twice takes its last value, so scripts/run-demo.sh --port 9000 overrides.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  std::string host = "127.0.0.1";
  std::uint16_t port = 8787;
  std::string data_dir = "data";
  std::string public_dir = CAIRN_DEFAULT_PUBLIC_DIR;
  std::string durability = "full";
  std::size_t threads = 8;
  std::size_t io_threads = 1;
  std::string log_level = "info";
  double idle_timeout_s = std::chrono::duration<double>(cairn::limits::default_idle_timeout).count();
  std::size_t max_live = cairn::limits::default_max_live_instances;
  cairn::actors::FlightOptions flight;
  double hold_s = std::chrono::duration<double>(flight.hold_duration).count();
  app.add_option("--host", host, "address to listen on")->capture_default_str();
  app.add_option("--port", port, "port to listen on (0 picks a free one)")->capture_default_str();
  app.add_option("--data-dir", data_dir, "where actor databases live")->capture_default_str();
  app.add_option("--public-dir", public_dir, "static files to serve")->capture_default_str();
  app.add_option("--durability", durability, "full: fsync every commit; normal: WAL NORMAL")
      ->check(CLI::IsMember({"full", "normal"}))
      ->capture_default_str();
  app.add_option("--threads", threads, "actor threads (each commit blocks one for an fsync)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--io-threads", io_threads, "HTTP/WebSocket I/O threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--idle-timeout", idle_timeout_s,
                 "seconds without an event before an instance leaves memory (0: never)")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  app.add_option("--max-live-instances", max_live,
                 "instances in memory at most; the least recently used one is evicted")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}))
      ->capture_default_str();
  app.add_option("--hold-seconds", hold_s, "how long a seat hold lasts before it expires")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  // Logs go to stderr; stdout carries only the line with the address (tests read it).
  spdlog::set_default_logger(spdlog::stderr_color_mt("cairn"));
  spdlog::set_level(spdlog::level::from_str(log_level));

  // Taken by serve() below, never by a handler on a random thread.
  cairn::gateway::block_stop_signals();

  // Every live instance holds 2 descriptors and every socket 1.
  auto descriptors = cairn::raise_descriptor_limit();
  spdlog::info("descriptor limit {}", descriptors);

  try {
    cairn::Registry classes;
    flight.hold_duration = std::chrono::milliseconds(static_cast<long long>(hold_s * 1000));
    classes.add("FLIGHT", [flight](cairn::Context& ctx) {
      return std::make_unique<cairn::actors::Flight>(ctx, flight);
    });

    cairn::RuntimeOptions options;
    options.data_dir = data_dir;
    options.durability = durability == "full" ? cairn::Durability::full : cairn::Durability::normal;
    options.threads = threads;
    options.idle_timeout = std::chrono::milliseconds(static_cast<long long>(idle_timeout_s * 1000));
    options.max_live_instances = max_live;
    cairn::Runtime runtime(std::move(classes), options);

    cairn::gateway::GatewayOptions web;
    web.host = host;
    web.port = port;
    web.public_dir = public_dir;
    web.io_threads = io_threads;
    for (const char* path :
         {"/seats", "/hold-seat", "/book-seat", "/release-seat", "/cancel-booking", "/ws"}) {
      web.routes.push_back({path, "FLIGHT", "flightId"});
    }
    web.object_bindings = {"FLIGHT"};  // and /objects/FLIGHT/<flightId>/seats, ...
    return cairn::gateway::serve(runtime, std::move(web),
                                 "(data in " + data_dir + ", durability " + durability + ")");
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
}
