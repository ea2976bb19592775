// Registry: binding name -> factory of an actor class. Filled explicitly in main(), before
// the Runtime is made; read-only afterwards (so safe to share between threads).
#pragma once

#include <functional>
#include <map>
#include <vector>
#include <memory>
#include <string>
#include <string_view>

#include "cairn/actor.hpp"
#include "cairn/context.hpp"

namespace cairn {

using ActorFactory = std::function<std::unique_ptr<Actor>(Context&)>;

class Registry {
 public:
  // Registers T (constructible from Context&) under `binding`. Throws std::invalid_argument
  // for a duplicate or malformed binding (empty or over limits::max_binding_name_bytes).
  template <class T>
  void add(std::string binding) {
    add(std::move(binding), [](Context& ctx) { return std::make_unique<T>(ctx); });
  }
  void add(std::string binding, ActorFactory factory);

  // The factory for `binding`, or nullptr.
  const ActorFactory* find(std::string_view binding) const;
  // Every registered binding, in order.
  std::vector<std::string> bindings() const;

 private:
  std::map<std::string, ActorFactory, std::less<>> factories_;
};

}  // namespace cairn
