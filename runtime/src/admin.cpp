// Admin: the operator's operations, each an AdminEvent on the actor's host.
#include "cairn/admin.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "cairn/limits.hpp"
#include "database.hpp"
#include "runtime_core.hpp"

namespace cairn {
namespace {

// A fresh scratch file name under <data>/_cairn/tmp (removed by the caller).
std::filesystem::path scratch_file(const std::filesystem::path& data_dir, const char* what) {
  auto dir = data_dir / "_cairn" / "tmp";
  std::filesystem::create_directories(dir);
  thread_local std::mt19937_64 random{std::random_device{}()};
  return dir / (std::string(what) + "-" + std::to_string(random()) + ".sqlite");
}

struct RemoveOnExit {
  std::filesystem::path path;
  ~RemoveOnExit() {
    std::error_code ec;
    remove_database_files(path, ec);
  }
};

// Checks that `file` is an intact SQLite database: "" if so, else why not.
std::string check_database(const std::filesystem::path& file) {
  sqlite3* db = nullptr;
  std::string uri = "file:" + file.string() + "?mode=ro";
  int rc = sqlite3_open_v2(uri.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr);
  std::string problem;
  if (rc != SQLITE_OK) {
    problem = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  } else {
    sqlite3_stmt* stmt = nullptr;
    rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      problem = sqlite3_errmsg(db);
    } else {
      rc = sqlite3_step(stmt);
      if (rc != SQLITE_ROW) {
        problem = sqlite3_errmsg(db);
      } else {
        std::string verdict = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
        if (verdict != "ok") problem = "integrity check: " + verdict;
      }
      sqlite3_finalize(stmt);
    }
  }
  sqlite3_close(db);
  return problem;
}

// The id of (binding, name), with Runtime::get()'s errors.
Result<ActorId> id_of(const Runtime& runtime, std::string_view binding, std::string_view name) {
  auto stub = runtime.get(binding, name);
  if (!stub) return stub.error();
  return stub->id();
}

}  // namespace

Admin::Admin(Runtime& runtime) : runtime_(runtime) {}

nlohmann::json Admin::bindings() const {
  auto& core = *runtime_.core_;
  std::map<std::string, std::size_t> known, live, hibernated;
  for (auto& [binding, count] : core.names().counts()) known[binding] = count;
  for (auto& [binding, count] : core.live_by_binding()) live[binding] = count;
  for (const auto& [owner, count] : core.sockets.owners()) {
    if (!core.is_live(owner.hex())) ++hibernated[owner.binding()];
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto& binding : core.registry.bindings()) {
    out.push_back({{"binding", binding},
                   {"actors", known[binding]},
                   {"live", live[binding]},
                   {"hibernated", hibernated[binding]}});
  }
  return out;
}

Result<nlohmann::json> Admin::list(std::string_view binding, std::string_view prefix,
                                   std::string_view after, std::size_t limit) const {
  auto& core = *runtime_.core_;
  if (core.registry.find(binding) == nullptr) {
    return fail(Code::not_found, "no actor class is bound to '" + std::string(binding) + "'");
  }
  if (limit < 1 || limit > 1000) return fail(Code::invalid_argument, "limit must be 1 to 1000");
  auto names = core.names().list(std::string(binding), std::string(prefix), std::string(after), limit + 1);
  std::map<std::string, std::size_t> sockets;
  for (const auto& [owner, count] : core.sockets.owners()) {
    if (owner.binding() == binding) sockets[owner.hex()] = count;
  }
  nlohmann::json actors = nlohmann::json::array();
  nlohmann::json next = nullptr;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i == limit) {
      next = names[i - 1].name;
      break;
    }
    const auto& entry = names[i];
    auto open = sockets.find(entry.hex);
    actors.push_back({{"name", entry.name},
                      {"id", entry.hex},
                      {"created_ms", entry.created_ms},
                      {"live", core.is_live(entry.hex)},
                      {"websockets", open == sockets.end() ? 0 : open->second}});
  }
  return nlohmann::json{{"actors", std::move(actors)}, {"next", std::move(next)}};
}

