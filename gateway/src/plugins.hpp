// Plugins (cairn/plugin.hpp) and the config file's [bindings.NAME] tables, for run_app():
// loading the libraries named by --plugin into the program's Registry, and routing each
// binding as its library and the config file say. Every problem is one line for the
// operator (the program then exits 2).
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cairn/gateway/gateway.hpp"
#include "cairn/registry.hpp"
#include "cairn/runtime.hpp"

namespace cairn::gateway {

struct PluginError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// The check could not be made (the machine is out of descriptors or processes): not the
// library's fault, so a reload tries it again.
struct PluginUnavailable : PluginError {
  using PluginError::PluginError;
};

// How requests reach one binding: what its library proposed, or its [bindings.NAME] table.
struct BindingRouting {
  std::vector<Route> routes;
  bool objects = false;
  std::vector<StaticMount> statics = {};  // the binding's own static files ([bindings.NAME] static)
  bool routes_given = true;  // false: a [bindings.NAME] table that sets no routes (its statics only)
};

struct LoadedPlugins {
  std::map<std::string, BindingRouting> defaults;  // binding -> its library's default routing
  std::map<std::string, std::string> library_of;   // binding -> the library that registered it
};

// The libraries a program loaded (--plugin), and new versions of them.
class PluginSet {
 public:
  // Loads each library and lets it register its classes into `classes`, which already holds
  // the program's own. `bindings`: the config file's [bindings] table ({} if none; each
  // binding's "options" go to its library). Throws PluginError.
  PluginSet(const std::vector<std::string>& libraries, nlohmann::json bindings, Registry& classes);
  PluginSet() = default;
  const LoadedPlugins& loaded() const { return loaded_; }
  // Loads a new version of each library whose file changed since it was loaded (another
  // inode, size or modification time) and gives `runtime` its classes (Runtime::replace_class:
  // live instances are evicted and wake on the new code). A new version must register the
  // same bindings; its default routes are not looked at (routes are set at start). One that
  // fails any check is refused and the old version stays. Returns, per library:
  // {"library", "outcome": "reloaded" | "unchanged" | "refused", "reason"?, "bindings"?,
  // "evicted"?}. Any thread; one reload at a time.
  nlohmann::json reload(Runtime& runtime);

 private:
  struct Library {
    std::string path;                   // as given
    std::string identity;               // of the file when it was loaded
    std::vector<std::string> bindings;  // what it registered
    int version = 1;                    // loads of it so far
    // The file a reload last refused, and why: not loaded again until it changes.
    std::string refused_identity, refused_reason;
  };
  std::vector<Library> libraries_;
  nlohmann::json bindings_ = nlohmann::json::object();
  LoadedPlugins loaded_;
  std::mutex reloading_;
};

// The hidden first argument that makes a run_app() program a probe: `program --probe-plugin
// LIBRARY`, with the library's bytes at descriptor 3 and the config's [bindings] table (JSON)
// at descriptor 4, loads it and runs its registration into a scratch registry, then exits 0,
// or 2 after one line on stderr. PluginSet runs every library in such a child
// before it loads it into the server, so that a library that crashes or hangs while it
// loads or registers (its static initializers run inside dlopen) cannot take the server
// with it, on a reload least of all.
inline constexpr const char* probe_argument = "--probe-plugin";
int probe_plugin(const std::string& library);

// The config file's [bindings.NAME] tables, checked: each names a registered binding and
// has only `routes` (an array of {path, name-param | name, default-name}), `objects` (bool),
// `static` ({prefix, dir}, or an array of them),
// `idle-timeout` (a duration) and `options` (a table). Returns the bindings whose routing the file sets. Throws
// PluginError naming the key.
std::map<std::string, BindingRouting> configured_routing(const nlohmann::json& bindings, const Registry& classes,
                                                        const LoadedPlugins& plugins);

// Each binding's own idle timeout ([bindings.NAME] idle-timeout; checked by
// configured_routing first).
std::map<std::string, std::chrono::milliseconds, std::less<>> configured_idle_timeouts(const nlohmann::json& bindings);

// Routes `web` as the program set it up, then each library's defaults, then the config
// file: a binding the file routes loses every other route (and the generic one unless the
// file says objects = true). Throws PluginError for a path routed twice.
void apply_routing(GatewayOptions& web, const LoadedPlugins& plugins,
                   const std::map<std::string, BindingRouting>& configured);

}  // namespace cairn::gateway
