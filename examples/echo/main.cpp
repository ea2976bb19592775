// cairn-echo: one Echo instance ("foo", as in the Workers example) behind /websocket,
// /getCurrentConnections and / (run_app: standard flags, --help).
#include <cairn/gateway/app.hpp>

#include "echo.hpp"

int main(int argc, char** argv) {
  cairn::Registry classes;
  classes.add<Echo>("ECHO");
  return cairn::gateway::run_app(argc, argv, {.description = "cairn WebSocket echo example", .port = 8789, .data_dir = "echo-data"},
                                 std::move(classes), [](cairn::gateway::GatewayOptions& web) {
                                   for (const char* path : {"/websocket", "/getCurrentConnections", "/"}) {
                                     web.routes.push_back({path, "ECHO", "", "foo"});  // one instance
                                   }
                                 });
}