Result<nlohmann::json> Admin::inspect(std::string_view binding, std::string_view name) const {
  auto id = id_of(runtime_, binding, name);
  if (!id) return id.error();
  detail::RuntimeCore::AdminFacts facts;
  auto result = runtime_.core_->admin(*id, AdminEvent::Op::inspect, {}, 0, false, &facts);
  if (result) {
    (*result)["live"] = facts.live;
    (*result)["last_event_ms"] = facts.last_event_ms ? nlohmann::json(*facts.last_event_ms) : nlohmann::json();
  }
  return result;
}

Result<nlohmann::json> Admin::top(std::chrono::seconds seconds, std::size_t limit) const {
  auto longest = std::chrono::duration_cast<std::chrono::seconds>(limits::activity_slot) *
                 static_cast<std::int64_t>(limits::activity_slots);
  if (seconds < limits::activity_slot || seconds > longest) {
    return fail(Code::invalid_argument, "seconds must be " + std::to_string(limits::activity_slot.count()) + " to " +
                                            std::to_string(longest.count()));
  }
  if (limit < 1 || limit > limits::admin_max_top) {
    return fail(Code::invalid_argument, "limit must be 1 to " + std::to_string(limits::admin_max_top));
  }
  return runtime_.core_->activity().top(seconds, limit);
}

Result<nlohmann::json> Admin::query(std::string_view binding, std::string_view name,
                                    std::string_view sql, std::size_t max_rows) const {
  auto id = id_of(runtime_, binding, name);
  if (!id) return id.error();
  if (sql.empty()) return fail(Code::invalid_argument, "the query is empty");
  if (max_rows < 1 || max_rows > limits::admin_max_rows) {
    return fail(Code::invalid_argument,
                "max_rows must be 1 to " + std::to_string(limits::admin_max_rows) + " (limits::admin_max_rows)");
  }
  return runtime_.core_->admin(*id, AdminEvent::Op::query, std::string(sql), max_rows, false);
}

Result<std::string> Admin::export_database(std::string_view binding, std::string_view name) const {
  auto& core = *runtime_.core_;
  auto id = id_of(runtime_, binding, name);
  if (!id) return id.error();
  RemoveOnExit scratch{scratch_file(core.options.data_dir, "export")};
  auto copied = core.admin(*id, AdminEvent::Op::copy_to, scratch.path.string(), 0, false);
  if (!copied) return copied.error();
  std::ifstream in(scratch.path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in && !in.eof()) return fail(Code::internal, "cannot read the exported copy");
  return bytes;
}

Result<nlohmann::json> Admin::import_database(std::string_view binding, std::string_view name,
                                              std::string_view bytes) const {
  auto& core = *runtime_.core_;
  auto id = id_of(runtime_, binding, name);
  if (!id) return id.error();
  if (bytes.size() > limits::max_admin_body_bytes) {
    return fail(Code::too_large, "an imported database may be at most " +
                                     std::to_string(limits::max_admin_body_bytes) + " bytes");
  }
  static constexpr std::string_view magic{"SQLite format 3\0", 16};
  if (bytes.size() < 512 || bytes.substr(0, magic.size()) != magic) {
    return fail(Code::invalid_argument, "the body is not a SQLite database file");
  }
  RemoveOnExit scratch{scratch_file(core.options.data_dir, "import")};
  {
    std::ofstream out(scratch.path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) return fail(Code::unavailable, "cannot write the upload to the data directory");
  }
  if (auto problem = check_database(scratch.path); !problem.empty()) {
    return fail(Code::invalid_argument, "the body is not an intact SQLite database: " + problem);
  }
  return core.admin(*id, AdminEvent::Op::import, scratch.path.string(), 0, true);
}

