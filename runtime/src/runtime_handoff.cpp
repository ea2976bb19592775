// RuntimeCore: what a cluster hand-off needs of the runtime (DESIGN, "Many machines"): to
// know when a shard's instances are all closed, the shard's rows of the node's alarm and
// names indexes (they travel with the shard's files), and its sockets closed with 1012.
#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "data_layout.hpp"

#include "runtime_core.hpp"

namespace cairn::detail {

std::size_t RuntimeCore::shard_instances(unsigned shard) const {
  // Under the structure lock: deliver() asks Ownership::admits again under it before it
  // makes an entry, so once the shard is closed and this says 0, it stays 0.
  std::lock_guard lock(mutex_);
  std::size_t count = 0;
  for (const auto& stripe : stripes_) {
    std::lock_guard stripe_lock(stripe.mutex);
    for (const auto& [hex, entry] : stripe.entries) {
      if (entry.id.shard() == shard) ++count;
    }
  }
  return count;
}

nlohmann::json RuntimeCore::shard_indexes(unsigned shard) const {
  nlohmann::json alarms = nlohmann::json::array();
  for (const auto& [id, due] : alarms_->of_shard(shard)) {
    alarms.push_back({{"binding", id.binding()}, {"name", id.name()}, {"due", due}});
  }
  nlohmann::json names = nlohmann::json::array();
  for (const auto& name : names_->of_shard(shard)) {
    names.push_back(
        {{"binding", name.binding}, {"name", name.name}, {"created_ms", name.created_ms}});
  }
  return {{"alarms", std::move(alarms)}, {"names", std::move(names)}};
}

void RuntimeCore::adopt_shard_indexes(const nlohmann::json& rows) {
  auto id_of = [](const nlohmann::json& row) {
    if (!row.is_object() || !row.contains("binding") || !row["binding"].is_string() ||
        !row.contains("name") || !row["name"].is_string()) {
      throw std::runtime_error("an index row without a string binding and name");
    }
    auto id = ActorId::make(row["binding"].get<std::string>(), row["name"].get<std::string>());
    if (!id) throw std::runtime_error("an index row with a bad actor: " + id.error().message);
    return *id;
  };
  if (!rows.is_object() || !rows.contains("alarms") || !rows["alarms"].is_array() ||
      !rows.contains("names") || !rows["names"].is_array()) {
    throw std::runtime_error("index rows are {\"alarms\": [...], \"names\": [...]}");
  }
  // Everything checked before anything is written.
  std::vector<NamesIndex::Name> names;
  for (const auto& row : rows["names"]) {
    auto id = id_of(row);
    auto created = row.value("created_ms", nlohmann::json(0));
    names.push_back({id.binding(), id.name(), id.hex(),
                     created.is_number_integer() ? created.get<std::int64_t>() : 0});
  }
  std::vector<std::pair<ActorId, std::int64_t>> alarms;
  for (const auto& row : rows["alarms"]) {
    auto id = id_of(row);
    if (!row.contains("due") || !row["due"].is_number_integer())
      throw std::runtime_error("an alarm row without due");
    alarms.emplace_back(id, row["due"].get<std::int64_t>());
  }
  names_->adopt(names);
  bool sooner = false;
  for (const auto& [id, due] : alarms) sooner = alarms_->adopt(id, due) || sooner;
  if (sooner) {
    {
      std::lock_guard lock(alarm_mutex_);
      alarm_kick_ = true;
    }
    alarm_cv_.notify_one();
  }
}

void RuntimeCore::forget_shard_indexes(unsigned shard) {
  alarms_->forget_shard(shard);
  names_->forget_shard(shard);
}

nlohmann::json RuntimeCore::adopt_shard_files(unsigned shard) {
  namespace fs = std::filesystem;
  nlohmann::json rows{{"alarms", nlohmann::json::array()}, {"names", nlohmann::json::array()}};
  auto dir = detail::shard_dir(options.data_dir, shard);
  std::error_code ec;
  std::vector<fs::path> files;
  for (const auto& binding : fs::directory_iterator(dir, ec)) {
    if (!binding.is_directory()) continue;
    for (const auto& file : fs::directory_iterator(binding.path(), ec)) {
      if (file.path().extension() == ".sqlite") files.push_back(file.path());
    }
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    throw std::runtime_error("cannot list " + dir.string() + ": " + ec.message());
  }
  for (const auto& file : files) {
    // Opened with SQLite's own VFS, not the runtime's: nothing here is the shard's owner yet,
    // and a WAL left by the owner's crash is recovered by the open like any other.
    sqlite3* raw = nullptr;
    int rc = sqlite3_open_v2(file.c_str(), &raw, SQLITE_OPEN_READWRITE, "unix");
    std::unique_ptr<sqlite3, int (*)(sqlite3*)> db(raw, sqlite3_close_v2);
    auto query = [&](const char* sql, auto&& each) {
      sqlite3_stmt* stmt = nullptr;
      if (sqlite3_prepare_v2(db.get(), sql, -1, &stmt, nullptr) != SQLITE_OK) return false;
      while (sqlite3_step(stmt) == SQLITE_ROW) each(stmt);
      sqlite3_finalize(stmt);
      return true;
    };
    std::string binding, name;
    std::int64_t created = 0;
    bool named = rc == SQLITE_OK && query("SELECT binding, name, created_ms FROM _cairn_actor", [&](sqlite3_stmt* s) {
      auto text = [s](int column) {
        auto* t = reinterpret_cast<const char*>(sqlite3_column_text(s, column));
        return t == nullptr ? std::string() : std::string(t);
      };
      binding = text(0);
      name = text(1);
      created = sqlite3_column_int64(s, 2);
    });
    auto id = named ? ActorId::make(binding, name) : Result<ActorId>(Error{Code::not_found, "unnamed"});
    if (!id || id->binding() != file.parent_path().filename().string() || id->hex() != file.stem().string()) {
      spdlog::warn("cluster: shard {}: {} does not name its actor (written before cairn kept names in each "
                   "database?): it is not indexed here, so its alarms wait until the actor is next called",
                   shard, file.string());
      continue;
    }
    rows["names"].push_back({{"binding", binding}, {"name", name}, {"created_ms", created}});
    (void)query("SELECT min(due) FROM _cairn_alarms", [&](sqlite3_stmt* s) {
      if (sqlite3_column_type(s, 0) == SQLITE_INTEGER) {
        rows["alarms"].push_back({{"binding", binding}, {"name", name}, {"due", sqlite3_column_int64(s, 0)}});
      }
    });
  }
  forget_shard_indexes(shard);
  adopt_shard_indexes(rows);
  return rows;
}

std::size_t RuntimeCore::close_shard_sockets(unsigned shard, int code, const std::string& reason) {
  std::size_t closed = 0;
  for (const auto& [owner, count] : sockets.owners()) {
    if (owner.shard() != shard) continue;
    for (const auto& entry : sockets.list(owner.hex(), "")) {
      entry->sink->close(code, reason);
      ++closed;
    }
  }
  return closed;
}

}  // namespace cairn::detail
