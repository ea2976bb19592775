// The counter as a plugin: libcairn-counter.so, which the stock cairn-server loads
// (`plugin = [".../libcairn-counter.so"]` in its config; guide chapter 9). Counter is
// served at /objects/COUNTER/<name>/... unless the config file routes it otherwise.
#include <cairn/plugin.hpp>

#include "counter.hpp"

namespace {

void register_classes(cairn::PluginRegistrar& classes) {
  classes.add<Counter>("COUNTER");
  classes.objects("COUNTER");
}

}  // namespace

CAIRN_PLUGIN(register_classes)
