// JwtVerifier: checks a JSON Web Token (RFC 7519) signed with HS256 or RS256 against
// JwtOptions, with OpenSSL. Debian's libjwt would do this too; it is not used because
// OpenSSL, already linked for TLS, does the two signatures, and the claims checks are the
// few lines below (no other algorithm, no "none", no key from the token).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cairn/gateway/edge.hpp"
#include "cairn/result.hpp"

namespace cairn::gateway {

class JwtVerifier {
 public:
  // Throws std::invalid_argument if the key cannot be used (not PEM, not RSA, a secret of
  // fewer than 32 bytes).
  explicit JwtVerifier(const JwtOptions& options);
  ~JwtVerifier();
  JwtVerifier(const JwtVerifier&) = delete;
  JwtVerifier& operator=(const JwtVerifier&) = delete;

  // The token's claims, or unauthenticated saying why not (malformed, bad signature, another
  // algorithm, expired, not yet valid, another issuer or audience). Any thread.
  Result<nlohmann::json> verify(std::string_view token, std::chrono::system_clock::time_point now) const;

 private:
  struct Key;
  JwtOptions options_;
  std::unique_ptr<Key> key_;
};

// base64url without padding (RFC 4648 section 5), decoded; nullopt if malformed.
std::optional<std::string> base64url_decode(std::string_view text);
std::string base64url_encode(std::string_view bytes);

}  // namespace cairn::gateway
