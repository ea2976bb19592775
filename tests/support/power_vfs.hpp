// PowerVfs: a SQLite VFS shim over the default one that can simulate a power loss. Tests only.
// Writes reach the real files at once (so everything reads them as usual), and the shim also
// keeps, per file, its content as of its last sync plus the writes and truncations since. A
// sync (real fsyncs are skipped: the model is the disk) makes them durable. A new file's
// directory entry becomes durable only when its directory is synced, as the unix VFS does it:
// on the first sync of a journal or WAL handle opened with SQLITE_OPEN_CREATE.
//
// cut() "cuts the power": every later write, truncate, sync and delete fails with an I/O
// error and changes nothing. settle() then rewrites every file as the disk could hold it after
// the loss: its synced content plus a random subset of the later writes (each 512-byte sector
// of each write kept or dropped), and files whose entries never became durable removed. Only
// files opened through SQLite are modelled (directories are taken as durable).
#pragma once

#include <cstdint>
#include <string>

namespace cairn::testing {

class PowerVfs {
 public:
  // Registers the shim as SQLite's default VFS (once per process; later calls do nothing).
  static void install();
  // Forgets every file (what is on disk now counts as durable) and turns the power on.
  static void reset();
  // Cuts the power now, or once `operations` more writes and syncs have passed (0: now).
  static void cut(std::uint64_t operations = 0);
  static bool is_cut();
  // The next `count` syncs of a file whose path contains `path_part` fail (SQLITE_IOERR_FSYNC),
  // and the writes and truncations since that file's last sync never reach the disk, though
  // they stay readable: Linux marks the pages of a failed writeback clean, and a later fsync
  // does not write them again.
  static void fail_next_sync(std::string path_part, int count = 1);
  struct Settled {
    std::uint64_t files = 0;          // files rewritten
    std::uint64_t removed = 0;        // files whose directory entry was not durable
    std::uint64_t sectors_kept = 0;   // unsynced sectors that survived
    std::uint64_t sectors_lost = 0;   // unsynced sectors that did not
  };
  // After cut() and once no connection has the files open: rewrites them as above (random by
  // `seed`, each unsynced sector kept with probability `keep`), forgets them and turns the
  // power on again.
  static Settled settle(std::uint64_t seed, double keep);
  // Syncs (durable points) since install.
  static std::uint64_t syncs();
};

}  // namespace cairn::testing
