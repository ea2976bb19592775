// cairn-chat: chat rooms. /api/chat?room=<room>&user=<name> is a WebSocket of that room,
// /api/chat/history?room= its kept messages; the page is in --public-dir (run_app).
#include <cairn/gateway/app.hpp>

#include "chat.hpp"

#ifndef CAIRN_CHAT_PUBLIC_DIR
#define CAIRN_CHAT_PUBLIC_DIR "public"
#endif

int main(int argc, char** argv) {
  cairn::Registry classes;
  classes.add<ChatRoom>("CHAT_ROOM");
  return cairn::gateway::run_app(argc, argv, {.description = "cairn chat example", .port = 8791, .data_dir = "chat-data", .public_dir = CAIRN_CHAT_PUBLIC_DIR},
                                 std::move(classes), [](cairn::gateway::GatewayOptions& web) {
                                   web.routes.push_back({"/api/chat", "CHAT_ROOM", "room"});
                                   web.routes.push_back({"/api/chat/history", "CHAT_ROOM", "room"});
                                 });
}
