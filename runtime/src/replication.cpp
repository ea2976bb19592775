// Replication: the batch codec, the follower's ShardMirror and the in-process LocalReplicator
// (cairn/replication.hpp).
#include "cairn/replication.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>
#include <stdexcept>
#include <system_error>

#include "cairn/actor_id.hpp"

namespace cairn {
namespace {

// The wire form, little-endian:
//   "CRB1" | shard u32 | epoch i64 | seed u64 | index u64 | count u32 | count x op
//   op: kind u8 | path length u16 | path | offset i64 | bytes length u32 | bytes
// A hand-written codec: the format is a handful of fixed fields and two byte strings, and the
// libraries Debian has for it (protobuf, flatbuffers) would bring a schema compiler to the
// build for that.
constexpr std::string_view magic = "CRB1";
constexpr std::size_t max_path = 4096;

template <class T>
void put(std::string& out, T value) {
  using U = std::make_unsigned_t<T>;
  auto u = static_cast<U>(value);
  for (std::size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
}

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  template <class T>
  bool get(T& value) {
    using U = std::make_unsigned_t<T>;
    if (data_.size() - at_ < sizeof(T)) return false;
    U u = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) u |= static_cast<U>(static_cast<unsigned char>(data_[at_ + i])) << (8 * i);
    at_ += sizeof(T);
    value = static_cast<T>(u);
    return true;
  }
  bool bytes(std::size_t n, std::string& out) {
    if (data_.size() - at_ < n) return false;
    out.assign(data_.substr(at_, n));
    at_ += n;
    return true;
  }
  bool done() const { return at_ == data_.size(); }
  std::size_t left() const { return data_.size() - at_; }

 private:
  std::string_view data_;
  std::size_t at_ = 0;
};

std::string errno_text(const std::string& what, const std::filesystem::path& path) {
  return what + " " + path.string() + ": " + std::strerror(errno);
}

// Writes `text` to `file` (replacing it) and fsyncs it (not its directory).
bool write_small_file(const std::filesystem::path& file, const std::string& text) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  return ok;
}

bool fsync_dir(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

// Records "epoch seed" in <dir>/.epoch durably (a new file renamed over the old one, then
// the directory synced): a crash leaves the old record or the new one.
bool record_epoch(const std::filesystem::path& dir, std::int64_t epoch, std::uint64_t seed) {
  auto temporary = dir / ".epoch.new";
  return write_small_file(temporary, std::to_string(epoch) + " " + std::to_string(seed) + "\n") &&
         ::rename(temporary.c_str(), (dir / ".epoch").c_str()) == 0 && fsync_dir(dir);
}

}  // namespace

bool valid_replica_path(std::string_view path) {
  if (path.empty() || path.size() > max_path || path.front() == '/' || path.find('\0') != std::string_view::npos) {
    return false;
  }
  std::size_t start = 0;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    auto part = path.substr(start, end - start);
    // No component starts with '.': none of SQLite's or the runtime's do, and the mirror keeps
    // its own files (.epoch) beside the copies.
    if (part.empty() || part.front() == '.') return false;
    start = end + 1;
  }
  return true;
}

std::string encode(const ReplicaBatch& batch) {
  std::string out(magic);
  put<std::uint32_t>(out, batch.shard);
  put<std::int64_t>(out, batch.epoch);
  put<std::uint64_t>(out, batch.seed);
  put<std::uint64_t>(out, batch.index);
  put<std::uint32_t>(out, static_cast<std::uint32_t>(batch.ops.size()));
  for (const auto& op : batch.ops) {
    put<std::uint8_t>(out, static_cast<std::uint8_t>(op.kind));
    put<std::uint16_t>(out, static_cast<std::uint16_t>(op.path.size()));
    out += op.path;
    put<std::int64_t>(out, op.offset);
    put<std::uint32_t>(out, static_cast<std::uint32_t>(op.bytes.size()));
    out += op.bytes;
  }
  return out;
}

