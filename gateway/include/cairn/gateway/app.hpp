// run_app(): a whole cairn program in one call, for applications whose only settings are the
// standard ones. Parses the standard flags (--host, --port, --data-dir, --public-dir,
// --durability, --threads, --idle-timeout, --max-live-instances, --log-level; --help lists
// them), makes the Runtime with `classes`, the gateway with the routes `routes` adds, and
// serves until SIGINT/SIGTERM (serve()). The examples' main() is this call.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "cairn/gateway/gateway.hpp"
#include "cairn/registry.hpp"

namespace cairn::gateway {

struct AppDefaults {
  std::string description;      // the first line of --help
  std::uint16_t port = 8787;
  std::string data_dir = "data";
  std::string public_dir;       // empty: no static files
};

// Returns the process's exit status: 0 after a clean stop, 1 on an error (logged), 2 (or 0
// for --help) for bad flags.
int run_app(int argc, char** argv, const AppDefaults& defaults, Registry classes,
            const std::function<void(GatewayOptions&)>& routes);

}  // namespace cairn::gateway
