// The actor databases' VFS shim: skips the header sync of a WAL it created and grows WALs ahead
// of their frames (database_vfs.hpp).
// SQLite's VFS interface is C: a shim is a sqlite3_vfs whose xOpen wraps the real file in a
// sqlite3_file of its own, with io_methods that forward to the real ones.
#include "database_vfs.hpp"

#include "cairn/replication.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cerrno>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace cairn::detail {
namespace {

constexpr sqlite3_int64 wal_header_bytes = 32;  // WAL_HDRSIZE in SQLite's wal.c

// Where a file's changes are replicated (cairn/replication.hpp): owned by its ShimFile.
struct Replica {
  std::shared_ptr<Replicator> to;
  unsigned shard;
  std::string path;  // relative to the shard's directory
};

struct ShimFile {
  sqlite3_file base;   // first: SQLite sees a sqlite3_file
  sqlite3_file* real;  // right after this struct, in the same allocation
  Replica* replica;    // null: not replicated
  bool new_wal;         // a WAL that did not exist when this handle opened it
  bool wrote_header;    // this handle wrote the WAL's header: SQLite's writer, not a sync handle
  bool first_sync_seen;
  bool wal;
  sqlite3_int64 allocated;  // a WAL's size as this handle knows it (frames and zeros); -1: not
                            // read yet (read at the first frame write: a sync handle never does)
};
static_assert(sizeof(ShimFile) % 8 == 0, "the real file after it stays aligned");

sqlite3_vfs* base_of(sqlite3_vfs* vfs) { return static_cast<sqlite3_vfs*>(vfs->pAppData); }

// The replication routes: "<data>/_shards/" -> the replicator of that data directory.
struct Routes {
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<Replicator>> by_prefix;
  std::atomic<bool> any{false};  // by_prefix is not empty: without routes no open takes the lock
};
Routes& routes() {
  static Routes r;
  return r;
}

// As SQLite names files (its unix VFS's xFullPathname resolves symbolic links): a data
// directory reached through a link still matches the names its databases are opened by.
std::string full_name(const std::filesystem::path& path) {
  std::error_code ec;
  auto full = std::filesystem::weakly_canonical(std::filesystem::absolute(path, ec), ec);
  return (ec ? std::filesystem::absolute(path, ec).lexically_normal() : full).string();
}

std::string shards_prefix(const std::filesystem::path& data_dir) { return full_name(data_dir / "_shards") + "/"; }

// The route of `name` (an absolute path, as SQLite gives it): its replicator, its shard and
// its path inside the shard's directory; null if it has none.
std::unique_ptr<Replica> route_of(std::string_view name) {
  auto& r = routes();
  if (!r.any.load(std::memory_order_acquire)) return nullptr;
  std::lock_guard lock(r.mutex);
  for (const auto& [prefix, replicator] : r.by_prefix) {
    if (name.size() < prefix.size() + 6 || name.substr(0, prefix.size()) != prefix) continue;
    auto rest = name.substr(prefix.size());  // NNNN/<path>
    unsigned shard = 0;
    bool digits = true;
    for (std::size_t i = 0; i < 4; ++i) {
      digits = digits && rest[i] >= '0' && rest[i] <= '9';
      shard = shard * 10 + static_cast<unsigned>(rest[i] - '0');
    }
    if (!digits || rest[4] != '/' || !valid_replica_path(rest.substr(5))) continue;
    return std::make_unique<Replica>(Replica{replicator, shard, std::string(rest.substr(5))});
  }
  return nullptr;
}
sqlite3_file* real_of(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f)->real; }

// The replicator is called from SQLite's C callbacks, where nothing may throw: a change it could
// not take fails the call that made it (an I/O error: the commit fails), so the follower never
// misses a change silently.
template <class Call>
bool replicated(const char* what, Call&& call) noexcept {
  try {
    call();
    return true;
  } catch (const std::exception& e) {
    sqlite3_log(SQLITE_IOERR, "cannot replicate %s: %s", what, e.what());
  } catch (...) {
    sqlite3_log(SQLITE_IOERR, "cannot replicate %s", what);
  }
  return false;
}

