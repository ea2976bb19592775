// libFuzzer target: bytes as actor names, into ActorId::make, the gateway's name check and
// URL decoding (query and path forms). An accepted name is 1 to 256 bytes without control
// characters; an id's hex form is 64 lower-case hex digits, the same for the same name.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cairn/actor_id.hpp"
#include "cairn/http.hpp"
#include "cairn/limits.hpp"
#include "routes.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto id = cairn::ActorId::make("FLIGHT", bytes);
  if (id) {
    if (id->hex().size() != 64) std::abort();
    for (char c : id->hex()) {
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) std::abort();
    }
    if (id->name() != bytes) std::abort();
    auto again = cairn::ActorId::make("FLIGHT", std::string(bytes));
    if (!again || again->hex() != id->hex()) std::abort();
    auto other = cairn::ActorId::make("COUNTER", bytes);
    if (!other || other->hex() == id->hex()) std::abort();
  }
  auto checked = cairn::gateway::check_actor_name("the name", bytes);
  if (checked) {
    if (bytes.empty() || bytes.size() > cairn::limits::max_actor_name_bytes) std::abort();
    for (unsigned char c : bytes) {
      if (c < 0x20 || c == 0x7f) std::abort();
    }
    if (!id) std::abort();  // the gateway never passes on a name the runtime refuses
  }
  for (bool plus_is_space : {true, false}) {
    auto decoded = cairn::url_decode(bytes, plus_is_space);
    if (decoded && decoded->size() > bytes.size()) std::abort();
  }
  cairn::Request request;
  request.target = "/seats?" + std::string(bytes);
  (void)request.query_param("flightId");
  return 0;
}
