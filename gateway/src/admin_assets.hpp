// The inspector page's files (gateway/admin/), compiled into the library so the admin
// listener needs no path to find them. Generated into admin_assets.cpp by CMake.
#pragma once

#include <string_view>

namespace cairn::gateway {

struct AdminAsset {
  std::string_view path;  // "/", "/inspector.js", ...
  std::string_view content_type;
  std::string_view body;
};

// The file served at `path`, or nullptr.
const AdminAsset* find_admin_asset(std::string_view path);

}  // namespace cairn::gateway
