// Plugins and [bindings.NAME] tables (plugins.hpp).
#include "plugins.hpp"

#include <dlfcn.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <set>
#include <utility>

#include <spdlog/spdlog.h>

#include "cairn/plugin.hpp"
#include "routes.hpp"

extern char** environ;

namespace cairn::gateway {

namespace {

// A duration as the flags take one: seconds as a number, or a string with a unit ("500ms",
// "30s", "5m", "1h"; a bare number is seconds). From 0 (never) to a day.
std::chrono::milliseconds duration_of(const nlohmann::json& value, const std::string& where) {
  double seconds = -1;
  if (value.is_number()) {
    seconds = value.get<double>();
  } else if (value.is_string()) {
    auto text = value.get<std::string>();
    std::size_t used = 0;
    double number = -1;
    try {
      number = std::stod(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    auto unit = text.substr(used);
    if (used > 0) {
      if (unit.empty() || unit == "s") seconds = number;
      else if (unit == "ms") seconds = number / 1000;
      else if (unit == "m") seconds = number * 60;
      else if (unit == "h") seconds = number * 3600;
    }
  }
  if (!(seconds >= 0 && seconds <= 86400)) {
    throw PluginError(where + ": must be a duration from 0 to 24h (\"30s\", \"500ms\", \"5m\", or seconds)");
  }
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out.empty() ? "none" : out;
}

Route checked_route(const PluginRoute& given, const std::string& what) {
  if (given.path.empty() || given.path.front() != '/') {
    throw PluginError(what + ": a route's path starts with '/', not '" + given.path + "'");
  }
  if (given.path.find_first_of("?# \t\r\n") != std::string::npos) {
    throw PluginError(what + ": a route's path is a path alone (no query, fragment or space), not '" + given.path + "'");
  }
  if (given.path.starts_with(objects_prefix) || given.path == "/healthz" || given.path == "/readyz" ||
      given.path == "/livez") {
    throw PluginError(what + ": " + given.path + " is the server's own");
  }
  if (!given.fixed_name.empty() && !given.default_name.empty()) {
    throw PluginError(what + ": route " + given.path + " has a fixed name: a default name would never be used");
  }
  if (given.fixed_name.empty() == given.name_param.empty()) {
    throw PluginError(what + ": route " + given.path + " needs either a name parameter or a fixed name");
  }
  if (!given.fixed_name.empty()) {
    if (auto ok = check_actor_name(what + ": route " + given.path + "'s name", given.fixed_name); !ok) {
      throw PluginError(ok.error().message);
    }
  }
  if (!given.default_name.empty()) {
    if (auto ok = check_actor_name(what + ": route " + given.path + "'s default name", given.default_name); !ok) {
      throw PluginError(ok.error().message);
    }
  }
  return Route{given.path, given.binding, given.name_param, given.fixed_name, given.default_name};
}

class Registrar final : public PluginRegistrar {
 public:
  Registrar(Registry& classes, LoadedPlugins& out, const nlohmann::json& bindings, std::string library)
      : classes_(classes), out_(out), bindings_(bindings), library_(std::move(library)) {}

  void add(std::string binding, ActorFactory factory) override {
    if (auto it = out_.library_of.find(binding); it != out_.library_of.end()) {
      throw std::invalid_argument("binding " + binding + " is registered by " + it->second + " already");
    }
    if (classes_.find(binding) != nullptr) {
      throw std::invalid_argument("binding " + binding + " is one of the server's own classes");
    }
    classes_.add(binding, std::move(factory));  // checks the name and the factory
    out_.library_of[binding] = library_;
  }
  nlohmann::json options(const std::string& binding) const override {
    auto table = bindings_.find(binding);
    if (table == bindings_.end() || !table->is_object()) return nlohmann::json::object();
    auto options = table->find("options");
    return options == table->end() ? nlohmann::json::object() : *options;
  }
  void route(PluginRoute given) override {
    mine(given.binding, "route " + given.path);
    auto route = checked_route(given, "binding " + given.binding);
    out_.defaults[given.binding].routes.push_back(std::move(route));
  }
  void objects(std::string binding) override {
    mine(binding, "the generic route");
    out_.defaults[binding].objects = true;
  }

 private:
  void mine(const std::string& binding, const std::string& what) const {
    auto it = out_.library_of.find(binding);
    if (it == out_.library_of.end() || it->second != library_) {
      throw std::invalid_argument(what + " names binding '" + binding +
                                  "', which this library has not registered (add it first)");
    }
  }
  Registry& classes_;
  LoadedPlugins& out_;
  const nlohmann::json& bindings_;
  std::string library_;
};

}  // namespace

namespace {

// A library, opened from a private copy in memory and checked. Why a copy (memfd): dlopen()
// returns the library already loaded for a name or an inode it has seen, so a new version at
// the same path could not be loaded beside the old one; and a deploy that writes over the
// file in place (cp) would change code the process is running, which crashes it. The copy's
// descriptor stays open for the process's life: its name (/proc/self/fd/N) must not be
// reused by the next copy, or dlopen() would take it for the one already loaded.
struct Opened {
  const cairn_plugin_v1_info* info = nullptr;
  std::string identity;  // of the file that was copied
  std::string version;   // the cairn release it was built with
};

// The file's identity (device, inode, size, modification time): what a deploy changes.
std::string identity_of(const struct stat& st) {
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ":" +
         // The change time too: no writer can set it back (rsync -t, reproducible builds'
         // fixed modification times).
         std::to_string(st.st_ctim.tv_sec) + "." + std::to_string(st.st_ctim.tv_nsec);
}

std::string path_of(const std::string& given) {
  // A bare file name is the working directory's (dlopen would search the system's library
  // path for it instead).
  return given.find('/') == std::string::npos ? "./" + given : given;
}

// The identity of the file at `given` now ("" if it cannot be read).
std::string identity_now(const std::string& given) {
  struct stat st {};
  if (::stat(path_of(given).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return "";
  return identity_of(st);
}

Opened open_library(const std::string& given) {
  std::string what = "plugin " + given;
  std::string path = path_of(given);
  int file = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st {};
  if (file < 0 || ::fstat(file, &st) != 0 || !S_ISREG(st.st_mode)) {
    int error = errno;
    if (file >= 0) ::close(file);
    throw PluginError(what + ": " + (file < 0 && error == ENOENT ? "no such file" : "cannot read it: " + std::string(std::strerror(error))));
  }
  Opened out;
  out.identity = identity_of(st);
  auto name = std::filesystem::path(path).filename().string();
  int copy = ::memfd_create(name.c_str(), MFD_CLOEXEC);
  if (copy < 0) {
    int error = errno;
    ::close(file);
    throw PluginError(what + ": cannot copy it into memory: " + std::strerror(error));
  }
  off_t copied = 0;
  while (copied < st.st_size) {
    auto n = ::sendfile(copy, file, nullptr, static_cast<std::size_t>(st.st_size - copied));
    if (n <= 0) {
      int error = n < 0 ? errno : EIO;
      ::close(file);
      ::close(copy);
      throw PluginError(what + ": cannot copy it into memory: " + std::strerror(error));
    }
    copied += n;
  }
  ::close(file);
  std::string copy_path = "/proc/self/fd/" + std::to_string(copy);
  // RTLD_NOW: a symbol the library needs and the server lacks is an error here, not a crash
  // later. RTLD_LOCAL: libraries do not see each other's symbols. Never dlclose()d: its code
  // stays referenced by factories, actors and their sockets until the process ends.
  void* handle = ::dlopen(copy_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* error = ::dlerror();
    std::string said = error != nullptr ? error : "unknown error";
    for (auto at = said.find(copy_path); at != std::string::npos; at = said.find(copy_path)) {
      said.replace(at, copy_path.size(), path);
    }
    ::close(copy);
    throw PluginError(what + ": cannot load it: " + said);
  }
  ::dlerror();
  void* symbol = ::dlsym(handle, "cairn_plugin_v1");
  if (symbol == nullptr) {
    throw PluginError(what + ": it has no entry point cairn_plugin_v1 (a cairn plugin defines it with CAIRN_PLUGIN)");
  }
  auto entry = reinterpret_cast<const cairn_plugin_v1_info* (*)()>(symbol);
  out.info = entry();
  if (out.info == nullptr || out.info->fingerprint == nullptr || out.info->register_classes == nullptr) {
    throw PluginError(what + ": its entry point cairn_plugin_v1 returned no plugin description");
  }
  out.version = out.info->cairn_version != nullptr ? out.info->cairn_version : "?";
  if (std::strcmp(out.info->fingerprint, CAIRN_PLUGIN_FINGERPRINT) != 0) {
    throw PluginError(what + ": built for " + out.info->fingerprint + ", but this server is " +
                      CAIRN_PLUGIN_FINGERPRINT + ": rebuild it against this cairn");
  }
  return out;
}

// Runs the library's registration; returns the bindings it registered.
std::vector<std::string> register_library(const Opened& opened, const std::string& given, Registry& classes,
                                          LoadedPlugins& out, const nlohmann::json& bindings) {
  std::string what = "plugin " + given;
  Registrar registrar(classes, out, bindings, given);
  try {
    opened.info->register_classes(registrar);
  } catch (const PluginError& e) {
    throw PluginError(what + ": " + e.what());
  } catch (const std::exception& e) {
    throw PluginError(what + ": its registration failed: " + e.what());
  } catch (...) {
    throw PluginError(what + ": its registration failed: it threw something that is not a std::exception");
  }
  std::vector<std::string> mine;
  for (const auto& [binding, library] : out.library_of) {
    if (library == given) mine.push_back(binding);
  }
  if (mine.empty()) throw PluginError(what + ": it registered no class");
  return mine;
}

// Runs `library` in a probe child (probe_plugin, the same program: /proc/self/exe) and
// throws PluginError with what went wrong there.
void probe_in_child(const std::string& given, const nlohmann::json& bindings) {
  std::string what = "plugin " + given;
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw PluginError(what + ": cannot start its probe: " + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDERR_FILENO);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int signal_number : {SIGPIPE, SIGINT, SIGTERM, SIGHUP}) sigaddset(&defaults, signal_number);
  posix_spawnattr_setsigmask(&attributes, &none);  // the server blocks its stop signals
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::string program = "/proc/self/exe", json = bindings.dump();
  std::vector<char*> argv{program.data(), const_cast<char*>(probe_argument), const_cast<char*>(given.c_str()),
                          json.data(), nullptr};
  pid_t child = -1;
  int spawned = ::posix_spawn(&child, program.c_str(), &actions, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  ::close(out[1]);
  if (spawned != 0) {
    ::close(out[0]);
    throw PluginError(what + ": cannot start its probe: " + std::strerror(spawned));
  }
  // What it says (one line; at most 64 KiB kept), until it exits or the deadline.
  std::string said;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool timed_out = false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd wait{out[0], POLLIN, 0};
    int ready = ::poll(&wait, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    char buffer[4096];
    auto n = ::read(out[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // it closed its end: it is ending
    if (said.size() < 65536) said.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(out[0]);
  if (timed_out) ::kill(child, SIGKILL);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  while (!said.empty() && (said.back() == '\n' || said.back() == '\r')) said.pop_back();
  if (auto last = said.rfind('\n'); last != std::string::npos) said = said.substr(last + 1);
  if (timed_out) throw PluginError(what + ": it did not finish loading within 30 s (in a probe process)");
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 2 && !said.empty()) throw PluginError(said);
  std::string how = WIFSIGNALED(status) ? "crashed (signal " + std::to_string(WTERMSIG(status)) + ", " +
                                              strsignal(WTERMSIG(status)) + ")"
                                        : "ended with status " + std::to_string(WEXITSTATUS(status));
  throw PluginError(what + ": loading it or its registration " + how + " in a probe process" +
                    (said.empty() ? std::string() : ": " + said));
}

}  // namespace

int probe_plugin(const std::string& library, const std::string& bindings_json) {
  try {
    auto bindings = nlohmann::json::parse(bindings_json, nullptr, false);
    auto opened = open_library(library);
    Registry classes;
    LoadedPlugins scratch;
    (void)register_library(opened, library, classes, scratch, bindings.is_object() ? bindings : nlohmann::json::object());
    return 0;
  } catch (const PluginError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
}

PluginSet::PluginSet(const std::vector<std::string>& libraries, nlohmann::json bindings, Registry& classes)
    : bindings_(bindings.is_object() ? std::move(bindings) : nlohmann::json::object()) {
  // What the libraries will be handed, checked before any of them runs.
  for (const auto& [binding, table] : bindings_.items()) {
    if (table.is_object() && table.contains("options") && !table["options"].is_object()) {
      throw PluginError("bindings." + binding + ".options: must be a table");
    }
  }
  std::set<std::string> seen;
  for (const auto& given : libraries) {
    std::error_code ec;
    auto canonical = std::filesystem::weakly_canonical(path_of(given), ec);
    if (!seen.insert(ec ? path_of(given) : canonical.string()).second) throw PluginError("plugin " + given + ": named twice");
    probe_in_child(given, bindings_);
    auto opened = open_library(given);
    auto mine = register_library(opened, given, classes, loaded_, bindings_);
    spdlog::info("plugin {} (cairn {}): {}", given, opened.version, joined(mine));
    libraries_.push_back(Library{given, opened.identity, mine, 1, {}, {}});
  }
}

nlohmann::json PluginSet::reload(Runtime& runtime) {
  std::lock_guard lock(reloading_);
  auto report = nlohmann::json::array();
  for (auto& library : libraries_) {
    nlohmann::json row{{"library", library.path}};
    auto now = identity_now(library.path);
    if (now == library.identity) {
      row["outcome"] = "unchanged";
      report.push_back(row);
      continue;
    }
    if (!now.empty() && now == library.refused_identity) {
      // Not loaded again: each load of a library stays in memory (it is never unloaded).
      row["outcome"] = "refused";
      row["reason"] = library.refused_reason + " (the file has not changed since)";
      report.push_back(row);
      continue;
    }
    try {
      probe_in_child(library.path, bindings_);
      auto opened = open_library(library.path);
      Registry classes;
      LoadedPlugins scratch;
      auto mine = register_library(opened, library.path, classes, scratch, bindings_);
      if (mine != library.bindings) {
        throw PluginError("plugin " + library.path + ": the new version registers " + joined(mine) +
                          ", the running one " + joined(library.bindings) +
                          ": a reload cannot add or remove classes (restart the server for that)");
      }
      std::size_t evicted = 0;
      for (const auto& binding : mine) {
        auto replaced = runtime.replace_class(binding, *classes.find(binding));
        if (!replaced) throw PluginError("plugin " + library.path + ": " + replaced.error().message);
        evicted += replaced.value();
      }
      library.identity = opened.identity;
      library.refused_identity.clear();
      ++library.version;
      spdlog::info("plugin {} reloaded (its load number {}, cairn {}): {}; {} live instances evicted to wake on it",
                   library.path, library.version, opened.version, joined(mine), evicted);
      row["outcome"] = "reloaded";
      row["bindings"] = mine;
      row["evicted"] = evicted;
    } catch (const PluginError& e) {
      spdlog::error("reload: {}; the running version stays", e.what());
      library.refused_identity = now;
      library.refused_reason = e.what();
      row["outcome"] = "refused";
      row["reason"] = e.what();
    }
    report.push_back(row);
  }
  return report;
}

std::map<std::string, BindingRouting> configured_routing(const nlohmann::json& bindings, const Registry& classes,
                                                        const LoadedPlugins& plugins) {
  std::map<std::string, BindingRouting> out;
  if (bindings.is_null()) return out;
  if (!bindings.is_object()) throw PluginError("bindings: must be a table of [bindings.NAME] tables");
  for (const auto& [binding, table] : bindings.items()) {
    std::string where = "bindings." + binding;
    if (classes.find(binding) == nullptr) {
      throw PluginError(where + ": no class is registered as " + binding + " (this server has " +
                        joined(classes.bindings()) + ")");
    }
    if (!table.is_object()) throw PluginError(where + ": must be a table");
    bool routed = false;
    BindingRouting routing;
    for (const auto& [key, value] : table.items()) {
      if (key == "options") {
        if (!value.is_object()) throw PluginError(where + ".options: must be a table");
        if (plugins.library_of.count(binding) == 0) {
          throw PluginError(where + ".options: " + binding +
                            " is compiled into this program, whose flags configure it (options go to a plugin's classes)");
        }
      } else if (key == "idle-timeout") {
        (void)duration_of(value, where + ".idle-timeout");
      } else if (key == "objects") {
        if (!value.is_boolean()) throw PluginError(where + ".objects: must be true or false");
        routing.objects = value.get<bool>();
        routed = true;
      } else if (key == "routes") {
        if (!value.is_array()) throw PluginError(where + ".routes: must be an array of tables");
        for (std::size_t i = 0; i < value.size(); ++i) {
          std::string at = where + ".routes[" + std::to_string(i) + "]";
          const auto& row = value[i];
          if (!row.is_object()) throw PluginError(at + ": must be a table {path = ..., name-param = ...}");
          PluginRoute route{{}, binding, {}};
          for (const auto& [field, text] : row.items()) {
            if (!text.is_string()) throw PluginError(at + "." + field + ": must be a string");
            auto s = text.get<std::string>();
            if (field == "path") route.path = s;
            else if (field == "name-param") route.name_param = s;
            else if (field == "name") route.fixed_name = s;
            else if (field == "default-name") route.default_name = s;
            else throw PluginError(at + ": unknown key '" + field + "' (path, name-param, name, default-name)");
          }
          if (route.path.empty()) throw PluginError(at + ": needs a path");
          routing.routes.push_back(checked_route(route, at));
        }
        routed = true;
      } else {
        throw PluginError(where + ": unknown key '" + key + "' (routes, objects, idle-timeout, options)");
      }
    }
    if (routed) out[binding] = std::move(routing);
  }
  return out;
}

std::map<std::string, std::chrono::milliseconds, std::less<>> configured_idle_timeouts(const nlohmann::json& bindings) {
  std::map<std::string, std::chrono::milliseconds, std::less<>> out;
  if (!bindings.is_object()) return out;
  for (const auto& [binding, table] : bindings.items()) {
    if (table.is_object() && table.contains("idle-timeout")) {
      out[binding] = duration_of(table["idle-timeout"], "bindings." + binding + ".idle-timeout");
    }
  }
  return out;
}

void apply_routing(GatewayOptions& web, const LoadedPlugins& plugins,
                   const std::map<std::string, BindingRouting>& configured) {
  auto set = [&](const std::string& binding, const BindingRouting& routing) {
    std::erase_if(web.routes, [&](const Route& r) { return r.binding == binding; });
    std::erase(web.object_bindings, binding);
    for (const auto& route : routing.routes) {
      auto taken = std::find_if(web.routes.begin(), web.routes.end(), [&](const Route& r) { return r.path == route.path; });
      if (taken != web.routes.end()) {
        throw PluginError("binding " + binding + ": " + route.path + " is routed to " + taken->binding + " already");
      }
      web.routes.push_back(route);
    }
    if (routing.objects) web.object_bindings.push_back(binding);
  };
  for (const auto& [binding, routing] : plugins.defaults) {
    if (configured.count(binding) == 0) set(binding, routing);
  }
  for (const auto& [binding, routing] : configured) set(binding, routing);
}

}  // namespace cairn::gateway
