// The data directory's layout:
//   <data>/_cairn/                         the runtime's own files (indexes, layout mark, scratch)
//   <data>/_shards/NNNN/<binding>/<hex>.sqlite (and -wal)   an actor's database, in its shard
// A shard (ActorId::shard(), 0000-1023) is the unit cluster mode moves between nodes, so its
// actors' files sit together. Binding names never start with '_', so neither top-level name
// can be a binding's.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <utility>

#include "cairn/actor_id.hpp"

namespace cairn::detail {

// The ids of `shard` are the hex strings in [first, end) (the shard is the top 10 bits of the
// id: 4 values of its first 3 hex digits).
std::pair<std::string, std::string> shard_hex_range(unsigned shard);

// <data>/_shards/NNNN (four decimal digits).
std::filesystem::path shard_dir(const std::filesystem::path& data_dir, unsigned shard);
// <data>/_shards/NNNN/<binding>/<hex>.sqlite
std::filesystem::path actor_database(const std::filesystem::path& data_dir, const ActorId& id);

// Makes `data_dir` use the layout above. A directory of the layout before shards
// (<data>/<binding>/<hex>.sqlite...) has its databases moved into their shards, once:
// each file is hard-linked at its new place, the new directories are made durable, then a
// mark (<data>/_cairn/layout) says the move is done, and only then are the old names
// removed. A crash at any point leaves either the old layout intact (the move starts over)
// or the mark and both names (the old ones are removed at the next start). Files that are
// not an actor's database are left where they are. Returns how many files were moved.
// Throws std::runtime_error with the path that failed.
std::size_t convert_to_shards(const std::filesystem::path& data_dir);

}  // namespace cairn::detail
