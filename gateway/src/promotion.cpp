// CopyPromoter (promotion.hpp).
#include "promotion.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>

namespace cairn::gateway {

namespace fs = std::filesystem;

namespace {

// Writes `text` to `file` (replacing it) and makes it and its entry durable.
bool write_marker(const fs::path& file, const std::string& text, std::string& error) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  int dir = ok ? ::open(file.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  ok = ok && dir >= 0 && ::fsync(dir) == 0;
  if (dir >= 0) ::close(dir);
  if (!ok) error = "cannot write " + file.string() + ": " + std::strerror(errno);
  return ok;
}

bool fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  bool ok = fd >= 0 && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  return ok;
}

// A hand-off's marker is an empty file named after the move (.handed-<move>): made durable by
// its directory's fsync alone, with no data of its own to write.
constexpr std::string_view handed_prefix = ".handed-";

std::string move_mark(const std::string& move) { return "move " + move + " "; }

}  // namespace

CopyPromoter::CopyPromoter(Runtime& runtime, std::shared_ptr<ShardMirror> mirror, fs::path data_dir)
    : runtime_(runtime), mirror_(std::move(mirror)), data_dir_(std::move(data_dir)) {}

fs::path CopyPromoter::marker_of(unsigned shard) const { return runtime_.shard_dir(shard) / ".promoted"; }

std::string CopyPromoter::read_marker(unsigned shard) const {
  std::ifstream in(marker_of(shard));
  std::string mark;
  if (in && std::getline(in, mark)) return mark;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(runtime_.shard_dir(shard), ec)) {
    auto name = entry.path().filename().string();
    if (name.starts_with(handed_prefix)) return move_mark(name.substr(handed_prefix.size()));
  }
  return {};
}

void CopyPromoter::remove_markers(unsigned shard) {
  std::error_code ec;
  fs::remove(marker_of(shard), ec);
  std::vector<fs::path> handed;
  for (const auto& entry : fs::directory_iterator(runtime_.shard_dir(shard), ec)) {
    if (entry.path().filename().string().starts_with(handed_prefix)) handed.push_back(entry.path());
  }
  for (const auto& file : handed) fs::remove(file, ec);
}