int file_close(sqlite3_file* f) {
  auto* shim = reinterpret_cast<ShimFile*>(f);
  delete std::exchange(shim->replica, nullptr);
  return real_of(f)->pMethods->xClose(real_of(f));
}
int file_read(sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
  return real_of(f)->pMethods->xRead(real_of(f), out, amount, offset);
}
int file_write(sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
  auto* shim = reinterpret_cast<ShimFile*>(f);
  int rc = shim->real->pMethods->xWrite(shim->real, data, amount, offset);
  sqlite3_int64 end = offset + amount;
  if (rc == SQLITE_OK && shim->replica != nullptr && !replicated("a write", [&] {
        shim->replica->to->write(shim->replica->shard, shim->replica->path, offset,
                                 std::string_view(static_cast<const char*>(data), static_cast<std::size_t>(amount)));
      })) {
    return SQLITE_IOERR_WRITE;
  }
  if (rc != SQLITE_OK || !shim->wal) return rc;
  if (offset == 0) shim->wrote_header = true;
  if (offset < wal_header_bytes) return rc;
  if (shim->allocated < 0 && shim->real->pMethods->xFileSize(shim->real, &shim->allocated) != SQLITE_OK) {
    shim->allocated = -1;
    return rc;  // unknown size: no growth this time, the frames were written
  }
  if (end <= shim->allocated) return rc;
  // Past every byte SQLite wrote before, even if an earlier fill failed: zeros go only above.
  shim->allocated = end;
  // Frames past the WAL's end: write zeros up to the next growth step now, so that the next
  // commits overwrite blocks the file already has and their fdatasyncs write no inode or
  // allocation bitmaps. A zero frame ends recovery (page number 0 is invalid), as a stale
  // frame does. A failed zero write leaves only a shorter tail: the frames were written.
  static const char zeros[64 * 1024] = {};
  for (sqlite3_int64 at = end, target = wal_growth_target(end); at < target;) {
    int n = static_cast<int>(std::min<sqlite3_int64>(sizeof zeros, target - at));
    if (shim->real->pMethods->xWrite(shim->real, zeros, n, at) != SQLITE_OK) break;
    if (shim->replica != nullptr && !replicated("a write", [&] {
          shim->replica->to->write(shim->replica->shard, shim->replica->path, at,
                                   std::string_view(zeros, static_cast<std::size_t>(n)));
        })) {
      return SQLITE_IOERR_WRITE;  // zeros the follower lacks: the commit must not count
    }
    at += n;
    shim->allocated = at;
  }
  return rc;
}
int file_truncate(sqlite3_file* f, sqlite3_int64 size) {
  auto* shim = reinterpret_cast<ShimFile*>(f);
  if (shim->allocated > size) shim->allocated = size;  // -1 (not read yet) stays
  int rc = real_of(f)->pMethods->xTruncate(real_of(f), size);
  if (rc == SQLITE_OK && shim->replica != nullptr &&
      !replicated("a truncation", [&] { shim->replica->to->truncate(shim->replica->shard, shim->replica->path, size); })) {
    return SQLITE_IOERR_TRUNCATE;
  }
  return rc;
}
int file_sync(sqlite3_file* f, int flags) {
  auto* shim = reinterpret_cast<ShimFile*>(f);
  if (shim->new_wal && shim->wrote_header && !shim->first_sync_seen) {
    shim->first_sync_seen = true;
    // The header sync of a WAL that holds nothing but its header: no old frame can come back.
    // Only on the handle that wrote it: another handle's sync (the storage pool's, which also
    // syncs the directory) is always real, even on an empty WAL, which SQLite's xAccess calls
    // absent.
    sqlite3_int64 size = 0;
    if (shim->real->pMethods->xFileSize(shim->real, &size) == SQLITE_OK && size <= wal_header_bytes) {
      return SQLITE_OK;
    }
  }
  if (shim->replica == nullptr) return shim->real->pMethods->xSync(shim->real, flags);
  // Replicated: the follower's sync and this one run at once; the sync succeeds only if both
  // do (a follower that is not reached in time fails it as a failed fsync would).
  auto& replica = *shim->replica;
  std::uint64_t ticket = 0;
  if (!replicated("a sync", [&] { ticket = replica.to->flush(replica.shard, replica.path); })) return SQLITE_IOERR_FSYNC;
  int rc = shim->real->pMethods->xSync(shim->real, flags);
  std::string error;
  bool replicated = replica.to->wait(replica.shard, ticket, error);
  if (rc == SQLITE_OK && !replicated) {
    sqlite3_log(SQLITE_IOERR_FSYNC, "the follower did not make %s durable: %s", replica.path.c_str(), error.c_str());
    return SQLITE_IOERR_FSYNC;
  }
  return rc;
}
int file_size(sqlite3_file* f, sqlite3_int64* size) { return real_of(f)->pMethods->xFileSize(real_of(f), size); }
int file_lock(sqlite3_file* f, int level) { return real_of(f)->pMethods->xLock(real_of(f), level); }
int file_unlock(sqlite3_file* f, int level) { return real_of(f)->pMethods->xUnlock(real_of(f), level); }
int file_check_reserved(sqlite3_file* f, int* out) {
  return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}
