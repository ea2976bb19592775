// ActorId: SHA-256 (OpenSSL) of binding NUL name, in hex.
#include "cairn/actor_id.hpp"

#include <openssl/evp.h>

#include <array>

#include "cairn/limits.hpp"

namespace cairn {

Result<ActorId> ActorId::make(std::string_view binding, std::string_view name) {
  if (binding.empty() || binding.size() > limits::max_binding_name_bytes) {
    return fail(Code::invalid_argument, "a binding name must be 1 to " +
                                            std::to_string(limits::max_binding_name_bytes) +
                                            " bytes");
  }
  if (name.empty() || name.size() > limits::max_actor_name_bytes) {
    return fail(Code::invalid_argument, "an actor name must be 1 to " +
                                            std::to_string(limits::max_actor_name_bytes) +
                                            " bytes");
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const unsigned char nul = 0;
  bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
            EVP_DigestUpdate(ctx, binding.data(), binding.size()) == 1 &&
            EVP_DigestUpdate(ctx, &nul, 1) == 1 &&
            EVP_DigestUpdate(ctx, name.data(), name.size()) == 1 &&
            EVP_DigestFinal_ex(ctx, digest.data(), &length) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) return fail(Code::internal, "SHA-256 failed");
  static constexpr char digits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex += digits[digest[i] >> 4];
    hex += digits[digest[i] & 0xf];
  }
  return ActorId(std::string(binding), std::string(name), std::move(hex));
}

}  // namespace cairn
