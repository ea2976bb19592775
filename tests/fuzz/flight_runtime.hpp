// The fuzz targets' runtime: one TestRuntime per process with Flight as FLIGHT, on a
// temporary data dir (durability normal: the fuzzers test parsing and rules, not fsync).
#pragma once

#include "cairn/testing.hpp"
#include "flight/flight.hpp"

inline cairn::testing::TestRuntime& flight_runtime() {
  static auto* t = [] {
    cairn::RuntimeOptions options;
    options.durability = cairn::Durability::normal;
    options.threads = 1;
    return new cairn::testing::TestRuntime(
        [] {
          cairn::Registry r;
          r.add<cairn::actors::Flight>("FLIGHT");
          return r;
        },
        options);
  }();
  return *t;
}
