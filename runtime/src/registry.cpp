// Registry: binding -> factory.
#include "cairn/registry.hpp"

#include <stdexcept>

#include "cairn/limits.hpp"

namespace cairn {

void Registry::add(std::string binding, ActorFactory factory) {
  // A binding names a folder under the data directory, so it is kept to a safe alphabet.
  bool safe = !binding.empty() && binding.size() <= limits::max_binding_name_bytes;
  for (char c : binding) {
    bool allowed = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '_' || c == '-';
    safe = safe && allowed;
  }
  if (!safe || binding.front() == '_') {
    throw std::invalid_argument("a binding name must be 1 to " +
                                std::to_string(limits::max_binding_name_bytes) +
                                " of [A-Za-z0-9_-], not starting with '_': '" + binding + "'");
  }
  if (!factory) throw std::invalid_argument("binding '" + binding + "' has no factory");
  if (!factories_.emplace(binding, std::move(factory)).second) {
    throw std::invalid_argument("binding '" + binding + "' is registered twice");
  }
}

const ActorFactory* Registry::find(std::string_view binding) const {
  auto it = factories_.find(binding);
  return it == factories_.end() ? nullptr : &it->second;
}

std::vector<std::string> Registry::bindings() const {
  std::vector<std::string> out;
  for (const auto& [binding, factory] : factories_) out.push_back(binding);
  return out;
}

}  // namespace cairn
