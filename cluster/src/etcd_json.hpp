// etcd's JSON gateway encoding: base64 keys and values, 64-bit numbers as strings, fields
// at their default value omitted. Shared by the client and the watch.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cairn/cluster/etcd.hpp"

namespace cairn::cluster::detail {

std::string base64_encode(std::string_view bytes);
// Throws std::invalid_argument on text that is not base64.
std::string base64_decode(std::string_view text);

// A 64-bit number as etcd sends it: a decimal string (or, leniently, a JSON integer);
// `fallback` when the field is absent (etcd omits zeros). Throws std::invalid_argument on
// anything else: never a double, which would lose lease IDs above 2^53.
std::int64_t int64_field(const nlohmann::json& object, const char* name, std::int64_t fallback = 0);
// A number as etcd expects it: a decimal string.
inline std::string int64_text(std::int64_t value) { return std::to_string(value); }

KeyValue key_value_from_json(const nlohmann::json& kv);
RangeResult range_from_json(const nlohmann::json& response);

}  // namespace cairn::cluster::detail