void CopyPromoter::trash(unsigned shard, const std::string& why) {
  auto target = runtime_.shard_dir(shard);
  auto aside = data_dir_ / "_cairn" / "trash" /
               ("promotion-" + std::to_string(shard) + "-" +
                std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::error_code ec;
  fs::create_directories(aside.parent_path(), ec);
  fs::rename(target, aside, ec);
  if (ec) throw std::runtime_error("cannot move " + target.string() + " aside: " + ec.message());
  spdlog::info("cluster: shard {}: a copy put aside ({})", shard, why);
}

bool CopyPromoter::take_over(unsigned shard, std::int64_t record) {
  std::lock_guard lock(mutex_);
  auto target = runtime_.shard_dir(shard);
  auto marker = marker_of(shard);
  std::error_code ec;
  bool reuse = false, made = false;
  std::string error;
  try {
    if (fs::exists(target, ec)) {
      auto mark = read_marker(shard);
      // A copy promoted for this record by an earlier try; or one a hand-off promoted that
      // never went through, when the mirror has had no copy since (nothing of the shard
      // landed here after it: it is the newest this node has).
      reuse = mark == std::to_string(record) || (mark.starts_with("move ") && !fs::exists(mirror_->shard_dir(shard), ec));
      // A copy with instances open is one this node serves (asked by a view of the cluster
      // older than its own claim): putting it aside would lose what they wrote.
      if (!reuse && runtime_.shard_instances(shard) > 0) {
        spdlog::error("cluster: shard {} not taken over: this node serves it (instances open)", shard);
        return false;
      }
      if (!reuse) trash(shard, "stale: the shard was assigned elsewhere since this node had it");
    }
    if (reuse) {
      mirror_->promoted(shard);
      made = true;
      if (read_marker(shard) != std::to_string(record) && !write_marker(marker, std::to_string(record) + "\n", error)) {
        throw std::runtime_error(error);
      }
    } else {
      if (!mirror_->promote(shard, target, error)) {
        spdlog::error("cluster: cannot take shard {} over: {}", shard, error);
        if (fs::exists(target, ec)) (void)mirror_->demote(shard, target, error);
        return false;
      }
      made = true;
      if (!write_marker(marker, std::to_string(record) + "\n", error)) {
        spdlog::error("cluster: cannot take shard {} over: {}", shard, error);
        (void)mirror_->demote(shard, target, error);
        return false;
      }
    }
    auto rows = runtime_.adopt_shard_files(shard);
    spdlog::info("cluster: shard {}: {} actors and {} alarms found in the follower's copy", shard,
                 rows["names"].size(), rows["alarms"].size());
  } catch (const std::exception& e) {
    spdlog::error("cluster: cannot take shard {} over: {}", shard, e.what());
    if (made) demote_locked(shard);
    return false;
  }
  return true;
}

void CopyPromoter::finish_takeover(unsigned shard, std::optional<std::int64_t> epoch) {
  std::lock_guard lock(mutex_);
  std::string error;
  std::error_code ec;
  auto target = runtime_.shard_dir(shard);
  if (epoch) {
    if (!mirror_->fence(shard, *epoch, error)) spdlog::error("cluster: shard {}: {}", shard, error);
    remove_markers(shard);
    return;
  }
  demote_locked(shard);
}

void CopyPromoter::demote_locked(unsigned shard) {
  std::string error;
  std::error_code ec;
  try {
    runtime_.forget_shard_indexes(shard);
  } catch (const std::exception& e) {
    spdlog::warn("cluster: shard {}: {}", shard, e.what());
  }
  auto target = runtime_.shard_dir(shard);
  remove_markers(shard);
  if (fs::exists(mirror_->shard_dir(shard), ec)) {
    // The mirror has a copy of its own since (a restart, a seed): the promoted one is older.
    try {
      if (fs::exists(target, ec)) trash(shard, "older than the follower's copy");
    } catch (const std::exception& e) {
      spdlog::error("cluster: shard {}: {}", shard, e.what());
    }
    return;
  }
  if (!mirror_->demote(shard, target, error)) spdlog::error("cluster: shard {}: {}", shard, error);
}

Result<void> CopyPromoter::hand_in(const std::vector<std::pair<unsigned, ReplicaPosition>>& shards,
                                   const std::string& move) {
  std::lock_guard lock(mutex_);
  std::vector<unsigned> done;
  auto refuse = [&](Code code, const std::string& why) -> Result<void> {
    for (unsigned s : done) demote_locked(s);  // all or none
    return Error{code, why};
  };
  std::error_code ec;
  std::string error;
  try {
    for (const auto& [shard, at] : shards) {
      auto target = runtime_.shard_dir(shard);
      auto here = "shard " + std::to_string(shard) + ": ";
      if (fs::exists(target, ec)) {
        auto mark = read_marker(shard);
        if (mark.starts_with(move_mark(move))) {  // asked again: done already
          done.push_back(shard);
          continue;
        }
        if (mark.starts_with("move ")) {
          // An earlier hand-off's, which did not go through: back to the mirror first (this
          // try then fails, as the copy must be seeded again, and the next one goes through).
          demote_locked(shard);
        } else if (!mark.empty()) {
          return refuse(Code::conflict, here + "a takeover of it is under way here");
        } else {
          // What this node had of the shard before: older than the follower's copy, which is
          // level with the owner's files now (checked by promote()).
          trash(shard, "older than the follower's copy");
        }
      }
      if (!mirror_->promote(shard, target, at, error, false)) return refuse(Code::conflict, here + error);
      done.push_back(shard);
      int fd = ::open((target / (std::string(handed_prefix) + move)).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                      0644);
      if (fd < 0) return refuse(Code::unavailable, here + "cannot mark the copy: " + std::strerror(errno));
      ::close(fd);
    }
    // The renames and markers of the group made durable after they are all made: the first
    // fsync commits the file system's journal with all of them, the others find little left.
    for (const auto& [shard, at] : shards) {
      if (!fsync_dir(runtime_.shard_dir(shard))) {
        return refuse(Code::unavailable, "cannot sync " + runtime_.shard_dir(shard).string() + ": " + std::strerror(errno));
      }
    }
    for (const auto& dir : {runtime_.shard_dir(0).parent_path(), mirror_->shard_dir(0).parent_path()}) {
      if (!fsync_dir(dir)) return refuse(Code::unavailable, "cannot sync " + dir.string() + ": " + std::strerror(errno));
    }

    std::size_t actors = 0, alarms = 0;
    for (const auto& [shard, at] : shards) {
      auto rows = runtime_.adopt_shard_files(shard);
      actors += rows["names"].size();
      alarms += rows["alarms"].size();
    }
    spdlog::info("cluster: {} shards handed in by their owner: {} actors and {} alarms in the follower's copies",
                 shards.size(), actors, alarms);
  } catch (const std::exception& e) {
    return refuse(Code::unavailable, e.what());
  }
  return {};
}

void CopyPromoter::hand_back(unsigned shard, const std::string& move) {
  std::lock_guard lock(mutex_);
  if (!read_marker(shard).starts_with(move_mark(move))) return;
  spdlog::info("cluster: shard {}: its hand-off did not go through: the follower's copy goes back", shard);
  demote_locked(shard);
}

void CopyPromoter::claimed(unsigned shard, std::int64_t epoch) {
  std::lock_guard lock(mutex_);
  // (A copy handed in and then replaced by one copied in by another hand-off has no marker,
  // and the mirror still holds its promotion: fenced all the same.)
  if (!read_marker(shard).starts_with("move ") && mirror_->handed(shard) == 0) return;
  std::string error;
  if (!mirror_->fence(shard, epoch, error)) spdlog::error("cluster: shard {}: {}", shard, error);
  remove_markers(shard);
}

bool CopyPromoter::discard_stale(unsigned shard, const std::function<bool()>& stale) {
  std::lock_guard lock(mutex_);
  std::error_code ec;
  if (!fs::exists(runtime_.shard_dir(shard), ec) || !read_marker(shard).empty() || runtime_.shard_instances(shard) > 0) {
    return false;
  }
  if (!stale()) return false;
  // A follower's copy (it carries the mirror's .whole) with no copy left in the mirror: a
  // takeover moved it here and the process ended before it marked it. It goes back to the
  // mirror, as the takeover would have put it back; never to the trash, which the next start
  // empties (with the owner's disk lost, it may be the only copy there is).
  if (fs::exists(runtime_.shard_dir(shard) / ".whole", ec) && !fs::exists(mirror_->shard_dir(shard), ec)) {
    spdlog::warn("cluster: shard {}: a copy a takeover left unmarked goes back to the follower's copies", shard);
    demote_locked(shard);
    return true;
  }
  try {
    runtime_.forget_shard_indexes(shard);
    trash(shard, "the shard is another node's now");
  } catch (const std::exception& e) {
    spdlog::warn("cluster: shard {}: {}", shard, e.what());
    return false;
  }
  return true;
}

bool CopyPromoter::put_back_for_batch(unsigned shard, std::int64_t epoch, bool owned_here) {
  std::lock_guard lock(mutex_);
  // An owner at the epoch it handed at kept the shard; one at a later epoch claimed it again
  // (it stopped before its hand-over's outcome was known, and came back in time).
  auto handed = mirror_->handed(shard);
  if (owned_here || handed == 0 || epoch < handed || !read_marker(shard).starts_with("move ")) return false;
  spdlog::warn("cluster: shard {}: its owner still writes at epoch {}: the hand-off did not go through, the "
               "follower's copy goes back",
               shard, epoch);
  demote_locked(shard);
  return true;
}

}  // namespace cairn::gateway
