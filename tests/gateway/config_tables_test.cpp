// split_toml: the config file's [bindings] tables taken out with toml++, the rest written
// back in the form CLI11's reader takes.
#include "config_tables.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

using cairn::gateway::split_toml;

TEST_CASE("config tables: a file without them is left as it is") {
  std::string text = "port = 1\n[admin]\nport = 2\n";
  auto split = split_toml(text, {"bindings"});
  CHECK(split.rest == text);
  CHECK(split.tables_json == "{}");
  CHECK(split.tables_toml.empty());
}

TEST_CASE("config tables: the tables come out as JSON and the rest is the file's own lines") {
  std::string flags =
      "plugin = [\"/a/very/long/path/to/the/first/library/libone.so\",\n"
      "          \"/and/a/second/one/libtwo.so\"]\n"
      "port = 8787\n"
      "tls-cert = 'C:\\x\\caf\xc3\xa9.pem'   # kept as written: CLI11 reads it as before\n"
      "durability = normal\n";
  std::string admin = "[admin]\nport = 9000\n";
  std::string text = flags +
                     "[bindings.COUNTER]   # the counter\n"
                     "objects = true\n"
                     "routes = [\n"
                     "  { path = \"/value\", name-param = \"name\" },\n"
                     "]\n"
                     "[bindings.COUNTER.options]\n"
                     "start = 10\n"
                     "grid = [\n"
                     "  [1, 2],\n"
                     "  [3]\n"
                     "]\n" +
                     admin + "[[bindings.LIST]]\n";
  auto split = split_toml(text, {"bindings"});
  auto tables = nlohmann::json::parse(split.tables_json);
  CHECK(tables["bindings"]["COUNTER"]["objects"] == true);
  CHECK(tables["bindings"]["COUNTER"]["routes"][0]["name-param"] == "name");
  CHECK(tables["bindings"]["COUNTER"]["options"]["start"] == 10);
  CHECK(tables["bindings"]["COUNTER"]["options"]["grid"] == nlohmann::json{{1, 2}, {3}});
  CHECK(tables["bindings"]["LIST"].is_array());
  CHECK(split.rest == flags + admin);
  CHECK(split.tables_toml.find("[bindings.COUNTER.options]\nstart = 10\n") != std::string::npos);
  // A comment that names the table is no table.
  auto commented = split_toml("# see [bindings.X] in the guide\nport = 1\n", {"bindings"});
  CHECK(commented.rest == "# see [bindings.X] in the guide\nport = 1\n");
  CHECK(commented.tables_json == "{}");
}

TEST_CASE("config tables: a syntax error names its line in the file and a key or a broken header is refused") {
  try {
    (void)split_toml("port = 1\n[bindings.X]\nroutes = [\n", {"bindings"});
    FAIL("no error");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("line 3") != std::string::npos);
  }
  CHECK_THROWS_WITH_AS((void)split_toml("bindings = 3\n", {"bindings"}),
                       "line 1: write bindings as [bindings.NAME] tables, not as a key", std::runtime_error);
  CHECK_THROWS_WITH_AS((void)split_toml("port = 1\nbindings.X.objects = true\n", {"bindings"}),
                       "line 2: write bindings as [bindings.NAME] tables, not as a key", std::runtime_error);
  CHECK_THROWS_WITH_AS((void)split_toml("port = 1\n[bindings.X\n", {"bindings"}),
                       "line 2: a malformed table header: [bindings.X", std::runtime_error);
}

TEST_CASE("config tables: CRLF line ends, a BOM and multi-line strings do not move a section's end") {
  std::string text =
      "\xEF\xBB\xBF[bindings.X]   # a BOM before it\r\n"
      "objects = true\r\n"
      "[bindings.X.options]\r\n"
      "pattern = '''\r\n"
      "^[a-z\r\n"
      "[tls]\r\n"
      "'''\r\n"
      "note = \"\"\"a \"b [c\"\"\"\r\n"
      "[tls]   # a comment after it\r\n"
      "cert = \"c.pem\"\r\n";
  auto split = split_toml(text, {"bindings"});
  auto tables = nlohmann::json::parse(split.tables_json);
  CHECK(tables["bindings"]["X"]["objects"] == true);
  CHECK(tables["bindings"]["X"]["options"]["pattern"] == "^[a-z\n[tls]\n");  // (TOML's newlines)
  CHECK(tables["bindings"]["X"]["options"]["note"] == "a \"b [c");
  CHECK(split.rest == "[tls]   # a comment after it\r\ncert = \"c.pem\"\r\n");
  // A section the scan took along (a header with an escaped quote it does not read) is
  // refused, not dropped.
  CHECK_THROWS_WITH_AS((void)split_toml("[bindings.X]\nobjects = true\n[tls.\"b\\\"c\"]\ncert = 1\n", {"bindings"}),
                       doctest::Contains("line 3: 'tls' is read as part of a [bindings...] section"), std::runtime_error);
}