int file_control(sqlite3_file* f, int op, void* arg) {
  return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}
int file_sector_size(sqlite3_file* f) { return real_of(f)->pMethods->xSectorSize(real_of(f)); }
int file_device_characteristics(sqlite3_file* f) {
  return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}
int file_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  auto* real = real_of(f);
  return real->pMethods->iVersion >= 2 ? real->pMethods->xShmMap(real, region, size, extend, out)
                                       : SQLITE_IOERR_SHMMAP;
}
int file_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  auto* real = real_of(f);
  return real->pMethods->iVersion >= 2 ? real->pMethods->xShmLock(real, offset, n, flags) : SQLITE_IOERR_SHMLOCK;
}
void file_shm_barrier(sqlite3_file* f) {
  auto* real = real_of(f);
  if (real->pMethods->iVersion >= 2) real->pMethods->xShmBarrier(real);
}
int file_shm_unmap(sqlite3_file* f, int delete_flag) {
  auto* real = real_of(f);
  return real->pMethods->iVersion >= 2 ? real->pMethods->xShmUnmap(real, delete_flag) : SQLITE_OK;
}
int file_fetch(sqlite3_file* f, sqlite3_int64 offset, int amount, void** out) {
  auto* real = real_of(f);
  if (real->pMethods->iVersion >= 3) return real->pMethods->xFetch(real, offset, amount, out);
  *out = nullptr;
  return SQLITE_OK;
}
int file_unfetch(sqlite3_file* f, sqlite3_int64 offset, void* page) {
  auto* real = real_of(f);
  return real->pMethods->iVersion >= 3 ? real->pMethods->xUnfetch(real, offset, page) : SQLITE_OK;
}

const sqlite3_io_methods file_methods = {
    3,           file_close,        file_read,         file_write,       file_truncate,
    file_sync,   file_size,         file_lock,         file_unlock,      file_check_reserved,
    file_control, file_sector_size, file_device_characteristics,
    file_shm_map, file_shm_lock,    file_shm_barrier,  file_shm_unmap,   file_fetch,
    file_unfetch,
};

int vfs_open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  auto* base = base_of(vfs);
  auto* shim = reinterpret_cast<ShimFile*>(f);
  shim->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + sizeof(ShimFile));
  shim->real->pMethods = nullptr;
  shim->new_wal = false;
  shim->wrote_header = false;
  shim->first_sync_seen = false;
  shim->wal = (flags & SQLITE_OPEN_WAL) != 0;
  shim->allocated = -1;
  shim->replica = nullptr;
  if (name != nullptr && !replicated("an open", [&] { shim->replica = route_of(name).release(); })) {
    f->pMethods = nullptr;  // SQLite calls no xClose
    return SQLITE_CANTOPEN;
  }
  if ((flags & SQLITE_OPEN_WAL) != 0 && (flags & SQLITE_OPEN_CREATE) != 0 && name != nullptr) {
    // Absent, not merely empty (SQLite's xAccess calls an empty file absent): a WAL that a close
    // cut to 0 bytes may still hold its old header and frames on the disk, since nobody synced
    // the cut. Its next header must be synced before frames follow it, or a power loss could
    // leave the old header with the first old frames, which recovery would replay over a
    // database file newer than them. (The test VFSes keep real files under the same names.)
    struct stat st;
    shim->new_wal = ::stat(name, &st) != 0 && errno == ENOENT;
  }
  int rc = base->xOpen(base, name, shim->real, flags, out_flags);
  // SQLite calls xClose on a failed open only if pMethods is set: as the real file says.
  f->pMethods = shim->real->pMethods != nullptr ? &file_methods : nullptr;
  if (f->pMethods == nullptr) delete std::exchange(shim->replica, nullptr);
  return rc;
}
int vfs_delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  int rc = base_of(vfs)->xDelete(base_of(vfs), name, sync_dir);
  if (rc == SQLITE_OK && name != nullptr && !replicated("a deletion", [&] {
        if (auto replica = route_of(name)) replica->to->remove(replica->shard, replica->path);
      })) {
    return SQLITE_IOERR_DELETE;
  }
  return rc;
}
int vfs_access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return base_of(vfs)->xAccess(base_of(vfs), name, flags, out);
}
int vfs_full_pathname(sqlite3_vfs* vfs, const char* name, int size, char* out) {
  return base_of(vfs)->xFullPathname(base_of(vfs), name, size, out);
}
void* vfs_dl_open(sqlite3_vfs* vfs, const char* name) { return base_of(vfs)->xDlOpen(base_of(vfs), name); }
void vfs_dl_error(sqlite3_vfs* vfs, int size, char* out) { base_of(vfs)->xDlError(base_of(vfs), size, out); }
void (*vfs_dl_sym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  return base_of(vfs)->xDlSym(base_of(vfs), handle, symbol);
}
void vfs_dl_close(sqlite3_vfs* vfs, void* handle) { base_of(vfs)->xDlClose(base_of(vfs), handle); }
int vfs_randomness(sqlite3_vfs* vfs, int size, char* out) {
  return base_of(vfs)->xRandomness(base_of(vfs), size, out);
}
int vfs_sleep(sqlite3_vfs* vfs, int micros) { return base_of(vfs)->xSleep(base_of(vfs), micros); }
int vfs_current_time(sqlite3_vfs* vfs, double* out) { return base_of(vfs)->xCurrentTime(base_of(vfs), out); }
int vfs_last_error(sqlite3_vfs* vfs, int size, char* out) {
  return base_of(vfs)->xGetLastError != nullptr ? base_of(vfs)->xGetLastError(base_of(vfs), size, out) : 0;
}
int vfs_current_time_int64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  auto* base = base_of(vfs);
  if (base->iVersion >= 2 && base->xCurrentTimeInt64 != nullptr) return base->xCurrentTimeInt64(base, out);
  double days = 0;
  int rc = base->xCurrentTime(base, &days);
  *out = static_cast<sqlite3_int64>(days * 86400000.0);
  return rc;
}

