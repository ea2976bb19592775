#include "static_files.hpp"

#include <doctest/doctest.h>

#include <fstream>

#include "temp_dir.hpp"

using cairn::gateway::content_type_for;
using cairn::gateway::resolve_static;
using cairn::testing::TempDir;

namespace {
void write(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << text;
}
}  // namespace

TEST_CASE("the root serves index.html and files resolve inside the public directory") {
  TempDir outside;
  auto root = outside.path() / "public";
  write(root / "index.html", "<html>");
  write(root / "app" / "main.js", "x");
  write(outside.path() / "secret.txt", "no");
  auto index = resolve_static(root, "/");
  REQUIRE(index.ok());
  CHECK(index->path.filename() == "index.html");
  CHECK(index->content_type == "text/html; charset=utf-8");
  CHECK(resolve_static(root, "/app/main.js")->content_type == "text/javascript; charset=utf-8");
  CHECK(!resolve_static(root, "/app/").ok());  // a folder without index.html
  CHECK(!resolve_static(root, "/app").ok());   // a folder is not a file
}

TEST_CASE("paths that climb out of the public directory are not found") {
  TempDir outside;
  auto root = outside.path() / "public";
  write(root / "index.html", "<html>");
  write(outside.path() / "secret.txt", "no");
  std::filesystem::create_symlink(outside.path() / "secret.txt", root / "link.txt");
  for (const char* path : {"/../secret.txt", "/%2e%2e/secret.txt", "/app/../../secret.txt",
                           "/link.txt", "/%00index.html", "/..\\secret.txt", "secret.txt", "/nope",
                           "/%zz"}) {
    auto result = resolve_static(root, path);
    CHECK_MESSAGE(!result.ok(), path);
    if (!result.ok()) CHECK(result.error().code == cairn::Code::not_found);
  }
}

TEST_CASE("content types follow the extension and default to octet-stream") {
  CHECK(content_type_for("a.CSS") == "text/css; charset=utf-8");
  CHECK(content_type_for("a.json") == "application/json");
  CHECK(content_type_for("a.svg") == "image/svg+xml");
  CHECK(content_type_for("a.bin") == "application/octet-stream");
}