std::optional<ReplicaBatch> decode(std::string_view data, std::string& error) {
  if (data.substr(0, magic.size()) != magic) {
    error = "not a replication batch (no CRB1 header)";
    return std::nullopt;
  }
  Reader in(data.substr(magic.size()));
  ReplicaBatch batch;
  std::uint32_t shard = 0, count = 0;
  if (!in.get(shard) || !in.get(batch.epoch) || !in.get(batch.seed) || !in.get(batch.index) || !in.get(count)) {
    error = "a replication batch cut short in its header";
    return std::nullopt;
  }
  if (shard >= ActorId::shard_count) {
    error = "shard " + std::to_string(shard) + " is out of range";
    return std::nullopt;
  }
  batch.shard = shard;
  // Each op takes at least 15 bytes: a count past what is left is malformed, not a reason
  // to reserve memory.
  if (count > in.left() / 15) {
    error = "a replication batch claims more operations than it holds";
    return std::nullopt;
  }
  batch.ops.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    ReplicaOp op;
    std::uint8_t kind = 0;
    std::uint16_t path_size = 0;
    std::uint32_t size = 0;
    if (!in.get(kind) || !in.get(path_size) || !in.bytes(path_size, op.path) || !in.get(op.offset) || !in.get(size) ||
        !in.bytes(size, op.bytes)) {
      error = "operation " + std::to_string(i) + " of a replication batch is cut short";
      return std::nullopt;
    }
    if (kind < 1 || kind > 6) {
      error = "operation " + std::to_string(i) + " has an unknown kind " + std::to_string(kind);
      return std::nullopt;
    }
    op.kind = static_cast<ReplicaOp::Kind>(kind);
    bool whole_shard = op.kind == ReplicaOp::Kind::reset || op.kind == ReplicaOp::Kind::more;
    if (whole_shard ? op.path != "." : !valid_replica_path(op.path)) {
      error = "operation " + std::to_string(i) + " names a path outside its shard";
      return std::nullopt;
    }
    if (op.offset < 0 || (op.kind != ReplicaOp::Kind::write && !op.bytes.empty())) {
      error = "operation " + std::to_string(i) + " is malformed (negative offset, or bytes on a non-write)";
      return std::nullopt;
    }
    if (op.kind == ReplicaOp::Kind::reset && i != 0) {
      error = "operation " + std::to_string(i) + " empties the copy, and is not the batch's first";
      return std::nullopt;
    }
    if (op.kind == ReplicaOp::Kind::more && i + 1 != count) {
      error = "operation " + std::to_string(i) + " says a seed goes on, and is not the batch's last";
      return std::nullopt;
    }
    batch.ops.push_back(std::move(op));
  }
  if (!in.done()) {
    error = "a replication batch has bytes after its last operation";
    return std::nullopt;
  }
  return batch;
}

