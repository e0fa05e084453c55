#pragma once
/// @file batcher.hpp
/// Dynamic batching over a task bank: requests submitted from many threads (each some inputs of
/// one or several tasks) queue up, and worker threads run them together as mixed-task forwards
/// (task_bank::classify). The oldest queued request waits at most `max_wait` for company; a
/// forward takes at most `max_batch` sequences (a larger request runs alone, never split).
///
/// Workers: one worker with every core in its forward (OpenMP inside the GEMMs) gives the lowest
/// latency to a lone request; under load, one worker per core, each forward single-threaded, keeps
/// every core busy (no fork/join per small GEMM, and one batch forms while another runs).
/// docs/SERVING.md measures both. Since a sequence's outputs do not depend on its batch mates
/// (task_bank.hpp), batching changes when an answer comes, never what it is (bit for bit at a
/// given number of threads per forward).

#include <bitfit/serve/task_bank.hpp>

#include <omp.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace bitfit {

/// Limits of a batcher.
struct batcher_options {
  int max_batch = 32;                         ///< sequences per forward
  std::chrono::microseconds max_wait{5000};   ///< longest wait of the oldest request for others
  int workers = 1;                            ///< forwards that run at once
  int threads_per_worker = 0;                 ///< OpenMP threads of each forward (0: the default)
};

/// Counters since the batcher started (to see that batching happens).
struct batcher_stats {
  std::uint64_t requests = 0, batches = 0, sequences = 0;
  int largest_batch = 0;  ///< most sequences in one forward
};

class batcher {
 public:
  using result = std::vector<task_output>;

  /// Serves `bank`, which must outlive the batcher.
  explicit batcher(const task_bank& bank, batcher_options o = {}) : bank_(bank), opt_(o) {
    check(o.max_batch >= 1 && o.workers >= 1 && o.threads_per_worker >= 0,
          "batcher: max_batch and workers must be at least 1, threads_per_worker at least 0");
    for (int w = 0; w < o.workers; ++w) workers_.emplace_back([this] { run(); });
  }
  /// Finishes the requests already queued, then stops.
  ~batcher() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }
  batcher(const batcher&) = delete;
  batcher& operator=(const batcher&) = delete;

  /// Queues `xs`; the future holds their outputs in order, or the error of this request alone
  /// (an unknown task fails its own request, not the others of its batch).
  std::future<result> submit(std::vector<task_input> xs) {
    request r{std::move(xs), {}, clock::now()};
    auto done = r.done.get_future();
    if (r.xs.empty()) {
      r.done.set_value({});
      return done;
    }
    {
      std::lock_guard lock(mutex_);
      check(!stopping_, "batcher: shutting down");
      queued_ += r.xs.size();
      queue_.push_back(std::move(r));
      ++stats_.requests;
    }
    wake_.notify_one();
    return done;
  }

  batcher_stats stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
  }

 private:
  using clock = std::chrono::steady_clock;
  struct request {
    std::vector<task_input> xs;
    std::promise<result> done;
    clock::time_point arrived;
  };

  void run() {
    if (opt_.threads_per_worker > 0) omp_set_num_threads(opt_.threads_per_worker);  // this thread's forwards
    encoder_state<float> st;  // the worker's: reused by every forward, no allocation per batch
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      const auto deadline = queue_.front().arrived + opt_.max_wait;
      wake_.wait_until(lock, deadline, [&] { return stopping_ || queued_ >= std::size_t(opt_.max_batch); });
      if (queue_.empty()) continue;  // another worker took it meanwhile
      std::vector<request> batch;
      std::size_t n = 0;
      while (!queue_.empty() && (batch.empty() || n + queue_.front().xs.size() <= std::size_t(opt_.max_batch))) {
        n += queue_.front().xs.size();
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queued_ -= n;
      ++stats_.batches;
      stats_.sequences += n;
      stats_.largest_batch = std::max(stats_.largest_batch, int(n));
      lock.unlock();
      execute(batch, st);
      lock.lock();
    }
  }

  /// One forward for the whole batch; if it fails (a task unloaded meanwhile, say), each request
  /// runs alone so that only the requests at fault get the error.
  void execute(std::vector<request>& batch, encoder_state<float>& st) {
    std::vector<task_input> xs;
    for (auto& r : batch) xs.insert(xs.end(), std::make_move_iterator(r.xs.begin()), std::make_move_iterator(r.xs.end()));
    try {
      auto out = bank_.classify(xs, st);
      auto from = out.begin();
      for (auto& r : batch) {
        const auto to = from + std::ptrdiff_t(r.xs.size());
        r.done.set_value(result(std::make_move_iterator(from), std::make_move_iterator(to)));
        from = to;
      }
      return;
    } catch (const std::exception&) {
      if (batch.size() == 1) {
        batch.front().done.set_exception(std::current_exception());
        return;
      }
    }
    auto from = xs.begin();
    for (auto& r : batch) {
      const auto to = from + std::ptrdiff_t(r.xs.size());
      try {
        r.done.set_value(bank_.classify(std::vector<task_input>(from, to), st));
      } catch (const std::exception&) {
        r.done.set_exception(std::current_exception());
      }
      from = to;
    }
  }

  const task_bank& bank_;
  batcher_options opt_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<request> queue_;
  std::size_t queued_ = 0;  // sequences in queue_
  bool stopping_ = false;
  batcher_stats stats_;
  std::vector<std::thread> workers_;  // last: they start after every other member exists
};

}  // namespace bitfit
