// The test harness for actor classes: an in-process Runtime on a temporary data directory
// with a ManualClock, and blocking calls. Construct it with your Registry, call and fetch
// instances, open sockets that record what they are sent, evict, advance time (alarms fire,
// idle instances leave), restart on the same data. No server, no sleeping.
// For tests only: every call blocks its thread until the actor answers (at most 20 s).
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/clock.hpp"
#include "cairn/registry.hpp"
#include "cairn/runtime.hpp"
#include "cairn/stub.hpp"

namespace cairn::testing {

// How long every blocking call below waits for an answer before it throws.
inline constexpr std::chrono::seconds reply_deadline{20};

// Blocking forms of Stub::fetch and Stub::call: the answer, once the actor's commit is
// durable. Throw std::runtime_error after reply_deadline.
Response fetch(const Stub& stub, Request request);
Result<nlohmann::json> call(const Stub& stub, std::string method, nlohmann::json args = {});
// Typed (cairn/typed.hpp): member function F with `args` (none for a method without one).
template <auto F, class... A>
Result<method_result_t<F>> call(const Stub& stub, A&&... args) {
  static_assert(sizeof...(A) == (std::is_void_v<method_arg_t<F>> ? 0 : 1), "F's argument, or none");
  nlohmann::json encoded;
  if constexpr (sizeof...(A) == 1) encoded = nlohmann::json(method_arg_t<F>(std::forward<A>(args)...));
  return detail::decode_answer<method_result_t<F>>(call(stub, std::string(method_name<F>), std::move(encoded)),
                                                   method_name<F>);
}

// A client's end of a WebSocket: what the actor sent it, and a way to talk back.
class TestSocket final : public SocketSink {
 public:
  // Text and binary messages, in order.
  std::vector<std::string> messages() const;
  // Close codes the actor (or the runtime) sent; empty while open.
  std::vector<int> closes() const;
  SocketId id() const { return id_; }

  void send(std::shared_ptr<const std::string> message, bool binary) override;
  void close(int code, std::string reason) override;

 private:
  friend class TestRuntime;
  mutable std::mutex mutex_;
  std::vector<std::string> messages_;
  std::vector<int> closes_;
  SocketId id_ = 0;
};

class TestRuntime {
 public:
  // `classes` as in main(); `options` as for Runtime except data_dir (a fresh temporary
  // directory, removed by the destructor) and clock (a ManualClock, see clock()).
  explicit TestRuntime(std::function<Registry()> classes, RuntimeOptions options = {});
  ~TestRuntime();
  TestRuntime(const TestRuntime&) = delete;
  TestRuntime& operator=(const TestRuntime&) = delete;

  Runtime& runtime() { return *runtime_; }
  ManualClock& clock() { return *clock_; }
  const std::filesystem::path& data_dir() const { return dir_; }

  // Every call below throws std::invalid_argument for an unregistered binding or a bad name
  // (a bug in the test), and std::runtime_error if the actor does not answer within 20 s.
  // The RPC method `method` of instance (binding, name), answered.
  // Typed (cairn/typed.hpp): member function F of the instance, with `args` (or none).
  template <auto F, class... A>
  Result<method_result_t<F>> call(std::string_view binding, std::string_view name, A&&... args) {
    static_assert(sizeof...(A) == (std::is_void_v<method_arg_t<F>> ? 0 : 1), "F's argument, or none");
    nlohmann::json encoded;
    if constexpr (sizeof...(A) == 1) encoded = nlohmann::json(method_arg_t<F>(std::forward<A>(args)...));
    return detail::decode_answer<method_result_t<F>>(call(binding, name, std::string(method_name<F>), std::move(encoded)),
                                                     method_name<F>);
  }
  Result<nlohmann::json> call(std::string_view binding, std::string_view name, std::string method,
                              nlohmann::json args = {});
  // An HTTP request to instance (binding, name): "GET /seats", "POST /book-seat" with `body`.
  Response fetch(std::string_view binding, std::string_view name, std::string method,
                 std::string target, std::string body = {});
  // Opens a WebSocket to instance (binding, name) at `target` (the actor's fetch() must
  // accept it); throws std::runtime_error if it answers anything but 101.
  std::shared_ptr<TestSocket> connect(std::string_view binding, std::string_view name,
                                      std::string target);
  // The client sends on / closes `socket`.
  void send(const TestSocket& socket, std::string message, bool binary = false);
  void close(const TestSocket& socket, int code = 1000, std::string reason = {});

  // Moves the clock on by `by`, then fires the alarms due by then and evicts the instances
  // idle for the idle timeout by then. An event sent after this runs after those alarms.
  void advance(Clock::duration by);
  // Evicts instance (binding, name) and waits until it is gone; false if it was not live.
  bool evict(std::string_view binding, std::string_view name);
  // Stops the runtime (as at process exit) and starts a new one on the same data directory
  // and clock. Open test sockets are forgotten, as a real restart drops connections.
  void restart();

 private:
  Stub stub(std::string_view binding, std::string_view name);
  void start();

  std::function<Registry()> classes_;
  RuntimeOptions options_;
  std::filesystem::path dir_;
  std::shared_ptr<ManualClock> clock_;
  std::unique_ptr<Runtime> runtime_;
};

}  // namespace cairn::testing
