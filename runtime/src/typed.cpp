// The error messages of typed RPC methods (cairn/typed.hpp).
#include "cairn/typed.hpp"

namespace cairn::detail {

namespace {

std::string where(const std::string& path) { return path.empty() ? "the argument" : "field '" + path + "'"; }

std::string join(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }

}  // namespace

std::string json_kind(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::object: return "an object";
    case nlohmann::json::value_t::array: return "an array";
    case nlohmann::json::value_t::string: return "a string";
    case nlohmann::json::value_t::boolean: return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return "an integer";
    case nlohmann::json::value_t::number_float: return "a number with a fraction";
    case nlohmann::json::value_t::binary: return "binary data";
    case nlohmann::json::value_t::discarded: break;
  }
  return "nothing";
}

std::optional<std::string> misfit(const nlohmann::json& expected, const nlohmann::json& got, const std::string& path) {
  using value_t = nlohmann::json::value_t;
  switch (expected.type()) {
    case value_t::object:
      if (!got.is_object()) return where(path) + " must be an object, not " + json_kind(got);
      for (const auto& [key, shape] : expected.items()) {
        auto found = got.find(key);
        // Only asked after from_json failed: a type read with defaults
        // (NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT) never gets here for a missing field.
        if (found == got.end()) return "field '" + join(path, key) + "' is missing";
        if (auto why = misfit(shape, *found, join(path, key))) return why;
      }
      return std::nullopt;
    case value_t::array:
      if (!got.is_array()) return where(path) + " must be an array, not " + json_kind(got);
      // A default array is usually empty: its elements' shape is not known here.
      if (!expected.empty()) {
        for (std::size_t i = 0; i < got.size(); ++i) {
          if (auto why = misfit(expected[0], got[i], path + "[" + std::to_string(i) + "]")) return why;
        }
      }
      return std::nullopt;
    case value_t::string:
      if (!got.is_string()) return where(path) + " must be a string, not " + json_kind(got);
      return std::nullopt;
    case value_t::boolean:
      if (!got.is_boolean()) return where(path) + " must be true or false, not " + json_kind(got);
      return std::nullopt;
    case value_t::number_unsigned:
      if (got.is_number_integer() && !got.is_number_unsigned() && got.get<std::int64_t>() < 0) {
        return where(path) + " must not be negative";
      }
      [[fallthrough]];
    case value_t::number_integer:
      if (!got.is_number_integer()) return where(path) + " must be an integer, not " + json_kind(got);
      return std::nullopt;
    case value_t::number_float:
      if (!got.is_number()) return where(path) + " must be a number, not " + json_kind(got);
      return std::nullopt;
    case value_t::null:
    case value_t::binary:
    case value_t::discarded: break;
  }
  return std::nullopt;
}

std::optional<std::string> lossy_number(const nlohmann::json& given, const nlohmann::json& read, const std::string& path) {
  if (given.is_object() && read.is_object()) {
    for (const auto& [key, value] : given.items()) {
      auto found = read.find(key);
      if (found == read.end()) continue;
      if (auto why = lossy_number(value, *found, join(path, key))) return why;
    }
    return std::nullopt;
  }
  if (given.is_array() && read.is_array()) {
    for (std::size_t i = 0; i < std::min(given.size(), read.size()); ++i) {
      if (auto why = lossy_number(given[i], read[i], path + "[" + std::to_string(i) + "]")) return why;
    }
    return std::nullopt;
  }
  // Only a number read as an integer can have lost something a caller would not expect: a
  // decimal read into a float comes back as its nearest float (0.1 as 0.10000000149...).
  if (given.is_number() && read.is_number_integer() && given != read) {
    return where(path) + " cannot be " + given.dump() + " (it would read as " + read.dump() + ")";
  }
  return std::nullopt;
}

}  // namespace cairn::detail