SeedReader::SeedReader(std::filesystem::path shard_dir, std::size_t piece_bytes)
    : dir_(std::move(shard_dir)), piece_bytes_(piece_bytes == 0 ? 1 : piece_bytes) {
  std::error_code ec;
  if (!std::filesystem::exists(dir_, ec)) return;
  for (auto it = std::filesystem::recursive_directory_iterator(dir_, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    auto relative = it->path().lexically_relative(dir_).string();
    // Not the node's own marks beside the actor files (a promoted copy's .promoted, .handed-*):
    // those say what this node did with its copy, not what the shard holds.
    if (relative.starts_with('.') && relative.find('/') == std::string::npos) continue;
    if (valid_replica_path(relative)) files_.push_back(relative);
  }
  if (ec) throw std::runtime_error("cannot list " + dir_.string() + ": " + ec.message());
}

std::vector<ReplicaOp> SeedReader::next() {
  std::vector<ReplicaOp> ops;
  if (done_) return ops;
  if (!started_) ops.push_back({ReplicaOp::Kind::reset, ".", 0, {}});
  started_ = true;
  // Each operation counts for its bytes and its overhead on the wire, and a piece holds at
  // most 256 files (the follower keeps each open until the batch is applied).
  std::size_t taken = 0, files = 0;
  while (file_ < files_.size() && taken < piece_bytes_ && files < 256) {
    ++files;
    const auto& relative = files_[file_];
    auto full = dir_ / relative;
    int fd = ::open(full.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {  // removed meanwhile: its removal is queued
      ++file_;
      offset_ = 0;
      continue;
    }
    if (fd < 0) throw std::runtime_error(errno_text("cannot read", full));
    std::string content;
    char buffer[64 * 1024];
    bool ended = false;
    while (taken + content.size() < piece_bytes_) {
      auto want = std::min(sizeof buffer, piece_bytes_ - taken - content.size());
      auto n = ::pread(fd, buffer, want, static_cast<off_t>(offset_) + static_cast<off_t>(content.size()));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        ::close(fd);
        throw std::runtime_error(errno_text("cannot read", full));
      }
      if (n == 0) {
        ended = true;
        break;
      }
      content.append(buffer, static_cast<std::size_t>(n));
    }
    if (!ended) {  // the piece is full: is the file over all the same?
      char probe = 0;
      ssize_t n = 0;
      do {
        n = ::pread(fd, &probe, 1, static_cast<off_t>(offset_) + static_cast<off_t>(content.size()));
      } while (n < 0 && errno == EINTR);
      ended = n == 0;
    }
    ::close(fd);
    taken += content.size() + 3 * (32 + relative.size());
    auto at = offset_;
    offset_ += static_cast<std::int64_t>(content.size());
    if (!content.empty() || at == 0) ops.push_back({ReplicaOp::Kind::write, relative, at, std::move(content)});
    if (ended) {
      ops.push_back({ReplicaOp::Kind::truncate, relative, offset_, {}});
      ops.push_back({ReplicaOp::Kind::sync, relative, 0, {}});
      ++file_;
      offset_ = 0;
    }
  }
  done_ = file_ >= files_.size();
  if (!done_) ops.push_back({ReplicaOp::Kind::more, ".", 0, {}});
  return ops;
}

std::vector<ReplicaOp> seed_ops(const std::filesystem::path& shard_dir) {
  // One piece with no size limit; the reader still ends a piece after 256 files, so the
  // pieces are joined (without their `more`s) into the one seed this promises.
  SeedReader reader(shard_dir, std::numeric_limits<std::size_t>::max());
  std::vector<ReplicaOp> ops;
  while (!reader.done()) {
    for (auto& op : reader.next()) {
      if (op.kind != ReplicaOp::Kind::more) ops.push_back(std::move(op));
    }
  }
  return ops;
}

// ---- ShardMirror ----

struct ShardMirror::Shard {
  std::mutex mutex;  // one batch of the shard at a time
  std::int64_t epoch = 0;
  bool epoch_loaded = false;
  std::uint64_t seed = 0, index = 0;  // the run (as recorded) and the batch of it last applied
  bool index_known = false;           // false since a restart: the next batch must be a seed
  // Directories whose entries changed (a file made or removed in them, or they were made)
  // and are not yet synced: the next sync of any file of the shard syncs them first.
  std::set<std::filesystem::path> dirty_dirs;
  // A batch failed part-way: the copy misses changes (of any of the shard's files) and takes
  // no more batches until it is seeded again.
  std::string broken;
  bool promoted = false;  // promote()d: every batch is refused until fence() or demote()
  bool seeding = false;   // a seed in pieces is under way: the run's next batch goes on with it
  std::int64_t handed = 0;  // promoted by a hand-off from the owner at this epoch
};

ShardMirror::ShardMirror(std::filesystem::path root) : root_(std::move(root)) {}
ShardMirror::~ShardMirror() = default;

std::filesystem::path ShardMirror::shard_dir(unsigned shard) const {
  char name[16];
  std::snprintf(name, sizeof name, "%04u", shard);
  return root_ / name;
}

ShardMirror::Shard& ShardMirror::state_of(unsigned shard) {
  std::lock_guard lock(mutex_);
  return shard_locked(shard);
}

ShardMirror::Shard& ShardMirror::shard_locked(unsigned shard) {
  auto& slot = shards_[shard];
  if (!slot) slot = std::make_unique<Shard>();
  return *slot;
}

std::int64_t ShardMirror::epoch(unsigned shard) const {
  Shard* state = nullptr;
  {
    std::lock_guard lock(mutex_);
    auto it = shards_.find(shard);
    if (it != shards_.end()) state = it->second.get();
  }
  if (state == nullptr) {
    // Not seen since this process started: as recorded on disk.
    std::string ignored;
    auto recorded = read_epoch(shard_dir(shard) / ".epoch", ignored);
    return recorded ? recorded->first : 0;
  }
  std::lock_guard lock(state->mutex);
  return state->epoch;
}

std::optional<std::pair<std::int64_t, std::uint64_t>> ShardMirror::read_epoch(const std::filesystem::path& file,
                                                                               std::string& error) {
  FILE* in = std::fopen(file.c_str(), "r");
  if (in == nullptr) {
    if (errno == ENOENT) return std::pair<std::int64_t, std::uint64_t>{0, 0};
    error = errno_text("cannot read the epoch in", file);
    return std::nullopt;
  }
  long long epoch = 0;
  unsigned long long seed = 0;
  bool ok = std::fscanf(in, "%lld %llu", &epoch, &seed) == 2 && epoch >= 0;
  std::fclose(in);
  if (!ok) {
    error = "the epoch in " + file.string() + " is unreadable";
    return std::nullopt;
  }
  return std::pair<std::int64_t, std::uint64_t>{epoch, seed};
}

ShardMirror::Outcome ShardMirror::apply(const ReplicaBatch& batch, std::string& error) {
  Shard* state = &state_of(batch.shard);
  std::lock_guard lock(state->mutex);
  auto dir = shard_dir(batch.shard);
  auto epoch_file = dir / ".epoch";
  if (!state->epoch_loaded) {
    // The newest epoch this copy has taken, as recorded durably by an earlier process; one
    // that cannot be read takes nothing (an unknown fence must not let an old owner in).
    auto recorded = read_epoch(epoch_file, error);
    if (!recorded) return Outcome::failed;
    state->epoch = recorded->first;
    state->seed = recorded->second;
    state->index_known = false;  // the run goes on only after a new seed
    state->epoch_loaded = true;
  }
  if (state->promoted) {
    error = "shard " + std::to_string(batch.shard) + " was taken over by this node: a batch of epoch " +
            std::to_string(batch.epoch) + " comes from an owner older than its claim";
    return Outcome::stale_epoch;
  }
  bool seed = !batch.ops.empty() && batch.ops.front().kind == ReplicaOp::Kind::reset;
  if (!state->broken.empty() && !seed) {
    error = "the copy of shard " + std::to_string(batch.shard) + " missed changes (" + state->broken +
            ") and takes none until it is seeded again";
    return Outcome::failed;
  }
  if (batch.epoch < state->epoch) {
    error = "shard " + std::to_string(batch.shard) + ": epoch " + std::to_string(batch.epoch) +
            " is older than " + std::to_string(state->epoch) + ", which this follower has seen";
    return Outcome::stale_epoch;
  }
  // In order, or not at all: a seed must be newer than the run it ends; any other batch must
  // be the next of the current run. (After a restart no run is current: the next batch of the
  // shard must be a seed.)
  if (seed ? batch.epoch == state->epoch && batch.seed <= state->seed
           : batch.epoch != state->epoch || !state->index_known || batch.seed != state->seed ||
                 batch.index != state->index + 1) {
    error = "shard " + std::to_string(batch.shard) + ": batch " + std::to_string(batch.seed) + "." +
            std::to_string(batch.index) + " is out of order (the last applied is " + std::to_string(state->seed) +
            "." + std::to_string(state->index) + "): the owner must seed this copy again";
    return Outcome::failed;
  }
  std::error_code ec;
  if (seed) {
    // The epoch and the run, recorded durably before anything of the seed lands: after a
    // restart this copy still refuses an older owner, and an older seed that comes late.
    // (Only a seed can bring a newer epoch: see above.)
    bool made = !std::filesystem::exists(dir, ec);
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      error = "cannot make " + dir.string() + ": " + ec.message();
      return Outcome::failed;
    }
    bool ok = record_epoch(dir, batch.epoch, batch.seed) &&
              (!made || (fsync_dir(dir.parent_path()) && fsync_dir(dir.parent_path().parent_path())));
    if (!ok) {
      error = errno_text("cannot record the epoch in", epoch_file);
      return Outcome::failed;
    }
    state->epoch = batch.epoch;
    state->seed = batch.seed;
  }
  // A seed is applied to a copy of its own beside the current one, which stays whole (and
  // can still be taken over) until the seed's last operation is applied and synced; the two
  // are then exchanged in one rename. A seed in pieces goes on in the run's next batches,
  // into the same copy, until one that does not end with a `more`.
  auto staging = root_ / (dir.filename().string() + ".seed");
  bool piece = seed || state->seeding;
  bool more = !batch.ops.empty() && batch.ops.back().kind == ReplicaOp::Kind::more;
  const auto& work = piece ? staging : dir;
  state->seeding = false;  // until this batch is applied
  if (seed) {
    std::filesystem::remove_all(staging, ec);
    std::filesystem::create_directories(staging, ec);
    if (ec) {
      error = "cannot make " + staging.string() + ": " + ec.message();
      state->broken = error;
      return Outcome::failed;
    }
  } else if (piece && !std::filesystem::is_directory(staging, ec)) {
    error = "the seed of shard " + std::to_string(batch.shard) + " under way is gone from " + staging.string();
    state->broken = error;
    return Outcome::failed;
  } else if (!piece && more) {
    error = "shard " + std::to_string(batch.shard) + ": a batch says a seed goes on, and no seed is under way";
    state->broken = error;
    return Outcome::failed;
  }
  // Each file is opened once per batch (a follower of many actors would otherwise hold two
  // descriptors per actor it follows).
  std::map<std::string, int> open;
  auto close_all = [&] {
    for (auto& [path, fd] : open) ::close(fd);
    open.clear();
  };
  auto file = [&](const std::string& path) -> int {
    if (auto it = open.find(path); it != open.end()) return it->second;
    auto full = work / path;
    int fd = ::open(full.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
      // Made here: every directory level made, and the file's entry, are synced before the
      // next sync of the shard returns.
      std::vector<std::filesystem::path> made;
      for (auto level = full.parent_path(); level != work && !std::filesystem::exists(level, ec);
           level = level.parent_path()) {
        made.push_back(level);
      }
      std::filesystem::create_directories(full.parent_path(), ec);
      if (ec) return -1;
      for (const auto& level : made) state->dirty_dirs.insert(level.parent_path());
      fd = ::open(full.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (fd >= 0) state->dirty_dirs.insert(full.parent_path());
    }
    if (fd >= 0) open[path] = fd;
    return fd;
  };
  for (const auto& op : batch.ops) {
    auto full = work / op.path;
    switch (op.kind) {
      case ReplicaOp::Kind::reset: {
        // A seed begins: whatever the copy held goes (its files and directories, not the
        // epoch), and so does a failure latched on it.
        close_all();
        for (const auto& entry : std::filesystem::directory_iterator(work, ec)) {
          if (entry.path().filename().string().front() == '.') continue;
          std::filesystem::remove_all(entry.path(), ec);
          if (ec) break;
          state->dirty_dirs.insert(work);
        }
        if (ec) {
          error = "cannot empty " + work.string() + ": " + ec.message();
          state->broken = error;
          return Outcome::failed;
        }
        state->broken.clear();
        for (auto it = state->dirty_dirs.begin(); it != state->dirty_dirs.end();) {
          it = it->string().starts_with(work.string() + "/") ? state->dirty_dirs.erase(it) : std::next(it);
        }
        break;
      }
      case ReplicaOp::Kind::write: {
        int fd = file(op.path);
        if (fd < 0) {
          error = errno_text("cannot open", full);
          close_all();
          state->broken = error;
          return Outcome::failed;
        }
        std::size_t done = 0;
        while (done < op.bytes.size()) {
          auto n = ::pwrite(fd, op.bytes.data() + done, op.bytes.size() - done, static_cast<off_t>(op.offset) + static_cast<off_t>(done));
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) {
            error = errno_text("cannot write", full);
            close_all();
            state->broken = error;
            return Outcome::failed;
          }
          done += static_cast<std::size_t>(n);
        }
        break;
      }
      case ReplicaOp::Kind::truncate: {
        int fd = file(op.path);
        if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(op.offset)) != 0) {
          error = errno_text("cannot truncate", full);
          close_all();
          state->broken = error;
          return Outcome::failed;
        }
        break;
      }
      case ReplicaOp::Kind::remove: {
        if (auto it = open.find(op.path); it != open.end()) {
          ::close(it->second);
          open.erase(it);
        }
        if (::unlink(full.c_str()) != 0 && errno != ENOENT) {
          error = errno_text("cannot remove", full);
          close_all();
          state->broken = error;
          return Outcome::failed;
        }
        state->dirty_dirs.insert(full.parent_path());
        break;
      }
      case ReplicaOp::Kind::more:
        break;  // the seed goes on in the next batch (see above)
      case ReplicaOp::Kind::sync: {
        // A file never written here (removed, or made empty by SQLite and synced) has nothing
        // to sync: it is not made for the sync.
        int fd = open.count(op.path) != 0 || std::filesystem::exists(full, ec) ? file(op.path) : -2;
        if (fd == -1 || (fd >= 0 && ::fdatasync(fd) != 0)) {
          error = errno_text("cannot sync", full);
          close_all();
          state->broken = error;
          return Outcome::failed;
        }
        // Deepest first is not needed: each level's own entry is in its parent, and all of
        // them are synced before this returns.
        for (auto it = state->dirty_dirs.begin(); it != state->dirty_dirs.end();) {
          if (!fsync_dir(*it)) {
            error = errno_text("cannot sync the directory", *it);
            close_all();
            state->broken = error;
            return Outcome::failed;
          }
          it = state->dirty_dirs.erase(it);
        }
        break;
      }
    }
  }
  close_all();
  if (piece && more) {
    state->seeding = true;
  } else if (piece) {
    // Every file of the seed is synced (each has its sync operation, and the batch ends
    // with one). The copy gets the fence and its mark of a whole copy, and takes the current
    // one's place atomically (renameat2 RENAME_EXCHANGE; where the file system cannot, in two
    // renames, with a moment in which a crash leaves no copy).
    bool ok = record_epoch(staging, batch.epoch, batch.seed) && write_small_file(staging / ".whole", "") &&
              fsync_dir(staging);
    if (ok) {
      if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) != 0) {
        auto old = root_ / (dir.filename().string() + ".old");
        std::filesystem::remove_all(old, ec);
        ok = (::rename(dir.c_str(), old.c_str()) == 0 || errno == ENOENT) && ::rename(staging.c_str(), dir.c_str()) == 0;
        std::filesystem::remove_all(old, ec);
      }
      ok = ok && fsync_dir(root_);
    }
    if (!ok) {
      error = errno_text("cannot put the seeded copy in place at", dir);
      state->broken = error;
      return Outcome::failed;
    }
    std::filesystem::remove_all(staging, ec);  // the copy it replaced
    state->dirty_dirs.clear();
  }
  state->index = batch.index;
  state->index_known = true;
  return Outcome::applied;
}

