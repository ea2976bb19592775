// Actor classes in a shared library that the stock cairn-server loads (`plugin = [...]` in its
// config file; README "Deploying a class without building a server", guide chapter 9).
//
// A plugin is built with cairn_add_actor_library() (the installed CMake package) and has one
// entry point, written by CAIRN_PLUGIN:
//
//   void register_classes(cairn::PluginRegistrar& classes) {
//     classes.add<Counter>("COUNTER");
//     classes.objects("COUNTER");  // /objects/COUNTER/<name>/...
//   }
//   CAIRN_PLUGIN(register_classes)
//
// The server first compares the library's build fingerprint (CAIRN_PLUGIN_FINGERPRINT: the
// cairn release and plugin ABI, the compiler, the C++ standard library and its ABI, the C++ standard, the
// nlohmann_json release) with its own, and refuses a library built for another one; only
// then does it call register_classes. The library's code runs inside the server: it links
// against the server's own cairn (the server exports it), never a copy of its own. A library
// stays loaded until the process ends (its code may run in any actor at any time).
#pragma once

#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

#include "cairn/actor.hpp"
#include "cairn/context.hpp"
#include "cairn/registry.hpp"
#include "cairn/runtime_version.hpp"

// Bumped whenever a header a plugin includes changes the layout or meaning of what crosses
// between the server and a library (a class's size, a virtual function, an inline function).
#define CAIRN_PLUGIN_ABI 1

#define CAIRN_PLUGIN_STRINGIFY_(x) #x
#define CAIRN_PLUGIN_STRINGIFY(x) CAIRN_PLUGIN_STRINGIFY_(x)
#if defined(__clang__)
#define CAIRN_PLUGIN_COMPILER "clang " CAIRN_PLUGIN_STRINGIFY(__clang_major__)
#elif defined(__GNUC__)
#define CAIRN_PLUGIN_COMPILER "gcc " CAIRN_PLUGIN_STRINGIFY(__GNUC__)
#else
#define CAIRN_PLUGIN_COMPILER "another compiler"
#endif
#if defined(_GLIBCXX_RELEASE)
#define CAIRN_PLUGIN_STDLIB                                          \
  "libstdc++ " CAIRN_PLUGIN_STRINGIFY(_GLIBCXX_RELEASE) " cxx11-abi " \
      CAIRN_PLUGIN_STRINGIFY(_GLIBCXX_USE_CXX11_ABI)
#else
#define CAIRN_PLUGIN_STDLIB "another standard library"
#endif
// What a library was built for, compared with the server's as a whole: the cairn release
// too, so that a change a CAIRN_PLUGIN_ABI bump forgot still needs a rebuild.
#define CAIRN_PLUGIN_FINGERPRINT                                                                  \
  "cairn " CAIRN_RUNTIME_VERSION ", cairn-abi " CAIRN_PLUGIN_STRINGIFY(CAIRN_PLUGIN_ABI) ", " CAIRN_PLUGIN_COMPILER ", " CAIRN_PLUGIN_STDLIB \
                                                       ", C++ " CAIRN_PLUGIN_STRINGIFY(__cplusplus)          \
                                                       ", nlohmann_json " CAIRN_PLUGIN_STRINGIFY(           \
                                                           NLOHMANN_JSON_VERSION_MAJOR) "." CAIRN_PLUGIN_STRINGIFY(NLOHMANN_JSON_VERSION_MINOR)

namespace cairn {

// A route to one of the library's bindings (gateway::Route, cairn/gateway/gateway.hpp):
// requests to `path` go to the instance named by the query parameter `name_param` (or
// `default_name` when it is missing), or always to `fixed_name`. The config file's
// [bindings.NAME] routes replace a binding's default ones.
struct PluginRoute {
  std::string path;        // exact, e.g. "/count"
  std::string binding;     // e.g. "COUNTER"
  std::string name_param;  // e.g. "name"
  std::string fixed_name = {};
  std::string default_name = {};
};

// What register_classes is given. Each call may throw std::invalid_argument (a binding
// another library or the server has, a malformed route): the server then refuses to start
// and says which library and why.
class PluginRegistrar {
 public:
  virtual ~PluginRegistrar() = default;
  // Registers an actor class under `binding`.
  virtual void add(std::string binding, ActorFactory factory) = 0;
  // T constructible from (Context&, const nlohmann::json& options) or from (Context&): with
  // the options the binding's own [bindings.NAME.options] table gives ({} when none).
  template <class T>
  void add(std::string binding) {
    if constexpr (std::is_constructible_v<T, Context&, const nlohmann::json&>) {
      add(binding, [given = options(binding)](Context& ctx) { return std::make_unique<T>(ctx, given); });
    } else {
      static_assert(std::is_constructible_v<T, Context&>, "T needs a constructor (Context&) or (Context&, const json&)");
      add(std::move(binding), [](Context& ctx) { return std::make_unique<T>(ctx); });
    }
  }
  // The [bindings.NAME.options] table of the config file, as JSON ({} when none).
  virtual nlohmann::json options(const std::string& binding) const = 0;
  // Default routes of the library's bindings (used unless the config file gives the
  // binding routes of its own).
  virtual void route(PluginRoute route) = 0;
  // The generic route /objects/<binding>/<name>/... by default.
  virtual void objects(std::string binding) = 0;
};

}  // namespace cairn

extern "C" {
// What cairn_plugin_v1() returns. Plain C up to register_classes, so that a server can read
// the fingerprint of any library before it trusts anything else in it.
struct cairn_plugin_v1_info {
  const char* fingerprint;    // CAIRN_PLUGIN_FINGERPRINT as the library was built
  const char* cairn_version;  // the cairn release whose headers it was built with
  void (*register_classes)(cairn::PluginRegistrar& classes);
};
}

// The library's entry point: `function` is a void(cairn::PluginRegistrar&).
#define CAIRN_PLUGIN(function)                                                                 \
  extern "C" __attribute__((visibility("default"))) const cairn_plugin_v1_info* cairn_plugin_v1() { \
    static const cairn_plugin_v1_info info{CAIRN_PLUGIN_FINGERPRINT, CAIRN_RUNTIME_VERSION, &(function)}; \
    return &info;                                                                              \
  }
