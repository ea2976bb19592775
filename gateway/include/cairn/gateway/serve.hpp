// serve(): the end of every cairn program's main(): start the gateway, print where it
// listens, wait for SIGINT or SIGTERM (SIGHUP reads TLS certificates again), and stop in the right order (stop accepting, finish
// and commit every actor's open batch, close the sockets). Used by cairn-server and the
// examples.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "cairn/gateway/gateway.hpp"
#include "cairn/runtime.hpp"

namespace cairn::gateway {

// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread, so every thread started after it (the
// runtime's, the gateway's) inherits the mask and serve() alone takes them. Call first in
// main(), before the Runtime is made.
void block_stop_signals();

// Starts a Gateway for `runtime`, prints "cairn listening on http://<host>:<port> <banner>"
// as one line on stdout (tests and scripts read it), waits for SIGINT or
// SIGTERM, then stops: no new connections, runtime.shutdown() (open batches commit and
// answer), gateway stop (sockets get 1001). Returns 0, or 1 after logging an exception
// (an address in use, ...). Requires block_stop_signals() first.
int serve(Runtime& runtime, GatewayOptions options, const std::string& banner = {});
// The same with the admin listener `admin` (GatewayOptions::admin_token set) beside it; its
// /metrics also carries the public gateway's. Prints a second line, "cairn admin API on
// http://<host>:<port>", right after the first.
int serve(Runtime& runtime, GatewayOptions options, GatewayOptions admin, const std::string& banner);

// Everything serve() can start beside the public listener.
struct ServeExtras {
  std::optional<GatewayOptions> admin;     // the admin listener
  std::optional<GatewayOptions> internal;  // cluster mode: the listener other nodes forward to
  // Called once the internal listener is bound, with its port, before the first line is
  // printed (cluster mode joins the cluster here). May throw to fail the start.
  std::function<void(std::uint16_t)> internal_started;
  // After a stop signal, /readyz answers 503 for this long while everything is still served
  // (a load balancer stops sending new traffic), then the stop goes on.
  std::chrono::milliseconds drain_period{0};
  // Called when a stop signal came, before anything stops: the listeners still serve
  // (cluster mode hands the node's shards to others here).
  std::function<void()> leaving;
  // Called on SIGHUP after the TLS certificates are read again (cairn-server: new versions of
  // the plugins' libraries).
  std::function<void()> reload;
  // Called after runtime.shutdown().
  std::function<void()> stopped;
  // What the admin listener's /metrics writes after the gateways' metrics (cluster mode: the
  // membership's).
  std::function<void(metrics::TextWriter&)> metrics;
};
int serve(Runtime& runtime, GatewayOptions options, ServeExtras extras, const std::string& banner);

}  // namespace cairn::gateway
