// Duration flags take a unit, as wrk and curl users type them (cli/include/cairn/cli/duration.hpp).
#include "cairn/cli/duration.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace {

// Parses `args` (after the program name) with one duration flag; returns its value.
template <class T>
T parse(std::vector<std::string> args, cairn::cli::Unit unit = cairn::cli::Unit::seconds) {
  CLI::App app;
  T value{};
  cairn::cli::add_duration(app, "--duration", value, "how long", unit)->check(CLI::Range(0.0, 86400.0 * 1000));
  args.insert(args.begin(), "program");
  std::vector<const char*> argv;
  for (auto& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());
  return value;
}

}  // namespace

TEST_CASE("a duration flag takes ms, s, m and h, and a bare number in its own unit") {
  CHECK(parse<double>({"--duration", "5s"}) == doctest::Approx(5.0));
  CHECK(parse<double>({"--duration", "500ms"}) == doctest::Approx(0.5));
  CHECK(parse<double>({"--duration", "2m"}) == doctest::Approx(120.0));
  CHECK(parse<double>({"--duration", "1h"}) == doctest::Approx(3600.0));
  CHECK(parse<double>({"--duration", "7"}) == doctest::Approx(7.0));
  CHECK(parse<double>({"--duration=1.5s"}) == doctest::Approx(1.5));
  CHECK(parse<int>({"--duration", "2s"}, cairn::cli::Unit::milliseconds) == 2000);
  CHECK(parse<int>({"--duration", "250"}, cairn::cli::Unit::milliseconds) == 250);
}

TEST_CASE("a duration flag refuses an unknown unit and a value out of range, naming the flag") {
  CHECK_THROWS_AS(parse<double>({"--duration", "5x"}), CLI::ValidationError);
  CHECK_THROWS_AS(parse<double>({"--duration", "-3s"}), CLI::ValidationError);
  try {
    parse<double>({"--duration", "5 fortnights"});
    FAIL("accepted");
  } catch (const CLI::ValidationError& e) {
    CHECK(std::string(e.what()).find("--duration") != std::string::npos);
  }
}
