// libFuzzer target: JSON bodies (and raw bytes) into the Flight's HTTP handlers through the
// real runtime (cairn/testing.hpp: a temporary data dir, real SQLite). The first byte picks
// the route. Every answer is a JSON body whose status equals the HTTP status, never a 500:
// a bad body is the client's error, not a bug.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "flight_runtime.hpp"


extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static const char* const targets[] = {"/book-seat", "/hold-seat", "/release-seat", "/cancel-booking", "/seats"};
  const char* target = targets[data[0] % 5];
  std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  // A few flights, so state builds up across inputs as it would in use.
  std::string flight = "f" + std::to_string(data[0] / 5 % 4);
  auto response = flight_runtime().fetch("FLIGHT", flight, std::string(target) == "/seats" ? "GET" : "POST",
                                  target, body);
  if (response.status >= 500) std::abort();
  auto parsed = nlohmann::json::parse(response.body, nullptr, false);
  if (parsed.is_discarded()) std::abort();
  if (response.status != 200 && (!parsed.is_object() || parsed["status"] != response.status)) std::abort();
  return 0;
}
