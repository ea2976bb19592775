// NamesIndex: the names file and its group-committed records.
#include "names_index.hpp"

#include <sqlite3.h>

#include <stdexcept>

#include "cairn/sql.hpp"
#include "data_layout.hpp"
#include "database.hpp"

namespace cairn::detail {
namespace {

// The smallest string greater than every string starting with `prefix`; empty if none.
std::string prefix_end(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) prefix.pop_back();
  if (!prefix.empty()) prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

NamesIndex::Name to_name(const Row& row) {
  return {std::get<std::string>(row["binding"]), std::get<std::string>(row["name"]),
          std::get<std::string>(row["hex"]), std::get<std::int64_t>(row["created"])};
}

// Writes `rows` in one transaction with `insert` ("INSERT OR IGNORE": rows already there stay;
// "INSERT OR REPLACE": written again). Returns the error, empty if it worked.
std::string insert_rows(sqlite3* db, const std::vector<NamesIndex::Name>& rows, const char* insert) {
  try {
    if (db == nullptr) throw std::runtime_error("the names index is closed (the runtime stopped)");
    Sql sql(db);
    sql.exec("BEGIN IMMEDIATE");
    try {
      for (const auto& name : rows) {
        sql.exec(std::string(insert) + " INTO actors (binding, name, hex, created) VALUES (?, ?, ?, ?)",
                 name.binding, name.name, name.hex, name.created_ms);
      }
      sql.exec("COMMIT");
    } catch (...) {
      if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
    return {};
  } catch (const std::exception& e) {
    return e.what();
  }
}

}  // namespace

NamesIndex::NamesIndex(const std::filesystem::path& file) {
  // synchronous=NORMAL: a record is written at once and made durable by sync_through(),
  // which the first sync of the actor's database calls (checkpoints keep their own syncs).
  db_ = open_index_file(file, Durability::normal, "names index");
  try {
    Sql sql(db_);
    sql.exec(
        "CREATE TABLE IF NOT EXISTS actors (binding TEXT NOT NULL, name TEXT NOT NULL, "
        "hex TEXT NOT NULL UNIQUE, created INTEGER NOT NULL, PRIMARY KEY (binding, name)) "
        "WITHOUT ROWID");
    for (const auto& row : sql.exec("SELECT hex FROM actors")) known_.insert(std::get<std::string>(row[0]));
    if (const char* wal = sqlite3_filename_wal(sqlite3_db_filename(db_, "main")); wal != nullptr) wal_ = wal;
    sqlite3_file_control(db_, "main", SQLITE_FCNTL_VFS_POINTER, &vfs_);
    if (wal_.empty() || vfs_ == nullptr) throw std::runtime_error("cannot find its WAL");
    // What the file holds may not be durable yet (a previous process's unsynced records): the
    // names listed from now on are.
    std::string error;
    if (!sync_wal(vfs_, wal_, error)) throw std::runtime_error(error);
  } catch (const std::exception& e) {
    sqlite3_close(db_);
    throw std::runtime_error("cannot use the names index " + file.string() + ": " + e.what());
  }
}

NamesIndex::~NamesIndex() { close(); }

void NamesIndex::close() {
  std::unique_lock lock(mutex_);
  while (writing_ || syncing_) done_.wait(lock);
  sqlite3_close(db_);
  db_ = nullptr;
}

std::uint64_t NamesIndex::record(const ActorId& id) {
  std::unique_lock lock(mutex_);
  if (known_.contains(id.hex())) return synced_ >= version_ ? 0 : version_;  // written by some write so far
  if (db_ == nullptr) throw SqlError(SQLITE_MISUSE, "the names index is closed (the runtime stopped)", "");
  pending_.push_back({id.binding(), id.name(), id.hex(), unix_ms()});
  std::uint64_t mine = ++queued_;
  // Whoever finds no write in progress writes everything queued so far (group commit);
  // the others wait for the write that carries their record.
  while (written_ < mine) {
    if (!writing_) {
      write_pending(lock);
    } else {
      done_.wait(lock);
    }
  }
  // A write that succeeded added the record to known_ (one that failed left it out).
  if (!known_.contains(id.hex())) {
    throw SqlError(SQLITE_IOERR, "cannot record actor " + id.binding() + " in the names index: " + last_error_, "");
  }
  return version_;
}

bool NamesIndex::sync_through(std::uint64_t version, std::string& error) {
  std::unique_lock lock(mutex_);
  try {
    sync_upto(lock, version);
    return true;
  } catch (const std::exception& e) {
    error = e.what();
    return false;
  }
}

void NamesIndex::sync_upto(std::unique_lock<std::mutex>& lock, std::uint64_t version) {
  while (synced_ < version) {
    if (syncing_ || writing_) {
      done_.wait(lock);
    } else if (rewrite_) {
      rewrite_unsynced(lock);
    } else {
      sync_locked(lock);
    }
  }
}

void NamesIndex::sync_locked(std::unique_lock<std::mutex>& lock) {
  syncing_ = true;
  std::uint64_t upto = version_;  // every change committed before the fsync starts
  lock.unlock();
  std::string error;
  bool ok = sync_wal(vfs_, wal_, error);
  lock.lock();
  syncing_ = false;
  if (ok) {
    synced_ = std::max(synced_, upto);
    // Only the rows it covered: rows may have been forgotten (remove, forget_shard) or
    // written (record, adopt) while the lock was released.
    std::erase_if(unsynced_, [&](const Unsynced& row) { return row.version <= upto; });
  } else {
    // A failed fsync may have dropped the pages it failed to write (and marked them clean): a
    // later fsync would not write them again. The rows it covered are written anew first.
    rewrite_ = true;
  }
  done_.notify_all();
  if (!ok) throw SqlError(SQLITE_IOERR, "cannot sync the names index: " + error, "");
}

void NamesIndex::rewrite_unsynced(std::unique_lock<std::mutex>& lock) {
  writing_ = true;
  std::vector<Name> rows;
  for (const auto& row : unsynced_) rows.push_back(row.name);
  sqlite3* db = db_;
  lock.unlock();
  std::string error = insert_rows(db, rows, "INSERT OR REPLACE");
  lock.lock();
  writing_ = false;
  if (error.empty()) {
    rewrite_ = false;
    ++version_;
  }
  done_.notify_all();
  if (!error.empty()) throw SqlError(SQLITE_IOERR, "cannot write the names index again: " + error, "");
}

void NamesIndex::write_pending(std::unique_lock<std::mutex>& lock) {
  writing_ = true;
  auto batch = std::move(pending_);
  pending_.clear();
  std::uint64_t upto = queued_;
  sqlite3* db = db_;
  lock.unlock();
  std::string error = insert_rows(db, batch, "INSERT OR IGNORE");
  lock.lock();
  writing_ = false;
  if (error.empty()) {
    ++version_;
    for (auto& name : batch) {
      known_.insert(name.hex);
      unsynced_.push_back({version_, std::move(name)});
    }
    written_ = upto;
  } else {
    last_error_ = error;
    written_ = upto;  // those waiting find their record missing from known_
  }
  done_.notify_all();
}

void NamesIndex::remove(const ActorId& id) {
  std::unique_lock lock(mutex_);
  while (writing_) done_.wait(lock);
  if (db_ == nullptr) throw SqlError(SQLITE_MISUSE, "the names index is closed (the runtime stopped)", "");
  Sql sql(db_);
  sql.exec("DELETE FROM actors WHERE hex = ?", id.hex());
  forget_locked({id.hex()});
  sync_upto(lock, version_);
}

void NamesIndex::forget_locked(const std::vector<std::string>& hexes) {
  std::unordered_set<std::string> gone(hexes.begin(), hexes.end());
  for (const auto& hex : hexes) known_.erase(hex);
  // Not written again after a failed sync: that would bring the name back.
  std::erase_if(unsynced_, [&](const Unsynced& row) { return gone.contains(row.name.hex); });
  ++version_;
}

bool NamesIndex::contains(const std::string& hex) const {
  std::lock_guard lock(mutex_);
  return known_.contains(hex);
}

std::vector<NamesIndex::Name> NamesIndex::list(const std::string& binding, const std::string& prefix,
                                               const std::string& after, std::size_t limit) const {
  std::unique_lock lock(mutex_);
  while (writing_) done_.wait(lock);
  if (db_ == nullptr) return {};
  Sql sql(db_);
  std::string end = prefix_end(prefix);
  std::string from = after > prefix ? after : prefix;
  auto rows = sql.exec(
      "SELECT binding, name, hex, created FROM actors WHERE binding = ?1 AND name >= ?2 "
      "AND (?3 = '' OR name < ?3) AND name <> ?4 ORDER BY name LIMIT ?5",
      binding, from, end, after, static_cast<std::int64_t>(limit));
  std::vector<Name> out;
  out.reserve(rows.size());
  for (const auto& row : rows) out.push_back(to_name(row));
  return out;
}

std::vector<std::pair<std::string, std::size_t>> NamesIndex::counts() const {
  std::unique_lock lock(mutex_);
  while (writing_) done_.wait(lock);
  if (db_ == nullptr) return {};
  Sql sql(db_);
  std::vector<std::pair<std::string, std::size_t>> out;
  for (const auto& row : sql.exec("SELECT binding, count(*) FROM actors GROUP BY binding ORDER BY binding")) {
    out.emplace_back(std::get<std::string>(row[0]), static_cast<std::size_t>(std::get<std::int64_t>(row[1])));
  }
  return out;
}

std::vector<NamesIndex::Name> NamesIndex::all() const {
  std::unique_lock lock(mutex_);
  while (writing_) done_.wait(lock);
  if (db_ == nullptr) return {};
  Sql sql(db_);
  std::vector<Name> out;
  for (const auto& row : sql.exec("SELECT binding, name, hex, created FROM actors ORDER BY binding, name")) {
    out.push_back(to_name(row));
  }
  return out;
}

std::vector<NamesIndex::Name> NamesIndex::of_shard(unsigned shard) const {
  auto [first, end] = shard_hex_range(shard);
  std::unique_lock lock(mutex_);
  while (writing_) done_.wait(lock);
  if (db_ == nullptr) return {};
  Sql sql(db_);
  std::vector<Name> out;
  for (const auto& row :
       sql.exec("SELECT binding, name, hex, created FROM actors WHERE hex >= ? AND hex < ? ORDER BY hex", first, end)) {
    out.push_back(to_name(row));
  }
  return out;
}

void NamesIndex::in_transaction(std::unique_lock<std::mutex>& lock, const std::function<void(Sql&)>& work,
                                const std::function<void()>& committed) {
  // Called with mutex_ held and no group write running. Durable on return.
  if (db_ == nullptr) throw SqlError(SQLITE_MISUSE, "the names index is closed (the runtime stopped)", "");
  Sql sql(db_);
  sql.exec("BEGIN IMMEDIATE");
  try {
    work(sql);
    sql.exec("COMMIT");
  } catch (...) {
    if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  committed();  // before the sync lets go of the lock: record() sees the change at once
  sync_upto(lock, version_);
}

void NamesIndex::adopt(const std::vector<Name>& names) {
  std::unique_lock lock(mutex_);
  while (writing_) done_.wait(lock);
  in_transaction(
      lock,
      [&](Sql& sql) {
        for (const auto& name : names) {
          sql.exec("INSERT OR IGNORE INTO actors (binding, name, hex, created) VALUES (?, ?, ?, ?)", name.binding,
                   name.name, name.hex, name.created_ms);
        }
      },
      [&] {
        ++version_;
        for (const auto& name : names) {
          known_.insert(name.hex);
          unsynced_.push_back({version_, name});
        }
      });
}

void NamesIndex::forget_shard(unsigned shard) {
  auto names = of_shard(shard);
  if (names.empty()) return;
  std::unique_lock lock(mutex_);
  while (writing_) done_.wait(lock);
  std::vector<std::string> hexes;
  for (const auto& name : names) hexes.push_back(name.hex);
  in_transaction(
      lock,
      [&](Sql& sql) {
        for (const auto& hex : hexes) sql.exec("DELETE FROM actors WHERE hex = ?", hex);
      },
      [&] { forget_locked(hexes); });
}

void NamesIndex::backup_to(const std::filesystem::path& file) const {
  std::unique_lock lock(mutex_);
  while (writing_) done_.wait(lock);
  if (db_ == nullptr) throw SqlError(SQLITE_MISUSE, "the names index is closed (the runtime stopped)", "");
  copy_database(db_, file);
}

}  // namespace cairn::detail
