// cairn-counter: a whole cairn program. Registers Counter as COUNTER and serves every counter
// at /objects/COUNTER/<name>/value and /increment (run_app: standard flags, --help).
#include <cairn/gateway/app.hpp>

#include "counter.hpp"

int main(int argc, char** argv) {
  cairn::Registry classes;
  classes.add<Counter>("COUNTER");
  return cairn::gateway::run_app(argc, argv, {.description = "cairn counter example", .port = 8788, .data_dir = "counter-data"},
                                 std::move(classes), [](cairn::gateway::GatewayOptions& web) {
                                   web.object_bindings = {"COUNTER"};
                                 });
}
