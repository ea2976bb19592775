// FaultVfs: a SQLite VFS shim over the default one that fails writes, fsyncs or reports a
// full disk, for the files whose path contains a given text (one actor's hex id), from the
// Nth such call on. Tests only: install() makes it the process's default VFS, so every
// database the runtime opens afterwards goes through it. Thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace cairn::testing {

enum class Fault {
  none,
  write,      // xWrite and xTruncate fail with SQLITE_IOERR_WRITE
  fsync,      // xSync fails with SQLITE_IOERR_FSYNC (the write reached the page cache)
  disk_full,  // xWrite fails with SQLITE_FULL
  slow_fsync, // xSync takes a second longer, then syncs (a disk that is slow, not broken)
  nearly_full,  // xWrite of 16 KiB or more fails with SQLITE_FULL: smaller writes still fit
  // The first xSync (after `skip`) takes a second, then fails; later ones pass, as Linux tells
  // a failed writeback once, to whichever fsync of the file comes first.
  slow_fsync_fails_once,
};

class FaultVfs {
 public:
  // Registers the shim as SQLite's default VFS (once per process; later calls do nothing).
  static void install();
  // From now on, calls of the fault's kind on files whose path contains `path_part` ("" for
  // every file) pass `skip` times, then fail (every time, until clear()).
  static void arm(Fault fault, std::string path_part, std::uint64_t skip = 0);
  static void clear();
  // Calls failed since the last arm().
  static std::uint64_t failures();
};

}  // namespace cairn::testing
