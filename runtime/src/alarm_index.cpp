// AlarmIndex: the index file, the scheduler's queue, group-committed durable writes.
#include "alarm_index.hpp"

#include <sqlite3.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>

#include "cairn/sql.hpp"
#include "data_layout.hpp"
#include "database.hpp"

namespace cairn::detail {

AlarmIndex::AlarmIndex(const std::filesystem::path& file, Durability durability,
                       const std::function<bool(const std::string&)>& known) {
  db_ = open_index_file(file, durability, "alarm index");
  try {
    Sql sql(db_);
    sql.exec(
        "CREATE TABLE IF NOT EXISTS alarms (actor TEXT PRIMARY KEY, binding TEXT NOT NULL, "
        "name TEXT NOT NULL, due INTEGER NOT NULL) WITHOUT ROWID");
    std::size_t skipped = 0;
    for (const auto& row : sql.exec("SELECT binding, name, due FROM alarms")) {
      const auto& binding = std::get<std::string>(row["binding"]);
      auto id = ActorId::make(binding, std::get<std::string>(row["name"]));
      if (!id || !known(binding)) {
        ++skipped;
        continue;
      }
      Ticks due = std::get<std::int64_t>(row["due"]);
      durable_[id->hex()] = due;
      queue_locked(*id, due);
    }
    if (skipped > 0) {
      spdlog::warn("alarm index: {} actors with alarms belong to bindings not registered now; "
                   "their alarms wait until the binding is registered again", skipped);
    }
  } catch (const std::exception& e) {
    std::string hint = sqlite3_errcode(db_) == SQLITE_BUSY
                           ? " (is another cairn process using this data directory?)"
                           : "";
    sqlite3_close(db_);
    throw std::runtime_error("cannot use the alarm index " + file.string() + ": " + e.what() + hint);
  }
}

AlarmIndex::~AlarmIndex() { close(); }

void AlarmIndex::close() {
  flush();
  std::lock_guard lock(mutex_);
  if (db_ == nullptr) return;
  sqlite3_close(db_);
  db_ = nullptr;
}

void AlarmIndex::queue_locked(const ActorId& id, std::optional<Ticks> due) {
  auto it = items_.find(id.hex());
  if (it != items_.end()) {
    queue_.erase({it->second.due, it->first});
    if (!due) {
      items_.erase(it);
      return;
    }
    it->second.due = *due;
  } else {
    if (!due) return;
    it = items_.emplace(id.hex(), Item{id, *due}).first;
  }
  queue_.emplace(*due, it->first);
}

void AlarmIndex::before_commit(const ActorId& id, std::optional<Ticks> next) {
  std::unique_lock lock(mutex_);
  if (!next) return;
  const auto& hex = id.hex();
  // The file must hold `next` or sooner before the commit, and nothing queued or under way may
  // raise it past `next` afterwards: such a write (the lazy one of an earlier commit, whose
  // later time was the truth then) would leave the index late if this commit lands and the
  // later time it was told of does not. So a queued write is lowered to `next` (lazily: the
  // file is not raised past `next` before it runs), and the write is made now if the file, or
  // what is being written to it, is later.
  Ticks target = *next;
  auto queued = pending_.find(hex);
  if (queued != pending_.end() && queued->second.due && *queued->second.due < target) target = *queued->second.due;
  auto indexed = durable_.find(hex);
  auto writing = in_flight_.find(hex);
  bool write = indexed == durable_.end() || indexed->second > target ||
               (writing != in_flight_.end() && (!writing->second || *writing->second > target));
  if (!write) {
    if (queued != pending_.end()) queued->second.due = target;
    return;
  }
  pending_.insert_or_assign(hex, Write{id, target});
  write_now(lock);
}

bool AlarmIndex::after_commit(const ActorId& id, std::optional<Ticks> next) {
  std::lock_guard lock(mutex_);
  queue_locked(id, next);
  auto indexed = durable_.find(id.hex());
  bool same = next ? (indexed != durable_.end() && indexed->second == *next) : indexed == durable_.end();
  if (same && !in_flight_.contains(id.hex())) {
    pending_.erase(id.hex());
  } else {
    pending_.insert_or_assign(id.hex(), Write{id, next});
  }
  return next && queue_.begin()->second == id.hex();
}

std::vector<ActorId> AlarmIndex::take_due(Ticks now, Ticks retry_at, std::size_t max) {
  std::lock_guard lock(mutex_);
  std::vector<ActorId> out;
  while (!queue_.empty() && out.size() < max && queue_.begin()->first <= now) {
    auto node = queue_.extract(queue_.begin());
    auto& item = items_.at(node.value().second);
    out.push_back(item.id);
    item.due = retry_at;
    node.value().first = retry_at;
    queue_.insert(std::move(node));
  }
  return out;
}

std::optional<AlarmIndex::Ticks> AlarmIndex::next_due() const {
  std::lock_guard lock(mutex_);
  if (queue_.empty()) return std::nullopt;
  return queue_.begin()->first;
}

std::size_t AlarmIndex::size() const {
  std::lock_guard lock(mutex_);
  return items_.size();
}

std::vector<std::pair<ActorId, AlarmIndex::Ticks>> AlarmIndex::of_shard(unsigned shard) const {
  std::lock_guard lock(mutex_);
  std::vector<std::pair<ActorId, Ticks>> out;
  for (const auto& [hex, item] : items_) {
    if (item.id.shard() != shard) continue;
    Ticks due = item.due;  // a retry time after a wake that was refused: the file may be sooner
    if (auto indexed = durable_.find(hex); indexed != durable_.end()) due = std::min(due, indexed->second);
    out.emplace_back(item.id, due);
  }
  return out;
}

bool AlarmIndex::adopt(const ActorId& id, Ticks due) {
  before_commit(id, due);  // durable first: the index may be early, never late
  std::lock_guard lock(mutex_);
  queue_locked(id, due);
  return queue_.begin()->second == id.hex();
}

void AlarmIndex::forget_shard(unsigned shard) {
  std::vector<ActorId> ids;
  std::unique_lock lock(mutex_);
  while (writing_) written_.wait(lock);  // the file's handle is the writer's meanwhile
  if (db_ == nullptr) return;
  for (const auto& [hex, item] : items_) {
    if (item.id.shard() == shard) ids.push_back(item.id);
  }
  // Rows in the file that are not queued (a cleared alarm whose lazy delete failed) have no
  // ActorId in memory: read back.
  auto [first, end] = shard_hex_range(shard);
  Sql sql(db_);
  for (const auto& row : sql.exec("SELECT binding, name FROM alarms WHERE actor >= ? AND actor < ?", first, end)) {
    auto id = ActorId::make(std::get<std::string>(row["binding"]), std::get<std::string>(row["name"]));
    if (id && id->shard() == shard) ids.push_back(*id);
  }
  for (const auto& id : ids) {
    queue_locked(id, std::nullopt);
    pending_.insert_or_assign(id.hex(), Write{id, std::nullopt});
  }
  if (ids.empty()) return;
  write_now(lock);
}

void AlarmIndex::write_now(std::unique_lock<std::mutex>& lock) {
  // The pending writes go in the next batch: this one's writer, or a wait for it.
  auto batch = next_batch_;
  while (!batch->done) {
    if (writing_) {
      written_.wait(lock);
    } else {
      write_pending(lock);
    }
  }
  if (!batch->error.empty()) throw std::runtime_error("the alarm index: " + batch->error);
}

void AlarmIndex::flush() {
  std::unique_lock lock(mutex_);
  if (pending_.empty() || writing_ || db_ == nullptr) return;
  write_pending(lock);
}

void AlarmIndex::write_pending(std::unique_lock<std::mutex>& lock) {
  writing_ = true;
  auto batch = std::exchange(next_batch_, std::make_shared<Batch>());
  std::vector<Write> writes;
  writes.reserve(pending_.size());
  for (auto& [hex, write] : pending_) {
    in_flight_.insert_or_assign(hex, write.due);
    writes.push_back(std::move(write));
  }
  pending_.clear();
  lock.unlock();
  std::string error;
  try {
    write_rows(writes);
  } catch (const std::exception& e) {
    error = e.what();
  }
  lock.lock();
  writing_ = false;
  in_flight_.clear();
  if (error.empty()) {
    for (const auto& write : writes) {
      if (write.due) {
        durable_[write.id.hex()] = *write.due;
      } else {
        durable_.erase(write.id.hex());
      }
    }
  } else {
    spdlog::error("alarm index: a write failed: {}", error);
    // The write may still have reached the file (a COMMIT whose fsync failed leaves valid
    // frames a recovery replays): what the file holds for these actors is unknown, so the
    // next before_commit of each writes again. Keep the lazy ones for the next flush, unless
    // a newer value came meanwhile.
    for (auto& write : writes) {
      durable_.erase(write.id.hex());
      pending_.try_emplace(write.id.hex(), std::move(write));
    }
  }
  batch->done = true;
  batch->error = error;
  written_.notify_all();
}

void AlarmIndex::write_rows(const std::vector<Write>& writes) {
  if (db_ == nullptr) throw std::runtime_error("the alarm index is closed (the runtime stopped)");
  Sql sql(db_);
  sql.exec("BEGIN");
  try {
    for (const auto& write : writes) {
      if (write.due) {
        sql.exec("INSERT OR REPLACE INTO alarms VALUES (?, ?, ?, ?)", write.id.hex(),
                 write.id.binding(), write.id.name(), *write.due);
      } else {
        sql.exec("DELETE FROM alarms WHERE actor = ?", write.id.hex());
      }
    }
    sql.exec("COMMIT");
  } catch (...) {
    if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

}  // namespace cairn::detail
