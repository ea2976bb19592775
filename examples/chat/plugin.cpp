// The chat rooms as a plugin: libcairn-chat.so, for the stock cairn-server. Its default routes
// are cairn-chat's own; its page is served when the server's public-dir is examples/chat/public.
#include <cairn/plugin.hpp>

#include "chat.hpp"

namespace {

void register_classes(cairn::PluginRegistrar& classes) {
  classes.add<ChatRoom>("CHAT_ROOM");
  classes.route({"/api/chat", "CHAT_ROOM", "room"});
  classes.route({"/api/chat/history", "CHAT_ROOM", "room"});
}

}  // namespace

CAIRN_PLUGIN(register_classes)
