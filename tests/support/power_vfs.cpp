// PowerVfs: every sqlite3_vfs and sqlite3_io_methods entry forwards to the default VFS; xOpen,
// xWrite, xTruncate, xSync and xDelete also keep the model of what is durable (power_vfs.hpp).
#include "power_vfs.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <vector>

namespace cairn::testing {
namespace {

constexpr std::size_t sector = 512;

struct Change {
  bool truncate = false;
  std::int64_t offset = 0;  // or the new size
  std::string bytes;
};

struct FileModel {
  std::string durable;        // content as of the last sync
  bool entry_durable = true;  // the directory entry survives a power loss
  std::vector<Change> since;  // writes and truncations since the last sync
};

struct State {
  std::mutex mutex;
  std::map<std::string, FileModel> files;  // by path
  std::atomic<bool> cut{false};
  std::uint64_t countdown = 0;  // operations left before the cut (0: none armed)
  std::atomic<std::uint64_t> syncs{0};
  std::string fail_sync_of;  // fail_next_sync(): armed while fail_syncs > 0
  int fail_syncs = 0;
};
State& state() {
  static State s;
  return s;
}

sqlite3_vfs* real_vfs = nullptr;
sqlite3_vfs shim_vfs;
sqlite3_io_methods shim_methods;

struct ShimFile {
  sqlite3_file base;  // must be first: SQLite sees a sqlite3_file
  sqlite3_file* real;
  std::string* path;  // empty for a temporary file (not modelled)
  bool syncs_directory;  // the unix VFS syncs the directory on this handle's first sync
};

sqlite3_file* real_of(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f)->real; }
const std::string& path_of(sqlite3_file* f) { return *reinterpret_cast<ShimFile*>(f)->path; }

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void apply(std::string& content, const Change& change) {
  if (change.truncate) {
    content.resize(static_cast<std::size_t>(change.offset));
    return;
  }
  auto end = static_cast<std::size_t>(change.offset) + change.bytes.size();
  if (content.size() < end) content.resize(end);
  std::memcpy(content.data() + change.offset, change.bytes.data(), change.bytes.size());
}

// One more mutating operation: false if the power is (now) off. With the lock held.
bool powered_locked(State& s) {
  if (s.cut.load()) return false;
  if (s.countdown > 0 && --s.countdown == 0) {
    s.cut.store(true);
    return false;
  }
  return true;
}

int shim_close(sqlite3_file* f) {
  auto* shim = reinterpret_cast<ShimFile*>(f);
  int rc = shim->real->pMethods ? shim->real->pMethods->xClose(shim->real) : SQLITE_OK;
  delete shim->path;
  shim->path = nullptr;
  return rc;
}
int shim_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  return real_of(f)->pMethods->xRead(real_of(f), buf, n, off);
}
int shim_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  if (!powered_locked(s)) return SQLITE_IOERR_WRITE;
  int rc = real_of(f)->pMethods->xWrite(real_of(f), buf, n, off);
  if (rc == SQLITE_OK && !path_of(f).empty()) {
    s.files[path_of(f)].since.push_back({false, off, std::string(static_cast<const char*>(buf), static_cast<std::size_t>(n))});
  }
  return rc;
}
int shim_truncate(sqlite3_file* f, sqlite3_int64 size) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  if (!powered_locked(s)) return SQLITE_IOERR_TRUNCATE;
  int rc = real_of(f)->pMethods->xTruncate(real_of(f), size);
  if (rc == SQLITE_OK && !path_of(f).empty()) s.files[path_of(f)].since.push_back({true, size, {}});
  return rc;
}
int shim_sync(sqlite3_file* f, int) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  if (!powered_locked(s)) return SQLITE_IOERR_FSYNC;
  // No real fsync: the model is the disk (and the test runs at memory speed).
  auto* shim = reinterpret_cast<ShimFile*>(f);
  if (shim->path->empty()) return SQLITE_OK;
  auto& model = s.files[*shim->path];
  if (s.fail_syncs > 0 && shim->path->find(s.fail_sync_of) != std::string::npos) {
    --s.fail_syncs;
    model.since.clear();  // lost to the disk, still in the real file (the page cache)
    return SQLITE_IOERR_FSYNC;
  }
  for (const auto& change : model.since) apply(model.durable, change);
  model.since.clear();
  if (shim->syncs_directory) {
    shim->syncs_directory = false;
    // A directory's sync makes all its entries durable: files created in it stay, and files
    // deleted from it (by xDelete without a sync, or by the program itself) stay deleted.
    auto dir = std::filesystem::path(*shim->path).parent_path();
    for (auto it = s.files.begin(); it != s.files.end();) {
      if (std::filesystem::path(it->first).parent_path() != dir) {
        ++it;
      } else if (::access(it->first.c_str(), F_OK) != 0) {
        it = s.files.erase(it);
      } else {
        it->second.entry_durable = true;
        ++it;
      }
    }
  }
  s.syncs.fetch_add(1);
  return SQLITE_OK;
}
int shim_file_size(sqlite3_file* f, sqlite3_int64* size) {
  return real_of(f)->pMethods->xFileSize(real_of(f), size);
}
int shim_lock(sqlite3_file* f, int level) { return real_of(f)->pMethods->xLock(real_of(f), level); }
int shim_unlock(sqlite3_file* f, int level) { return real_of(f)->pMethods->xUnlock(real_of(f), level); }
int shim_check_reserved(sqlite3_file* f, int* out) {
  return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}