struct Shim {
  std::string name;
  sqlite3_vfs vfs{};
};

}  // namespace

std::int64_t wal_growth_target(std::int64_t end) {
  constexpr std::int64_t smallest = 32 * 1024, largest_step = 256 * 1024;
  if (end >= largest_step) return (end + largest_step - 1) / largest_step * largest_step;
  std::int64_t target = smallest;
  while (target < end) target *= 2;
  return target;
}

void route_replication(const std::filesystem::path& data_dir, std::shared_ptr<Replicator> replicator) {
  auto& r = routes();
  std::lock_guard lock(r.mutex);
  if (replicator) {
    r.by_prefix[shards_prefix(data_dir)] = std::move(replicator);
  } else {
    r.by_prefix.erase(shards_prefix(data_dir));
  }
  r.any.store(!r.by_prefix.empty(), std::memory_order_release);
}

void replicate_removal(const std::filesystem::path& file) {
  if (!routes().any.load(std::memory_order_acquire)) return;  // full_name() costs system calls
  if (auto replica = route_of(full_name(file))) replica->to->remove(replica->shard, replica->path);
}

bool sync_replica_of(const std::filesystem::path& file, std::string& error) {
  if (!routes().any.load(std::memory_order_acquire)) return true;
  auto replica = route_of(full_name(file));
  if (!replica) return true;
  auto ticket = replica->to->flush(replica->shard, replica->path);
  return replica->to->wait(replica->shard, ticket, error);
}

const char* database_vfs_name() {
  static std::mutex mutex;
  static std::map<sqlite3_vfs*, std::unique_ptr<Shim>> shims;  // by the VFS they wrap
  std::lock_guard lock(mutex);
  sqlite3_vfs* base = sqlite3_vfs_find(nullptr);
  if (base == nullptr) throw std::runtime_error("SQLite has no default VFS");
  auto& shim = shims[base];
  if (!shim) {
    shim = std::make_unique<Shim>();
    shim->name = std::string("cairn-") + base->zName;
    auto& vfs = shim->vfs;
    vfs.iVersion = 2;  // no system-call overrides: those stay the base VFS's own
    vfs.szOsFile = static_cast<int>(sizeof(ShimFile)) + base->szOsFile;
    vfs.mxPathname = base->mxPathname;
    vfs.zName = shim->name.c_str();
    vfs.pAppData = base;
    vfs.xOpen = vfs_open;
    vfs.xDelete = vfs_delete;
    vfs.xAccess = vfs_access;
    vfs.xFullPathname = vfs_full_pathname;
    vfs.xDlOpen = vfs_dl_open;
    vfs.xDlError = vfs_dl_error;
    vfs.xDlSym = vfs_dl_sym;
    vfs.xDlClose = vfs_dl_close;
    vfs.xRandomness = vfs_randomness;
    vfs.xSleep = vfs_sleep;
    vfs.xCurrentTime = vfs_current_time;
    vfs.xGetLastError = vfs_last_error;
    vfs.xCurrentTimeInt64 = vfs_current_time_int64;
    if (int rc = sqlite3_vfs_register(&vfs, 0); rc != SQLITE_OK) {
      shim.reset();
      throw std::runtime_error(std::string("cannot register the database VFS: ") + sqlite3_errstr(rc));
    }
  }
  return shim->name.c_str();
}

}  // namespace cairn::detail
