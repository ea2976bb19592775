// run_app(): standard flags, Runtime, Gateway, serve().
#include "cairn/gateway/app.hpp"

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>

#include "cairn/gateway/serve.hpp"
#include "cairn/limits.hpp"
#include "cairn/runtime.hpp"

namespace cairn::gateway {

int run_app(int argc, char** argv, const AppDefaults& defaults,
            const std::function<Registry()>& make_classes,
            const std::function<void(GatewayOptions&)>& routes) {
  CLI::App app{defaults.description};
  std::string host = "127.0.0.1";
  std::uint16_t port = defaults.port;
  std::string data_dir = defaults.data_dir;
  std::string public_dir = defaults.public_dir;
  std::string durability = "full";
  std::size_t threads = 8;
  std::size_t io_threads = 1;
  double idle_timeout_s = std::chrono::duration<double>(limits::default_idle_timeout).count();
  std::size_t max_live = limits::default_max_live_instances;
  std::string log_level = "info";
  app.add_option("--host", host, "address to listen on")->capture_default_str();
  app.add_option("--port", port, "port to listen on (0 picks a free one)")->capture_default_str();
  app.add_option("--data-dir", data_dir, "where actor databases live")->capture_default_str();
  app.add_option("--public-dir", public_dir, "static files to serve (empty: none)")->capture_default_str();
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
  app.add_option("--max-live-instances", max_live, "instances in memory at most")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}))
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  for (const auto& flag : defaults.flags) {
    app.add_option(flag.name, *flag.value, flag.help)->check(CLI::Range(flag.min, flag.max))->capture_default_str();
  }
  // A flag given twice takes its last value, so a script's defaults can be overridden.
  for (auto* option : app.get_options()) option->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  // Logs go to stderr; stdout carries only the line with the address.
  spdlog::set_default_logger(spdlog::stderr_color_mt("cairn"));
  spdlog::set_level(spdlog::level::from_str(log_level));
  block_stop_signals();
  // Every live instance holds 2 descriptors and every socket 1.
  spdlog::info("descriptor limit {}", raise_descriptor_limit());
  try {
    RuntimeOptions options;
    options.data_dir = data_dir;
    options.durability = durability == "full" ? Durability::full : Durability::normal;
    options.threads = threads;
    options.idle_timeout = std::chrono::milliseconds(static_cast<long long>(idle_timeout_s * 1000));
    options.max_live_instances = max_live;
    Runtime runtime(make_classes(), options);
    GatewayOptions web;
    web.host = host;
    web.port = port;
    web.public_dir = public_dir;
    web.io_threads = io_threads;
    routes(web);
    return serve(runtime, std::move(web), "(data in " + data_dir + ", durability " + durability + ")");
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
}

}  // namespace cairn::gateway