bool ShardMirror::whole(unsigned shard) const {
  Shard* state = nullptr;
  {
    std::lock_guard lock(mutex_);
    auto it = shards_.find(shard);
    if (it != shards_.end()) state = it->second.get();
  }
  std::unique_lock<std::mutex> lock;
  if (state != nullptr) {
    lock = std::unique_lock(state->mutex);
    if (state->promoted) return false;
  }
  auto dir = shard_dir(shard);
  std::error_code ec;
  return std::filesystem::exists(dir / ".whole", ec) && !ec;
}

bool ShardMirror::promote(unsigned shard, const std::filesystem::path& target, std::string& error) {
  Shard* state = &state_of(shard);
  std::lock_guard lock(state->mutex);
  return promote_locked(shard, *state, target, error, true);
}

bool ShardMirror::promote(unsigned shard, const std::filesystem::path& target, const ReplicaPosition& at,
                          std::string& error, bool sync) {
  Shard* state = &state_of(shard);
  std::lock_guard lock(state->mutex);
  if (!state->promoted && (!state->epoch_loaded || !state->index_known || !state->broken.empty() || state->seeding ||
                           state->epoch != at.epoch || state->seed != at.seed || state->index != at.index)) {
    error = "the copy of shard " + std::to_string(shard) + " is not where its owner's stream is (it applied " +
            (state->index_known ? std::to_string(state->epoch) + "/" + std::to_string(state->seed) + "." +
                                      std::to_string(state->index)
                                : std::string("no run since a restart")) +
            ", the owner sent " + std::to_string(at.epoch) + "/" + std::to_string(at.seed) + "." +
            std::to_string(at.index) + ")";
    return false;
  }
  if (!promote_locked(shard, *state, target, error, sync)) return false;
  state->handed = at.epoch;
  return true;
}

