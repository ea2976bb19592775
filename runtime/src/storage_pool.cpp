// StoragePool: a plain job queue and its threads. (Asio's thread_pool would do, but the
// runtime does not link Asio; this is the whole of what is needed.)
#include "storage_pool.hpp"

#include <algorithm>

namespace cairn::detail {

StoragePool::StoragePool(std::size_t threads) {
  threads = std::max<std::size_t>(threads, 1);
  threads_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
}

StoragePool::~StoragePool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  for (auto& thread : threads_) thread.join();
}

void StoragePool::post(std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      jobs_.push_back(std::move(job));
      ready_.notify_one();
      return;
    }
  }
  job();
}

std::size_t StoragePool::busy() const {
  std::lock_guard lock(mutex_);
  return jobs_.size() + running_;
}

void StoragePool::work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, and nothing left to run
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    ++running_;
    lock.unlock();
    job();
    lock.lock();
    --running_;
  }
}

}  // namespace cairn::detail
