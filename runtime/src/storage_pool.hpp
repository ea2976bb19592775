// StoragePool: the threads that wait on the disk (the fsyncs that make commits durable), kept
// apart from CAF's workers, which run actor code. An fsync costs one thread its whole wait, so
// the pool is sized by fsyncs in flight (the disk merges those of many files), not by cores.
// Thread-safe; jobs run in the order posted, on any of the threads.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cairn::detail {

class StoragePool {
 public:
  explicit StoragePool(std::size_t threads);
  // Runs every job already posted, then joins the threads.
  ~StoragePool();
  StoragePool(const StoragePool&) = delete;
  StoragePool& operator=(const StoragePool&) = delete;

  // Queues `job` (which must not throw). After the destructor started, runs it on the
  // caller's thread instead, so no job is ever lost.
  void post(std::function<void()> job);
  // Jobs queued or running now.
  std::size_t busy() const;

 private:
  void work();

  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  std::size_t running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace cairn::detail