std::int64_t ShardMirror::handed(unsigned shard) const {
  Shard* state = nullptr;
  {
    std::lock_guard lock(mutex_);
    auto it = shards_.find(shard);
    if (it == shards_.end()) return 0;
    state = it->second.get();
  }
  std::lock_guard lock(state->mutex);
  return state->promoted ? state->handed : 0;
}

bool ShardMirror::promote_locked(unsigned shard, Shard& state, const std::filesystem::path& target,
                                 std::string& error, bool sync) {
  auto dir = shard_dir(shard);
  std::error_code ec;
  if (state.promoted || !std::filesystem::exists(dir / ".whole", ec)) {
    error = "the copy of shard " + std::to_string(shard) + " is not whole";
    return false;
  }
  if (std::filesystem::exists(target, ec)) {
    error = target.string() + " exists";
    return false;
  }
  if (!state.epoch_loaded) {  // kept in memory: demote() records it again
    auto recorded = read_epoch(dir / ".epoch", error);
    if (!recorded) return false;
    state.epoch = recorded->first;
    state.seed = recorded->second;
    state.index_known = false;
    state.epoch_loaded = true;
  }
  std::filesystem::create_directories(target.parent_path(), ec);
  if (ec || ::rename(dir.c_str(), target.c_str()) != 0) {
    error = errno_text("cannot move the copy to", target);
    return false;
  }
  std::filesystem::remove_all(root_ / (dir.filename().string() + ".seed"), ec);  // a seed under way is over
  // From the rename on nothing may land in the files it moved. Its .epoch and .whole go with
  // it (the node's own marks, never read there nor seeded from there): a copy put back by
  // demote() is whole again, with its fence, even after a restart.
  hold_locked(state);
  if (sync && (!fsync_dir(target.parent_path()) || !fsync_dir(dir.parent_path()))) {
    error = errno_text("cannot make the move durable in", target.parent_path());
    return false;  // promoted stays: the caller demotes
  }
  return true;
}

