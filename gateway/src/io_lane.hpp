// IoLane: one I/O thread with its own io_context (no strands: everything on a lane runs on
// its one thread), and the inbox through which runtime threads hand it socket outputs. A
// broadcast to a thousand sockets of one lane is one post and one wake-up, not a thousand.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>

#include "forward.hpp"
#include <mutex>
#include <string>
#include <vector>

namespace cairn::gateway {

class SessionSink;

class IoLane {
 public:
  struct Output {
    std::shared_ptr<SessionSink> sink;
    std::shared_ptr<const std::string> message;  // null: a close (or a resume)
    bool binary = false;
    int code = 0;
    std::string reason;
    bool resume = false;  // SocketSink::resume_reading: read the socket again
  };

  IoLane() : ioc_(1), forwards_(ioc_) {}
  boost::asio::io_context& context() { return ioc_; }
  // Kept-alive connections to other nodes (cluster mode); the lane's thread only.
  ForwardPool& forwards() { return forwards_; }

  // Any thread. Outputs reach their sinks on the lane's thread in the order given.
  void deliver(Output output);

 private:
  void drain();

  boost::asio::io_context ioc_;
  ForwardPool forwards_;
  std::mutex mutex_;
  std::vector<Output> inbox_;     // guarded by mutex_
  std::vector<Output> draining_;  // the lane's thread only
};

}  // namespace cairn::gateway
