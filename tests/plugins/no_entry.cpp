// A test library that is not a cairn plugin: no cairn_plugin_v1.
extern "C" __attribute__((visibility("default"))) int not_a_cairn_plugin() { return 1; }
