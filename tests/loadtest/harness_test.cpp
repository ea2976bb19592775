// cairn-load's own parts: the booking checker, latency percentiles, the reports, URLs.
#include <doctest/doctest.h>

#include <stdexcept>

#include "checker.hpp"
#include "client.hpp"
#include "report.hpp"
#include "stats.hpp"

using cairn::load::BookingAttempt;
using Outcome = BookingAttempt::Outcome;
using nlohmann::json;

namespace {

json seats(std::initializer_list<std::pair<const char*, const char*>> occupied) {
  json out = json::array();
  for (const char* seat : {"1A", "1B", "1C"}) {
    json s{{"seatNumber", seat}, {"occupant", nullptr}};
    for (const auto& [n, name] : occupied) {
      if (std::string(n) == seat) s["occupant"] = name;
    }
    out.push_back(s);
  }
  return out;
}

}  // namespace

TEST_CASE("checker: a server that kept every acknowledged booking passes") {
  std::vector<BookingAttempt> attempts{{"F1", "1A", "ann", Outcome::acknowledged},
                                       {"F1", "1A", "bob", Outcome::rejected},
                                       {"F1", "1B", "cy", Outcome::unknown},
                                       {"F2", "1C", "dee", Outcome::acknowledged}};
  std::map<std::string, json> final_state{{"F1", seats({{"1A", "ann"}, {"1B", "cy"}, {"1C", "someone-else"}})},
                                          {"F2", seats({{"1C", "dee"}})}};
  auto check = cairn::load::check_bookings(attempts, final_state);
  CHECK(check.ok());
  CHECK(check.acknowledged == 2);
  CHECK(check.present == 2);
  CHECK(check.examples.empty());
}

TEST_CASE("checker: a lost booking is caught and named") {
  std::vector<BookingAttempt> attempts{{"F1", "1A", "ann", Outcome::acknowledged},
                                       {"F1", "1B", "bob", Outcome::acknowledged}};
  auto check = cairn::load::check_bookings(attempts, {{"F1", seats({{"1A", "ann"}})}});
  CHECK_FALSE(check.ok());
  CHECK(check.lost == 1);
  REQUIRE(check.examples.size() == 1);
  CHECK(check.examples[0].find("acknowledged for bob, now free") != std::string::npos);
}

TEST_CASE("checker: a seat acknowledged to two names is a double booking (and one of them is lost)") {
  std::vector<BookingAttempt> attempts{{"F1", "1A", "ann", Outcome::acknowledged},
                                       {"F1", "1A", "bob", Outcome::acknowledged}};
  auto check = cairn::load::check_bookings(attempts, {{"F1", seats({{"1A", "bob"}})}});
  CHECK_FALSE(check.ok());
  CHECK(check.double_booked == 1);
  CHECK(check.lost == 1);
}

TEST_CASE("checker: a rejected booking that shows up, or a name on a seat it never tried, fails") {
  std::vector<BookingAttempt> attempts{{"F1", "1A", "ann", Outcome::rejected}, {"F1", "1B", "bob", Outcome::unknown}};
  auto check = cairn::load::check_bookings(attempts, {{"F1", seats({{"1A", "ann"}, {"1C", "bob"}})}});
  CHECK(check.rejected_present == 1);
  CHECK(check.unexpected == 1);
  CHECK_FALSE(check.ok());
}

TEST_CASE("checker: an unreadable final state fails instead of passing vacuously") {
  std::vector<BookingAttempt> attempts{{"F1", "1A", "ann", Outcome::acknowledged}};
  auto check = cairn::load::check_bookings(attempts, {{"F1", json{{"error", "boom"}}}});
  CHECK(check.bad_flights == 1);
  CHECK(check.lost == 1);
  CHECK_FALSE(check.ok());
  CHECK_THROWS_AS(cairn::load::occupants(json::array({json{{"occupant", "x"}}})), std::runtime_error);
}

TEST_CASE("series: nearest-rank percentiles, rate and timeline") {
  cairn::load::Series a, b;
  for (int i = 1; i <= 50; ++i) a.record(std::chrono::milliseconds(i), std::chrono::milliseconds(100));
  for (int i = 51; i <= 100; ++i) b.record(std::chrono::milliseconds(i), std::chrono::milliseconds(1500));
  a.merge(b);
  auto s = a.summarize(2.0);
  CHECK(s.count == 100);
  CHECK(s.rate == doctest::Approx(50));
  CHECK(s.p50 == doctest::Approx(50));
  CHECK(s.p90 == doctest::Approx(90));
  CHECK(s.p99 == doctest::Approx(99));
  CHECK(s.max == doctest::Approx(100));
  CHECK(s.mean == doctest::Approx(50.5));
  REQUIRE(s.per_second.size() == 2);
  CHECK(s.per_second[0] == 50);
  CHECK(s.per_second[1] == 50);
  CHECK(cairn::load::percentile_ms({}, 50) == 0);
}

TEST_CASE("reports: the table, JSON and HTML carry the figures and the verdict") {
  cairn::load::RunResult r;
  r.scenario = "book";
  r.seconds = 1;
  cairn::load::Series s;
  s.record(std::chrono::milliseconds(3), std::chrono::milliseconds(10));
  r.series["POST /book-seat"] = s.summarize(1);
  r.errors["http 503"] = 2;
  r.checks.push_back({"every acknowledged booking present", false, "1 lost <seat 1A>"});
  std::ostringstream table;
  cairn::load::print_table(table, r);
  CHECK(table.str().find("POST /book-seat") != std::string::npos);
  CHECK(table.str().find("error: http 503 x2") != std::string::npos);
  CHECK(table.str().find("result: FAIL") != std::string::npos);
  auto j = cairn::load::to_json(r);
  CHECK(j["passed"] == false);
  CHECK(j["series"]["POST /book-seat"]["count"] == 1);
  CHECK(j["series"]["POST /book-seat"]["p50_ms"] == doctest::Approx(3.0));
  auto html = cairn::load::to_html(r);
  CHECK(html.find("<svg") != std::string::npos);
  CHECK(html.find("&lt;seat 1A&gt;") != std::string::npos);  // escaped
  CHECK(html.find("http://") == html.find("http://www.w3.org/2000/svg"));  // nothing fetched from the network
}

TEST_CASE("parse_url: loopback with a port, readable errors otherwise") {
  auto t = cairn::load::parse_url("http://127.0.0.1:8787/");
  CHECK(t.endpoint.port() == 8787);
  CHECK(t.host == "127.0.0.1:8787");
  CHECK_THROWS_AS(cairn::load::parse_url("ftp://127.0.0.1:1"), std::invalid_argument);
  auto tls = cairn::load::parse_url("https://127.0.0.1:8443");
  CHECK(tls.tls != nullptr);
  CHECK(tls.tls_name == "127.0.0.1");
  CHECK_THROWS_AS(cairn::load::parse_url("https://127.0.0.1:1", "/nonexistent/ca.pem"), std::invalid_argument);
  CHECK_THROWS_AS(cairn::load::parse_url("http://127.0.0.1:1/seats"), std::invalid_argument);
}
