#include "cairn/actor_id.hpp"

#include <doctest/doctest.h>

#include "cairn/limits.hpp"

using cairn::ActorId;

TEST_CASE("an actor id is the same for the same binding and name, and keeps the name") {
  auto a = ActorId::make("FLIGHT", "1234");
  auto b = ActorId::make("FLIGHT", "1234");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->hex() == b->hex());
  CHECK(a->name() == "1234");
  CHECK(a->binding() == "FLIGHT");
  CHECK(a->hex().size() == 64);
  CHECK(a->hex().find_first_not_of("0123456789abcdef") == std::string::npos);
}

TEST_CASE("an actor id is SHA-256 of binding, NUL and name") {
  // python3 -c "import hashlib; print(hashlib.sha256(b'FLIGHT\x001234').hexdigest())"
  CHECK(ActorId::make("FLIGHT", "1234")->hex() ==
        "e6094331d1d75c0ac477d5b0105ceb317bc671a97f20904743eed00fd3e4a694");
}

TEST_CASE("ids differ across bindings and names, and a hostile name never reaches the hex") {
  auto a = ActorId::make("FLIGHT", "1");
  auto b = ActorId::make("OTHER", "1");
  auto c = ActorId::make("FLIGHT", "../../etc/passwd");
  CHECK(a->hex() != b->hex());
  CHECK(a->hex() != c->hex());
  CHECK(c->hex().find('/') == std::string::npos);
  CHECK(c->name() == "../../etc/passwd");
}

TEST_CASE("empty and over-long names are rejected with the limit quoted") {
  CHECK(ActorId::make("FLIGHT", "").error().code == cairn::Code::invalid_argument);
  auto too_long = ActorId::make("FLIGHT", std::string(cairn::limits::max_actor_name_bytes + 1, 'x'));
  REQUIRE(!too_long.ok());
  CHECK(too_long.error().message.find("256") != std::string::npos);
  CHECK(ActorId::make("FLIGHT", std::string(cairn::limits::max_actor_name_bytes, 'x')).ok());
  CHECK(!ActorId::make("", "x").ok());
}
