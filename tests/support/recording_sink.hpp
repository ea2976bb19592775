// RecordingSink: a SocketSink that keeps what the runtime sends it, for tests.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "cairn/websocket.hpp"

namespace cairn::testing {

class RecordingSink final : public SocketSink {
 public:
  void send(std::shared_ptr<const std::string> message, bool) override {
    std::lock_guard lock(mutex_);
    messages_.push_back(*message);
  }
  void close(int code, std::string) override {
    std::lock_guard lock(mutex_);
    closes_.push_back(code);
  }
  std::vector<std::string> messages() const {
    std::lock_guard lock(mutex_);
    return messages_;
  }
  std::vector<int> closes() const {
    std::lock_guard lock(mutex_);
    return closes_;
  }
  void resume_reading() override { ++resumes_; }
  // How often the runtime told the gateway to read again (backpressure).
  int resumes() const { return resumes_.load(); }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> messages_;
  std::vector<int> closes_;
  std::atomic<int> resumes_{0};
};

}  // namespace cairn::testing
