// The VFS actor databases open with: a thin shim over the default VFS (as registered when a
// database first asks: the unix VFS, or a test's VFS installed before the runtime started)
// that changes two things. SQLite syncs a WAL's 32-byte header before the first frames that
// follow it, so that a power loss can never revive old frames under an old header while new
// ones overwrite them. A WAL this shim's handle created has no old frames, so the shim skips
// that first sync (and with it the directory sync the unix VFS attaches to a new WAL's first
// sync): a new actor's first commit then costs its thread no fsync. What the skipped syncs
// gave is paid before anything is acknowledged: the host's first sync of a new WAL opens it
// with SQLITE_OPEN_CREATE, which makes the unix VFS sync the directory with it (sync_wal's
// `with_directory`). Every other call is passed through unchanged.
//
// The shim also grows a WAL ahead of its frames: when a commit's frames pass the file's end it
// writes zeros up to wal_growth_target(end). Each commit's fdatasync then writes its frames
// into blocks the file already has, and no inode, extent or bitmap with them (one metadata
// write per growth step instead of one per commit: measured 8-20 % less server CPU per durable
// booking and 15-30 % more bookings/s over 1,000 flights). SQLite's recovery stops at the
// first zero frame (page number 0), as it does at a stale one.
//
// Why not a flag: SQLite decides the header sync once per connection, from the database
// file's SQLITE_IOCAP_SEQUENTIAL, which would also skip it when a WAL is reused after a
// checkpoint, where it is needed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>

namespace cairn {
class Replicator;
}

namespace cairn::detail {

// The size a WAL whose frames end at `end` grows to: powers of two from 32 KiB up to 256 KiB,
// then multiples of 256 KiB. A new actor's WAL stays small; a busy one grows 256 KiB at a time,
// which bounds the zeros one fdatasync writes and the space a live actor holds ahead.
std::int64_t wal_growth_target(std::int64_t end);

// The shim's name, for sqlite3_open_v2 (registered on first call; thread-safe).
const char* database_vfs_name();

// Replication (cairn/replication.hpp): files this shim opens under <data_dir>/_shards/NNNN/
// have their writes, truncations and deletions handed to `replicator`, and their syncs wait
// for it (a file opened before the call is not affected). Null removes the route.
void route_replication(const std::filesystem::path& data_dir, std::shared_ptr<Replicator> replicator);
// Tells the replicator of `file`'s data directory, if any, that the file was deleted (for files
// removed without SQLite: a deleted actor's database).
void replicate_removal(const std::filesystem::path& file);
// Makes durable on the follower of `file`'s shard everything queued for it (a removal that must
// not come back); true at once if the file is not replicated.
bool sync_replica_of(const std::filesystem::path& file, std::string& error);

}  // namespace cairn::detail