Result<nlohmann::json> Admin::remove(std::string_view binding, std::string_view name) const {
  auto& core = *runtime_.core_;
  auto id = id_of(runtime_, binding, name);
  if (!id) return id.error();
  detail::RuntimeCore::AdminFacts facts;
  auto result = core.admin(*id, AdminEvent::Op::remove, {}, 0, false, &facts);
  if (result) (*result)["live"] = facts.live;
  return result;
}

Result<nlohmann::json> Admin::restore(std::string_view binding, std::string_view name, std::int64_t at_ms) const {
  auto id = id_of(runtime_, binding, name);
  if (!id) return id.error();
  if (at_ms < 0) return fail(Code::invalid_argument, "the time must be after 1970");
  return runtime_.core_->admin(*id, AdminEvent::Op::restore, std::to_string(at_ms), 0, false);
}

Result<bool> Admin::evict(std::string_view binding, std::string_view name) const {
  return runtime_.evict(binding, name);
}

Result<nlohmann::json> Admin::backup(const std::filesystem::path& dir) const {
  auto& core = *runtime_.core_;
  auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) && !std::filesystem::is_empty(dir, ec)) {
    return fail(Code::conflict, "the backup directory " + dir.string() + " is not empty");
  }
  std::filesystem::create_directories(dir / "_cairn", ec);
  if (ec) return fail(Code::invalid_argument, "cannot create " + dir.string() + ": " + ec.message());
  // The names first: every actor in them has its database copied after, so an actor whose
  // write was acknowledged before this call is in the copy with that write.
  try {
    core.names().backup_to(dir / "_cairn" / "names.sqlite");
  } catch (const std::exception& e) {
    return fail(Code::unavailable, std::string("cannot copy the names index: ") + e.what());
  }
  auto names = core.names().all();
  std::set<std::string> bindings;
  for (const auto& entry : names) {
    if (core.registry.find(entry.binding) != nullptr && bindings.insert(entry.binding).second) {
      std::filesystem::create_directories(dir / entry.binding, ec);
    }
  }
  struct Copied {
    std::optional<std::int64_t> soonest_alarm;
    std::uint64_t bytes = 0;
  };
  std::vector<std::optional<Copied>> copied(names.size());
  std::vector<std::string> errors;
  std::mutex errors_mutex;
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t i = next++; i < names.size(); i = next++) {
      const auto& entry = names[i];
      auto id = ActorId::make(entry.binding, entry.name);
      if (!id || core.registry.find(entry.binding) == nullptr) continue;
      auto file = dir / entry.binding / (entry.hex + ".sqlite");
      auto copy_start = std::chrono::steady_clock::now();
      auto result = core.admin(*id, AdminEvent::Op::copy_to, file.string(), 0, false);
      // Paced, so the workload keeps the machine (limits::backup_rest_factor).
      std::this_thread::sleep_for((std::chrono::steady_clock::now() - copy_start) * limits::backup_rest_factor);
      if (!result) {
        if (result.error().code == Code::not_found) continue;  // deleted meanwhile
        std::lock_guard lock(errors_mutex);
        errors.push_back(entry.binding + " '" + entry.name + "': " + result.error().message);
        continue;
      }
      Copied one;
      one.bytes = (*result)["bytes"].get<std::uint64_t>();
      if ((*result)["soonest_alarm"].is_number()) one.soonest_alarm = (*result)["soonest_alarm"].get<std::int64_t>();
      copied[i] = one;
    }
  };
  {
    // One copier: each copy is an event on an actor's host, on the threads that serve.
    std::thread copier(worker);
    copier.join();
  }
  if (!errors.empty()) {
    return fail(Code::unavailable, "the backup is incomplete: " + std::to_string(errors.size()) +
                                       " actors could not be copied; first: " + errors.front());
  }
  // The alarm index of the copy, from the copied databases themselves.
  std::size_t actors = 0;
  std::uint64_t bytes = 0;
  try {
    detail::AlarmIndex alarms(dir / "_cairn" / "alarms.sqlite", Durability::full,
                              [](const std::string&) { return true; });
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (!copied[i]) continue;
      ++actors;
      bytes += copied[i]->bytes;
      if (copied[i]->soonest_alarm) {
        alarms.before_commit(*ActorId::make(names[i].binding, names[i].name), copied[i]->soonest_alarm);
      }
    }
    alarms.close();
  } catch (const std::exception& e) {
    return fail(Code::unavailable, std::string("cannot write the backup's alarm index: ") + e.what());
  }
  {
    // A standalone file, like the others (the index opens it in WAL mode again).
    sqlite3* db = nullptr;
    auto file = dir / "_cairn" / "alarms.sqlite";
    bool ok = sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK &&
              sqlite3_exec(db, "PRAGMA journal_mode=DELETE", nullptr, nullptr, nullptr) == SQLITE_OK;
    sqlite3_close(db);
    if (!ok) return fail(Code::unavailable, "cannot finish the backup's alarm index");
    sync_path(file);
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  nlohmann::json manifest{{"format", "cairn-backup-1"},
                          {"created_ms", unix_ms()},
                          {"actors", actors},
                          {"bytes", bytes},
                          {"bindings", bindings}};
  {
    std::ofstream out(dir / "manifest.json");
    out << manifest.dump(2) << '\n';
    if (!out) return fail(Code::unavailable, "cannot write " + (dir / "manifest.json").string());
  }
  for (const auto& binding : bindings) sync_path(dir / binding);
  for (const auto& path : {dir / "manifest.json", dir / "_cairn", dir}) sync_path(path);
  return nlohmann::json{{"dir", dir.string()}, {"actors", actors}, {"bytes", bytes}, {"seconds", seconds}};
}

