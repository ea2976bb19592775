#include "jwt.hpp"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <stdexcept>
#include <vector>

namespace cairn::gateway {

struct JwtVerifier::Key {
  EVP_PKEY* rsa = nullptr;
  ~Key() { EVP_PKEY_free(rsa); }
};

std::optional<std::string> base64url_decode(std::string_view text) {
  // EVP_DecodeBlock reads standard base64 in whole quanta: the URL alphabet is mapped back
  // and the padding put back first.
  if (text.size() % 4 == 1) return std::nullopt;
  std::string standard;
  standard.reserve(text.size() + 3);
  for (char c : text) {
    if (c == '-') c = '+';
    else if (c == '_') c = '/';
    else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return std::nullopt;
    standard += c;
  }
  std::size_t padding = (4 - standard.size() % 4) % 4;
  standard.append(padding, '=');
  std::string out(standard.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(standard.data()), static_cast<int>(standard.size()));
  if (n < 0 || static_cast<std::size_t>(n) < padding) return std::nullopt;
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

std::string base64url_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (auto& c : out) {
    if (c == '+') c = '-';
    else if (c == '/') c = '_';
  }
  return out;
}

JwtVerifier::JwtVerifier(const JwtOptions& options) : options_(options), key_(std::make_unique<Key>()) {
  if (!options_.hs256_secret.empty() && !options_.rs256_public_key_pem.empty()) {
    throw std::invalid_argument("give the JWT key as an HS256 secret or an RS256 public key, not both");
  }
  if (!options_.hs256_secret.empty() && options_.hs256_secret.size() < 32) {
    throw std::invalid_argument("the HS256 secret must be at least 32 bytes (RFC 7518 section 3.2)");
  }
  if (!options_.rs256_public_key_pem.empty()) {
    BIO* bio = BIO_new_mem_buf(options_.rs256_public_key_pem.data(), static_cast<int>(options_.rs256_public_key_pem.size()));
    if (bio == nullptr) throw std::runtime_error("out of memory");
    key_->rsa = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
    if (key_->rsa == nullptr) {  // a certificate will do as well
      BIO_reset(bio);
      if (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
        key_->rsa = X509_get_pubkey(cert);
        X509_free(cert);
      }
    }
    BIO_free(bio);
    if (key_->rsa == nullptr) {
      throw std::invalid_argument("the RS256 key is neither a PEM public key nor a PEM certificate");
    }
    if (EVP_PKEY_base_id(key_->rsa) != EVP_PKEY_RSA) {
      throw std::invalid_argument("the RS256 key is not an RSA key");
    }
  }
}

JwtVerifier::~JwtVerifier() = default;

Result<nlohmann::json> JwtVerifier::verify(std::string_view token, std::chrono::system_clock::time_point now) const {
  auto refuse = [](std::string why) -> Result<nlohmann::json> {
    return fail(Code::unauthenticated, "the bearer token " + why);
  };
  auto first = token.find('.');
  auto second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    return refuse("is not a JWT (header.payload.signature)");
  }
  auto header_text = base64url_decode(token.substr(0, first));
  auto payload_text = base64url_decode(token.substr(first + 1, second - first - 1));
  auto signature = base64url_decode(token.substr(second + 1));
  if (!header_text || !payload_text || !signature) return refuse("is not base64url");
  auto header = nlohmann::json::parse(*header_text, nullptr, false);
  auto claims = nlohmann::json::parse(*payload_text, nullptr, false);
  if (!header.is_object() || !claims.is_object()) return refuse("does not hold JSON objects");
  const char* expected = key_->rsa != nullptr ? "RS256" : "HS256";
  if (!header.contains("alg") || header["alg"] != expected) {
    return refuse(std::string("is not signed with ") + expected + " (its \"alg\")");
  }
  auto signed_part = token.substr(0, second);
  bool good = false;
  if (key_->rsa != nullptr) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    good = ctx != nullptr && EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key_->rsa) == 1 &&
           EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature->data()), signature->size(),
                            reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) == 1;
    EVP_MD_CTX_free(ctx);
  } else {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_size = 0;
    good = HMAC(EVP_sha256(), options_.hs256_secret.data(), static_cast<int>(options_.hs256_secret.size()),
                reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), mac, &mac_size) != nullptr &&
           mac_size == signature->size() && CRYPTO_memcmp(mac, signature->data(), mac_size) == 0;
  }
  if (!good) return refuse("has a bad signature");
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  auto skew = options_.clock_skew.count();
  auto number = [&](const char* name) -> std::optional<double> {
    if (!claims.contains(name) || !claims[name].is_number()) return std::nullopt;
    return claims[name].get<double>();
  };
  auto exp = number("exp");
  if (!exp) return refuse("has no \"exp\" (expiry) claim");
  if (static_cast<double>(seconds - skew) >= *exp) return refuse("has expired");
  if (auto nbf = number("nbf"); nbf && static_cast<double>(seconds + skew) < *nbf) return refuse("is not valid yet");
  if (claims.contains("nbf") && !claims["nbf"].is_number()) return refuse("has a malformed \"nbf\"");
  if (!options_.issuer.empty() && (!claims.contains("iss") || claims["iss"] != options_.issuer)) {
    return refuse("is from another issuer (\"iss\")");
  }
  if (!options_.audience.empty()) {
    bool ours = false;
    if (claims.contains("aud")) {
      const auto& aud = claims["aud"];
      if (aud.is_string()) ours = aud == options_.audience;
      if (aud.is_array()) {
        for (const auto& one : aud) ours = ours || one == options_.audience;
      }
    }
    if (!ours) return refuse("is for another audience (\"aud\")");
  }
  return claims;
}

}  // namespace cairn::gateway