int shim_file_control(sqlite3_file* f, int op, void* arg) {
  return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}
int shim_sector_size(sqlite3_file* f) { return real_of(f)->pMethods->xSectorSize(real_of(f)); }
int shim_device_characteristics(sqlite3_file* f) {
  return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}
int shim_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return real_of(f)->pMethods->xShmMap(real_of(f), region, size, extend, out);
}
int shim_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}
void shim_shm_barrier(sqlite3_file* f) { real_of(f)->pMethods->xShmBarrier(real_of(f)); }
int shim_shm_unmap(sqlite3_file* f, int delete_flag) {
  return real_of(f)->pMethods->xShmUnmap(real_of(f), delete_flag);
}
// No memory-mapped I/O: every write must pass xWrite to be modelled.
int shim_fetch(sqlite3_file*, sqlite3_int64, int, void** out) {
  *out = nullptr;
  return SQLITE_OK;
}
int shim_unfetch(sqlite3_file*, sqlite3_int64, void*) { return SQLITE_OK; }

int shim_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  auto* shim = reinterpret_cast<ShimFile*>(f);
  shim->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + sizeof(ShimFile));
  std::memset(shim->real, 0, static_cast<std::size_t>(real_vfs->szOsFile));
  shim->path = new std::string(name ? name : "");
  shim->syncs_directory = (flags & SQLITE_OPEN_CREATE) != 0 &&
                          (flags & (SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_SUPER_JOURNAL)) != 0;
  auto& s = state();
  std::unique_lock lock(s.mutex);
  bool existed = !shim->path->empty() && ::access(shim->path->c_str(), F_OK) == 0;
  if ((flags & SQLITE_OPEN_CREATE) != 0 && !existed && !shim->path->empty() && !powered_locked(s)) {
    f->pMethods = &shim_methods;
    return SQLITE_CANTOPEN;  // no file is created without power
  }
  int rc = real_vfs->xOpen(real_vfs, name, shim->real, flags, out_flags);
  if (rc == SQLITE_OK && !shim->path->empty()) {
    auto it = s.files.find(*shim->path);
    if (!existed) {
      // New (or made again after a delete): nothing of it is durable, not even its name.
      s.files[*shim->path] = FileModel{{}, false, {}};
    } else if (it == s.files.end()) {
      s.files[*shim->path] = FileModel{read_all(*shim->path), true, {}};  // as found: durable
    }
  }
  // xClose is called even after a failed open when pMethods is set: it frees the path.
  f->pMethods = &shim_methods;
  return rc;
}