void ShardMirror::promoted(unsigned shard) {
  Shard* state = &state_of(shard);
  std::lock_guard lock(state->mutex);
  hold_locked(*state);
}

void ShardMirror::hold_locked(Shard& state) {
  state.promoted = true;
  state.seeding = false;
  state.handed = 0;
  state.epoch_loaded = true;
  state.index_known = false;
  state.dirty_dirs.clear();
}

bool ShardMirror::fence(unsigned shard, std::int64_t epoch, std::string& error) {
  Shard* state = &state_of(shard);
  std::lock_guard lock(state->mutex);
  auto dir = shard_dir(shard);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  auto file = dir / ".epoch";
  bool ok = !ec && record_epoch(dir, epoch, 0) && fsync_dir(dir.parent_path());
  std::filesystem::remove_all(root_ / (dir.filename().string() + ".seed"), ec);  // an old owner's seed
  // Fenced in memory whatever the disk did: this process refuses older owners either way.
  state->epoch = std::max(state->epoch, epoch);
  state->seed = 0;
  state->index_known = false;
  state->promoted = false;
  state->seeding = false;
  if (!ok) error = errno_text("cannot record the epoch in", file);
  return ok;
}

bool ShardMirror::demote(unsigned shard, const std::filesystem::path& target, std::string& error) {
  Shard* state = &state_of(shard);
  std::lock_guard lock(state->mutex);
  auto dir = shard_dir(shard);
  std::error_code ec;
  bool ok = true;
  bool moved = false;
  if (std::filesystem::exists(target, ec) && !std::filesystem::exists(dir, ec)) {
    ok = ::rename(target.c_str(), dir.c_str()) == 0 && fsync_dir(dir.parent_path()) && fsync_dir(target.parent_path());
    moved = ok;
  }
  // The epoch file went with the promotion: the fence this copy had is recorded again (the
  // run is not: the next batch must be a seed, the copy is no longer marked whole).
  if (moved && state->epoch_loaded && state->epoch > 0 && !record_epoch(dir, state->epoch, 0)) ok = false;
  state->promoted = false;
  state->handed = 0;
  state->epoch_loaded = moved && ok && state->epoch > 0;
  state->seed = 0;
  state->index_known = false;
  if (!ok) error = errno_text("cannot move the copy back from", target);
  return ok;
}

