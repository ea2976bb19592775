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
#include <thread>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <set>
#include <utility>

#include <spdlog/spdlog.h>

#include "cairn/cli/duration.hpp"
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
    seconds = cli::parse_duration(value.get<std::string>()).value_or(-1);
  }
  if (seconds > 0 && seconds < 0.001) seconds = 0.001;  // not 0, which means never
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
  std::string version;   // the cairn release it was built with
};

// The file's identity (device, inode, size, modification and change times): what a deploy changes.
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

// The library's bytes in a private copy (a memfd: see Opened): the descriptor and the file's
// identity when it was read.
struct Copy {
  int fd = -1;
  std::string identity;
};

Copy copy_library(const std::string& given) {
  std::string what = "plugin " + given;
  std::string path = path_of(given);
  int file = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st {};
  if (file < 0 || ::fstat(file, &st) != 0 || !S_ISREG(st.st_mode)) {
    int error = errno;
    if (file >= 0) ::close(file);
    throw PluginError(what + ": " + (file < 0 && error == ENOENT ? "no such file" : "cannot read it: " + std::string(std::strerror(error))));
  }
  Copy out;
  out.identity = identity_of(st);
  auto name = std::filesystem::path(path).filename().string();
  int copy = ::memfd_create(name.c_str(), MFD_CLOEXEC);
  if (copy < 0) {
    int error = errno;
    ::close(file);
    throw PluginUnavailable(what + ": cannot copy it into memory: " + std::strerror(error));
  }
  off_t copied = 0;
  while (copied < st.st_size) {
    auto n = ::sendfile(copy, file, nullptr, static_cast<std::size_t>(st.st_size - copied));
    if (n <= 0) {
      int error = n < 0 ? errno : EIO;
      ::close(file);
      ::close(copy);
      throw PluginUnavailable(what + ": cannot copy it into memory: " + std::strerror(error));
    }
    copied += n;
  }
  ::close(file);
  out.fd = copy;
  return out;
}

