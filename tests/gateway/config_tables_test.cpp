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

TEST_CASE("config tables: the tables come out as JSON and the rest stays flags on one line each") {
  std::string text =
      "plugin = [\"/a/very/long/path/to/the/first/library/libone.so\", \"/a/very/long/path/to/the/second/library/libtwo.so\",\n"
      "          \"/and/a/third/one/libthree.so\"]\n"
      "port = 8787\n"
      "[bindings.COUNTER]\n"
      "objects = true\n"
      "routes = [{ path = \"/value\", name-param = \"name\" }]\n"
      "[bindings.COUNTER.options]\n"
      "start = 10\n"
      "[admin]\n"
      "port = 9000\n"
      "[limits.deep]\n"
      "x = \"y\"\n";
  auto split = split_toml(text, {"bindings"});
  auto tables = nlohmann::json::parse(split.tables_json);
  CHECK(tables["bindings"]["COUNTER"]["objects"] == true);
  CHECK(tables["bindings"]["COUNTER"]["routes"][0]["name-param"] == "name");
  CHECK(tables["bindings"]["COUNTER"]["options"]["start"] == 10);
  CHECK(split.rest.find("bindings") == std::string::npos);
  CHECK(split.rest.find(
            "plugin = [\"/a/very/long/path/to/the/first/library/libone.so\", "
            "\"/a/very/long/path/to/the/second/library/libtwo.so\", \"/and/a/third/one/libthree.so\"]\n") !=
        std::string::npos);
  CHECK(split.rest.find("port = 8787\n") < split.rest.find("[admin]"));  // top-level keys before any section
  CHECK(split.rest.find("[admin]\nport = 9000\n") != std::string::npos);
  CHECK(split.rest.find("[limits.deep]\nx = \"y\"\n") != std::string::npos);
  CHECK(split.tables_toml.find("[bindings.COUNTER.options]") != std::string::npos);
}

TEST_CASE("config tables: a syntax error names its line and a bindings key that is no table is refused") {
  try {
    (void)split_toml("port = 1\n[bindings.X\n", {"bindings"});
    FAIL("no error");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("line 2") != std::string::npos);
  }
  CHECK_THROWS_WITH_AS((void)split_toml("bindings = 3\n", {"bindings"}), "'bindings' must be a table ([bindings.NAME])",
                       std::runtime_error);
}
