// The counter example against real HTTP clients. The program under test is $CAIRN_COUNTER:
// the in-tree build (test `counter_example`) or the one built as an outside project against
// the installed package (test `package_counter`), so a broken package fails here.
#include <doctest/doctest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "clients.hpp"
#include "server_process.hpp"
#include "temp_dir.hpp"

using namespace cairn::testing;
using json = nlohmann::json;

namespace {

ServerProcess start(const TempDir& dir) {
  const char* program = std::getenv("CAIRN_COUNTER");
  REQUIRE_MESSAGE(program != nullptr, "set CAIRN_COUNTER to the cairn-counter program");
  return ServerProcess({program, "--port", "0", "--data-dir", dir.path().string()});
}

}  // namespace

TEST_CASE("counters count by name, keep their value across a restart, and reject bad input") {
  TempDir dir;
  {
    auto server = start(dir);
    auto port = server.port();
    CHECK(json::parse(http_get(port, "/objects/COUNTER/a/value").body) == json{{"value", 0}});
    CHECK(json::parse(http_post(port, "/objects/COUNTER/a/increment", "").body) == json{{"value", 1}});
    CHECK(json::parse(http_post(port, "/objects/COUNTER/a/increment", R"({"by": 41})").body) ==
          json{{"value", 42}});
    CHECK(json::parse(http_get(port, "/objects/COUNTER/b/value").body) == json{{"value", 0}});
    for (const char* bad : {"nope", R"({"by": "x"})", R"({"by": 1.5})", R"({"by": 2000000})", "[]"}) {
      auto reply = http_post(port, "/objects/COUNTER/a/increment", bad);
      CHECK(reply.status == 400);
      CHECK(json::parse(reply.body)["status"] == 400);
    }
    CHECK(http_get(port, "/objects/COUNTER/a/increment").status == 405);
    CHECK(http_get(port, "/objects/COUNTER/a/other").status == 404);
    CHECK(http_get(port, "/objects/NOPE/a/value").status == 404);
    CHECK(server.stop() == 0);
  }
  auto again = start(dir);
  CHECK(json::parse(http_get(again.port(), "/objects/COUNTER/a/value").body) == json{{"value", 42}});
}
