// FaultVfs: every sqlite3_vfs and sqlite3_io_methods entry forwards to the default VFS, except
// that xWrite, xTruncate and xSync consult the armed fault first.
#include "fault_vfs.hpp"

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <cstring>
#include <mutex>
#include <new>

namespace cairn::testing {
namespace {

struct State {
  std::mutex mutex;
  Fault fault = Fault::none;
  std::string path_part;
  std::uint64_t skip = 0;
  std::uint64_t seen = 0;
  std::uint64_t failures = 0;
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
  std::string* path;
};

sqlite3_file* real_of(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f)->real; }

// True if this call (of the kind `kind`) on `f` must fail.
bool should_fail(sqlite3_file* f, Fault kind) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  if (s.fault != kind) return false;
  const std::string& path = *reinterpret_cast<ShimFile*>(f)->path;
  if (!s.path_part.empty() && path.find(s.path_part) == std::string::npos) return false;
  if (s.seen++ < s.skip) return false;
  if (kind == Fault::slow_fsync_fails_once && s.failures > 0) return false;
  ++s.failures;
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
  if (should_fail(f, Fault::disk_full)) return SQLITE_FULL;
  if (should_fail(f, Fault::write)) return SQLITE_IOERR_WRITE;
  if (n >= 16 * 1024 && should_fail(f, Fault::nearly_full)) return SQLITE_FULL;
  return real_of(f)->pMethods->xWrite(real_of(f), buf, n, off);
}
int shim_truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (should_fail(f, Fault::write)) return SQLITE_IOERR_TRUNCATE;
  return real_of(f)->pMethods->xTruncate(real_of(f), size);
}
int shim_sync(sqlite3_file* f, int flags) {
  if (should_fail(f, Fault::fsync)) return SQLITE_IOERR_FSYNC;
  if (should_fail(f, Fault::slow_fsync)) std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  if (should_fail(f, Fault::slow_fsync_fails_once)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    return SQLITE_IOERR_FSYNC;
  }
  return real_of(f)->pMethods->xSync(real_of(f), flags);
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
int shim_fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** out) {
  return real_of(f)->pMethods->xFetch(real_of(f), off, n, out);
}
int shim_unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  return real_of(f)->pMethods->xUnfetch(real_of(f), off, p);
}

int shim_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  auto* shim = reinterpret_cast<ShimFile*>(f);
  shim->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + sizeof(ShimFile));
  std::memset(shim->real, 0, static_cast<std::size_t>(real_vfs->szOsFile));
  shim->path = new std::string(name ? name : "");
  int rc = real_vfs->xOpen(real_vfs, name, shim->real, flags, out_flags);
  // xClose is called even after a failed open when pMethods is set: it frees the path.
  f->pMethods = &shim_methods;
  return rc;
}

}  // namespace

void FaultVfs::install() {
  static std::once_flag once;
  std::call_once(once, [] {
    real_vfs = sqlite3_vfs_find(nullptr);
    shim_vfs = *real_vfs;
    shim_vfs.pNext = nullptr;
    shim_vfs.zName = "cairn-faults";
    shim_vfs.szOsFile = static_cast<int>(sizeof(ShimFile)) + real_vfs->szOsFile;
    shim_vfs.xOpen = shim_open;
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

void FaultVfs::arm(Fault fault, std::string path_part, std::uint64_t skip) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  s.fault = fault;
  s.path_part = std::move(path_part);
  s.skip = skip;
  s.seen = 0;
  s.failures = 0;
}

void FaultVfs::clear() { arm(Fault::none, {}, 0); }

std::uint64_t FaultVfs::failures() {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  return s.failures;
}

}  // namespace cairn::testing
