// A test plugin built "for another cairn": its fingerprint is not the server's.
#include <cairn/plugin.hpp>

namespace {
void register_classes(cairn::PluginRegistrar&) {}
}  // namespace

extern "C" __attribute__((visibility("default"))) const cairn_plugin_v1_info* cairn_plugin_v1() {
  static const cairn_plugin_v1_info info{"cairn 0.0.1, cairn-abi 0, gcc 4, libstdc++ 4 cxx11-abi 0, C++ 201103, nlohmann_json 2.0",
                                         "0.0.1", &register_classes};
  return &info;
}
