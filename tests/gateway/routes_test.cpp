#include "routes.hpp"

#include <doctest/doctest.h>

#include "cairn/limits.hpp"

using namespace cairn;
using cairn::gateway::match_route;
using cairn::gateway::Route;

namespace {
const std::vector<Route> routes{{"/seats", "FLIGHT", "flightId"}, {"/ws", "FLIGHT", "flightId"}};
Request at(std::string target) { return Request{"GET", std::move(target), {}, {}, 0}; }
}  // namespace

TEST_CASE("a route's actor name comes from its query parameter, percent-decoded") {
  auto matched = match_route(routes, at("/seats?x=1&flightId=LH%20400"));
  REQUIRE(matched.has_value());
  REQUIRE(matched->ok());
  CHECK((*matched)->name == "LH 400");
  CHECK((*matched)->route->binding == "FLIGHT");
  CHECK(!match_route(routes, at("/index.html?flightId=1")).has_value());
}

TEST_CASE("a missing, empty, over-long or malformed actor name is invalid_argument") {
  for (std::string target :
       {std::string("/seats"), std::string("/seats?flightId="), std::string("/seats?flightId=%zz"),
        std::string("/seats?flightId=a%0Ab"),
        "/seats?flightId=" + std::string(limits::max_actor_name_bytes + 1, 'x')}) {
    auto matched = match_route(routes, at(target));
    REQUIRE(matched.has_value());
    CHECK_MESSAGE(!matched->ok(), target);
    if (!matched->ok()) {
      CHECK(matched->error().code == Code::invalid_argument);
      CHECK(matched->error().message.find("flightId") != std::string::npos);
    }
  }
}
