// cairnctl top's arithmetic (cairn/cli/metrics_math.hpp) on the cases the inspector page's
// JavaScript passes too (tests/data/metrics_math.json).
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "cairn/cli/metrics_math.hpp"

using namespace cairn::cli::metrics;
using json = nlohmann::json;

namespace {

json cases() {
  std::ifstream in(CAIRN_TEST_DATA_DIR "/metrics_math.json");
  REQUIRE(in);
  return json::parse(in);
}

double number(const json& v) {
  return v.is_string() && v == "+Inf" ? std::numeric_limits<double>::infinity() : v.get<double>();
}

Buckets pairs(const json& list) {
  Buckets out;
  for (const auto& p : list) out.emplace_back(number(p[0]), number(p[1]));
  return out;
}

}  // namespace

TEST_CASE("the text format is parsed as the shared cases say") {
  const json all = cases();  // kept alive: a range-for over a temporary's member dangles
  for (const auto& c : all["parse"]) {
    std::vector<Sample> expected;
    for (const auto& s : c["samples"]) {
      Sample sample{s["name"], s["labels"].get<std::map<std::string, std::string>>(), number(s["value"])};
      expected.push_back(sample);
    }
    CHECK(parse(c["text"].get<std::string>()) == expected);
  }
  CHECK(parse("x{a=\"1\"} not-a-number\ny 2").size() == 1);
}

TEST_CASE("counter increases count a reset as the value since") {
  const json all = cases();  // kept alive: a range-for over a temporary's member dangles
  for (const auto& c : all["increase"]) {
    std::vector<std::optional<double>> values;
    for (const auto& v : c["values"]) values.push_back(v.is_null() ? std::nullopt : std::optional<double>(v.get<double>()));
    INFO(c["values"].dump());
    CHECK(increase(values) == c["increase"].get<double>());
  }
}

TEST_CASE("bucket increases stay cumulative across a reset") {
  const json all = cases();  // kept alive: a range-for over a temporary's member dangles
  for (const auto& c : all["bucket_increase"]) {
    std::vector<Buckets> readings;
    for (const auto& r : c["readings"]) readings.push_back(pairs(r));
    INFO(c["readings"].dump());
    CHECK(bucket_increase(readings) == pairs(c["increase"]));
  }
}

TEST_CASE("quantiles interpolate within their bucket") {
  const json all = cases();  // kept alive: a range-for over a temporary's member dangles
  for (const auto& c : all["quantile"]) {
    auto got = quantile(c["q"].get<double>(), pairs(c["buckets"]));
    INFO(c.dump());
    if (c["value"].is_null()) {
      CHECK_FALSE(got.has_value());
    } else {
      REQUIRE(got.has_value());
      CHECK(std::abs(*got - c["value"].get<double>()) < 1e-9);
    }
  }
}

TEST_CASE("sums by label and histograms from parsed samples") {
  auto samples = parse(R"(r{listener="public",route="/a",status="200"} 3
r{listener="public",route="/a",status="500"} 1
r{listener="admin",route="/metrics",status="200"} 7
h_bucket{route="/a",le="0.1"} 2
h_bucket{route="/b",le="0.1"} 1
h_bucket{route="/a",le="+Inf"} 4
h_bucket{route="/b",le="+Inf"} 1
)");
  auto by_route = sum_by(samples, "r", {{"listener", is("public")}}, "route");
  CHECK(by_route == std::map<std::string, double>{{"/a", 4}});
  CHECK(sum_by(samples, "r")[""] == 11);
  auto b = buckets(samples, "h");
  REQUIRE(b.size() == 2);
  CHECK(b[0] == std::pair<double, double>{0.1, 3});
  CHECK(std::isinf(b[1].first));
  CHECK(b[1].second == 5);
}