// ---- LocalReplicator ----

LocalReplicator::LocalReplicator(std::shared_ptr<ShardMirror> mirror, std::int64_t epoch)
    : mirror_(std::move(mirror)), epoch_(epoch) {
  if (!mirror_) throw std::invalid_argument("LocalReplicator needs a ShardMirror");
}

LocalReplicator::Queue& LocalReplicator::queue(unsigned shard) {
  auto& slot = queues_[shard];
  if (!slot) slot = std::make_unique<Queue>();
  return *slot;
}

void LocalReplicator::push(unsigned shard, ReplicaOp op) {
  std::lock_guard lock(mutex_);
  queue(shard).ops.push_back(std::move(op));
}

void LocalReplicator::write(unsigned shard, const std::string& path, std::int64_t offset, std::string_view bytes) {
  push(shard, {ReplicaOp::Kind::write, path, offset, std::string(bytes)});
}
void LocalReplicator::truncate(unsigned shard, const std::string& path, std::int64_t size) {
  push(shard, {ReplicaOp::Kind::truncate, path, size, {}});
}
void LocalReplicator::remove(unsigned shard, const std::string& path) {
  push(shard, {ReplicaOp::Kind::remove, path, 0, {}});
}

std::uint64_t LocalReplicator::flush(unsigned shard, const std::string& path) {
  Queue* q = nullptr;
  {
    std::lock_guard lock(mutex_);
    q = &queue(shard);
  }
  std::lock_guard send(q->send);
  ReplicaBatch batch{shard, epoch_, {}};
  std::uint64_t ticket = 0;
  bool cut = false;
  {
    std::lock_guard lock(mutex_);
    batch.ops = std::exchange(q->ops, {});
    if (q->index == 0) batch.ops.insert(batch.ops.begin(), {ReplicaOp::Kind::reset, ".", 0, {}});
    batch.ops.push_back({ReplicaOp::Kind::sync, path, 0, {}});
    batch.seed = 1;
    batch.index = q->index++;
    ticket = ++q->flushes;
    if (cut_) {
      batch.ops.clear();
      cut = true;
    } else if (cut_at_ > 0 && applied_ + batch.ops.size() >= cut_at_) {
      batch.ops.resize(static_cast<std::size_t>(cut_at_ - applied_));
      cut_ = cut = true;
    }
    applied_ += batch.ops.size();
  }
  std::string error;
  if (!q->broken.empty()) {
    error = q->broken;
  } else if (!batch.ops.empty() && mirror_->apply(batch, error) != ShardMirror::Outcome::applied) {
    // Every op queued before this flush, of every file of the shard, went in this batch: a
    // later batch must not be acknowledged over the ones the follower may have missed.
    q->broken = error;
  } else if (cut) {
    error = "the link to the follower is cut";
  }
  if (!error.empty()) {
    std::lock_guard lock(mutex_);
    q->failed[ticket] = error;
  }
  return ticket;
}

bool LocalReplicator::wait(unsigned shard, std::uint64_t ticket, std::string& error) {
  std::lock_guard lock(mutex_);
  auto& q = queue(shard);
  auto it = q.failed.find(ticket);
  if (it == q.failed.end()) return true;
  error = std::move(it->second);
  q.failed.erase(it);
  return false;
}

void LocalReplicator::cut_after(std::uint64_t operations) {
  std::lock_guard lock(mutex_);
  if (operations == 0) {
    cut_ = true;
  } else {
    cut_at_ = applied_ + operations;
  }
}

std::uint64_t LocalReplicator::operations_applied() const {
  std::lock_guard lock(mutex_);
  return applied_;
}

}  // namespace cairn
