#include "etcd_json.hpp"

#include <openssl/evp.h>

#include <charconv>
#include <cstdint>
#include <stdexcept>

namespace cairn::cluster::detail {

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(written));
  return out;
}

std::string base64_decode(std::string_view text) {
  // Strict (OpenSSL's EVP_DecodeBlock takes '=' anywhere and trims whitespace): the standard
  // alphabet, a length that is a multiple of 4, '=' only as the last one or two characters.
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.size() % 4 != 0) throw std::invalid_argument("base64 text of a length not a multiple of 4");
  std::size_t padding = 0;
  if (!text.empty() && text.back() == '=') ++padding;
  if (text.size() > 1 && text[text.size() - 2] == '=') ++padding;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  std::uint32_t bits = 0;
  for (std::size_t i = 0; i < text.size() - padding; ++i) {
    int v = value(text[i]);
    if (v < 0) throw std::invalid_argument("text that is not base64");
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    if (i % 4 == 3) {
      out.push_back(static_cast<char>(bits >> 16));
      out.push_back(static_cast<char>(bits >> 8));
      out.push_back(static_cast<char>(bits));
      bits = 0;
    }
  }
  if (padding == 2) {
    out.push_back(static_cast<char>(bits >> 4));
  } else if (padding == 1) {
    out.push_back(static_cast<char>(bits >> 10));
    out.push_back(static_cast<char>(bits >> 2));
  }
  return out;
}

std::int64_t int64_field(const nlohmann::json& object, const char* name, std::int64_t fallback) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return fallback;
  if (it->is_number_unsigned() && it->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
    throw std::invalid_argument(std::string("etcd field '") + name + "' is above the 64-bit range");
  }
  if (it->is_number_integer()) return it->get<std::int64_t>();
  if (!it->is_string()) throw std::invalid_argument(std::string("etcd field '") + name + "' is not a number");
  const auto& text = it->get_ref<const std::string&>();
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    throw std::invalid_argument(std::string("etcd field '") + name + "' is not a 64-bit integer: " + text);
  }
  return value;
}

KeyValue key_value_from_json(const nlohmann::json& kv) {
  KeyValue out;
  out.key = base64_decode(kv.value("key", ""));
  out.value = base64_decode(kv.value("value", ""));
  out.create_revision = int64_field(kv, "create_revision");
  out.mod_revision = int64_field(kv, "mod_revision");
  out.version = int64_field(kv, "version");
  out.lease = int64_field(kv, "lease");
  return out;
}

RangeResult range_from_json(const nlohmann::json& response) {
  RangeResult out;
  if (auto header = response.find("header"); header != response.end()) {
    out.revision = int64_field(*header, "revision");
  }
  if (auto kvs = response.find("kvs"); kvs != response.end() && kvs->is_array()) {
    for (const auto& kv : *kvs) out.kvs.push_back(key_value_from_json(kv));
  }
  return out;
}

}  // namespace cairn::cluster::detail