int shim_delete(sqlite3_vfs*, const char* name, int sync_dir) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  if (!powered_locked(s)) return SQLITE_IOERR_DELETE;
  int rc = real_vfs->xDelete(real_vfs, name, sync_dir);
  // With the directory synced the file is gone for good; otherwise a power loss may bring
  // it back as it was last synced (its model stays until then, or until it is made again).
  if (rc == SQLITE_OK && sync_dir != 0) s.files.erase(name);
  return rc;
}

}  // namespace

void PowerVfs::install() {
  static std::once_flag once;
  std::call_once(once, [] {
    real_vfs = sqlite3_vfs_find(nullptr);
    shim_vfs = *real_vfs;
    shim_vfs.pNext = nullptr;
    shim_vfs.zName = "cairn-power";
    shim_vfs.szOsFile = static_cast<int>(sizeof(ShimFile)) + real_vfs->szOsFile;
    shim_vfs.xOpen = shim_open;
    shim_vfs.xDelete = shim_delete;
    shim_methods = sqlite3_io_methods{3,
                                      shim_close,
                                      shim_read,
                                      shim_write,
                                      shim_truncate,
                                      shim_sync,
                                      shim_file_size,
                                      shim_lock,
                                      shim_unlock,
                                      shim_check_reserved,
                                      shim_file_control,
                                      shim_sector_size,
                                      shim_device_characteristics,
                                      shim_shm_map,
                                      shim_shm_lock,
                                      shim_shm_barrier,
                                      shim_shm_unmap,
                                      shim_fetch,
                                      shim_unfetch};
    sqlite3_vfs_register(&shim_vfs, 1);
  });
}

void PowerVfs::reset() {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  s.files.clear();
  s.fail_syncs = 0;
  s.countdown = 0;
  s.cut.store(false);
}

void PowerVfs::cut(std::uint64_t operations) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  if (operations == 0) {
    s.cut.store(true);
  } else {
    s.countdown = operations;
  }
}

bool PowerVfs::is_cut() { return state().cut.load(); }

void PowerVfs::fail_next_sync(std::string path_part, int count) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  s.fail_sync_of = std::move(path_part);
  s.fail_syncs = count;
}

std::uint64_t PowerVfs::syncs() { return state().syncs.load(); }

PowerVfs::Settled PowerVfs::settle(std::uint64_t seed, double keep) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  std::mt19937_64 random(seed);
  std::bernoulli_distribution kept(keep);
  Settled out;
  for (auto& [path, model] : s.files) {
    if (!model.entry_durable) {
      std::error_code ignored;
      std::filesystem::remove(path, ignored);
      ++out.removed;
      continue;
    }
    std::string content = model.durable;
    for (const auto& change : model.since) {
      if (change.truncate) {
        // A truncation is one metadata change: it happened or it did not.
        if (kept(random)) {
          apply(content, change);
          ++out.sectors_kept;
        } else {
          ++out.sectors_lost;
        }
        continue;
      }
      for (std::size_t at = 0; at < change.bytes.size(); at += sector) {
        if (!kept(random)) {
          ++out.sectors_lost;
          continue;
        }
        ++out.sectors_kept;
        apply(content, {false, change.offset + static_cast<std::int64_t>(at),
                        change.bytes.substr(at, sector)});
      }
    }
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      std::size_t written = 0;
      while (written < content.size()) {
        auto n = ::write(fd, content.data() + written, content.size() - written);
        if (n <= 0) break;
        written += static_cast<std::size_t>(n);
      }
      ::close(fd);
    }
    ++out.files;
  }
  s.files.clear();
  s.fail_syncs = 0;
  s.countdown = 0;
  s.cut.store(false);
  return out;
}

}  // namespace cairn::testing
