// A test plugin that needs a symbol no server has: dlopen refuses it.
#include <cairn/plugin.hpp>

void cairn_test_no_such_function();  // defined nowhere

namespace {
void register_classes(cairn::PluginRegistrar&) { cairn_test_no_such_function(); }
}  // namespace

CAIRN_PLUGIN(register_classes)