// Loads the copy at descriptor `copy` (closed if it fails to load; kept open for the
// process's life if it loads) and checks its description.
Opened open_library(const std::string& given, int copy) {
  std::string what = "plugin " + given;
  std::string path = path_of(given);
  Opened out;
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

// Runs the library copied at `copy` in a probe child (probe_plugin, the same program:
// /proc/self/exe, given the copy as descriptor 3 and the [bindings] table as descriptor 4, so
// that it probes exactly the bytes the server then loads) and throws PluginError with what
// went wrong there (PluginUnavailable when the probe itself could not run).
void probe_in_child(const std::string& given, int copy, const nlohmann::json& bindings) {
  std::string what = "plugin " + given;
  auto unavailable = [&](const std::string& why, int error) {
    return PluginUnavailable(what + ": cannot run its probe: " + why + ": " + std::strerror(error));
  };
  int table = ::memfd_create("bindings.json", MFD_CLOEXEC);
  if (table < 0) throw unavailable("memfd_create", errno);
  auto json = bindings.dump();
  if (::write(table, json.data(), json.size()) != static_cast<ssize_t>(json.size())) {
    int error = errno;
    ::close(table);
    throw unavailable("write", error);
  }
  ::lseek(table, 0, SEEK_SET);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    int error = errno;
    ::close(table);
    throw unavailable("pipe", error);
  }
  // Out of the way first (above 100), so that no dup2 below overwrites another's source, and
  // each lands on a descriptor of its own (a dup2 onto itself would keep close-on-exec).
  int high_copy = ::fcntl(copy, F_DUPFD_CLOEXEC, 100);
  int high_table = ::fcntl(table, F_DUPFD_CLOEXEC, 100);
  int high_out = ::fcntl(out[1], F_DUPFD_CLOEXEC, 100);
  if (high_copy < 0 || high_table < 0 || high_out < 0) {
    int error = errno;
    for (int fd : {high_copy, high_table, high_out, table, out[0], out[1]}) {
      if (fd >= 0) ::close(fd);
    }
    throw unavailable("fcntl", error);
  }
  ::close(out[1]);
  out[1] = high_out;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDERR_FILENO);
  posix_spawn_file_actions_adddup2(&actions, high_copy, 3);
  posix_spawn_file_actions_adddup2(&actions, high_table, 4);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int signal_number : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&defaults, signal_number);
  posix_spawnattr_setsigmask(&attributes, &none);  // the server blocks its stop signals
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setpgroup(&attributes, 0);  // a group of its own: whatever it starts dies with it
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  std::string program = "/proc/self/exe";
  std::vector<char*> argv{program.data(), const_cast<char*>(probe_argument), const_cast<char*>(given.c_str()), nullptr};
  pid_t child = -1;
  int spawned = ::posix_spawn(&child, program.c_str(), &actions, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  ::close(out[1]);
  ::close(table);
  ::close(high_copy);
  ::close(high_table);
  if (spawned != 0) {
    ::close(out[0]);
    throw unavailable("posix_spawn", spawned);
  }
  // What it says (its last 64 KiB), until it has exited or the deadline: a library may close
  // its output and hang, or leave a process of its own holding the pipe.
  std::string said;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool open = true, reaped = false, timed_out = false;
  int status = -1;
  auto drain = [&](int wait_ms) {
    pollfd wait{out[0], POLLIN, 0};
    int ready = ::poll(&wait, 1, wait_ms);
    if (ready <= 0) return;
    char buffer[4096];
    auto n = ::read(out[0], buffer, sizeof buffer);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
      open = false;
    } else if (n > 0) {
      said.append(buffer, static_cast<std::size_t>(n));
      if (said.size() > 65536) said.erase(0, said.size() - 65536);
    }
  };
  for (;;) {
    auto got = ::waitpid(child, &status, WNOHANG);
    if (got == child) {
      reaped = true;
      break;
    }
    if (got < 0 && errno != EINTR) break;  // cannot learn how it ended (SIGCHLD ignored?)
    if (std::chrono::steady_clock::now() >= deadline) {
      timed_out = true;
      break;
    }
    if (open) {
      drain(20);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  // The probe, if it is still there, and whatever it started that still holds its output. (A
  // group with a member left cannot have its id reused; an empty one is left alone.)
  if (!reaped || open) ::kill(-child, SIGKILL);
  if (!reaped && !timed_out) status = -1;
  if (timed_out) {
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
  }
  for (int i = 0; open && i < 64; ++i) drain(0);  // what it wrote before it ended
  ::close(out[0]);
  while (!said.empty() && (said.back() == '\n' || said.back() == '\r')) said.pop_back();
  if (auto last = said.rfind('\n'); last != std::string::npos) said = said.substr(last + 1);
  if (timed_out) throw PluginError(what + ": it did not finish loading within 30 s (in a probe process)");
  if (!reaped) throw PluginUnavailable(what + ": cannot learn how its probe ended: " + std::strerror(errno));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 2 && said.rfind("plugin ", 0) == 0) throw PluginError(said);
  std::string how = WIFSIGNALED(status) ? "crashed (signal " + std::to_string(WTERMSIG(status)) + ", " +
                                              strsignal(WTERMSIG(status)) + ")"
                                        : "ended with status " + std::to_string(WEXITSTATUS(status));
  throw PluginError(what + ": loading it or its registration " + how + " in a probe process" +
                    (said.empty() ? std::string() : ": " + said));
}

}  // namespace

