// Threads for the harness: one io_context per thread, coroutines spawned on a chosen one.
#pragma once

#include <utility>  // before Asio's awaitable.hpp, which uses std::exchange without it

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace cairn::load {

class Pool {
 public:
  explicit Pool(unsigned threads) {
    for (unsigned i = 0; i < std::max(1u, threads); ++i) contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
  }
  std::size_t size() const { return contexts_.size(); }
  boost::asio::io_context& at(std::size_t i) { return *contexts_[i % contexts_.size()]; }

  // Starts `task` (an awaitable<void>) on thread i % size(). The first exception a task
  // throws is rethrown by run().
  template <class Awaitable>
  void spawn(std::size_t i, Awaitable task) {
    boost::asio::co_spawn(at(i), std::move(task), [this](std::exception_ptr e) {
      if (!e) return;
      std::lock_guard lock(mutex_);
      if (!failure_) failure_ = e;
    });
  }

  // Runs every context on its own thread until all their work is done.
  void run() {
    std::vector<std::thread> threads;
    for (auto& c : contexts_) threads.emplace_back([&c] { c->run(); });
    for (auto& t : threads) t.join();
    if (failure_) std::rethrow_exception(failure_);
  }

 private:
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::mutex mutex_;
  std::exception_ptr failure_;
};

}  // namespace cairn::load
