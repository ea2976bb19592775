// ClusterCalls (cluster mode): RemoteCalls over HTTP. A call (Context::call, a Stub's call, or
// the answer a call brings back to its caller) of an actor whose shard another node owns is
// sent to that node's internal listener (POST /_cairn/call, with the cluster's token) over
// kept-alive connections, on a thread of its own. While the shard has no owner or moves, the
// call is tried again until the request timeout; it is sent at most once to an owner that
// may have received it (Code::timeout then: the outcome is unknown).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "cairn/gateway/gateway.hpp"
#include "cairn/ownership.hpp"
#include "forward.hpp"

namespace cairn::gateway {

// The internal listener's route for calls.
inline constexpr const char* remote_call_path = "/_cairn/call";

class ClusterCalls final : public RemoteCalls {
 public:
  struct Stats {
    std::uint64_t answered = 0;  // the owner answered (a result or the actor's error)
    std::uint64_t retried = 0;   // no owner, moved (421) or unreachable: tried again
    std::uint64_t failed = 0;    // no owner in time, or no answer (timeout)
  };
  ClusterCalls(std::function<ShardLocation(unsigned)> locate, std::string token,
               std::chrono::milliseconds timeout);
  ~ClusterCalls() override;
  ClusterCalls(const ClusterCalls&) = delete;
  ClusterCalls& operator=(const ClusterCalls&) = delete;

  void call(const ActorId& target, std::string method, nlohmann::json args, Done done, Here here,
            TraceContext trace) override;
  Stats stats() const;
  // Stops the thread (calls still out are dropped). Before the runtime goes: its last
  // reference may otherwise be dropped on this object's own thread.
  void stop();

 private:
  struct Pending;
  void attempt(std::shared_ptr<Pending> pending);
  void answered(std::shared_ptr<Pending> pending, Result<ForwardPool::Response>& answer);
  void later(std::shared_ptr<Pending> pending, Error last);

  std::function<ShardLocation(unsigned)> locate_;
  std::string token_;
  std::chrono::milliseconds timeout_;
  boost::asio::io_context ioc_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  ForwardPool pool_;
  std::atomic<std::uint64_t> answered_{0}, retried_{0}, failed_{0};
  std::thread thread_;  // last: started when everything above exists
};

}  // namespace cairn::gateway
