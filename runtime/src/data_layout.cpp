#include "data_layout.hpp"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "database.hpp"

namespace cairn::detail {
namespace {

constexpr const char* shards_name = "_shards";
constexpr const char* layout_mark = "shards-1";

// "<64 hex>.sqlite" or its -wal, -shm, -journal: an actor's file in the old layout.
bool actor_file(const std::string& file, std::string& hex) {
  if (file.size() < 64 + 7) return false;
  hex = file.substr(0, 64);
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  std::string rest = file.substr(64);
  return rest == ".sqlite" || rest == ".sqlite-wal" || rest == ".sqlite-shm" || rest == ".sqlite-journal";
}

struct OldFile {
  std::filesystem::path from;  // <data>/<binding>/<file>
  std::filesystem::path to;    // <data>/_shards/NNNN/<binding>/<file>
};

// The actor files of the old layout: in <data>/<dir>/ for every directory not starting
// with '_' (bindings never do).
std::vector<OldFile> old_files(const std::filesystem::path& data_dir) {
  std::vector<OldFile> out;
  std::error_code ec;
  for (const auto& top : std::filesystem::directory_iterator(data_dir, ec)) {
    auto binding = top.path().filename().string();
    if (binding.empty() || binding.front() == '_' || !top.is_directory(ec)) continue;
    std::error_code inner;
    for (const auto& entry : std::filesystem::directory_iterator(top.path(), inner)) {
      std::string hex;
      auto file = entry.path().filename().string();
      if (!entry.is_regular_file(inner) || !actor_file(file, hex)) continue;
      unsigned shard = static_cast<unsigned>(std::stoul(hex.substr(0, 3), nullptr, 16)) >> 2;
      out.push_back({entry.path(), shard_dir(data_dir, shard) / binding / file});
    }
    if (inner) throw std::runtime_error("cannot read " + top.path().string() + ": " + inner.message());
  }
  if (ec) throw std::runtime_error("cannot read " + data_dir.string() + ": " + ec.message());
  return out;
}

void sync_or_throw(const std::filesystem::path& path) {
  if (!sync_path(path)) throw std::runtime_error("cannot fsync " + path.string());
}

// Removes the old names (the new ones exist), then the binding directories left empty.
void remove_old(const std::filesystem::path& data_dir, const std::vector<OldFile>& files) {
  std::set<std::filesystem::path> dirs;
  for (const auto& file : files) {
    std::error_code ec;
    if (!std::filesystem::exists(file.to, ec)) {
      // Cannot happen after the mark (every file was linked before it was written), unless
      // someone put it there since: keep it rather than lose it.
      spdlog::warn("data layout: {} has no copy in its shard; left where it is", file.from.string());
      continue;
    }
    std::filesystem::remove(file.from, ec);
    if (ec) throw std::runtime_error("cannot remove " + file.from.string() + ": " + ec.message());
    dirs.insert(file.from.parent_path());
  }
  for (const auto& dir : dirs) {
    std::error_code ec;
    sync_or_throw(dir);
    if (std::filesystem::is_empty(dir, ec)) std::filesystem::remove(dir, ec);
  }
  sync_or_throw(data_dir);
}

}  // namespace

std::pair<std::string, std::string> shard_hex_range(unsigned shard) {
  char first[8], end[8];
  std::snprintf(first, sizeof first, "%03x", shard * 4);
  std::snprintf(end, sizeof end, "%03x", shard * 4 + 4);
  return {first, shard + 1 >= ActorId::shard_count ? std::string("g") : std::string(end)};
}

std::filesystem::path shard_dir(const std::filesystem::path& data_dir, unsigned shard) {
  char name[16];
  std::snprintf(name, sizeof name, "%04u", shard);
  return data_dir / shards_name / name;
}

std::filesystem::path actor_database(const std::filesystem::path& data_dir, const ActorId& id) {
  return shard_dir(data_dir, id.shard()) / id.binding() / (id.hex() + ".sqlite");
}

std::size_t convert_to_shards(const std::filesystem::path& data_dir) {
  auto mark = data_dir / "_cairn" / "layout";
  auto files = old_files(data_dir);
  {
    std::ifstream in(mark);
    std::string text;
    if (in >> text) {
      if (text != layout_mark) {
        throw std::runtime_error(mark.string() + " says '" + text + "': a layout this version of cairn does not know");
      }
      if (!files.empty()) remove_old(data_dir, files);  // a crash after the mark
      return 0;
    }
  }
  if (!files.empty()) {
    spdlog::info("data layout: moving {} files of {} into shard directories", files.size(), data_dir.string());
  }
  // Link every file at its new place (a link left by an earlier, interrupted try is
  // replaced: the old name is the truth until the mark exists).
  std::set<std::filesystem::path> new_dirs;
  for (const auto& file : files) {
    std::error_code ec;
    std::filesystem::create_directories(file.to.parent_path(), ec);
    if (ec) throw std::runtime_error("cannot create " + file.to.parent_path().string() + ": " + ec.message());
    std::filesystem::remove(file.to, ec);
    if (::link(file.from.c_str(), file.to.c_str()) != 0) {
      throw std::runtime_error("cannot link " + file.from.string() + " to " + file.to.string() + ": " +
                               std::error_code(errno, std::generic_category()).message());
    }
    new_dirs.insert(file.to.parent_path());
  }
  // Every new directory entry durable, at every level, before the mark.
  std::error_code ec;
  std::filesystem::create_directories(data_dir / shards_name, ec);
  std::filesystem::create_directories(data_dir / "_cairn", ec);
  if (ec) throw std::runtime_error("cannot create " + (data_dir / "_cairn").string() + ": " + ec.message());
  std::set<std::filesystem::path> shard_dirs;
  for (const auto& dir : new_dirs) {
    sync_or_throw(dir);
    shard_dirs.insert(dir.parent_path());
  }
  for (const auto& dir : shard_dirs) sync_or_throw(dir);
  sync_or_throw(data_dir / shards_name);
  sync_or_throw(data_dir);
  // The mark: written aside, fsync'd, renamed into place, its directory fsync'd.
  auto temporary = mark;
  temporary += ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << layout_mark << '\n';
    out.flush();
    if (!out) throw std::runtime_error("cannot write " + temporary.string());
  }
  sync_or_throw(temporary);
  std::filesystem::rename(temporary, mark, ec);
  if (ec) throw std::runtime_error("cannot rename " + temporary.string() + ": " + ec.message());
  sync_or_throw(data_dir / "_cairn");
  remove_old(data_dir, files);
  return files.size();
}

}  // namespace cairn::detail
