// run_app(): a whole cairn program in one call. Parses the standard flags (--host, --port,
// --data-dir, --public-dir, --durability, --threads, --io-threads, --idle-timeout,
// --max-live-instances, --max-connections, --max-queued-events, --request-timeout,
// --header-timeout, --keep-alive-timeout, --log-level, --log-format, --admin-port,
// --admin-host, --admin-token-file; --help lists them) and the application's own numeric
// ones (numbers, strings, booleans: AppFlag), makes the Runtime with the classes `make_classes` registers (called after parsing, so
// they may use the flags), the gateway with the routes `routes` adds, and serves until
// SIGINT/SIGTERM (serve()). cairn-server's and the examples' main() are this call.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "cairn/gateway/gateway.hpp"
#include "cairn/registry.hpp"

namespace cairn::gateway {

// A flag of the application. `value` points at the variable that holds the default and
// receives the parsed value: a number, e.g. {"--hold-seconds", "how long a hold lasts", &s,
// 0.1, 86400} (kept within [min, max]); a whole number (std::int64_t, also within [min, max]);
// a string, e.g. {"--greeting", "what to say", &greeting, 0, 0, {"hello", "hi"}} (one of
// `choices` when it is not empty); or a boolean (`--loud`, `--loud=false`, `loud = true` in
// the config file, CAIRN_LOUD=false). Like every flag, it is also a config-file key and a
// CAIRN_<NAME> environment variable.
struct AppFlag {
  std::string name;
  std::string help;
  std::variant<double*, std::int64_t*, std::string*, bool*> value;
  double min = 0;  // numbers: kept within [min, max] when min < max
  double max = 0;
  std::vector<std::string> choices = {};  // strings: the allowed values (empty: any)
};

struct AppDefaults {
  std::string description = {};  // the first line of --help
  std::uint16_t port = 8787;
  std::string data_dir = "data";
  std::string public_dir = {};   // empty: no static files
  std::vector<AppFlag> flags = {};  // the application's own
};

// Also --version, --config FILE (TOML), CAIRN_<FLAG> environment variables and
// --print-config (cairn/cli/program.hpp; README "Configuration"). Returns the process's exit
// status: 0 after a clean stop (and for --help, --version, --print-config), 1 on a runtime
// error (logged), 2 for bad flags or configuration (one line on stderr).
int run_app(int argc, char** argv, const AppDefaults& defaults,
            const std::function<Registry()>& make_classes,
            const std::function<void(GatewayOptions&)>& routes);
// The same for classes that need no flag.
inline int run_app(int argc, char** argv, const AppDefaults& defaults, Registry classes,
                   const std::function<void(GatewayOptions&)>& routes) {
  auto shared = std::make_shared<Registry>(std::move(classes));
  return run_app(argc, argv, defaults, [shared] { return std::move(*shared); }, routes);
}

}  // namespace cairn::gateway