int probe_plugin(const std::string& library) {
  try {
    std::string json;
    char buffer[4096];
    for (ssize_t n; (n = ::read(4, buffer, sizeof buffer)) > 0;) json.append(buffer, static_cast<std::size_t>(n));
    ::close(4);
    auto bindings = nlohmann::json::parse(json, nullptr, false);
    auto opened = open_library(library, 3);
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
    auto copy = copy_library(given);
    try {
      probe_in_child(given, copy.fd, bindings_);
    } catch (...) {
      ::close(copy.fd);
      throw;
    }
    auto opened = open_library(given, copy.fd);
    auto mine = register_library(opened, given, classes, loaded_, bindings_);
    spdlog::info("plugin {} (cairn {}): {}", given, opened.version, joined(mine));
    libraries_.push_back(Library{given, copy.identity, mine, 1, {}, {}});
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
      auto copy = copy_library(library.path);
      try {
        probe_in_child(library.path, copy.fd, bindings_);
      } catch (...) {
        ::close(copy.fd);
        throw;
      }
      auto opened = open_library(library.path, copy.fd);
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
      library.identity = copy.identity;
      library.refused_identity.clear();
      ++library.version;
      spdlog::info("plugin {} reloaded (its load number {}, cairn {}): {}; {} live instances evicted to wake on it",
                   library.path, library.version, opened.version, joined(mine), evicted);
      row["outcome"] = "reloaded";
      row["bindings"] = mine;
      row["evicted"] = evicted;
    } catch (const PluginUnavailable& e) {
      // The probe could not run (no descriptors, no processes): tried again at the next reload.
      spdlog::error("reload: {}; the running version stays", e.what());
      row["outcome"] = "refused";
      row["reason"] = e.what();
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
    routing.routes_given = table.contains("routes") || table.contains("objects");
    for (const auto& [key, value] : table.items()) {
      if (key == "options") {
        if (!value.is_object()) throw PluginError(where + ".options: must be a table");
        if (plugins.library_of.count(binding) == 0) {
          throw PluginError(where + ".options: " + binding +
                            " is compiled into this program, whose flags configure it (options go to a plugin's classes)");
        }
      } else if (key == "static") {
        auto rows = value.is_array() ? value : nlohmann::json::array({value});
        for (const auto& row : rows) {
          std::string at = where + ".static";
          if (!row.is_object() || !row.contains("prefix") || !row.contains("dir") || row.size() != 2 ||
              !row["prefix"].is_string() || !row["dir"].is_string()) {
            throw PluginError(at + ": must be { prefix = \"/NAME/\", dir = \"/path/to/files\" } (or an array of them)");
          }
          auto prefix = row["prefix"].get<std::string>();
          std::filesystem::path dir = row["dir"].get<std::string>();
          if (prefix.size() < 3 || prefix.front() != '/' || prefix.back() != '/' ||
              prefix.find_first_of("?# \t\r\n") != std::string::npos || prefix.starts_with(objects_prefix)) {
            throw PluginError(at + ": the prefix is a path that starts and ends with '/' (\"/chat/\"), not '" + prefix + "'");
          }
          std::error_code ec;
          if (!std::filesystem::is_directory(dir, ec)) throw PluginError(at + ": " + dir.string() + " is not a directory");
          routing.statics.push_back({prefix, std::filesystem::canonical(dir, ec)});
        }
        routed = true;
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
        throw PluginError(where + ": unknown key '" + key + "' (routes, objects, static, idle-timeout, options)");
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
    if (routing.routes_given) {
      std::erase_if(web.routes, [&](const Route& r) { return r.binding == binding; });
      std::erase(web.object_bindings, binding);
    }
    for (const auto& route : routing.routes) {
      auto taken = std::find_if(web.routes.begin(), web.routes.end(), [&](const Route& r) { return r.path == route.path; });
      if (taken != web.routes.end()) {
        throw PluginError("binding " + binding + ": " + route.path + " is routed to " + taken->binding + " already");
      }
      web.routes.push_back(route);
    }
    if (routing.objects) web.object_bindings.push_back(binding);
    for (const auto& mount : routing.statics) {
      for (const auto& other : web.static_mounts) {
        if (other.prefix == mount.prefix) {
          throw PluginError("binding " + binding + ": static files at " + mount.prefix + " are served from " +
                            other.dir.string() + " already");
        }
      }
      web.static_mounts.push_back(mount);
    }
  };
  for (const auto& [binding, routing] : plugins.defaults) {
    auto mine = configured.find(binding);
    if (mine == configured.end() || !mine->second.routes_given) set(binding, routing);
  }
  for (const auto& [binding, routing] : configured) set(binding, routing);
}

}  // namespace cairn::gateway
