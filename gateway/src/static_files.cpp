// Static files: resolve a URL path inside the public directory, or refuse.
#include "static_files.hpp"

#include <algorithm>
#include <map>

#include "cairn/http.hpp"

namespace cairn::gateway {

std::string content_type_for(const std::filesystem::path& path) {
  static const std::map<std::string, std::string> types{
      {".html", "text/html; charset=utf-8"}, {".htm", "text/html; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},   {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"}, {".json", "application/json"},
      {".txt", "text/plain; charset=utf-8"}, {".svg", "image/svg+xml"},
      {".png", "image/png"},                 {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},               {".gif", "image/gif"},
      {".ico", "image/x-icon"},              {".webp", "image/webp"},
      {".wasm", "application/wasm"},         {".map", "application/json"},
  };
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  auto it = types.find(ext);
  return it == types.end() ? "application/octet-stream" : it->second;
}

Result<StaticFile> resolve_static(const std::filesystem::path& root, std::string_view url_path) {
  Error missing{Code::not_found, "no such file: " + std::string(url_path.substr(0, 200))};
  if (root.empty() || url_path.empty() || url_path.front() != '/') return missing;
  auto decoded = url_decode(url_path, false);
  if (!decoded) return missing;
  std::string rel = *decoded;
  if (rel.find('\0') != std::string::npos || rel.find('\\') != std::string::npos) return missing;
  if (rel.back() == '/') rel += "index.html";
  // Refuse any ".." segment outright rather than normalising it away.
  std::filesystem::path relative = std::filesystem::path(rel).relative_path();
  for (const auto& part : relative) {
    if (part == "..") return missing;
  }
  std::error_code ec;
  auto canonical_root = std::filesystem::canonical(root, ec);
  if (ec) return missing;
  auto candidate = std::filesystem::canonical(canonical_root / relative, ec);
  if (ec) return missing;
  auto [root_end, unused] = std::mismatch(canonical_root.begin(), canonical_root.end(),
                                          candidate.begin(), candidate.end());
  (void)unused;
  if (root_end != canonical_root.end()) return missing;  // a symlink led outside root
  if (!std::filesystem::is_regular_file(candidate, ec)) return missing;
  return StaticFile{candidate, content_type_for(candidate)};
}

}  // namespace cairn::gateway
