// Typed RPC methods: declare an actor's methods from its member functions, and call them with
// the member function's own argument and result types, checked by the compiler.
//
//   struct Add { int by = 1; };                        NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Add, by)
//   struct Count { std::int64_t value = 0; };          NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Count, value)
//   class Counter : public cairn::Actor {
//     Result<Count> increment(const Add& add);          // or Count, void, Result<void>; or no argument
//     cairn::Methods methods() override { return cairn::typed_methods<&Counter::increment>(*this); }
//   };
//   stub.call<&Counter::increment>(Add{2}, [](cairn::Result<Count> count) { ... });
//
// A method's RPC name is its member function's name ("increment"). Arguments and results go
// through nlohmann's to_json / from_json (NLOHMANN_DEFINE_TYPE_* or your own). Arguments that
// do not convert are refused with invalid_argument (400) naming the field, before the method
// runs. Untyped entries of Methods keep working beside typed ones:
//   return {cairn::method<&Counter::increment>(*this), {"raw", [](const json& a) -> Result<json> { ... }}};
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

#include "cairn/actor.hpp"
#include "cairn/result.hpp"

namespace cairn {

namespace detail {

// What a member function takes and gives. `Arg` is void for a method without an argument.
template <class F>
struct member_function;
#define CAIRN_MEMBER_FUNCTION(QUALIFIERS)                                   \
  template <class C, class R, class A>                                      \
  struct member_function<R (C::*)(A) QUALIFIERS> {                          \
    using owner = C;                                                        \
    using result = R;                                                       \
    using arg = std::remove_cvref_t<A>;                                     \
  };                                                                        \
  template <class C, class R>                                               \
  struct member_function<R (C::*)() QUALIFIERS> {                           \
    using owner = C;                                                        \
    using result = R;                                                       \
    using arg = void;                                                       \
  };
CAIRN_MEMBER_FUNCTION()
CAIRN_MEMBER_FUNCTION(const)
CAIRN_MEMBER_FUNCTION(noexcept)
CAIRN_MEMBER_FUNCTION(const noexcept)
#undef CAIRN_MEMBER_FUNCTION

// Result<T> -> T; anything else is itself.
template <class R>
struct unwrap_result {
  using type = R;
};
template <class T>
struct unwrap_result<Result<T>> {
  using type = T;
};

// The member function's name, read from the compiler's own spelling of this template's
// signature ("... [with auto F = &app::Counter::increment; ...]" in GCC, "[F = &Counter::
// increment]" in Clang). The standard has no reflection to ask for it; checked at compile
// time below, so a compiler that spells it otherwise fails the build, not a call.
template <auto F>
constexpr std::string_view signature() {
  return __PRETTY_FUNCTION__;
}

constexpr bool identifier_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

constexpr bool identifier(std::string_view text) {
  for (char c : text) {
    if (!identifier_char(c)) return false;
  }
  return true;
}

template <auto F>
constexpr std::string_view member_name() {
  constexpr std::string_view text = signature<F>();
  constexpr std::size_t start = text.find("F = ");
  static_assert(start != std::string_view::npos, "cairn: this compiler does not spell the method's name as expected");
  constexpr std::string_view rest = text.substr(start + 4);
  constexpr std::string_view pointer = rest.substr(0, rest.find_first_of(";]"));
  constexpr std::size_t colons = pointer.rfind("::");
  static_assert(colons != std::string_view::npos, "cairn: a typed method must be a member function (&Class::name)");
  constexpr std::string_view name = pointer.substr(colons + 2);
  static_assert(!name.empty() && !(name[0] >= '0' && name[0] <= '9'), "cairn: could not read the method's name");
  static_assert(identifier(name), "cairn: could not read the method's name");
  return name;
}

// "a string", "an object", ...: the JSON type of `value`, for error messages.
std::string json_kind(const nlohmann::json& value);

// Why `got` does not fit the shape of `expected` (a default value's JSON): the first field
// that is missing or of the wrong type, as "field 'seat.row' must be a number, not a string",
// or nullopt if none is found (then the caller reports nlohmann's own message).
std::optional<std::string> misfit(const nlohmann::json& expected, const nlohmann::json& got, const std::string& path);
// A number of `given` that nlohmann read as another (2.5 as 2, -1 as 4294967295): `read` is
// the decoded value written back. nullopt if every number read as itself.
std::optional<std::string> lossy_number(const nlohmann::json& given, const nlohmann::json& read, const std::string& path);

}  // namespace detail

// The RPC name of member function F: its own name.
template <auto F>
inline constexpr std::string_view method_name = detail::member_name<F>();

// `args` as a T, or invalid_argument naming the first field that is missing or of the wrong
// type. `what` starts the message ("increment's argument").
template <class T>
Result<T> decode_as(const nlohmann::json& args, std::string_view what) {
  try {
    if constexpr (std::is_same_v<T, nlohmann::json>) {
      return args;
    } else {
      auto value = args.get<T>();
      // nlohmann converts numbers the way C++ casts them; a caller's 2.5 or -1 must not
      // silently become 2 or 4294967295.
      if constexpr (std::is_constructible_v<nlohmann::json, const T&>) {
        if (auto why = detail::lossy_number(args, nlohmann::json(value), "")) {
          return fail(Code::invalid_argument, std::string(what) + ": " + *why);
        }
      }
      return value;
    }
  } catch (const nlohmann::json::exception& e) {
    std::optional<std::string> why;
    if constexpr (std::is_default_constructible_v<T> && std::is_constructible_v<nlohmann::json, T>) {
      try {
        why = detail::misfit(nlohmann::json(T{}), args, "");
      } catch (const nlohmann::json::exception&) {
        // T{} has no JSON form of its own: report nlohmann's message.
      }
    }
    return fail(Code::invalid_argument, std::string(what) + ": " + (why ? *why : std::string(e.what())));
  } catch (const std::exception& e) {
    // A from_json of the class's own that refuses with an exception of its own.
    return fail(Code::invalid_argument, std::string(what) + ": " + e.what());
  }
}

// The entry of Methods for member function F of `self` (which must outlive the table: pass
// the actor itself, from methods()).
template <auto F, class C>
Methods::value_type method(C& self) {
  using traits = detail::member_function<decltype(F)>;
  using Arg = typename traits::arg;
  using R = typename traits::result;
  static_assert(std::is_base_of_v<typename traits::owner, C>, "cairn::method: F is not a member of this class");
  std::string name(method_name<F>);
  auto handler = [&self, name](const nlohmann::json& args) -> Result<nlohmann::json> {
    auto invoke = [&](auto&&... arg) -> Result<nlohmann::json> {
      if constexpr (std::is_void_v<R>) {
        (self.*F)(std::forward<decltype(arg)>(arg)...);
        return nlohmann::json();
      } else if constexpr (std::is_same_v<R, Result<void>>) {
        auto done = (self.*F)(std::forward<decltype(arg)>(arg)...);
        if (!done) return done.error();
        return nlohmann::json();
      } else if constexpr (!std::is_same_v<typename detail::unwrap_result<R>::type, R>) {
        auto done = (self.*F)(std::forward<decltype(arg)>(arg)...);
        if (!done) return std::move(done).error();
        return nlohmann::json(std::move(done).value());
      } else {
        return nlohmann::json((self.*F)(std::forward<decltype(arg)>(arg)...));
      }
    };
    if constexpr (std::is_void_v<Arg>) {
      // A method without an argument takes none: null, {} or [] (what an empty body sends).
      if (!args.is_null() && !(args.is_structured() && args.empty())) {
        return fail(Code::invalid_argument, name + " takes no argument, and was given " + detail::json_kind(args));
      }
      return invoke();
    } else {
      auto decoded = decode_as<Arg>(args, name + "'s argument");
      if (!decoded) return std::move(decoded).error();
      return invoke(std::move(decoded).value());
    }
  };
  return {std::move(name), std::move(handler)};
}

// A table of typed methods: typed_methods<&Counter::increment, &Counter::get>(*this).
template <auto... Fs, class C>
Methods typed_methods(C& self) {
  Methods table;
  auto add = [&table](Methods::value_type entry) {
    // Two member functions of one name (overloads, cast apart) would be one RPC method.
    std::string name = entry.first;
    if (!table.insert(std::move(entry)).second) throw std::logic_error("cairn::typed_methods: two methods named " + name);
  };
  (add(method<Fs>(self)), ...);
  return table;
}

// What a typed caller gets back from member function F: Result of its result type (json null
// for void).
template <auto F>
using method_result_t = typename detail::unwrap_result<typename detail::member_function<decltype(F)>::result>::type;
template <auto F>
using method_arg_t = typename detail::member_function<decltype(F)>::arg;

namespace detail {
template <class R>
Result<R> decode_answer(Result<nlohmann::json> answer, std::string_view method) {
  if (!answer) return std::move(answer).error();
  if constexpr (std::is_void_v<R>) {
    return Result<R>();
  } else {
    auto decoded = decode_as<R>(*answer, std::string(method) + "'s answer");
    // The callee answered something its own declared type does not read back: the two
    // sides run different versions of the class, a server-side fault.
    if (!decoded) return fail(Code::internal, decoded.error().message);
    return decoded;
  }
}
}  // namespace detail

// The answer to a call, as an actor receives it in its reply method (Context::call's
// {"result": ...} or {"error": {...}} and "context"): declare the reply method typed as
// Result<void> on_reply(const CallReply<Count>& reply).
template <class R>
struct CallReply {
  Result<R> answer = fail(Code::internal, "no answer");
  nlohmann::json context;
};

template <class R>
void from_json(const nlohmann::json& j, CallReply<R>& reply) {
  reply.context = j.contains("context") ? j.at("context") : nlohmann::json();
  if (j.contains("error")) {
    const auto& error = j.at("error");
    Code code = Code::internal;
    auto name = error.value("code", std::string());
    for (int c = 0; c <= static_cast<int>(Code::storage_full); ++c) {
      if (name == code_name(static_cast<Code>(c))) code = static_cast<Code>(c);
    }
    reply.answer = fail(code, error.value("message", std::string()));
    return;
  }
  if constexpr (std::is_void_v<R>) {
    reply.answer = Result<R>();
  } else {
    // An answer this side cannot read (the two classes' versions differ) is the reply's
    // error, not a refusal of the reply event: the reply method still runs and learns of it.
    auto decoded = detail::decode_answer<R>(j.contains("result") ? j.at("result") : nlohmann::json(), "the call");
    reply.answer = std::move(decoded);
  }
}

}  // namespace cairn
