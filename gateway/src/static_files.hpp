// Static files from the public directory: safe path resolution and content types.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "cairn/result.hpp"

namespace cairn::gateway {

struct StaticFile {
  std::filesystem::path path;
  std::string content_type;
};

// The file under `root` that URL path `url_path` names ("/" is "/index.html"). not_found
// for anything missing, outside root (.., symlinks out, encoded tricks) or not a regular file.
Result<StaticFile> resolve_static(const std::filesystem::path& root, std::string_view url_path);

std::string content_type_for(const std::filesystem::path& path);

}  // namespace cairn::gateway