Result<std::int64_t> parse_moment(std::string_view text) {
  auto refuse = [&] {
    return fail(Code::invalid_argument, "the time '" + std::string(text.substr(0, 64)) +
                                            "' is neither RFC 3339 (2026-12-02T10:15:00Z, or with an offset "
                                            "such as +01:00) nor Unix milliseconds");
  };
  if (text.empty() || text.size() > 40) return refuse();
  if (std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    std::int64_t ms = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), ms);
    if (error != std::errc() || end != text.data() + text.size()) return refuse();
    return ms;
  }
  // No library in Debian's set parses RFC 3339 for C++20's libstdc++ (std::chrono::parse is
  // not there yet): the fixed layout is read by hand and timegm() does the calendar.
  std::string s(text);
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, used = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &year, &month, &day, &hour, &minute, &second, &used) != 6 ||
      used != 19) {
    return refuse();
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return refuse();
  std::size_t at = 19;
  std::int64_t ms = 0;
  if (at < s.size() && s[at] == '.') {
    std::size_t digits = 0;
    for (++at; at < s.size() && s[at] >= '0' && s[at] <= '9'; ++at, ++digits) {
      if (digits < 3) ms = ms * 10 + (s[at] - '0');
    }
    if (digits == 0) return refuse();
    for (; digits < 3; ++digits) ms *= 10;
  }
  std::int64_t offset_s = 0;
  if (at < s.size() && (s[at] == 'Z' || s[at] == 'z')) {
    ++at;
  } else if (at + 6 == s.size() && (s[at] == '+' || s[at] == '-') && s[at + 3] == ':') {
    int oh = 0, om = 0;
    if (std::sscanf(s.c_str() + at + 1, "%2d:%2d", &oh, &om) != 2 || oh > 23 || om > 59) return refuse();
    offset_s = (s[at] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    at += 6;
  } else {
    return refuse();
  }
  if (at != s.size()) return refuse();
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  std::time_t seconds = ::timegm(&tm);
  if (tm.tm_mday != day) return refuse();  // 2026-02-30 rolled over into March
  return (static_cast<std::int64_t>(seconds) - offset_s) * 1000 + ms;
}

Result<nlohmann::json> restore_backup(const std::filesystem::path& backup,
                                      const std::filesystem::path& data_dir, std::optional<std::int64_t> at_ms) {
  std::error_code ec;
  auto manifest_path = backup / "manifest.json";
  std::ifstream in(manifest_path);
  if (!in) return fail(Code::invalid_argument, backup.string() + " is not a cairn backup (no manifest.json)");
  auto manifest = nlohmann::json::parse(in, nullptr, false);
  if (manifest.is_discarded() || !manifest.is_object() || manifest.value("format", "") != "cairn-backup-1") {
    return fail(Code::invalid_argument, manifest_path.string() + " is not a cairn-backup-1 manifest");
  }
  if (std::filesystem::exists(data_dir, ec) && !std::filesystem::is_empty(data_dir, ec)) {
    return fail(Code::conflict, "the data directory " + data_dir.string() +
                                    " is not empty: restore only into an empty one");
  }
  // Check everything before writing anything.
  std::vector<std::filesystem::path> files;
  std::size_t actors = 0;
  std::uint64_t bytes = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(backup, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file() || it->path().extension() != ".sqlite") continue;
    auto relative = it->path().lexically_relative(backup);
    if (auto problem = check_database(it->path()); !problem.empty()) {
      return fail(Code::invalid_argument, "the backup's " + relative.string() + " is damaged: " + problem);
    }
    if (relative.begin()->string() != "_cairn") ++actors;
    bytes += it->file_size();
    files.push_back(relative);
  }
  if (ec) return fail(Code::invalid_argument, "cannot read " + backup.string() + ": " + ec.message());
  if (actors != manifest.value("actors", std::size_t{0})) {
    return fail(Code::invalid_argument, "the backup holds " + std::to_string(actors) +
                                            " actor databases, its manifest says " +
                                            manifest["actors"].dump());
  }
  std::set<std::filesystem::path> dirs{data_dir};
  for (const auto& relative : files) {
    auto target = data_dir / relative;
    std::filesystem::create_directories(target.parent_path(), ec);
    if (ec) return fail(Code::unavailable, "cannot create " + target.parent_path().string() + ": " + ec.message());
    std::filesystem::copy_file(backup / relative, target, ec);
    if (ec) return fail(Code::unavailable, "cannot copy to " + target.string() + ": " + ec.message());
    sync_path(target);
    dirs.insert(target.parent_path());
  }
  if (at_ms) {
    // Each actor back to the moment, or none: a data directory half at one time and half at
    // another is worse than no answer.
    std::string refused;
    for (const auto& relative : files) {
      if (relative.begin()->string() == "_cairn") continue;
      auto target = data_dir / relative;
      try {
        Database db(target);
        // The restore is recorded like one made by a server, and nothing is pruned here.
        db.enable_history(HistoryOptions{std::chrono::milliseconds::max(), limits::max_history_max_bytes, nullptr});
        db.begin();
        auto restored = db.restore_to(*at_ms);
        if (!restored) {
          db.rollback();
          refused += "\n  " + relative.string() + ": " + restored.error().message;
          continue;
        }
        db.commit();
        db.absorb_wal();
      } catch (const std::exception& e) {
        refused += "\n  " + relative.string() + ": " + e.what();
      }
    }
    if (!refused.empty()) {
      for (const auto& relative : files) remove_database_files(data_dir / relative, ec);
      for (auto dir = dirs.rbegin(); dir != dirs.rend(); ++dir) {
        if (*dir != data_dir) std::filesystem::remove(*dir, ec);
      }
      return fail(Code::conflict, "not every actor could be brought back to " + format_moment(*at_ms) +
                                      ", so nothing was restored:" + refused);
    }
    for (const auto& relative : files) sync_path(data_dir / relative);
  }
  for (const auto& dir : dirs) sync_path(dir);
  nlohmann::json answer{{"actors", actors}, {"bytes", bytes}, {"files", files.size()}};
  if (at_ms) answer["restored_to_ms"] = *at_ms;
  return answer;
}

}  // namespace cairn
