// The Prometheus text writer and the histogram.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "cairn/metrics.hpp"

using namespace cairn::metrics;

TEST_CASE("values print as Prometheus reads them") {
  CHECK(format_value(0) == "0");
  CHECK(format_value(42) == "42");
  CHECK(format_value(-3) == "-3");
  CHECK(format_value(18446744073709.0) == "18446744073709");
  CHECK(format_value(0.25) == "0.25");
  CHECK(format_value(0.0001) == "0.0001");
  CHECK(format_value(1.5e-9) == "1.5e-09");
  CHECK(format_value(std::numeric_limits<double>::quiet_NaN()) == "NaN");
  CHECK(format_value(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(format_value(-std::numeric_limits<double>::infinity()) == "-Inf");
}

TEST_CASE("names and label values are checked and escaped") {
  CHECK(valid_metric_name("cairn_events_total"));
  CHECK(valid_metric_name("a:b_c9"));
  CHECK(!valid_metric_name(""));
  CHECK(!valid_metric_name("9lives"));
  CHECK(!valid_metric_name("has-dash"));
  CHECK(valid_label_name("binding"));
  CHECK(!valid_label_name("a:b"));
  CHECK(!valid_label_name("__reserved"));
  CHECK(escape_label_value(R"(a"b\c)" "\n") == R"(a\"b\\c\n)");
  TextWriter out;
  CHECK_THROWS_AS(out.family("bad name", "counter", "x"), std::invalid_argument);
  CHECK_THROWS_AS(out.family("ok", "summary", "x"), std::invalid_argument);
  CHECK_THROWS_AS(out.sample("ok", {{"bad-label", "v"}}, 1), std::invalid_argument);
}

TEST_CASE("families, samples and histograms in the text format") {
  Histogram h({0.1, 1});
  h.observe(0.05);
  h.observe(0.1);  // le is inclusive
  h.observe(0.5);
  h.observe(7);
  auto snap = h.snapshot();
  CHECK(snap.count == 4);
  CHECK(snap.cumulative == std::vector<std::uint64_t>{2, 3, 4});
  CHECK(snap.sum == doctest::Approx(7.65));

  TextWriter out;
  out.family("cairn_things_total", "counter", "Things\nseen");
  out.sample("cairn_things_total", {{"binding", "FLIGHT"}, {"what", "a\"b"}}, 3);
  out.family("cairn_wait_seconds", "histogram", "Waits");
  out.histogram("cairn_wait_seconds", {{"route", "/seats"}}, snap);
  CHECK(out.text() ==
        "# HELP cairn_things_total Things\\nseen\n"
        "# TYPE cairn_things_total counter\n"
        "cairn_things_total{binding=\"FLIGHT\",what=\"a\\\"b\"} 3\n"
        "# HELP cairn_wait_seconds Waits\n"
        "# TYPE cairn_wait_seconds histogram\n"
        "cairn_wait_seconds_bucket{route=\"/seats\",le=\"0.1\"} 2\n"
        "cairn_wait_seconds_bucket{route=\"/seats\",le=\"1\"} 3\n"
        "cairn_wait_seconds_bucket{route=\"/seats\",le=\"+Inf\"} 4\n"
        "cairn_wait_seconds_sum{route=\"/seats\"} 7.65\n"
        "cairn_wait_seconds_count{route=\"/seats\"} 4\n");
}

TEST_CASE("a histogram counts every observation from many threads") {
  Histogram h(seconds_buckets());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&h] {
      for (int i = 0; i < 10'000; ++i) h.observe(0.001);
    });
  }
  for (auto& thread : threads) thread.join();
  auto snap = h.snapshot();
  CHECK(snap.count == 40'000);
  CHECK(snap.sum == doctest::Approx(40.0));
  CHECK_THROWS_AS(Histogram({1, 0.5}), std::invalid_argument);
  CHECK(exponential_buckets(1, 2, 4) == std::vector<double>{1, 2, 4, 8});
}
