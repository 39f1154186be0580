#include "async_executor.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace testing_support {
namespace {

using dynrnn::Status;

template <typename T>
class AsyncExecutor final : public dynrnn::Executor<T> {
 public:
  AsyncExecutor(std::unique_ptr<dynrnn::Executor<T>> inner, const DelayPolicy& policy)
      : inner_(std::move(inner)), policy_(policy) {}

  ~AsyncExecutor() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  Status begin(dynrnn::Stream stream, int queues, int events) override {
    std::lock_guard<std::mutex> lock(mu_);
    while (static_cast<int>(tasks_.size()) < queues) {
      const int q = static_cast<int>(tasks_.size());
      tasks_.emplace_back();
      busy_.push_back(false);
      threads_.emplace_back([this, q] { worker(q); });
    }
    issued_.assign(static_cast<size_t>(events), 0);
    reached_.assign(static_cast<size_t>(events), 0);
    queue_ = 0;
    error_ = Status::ok();
    return inner_->begin(stream, 1, 0);
  }

  Status end() override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] {
      for (size_t q = 0; q < tasks_.size(); ++q) {
        if (!tasks_[q].empty() || busy_[q]) return false;
      }
      return true;
    });
    Status st = error_;
    lock.unlock();
    Status e = inner_->end();
    return st ? e : st;
  }

  Status set_queue(int queue) override {
    queue_ = queue;
    return Status::ok();
  }
  Status record(int event) override {
    const long generation = ++issued_.at(static_cast<size_t>(event));
    enqueue([this, event, generation] {
      std::lock_guard<std::mutex> lock(mu_);
      if (reached_[event] < generation) reached_[event] = generation;
      return Status::ok();
    });
    return Status::ok();
  }
  Status wait(int event) override {
    const long generation = issued_.at(static_cast<size_t>(event));
    if (generation == 0) return Status::ok();  // never recorded: nothing to wait for (as CUDA)
    enqueue([this, event, generation] {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return reached_[event] >= generation; });
      return Status::ok();
    });
    return Status::ok();
  }

  Status gemm(int64_t m, int64_t n, int64_t k, dynrnn::compute_t<T> alpha, dynrnn::MatRef<T> a, dynrnn::MatRef<T> b,
              dynrnn::compute_t<T> beta, T* c, int64_t ldc) override {
    enqueue([=] { return inner_->gemm(m, n, k, alpha, a, b, beta, c, ldc); });
    return Status::ok();
  }
  Status gemm_wide(int64_t m, int64_t n, int64_t k, dynrnn::compute_t<T> alpha, dynrnn::MatRef<T> a,
                   dynrnn::MatRef<T> b, dynrnn::compute_t<T> beta, dynrnn::compute_t<T>* c, int64_t ldc) override {
    enqueue([=] { return inner_->gemm_wide(m, n, k, alpha, a, b, beta, c, ldc); });
    return Status::ok();
  }
  Status pointwise(const dynrnn::PointwiseOp<T>& op) override {
    enqueue([this, op] { return inner_->pointwise(op); });
    return Status::ok();
  }
  Status fill_zero(T* dst, int64_t rows, int64_t cols, int64_t ld) override {
    enqueue([=] { return inner_->fill_zero(dst, rows, cols, ld); });
    return Status::ok();
  }
  Status copy(T* dst, const T* src, int64_t count) override {
    enqueue([=] { return inner_->copy(dst, src, count); });
    return Status::ok();
  }
  Status order_by_length(const int32_t* lengths, int64_t batch, int64_t max_time, int32_t* rows,
                         int32_t* sorted_len) override {
    enqueue([=] { return inner_->order_by_length(lengths, batch, max_time, rows, sorted_len); });
    return Status::ok();
  }
  Status column_sum(int64_t rows, int64_t cols, const T* src, int64_t ld, bool accumulate, T* dst) override {
    enqueue([=] { return inner_->column_sum(rows, cols, src, ld, accumulate, dst); });
    return Status::ok();
  }
  Status column_sum_wide(int64_t rows, int64_t cols, const T* src, int64_t ld, bool accumulate,
                         dynrnn::compute_t<T>* dst) override {
    enqueue([=] { return inner_->column_sum_wide(rows, cols, src, ld, accumulate, dst); });
    return Status::ok();
  }
  Status check_host_buffer(const char* name, const void* p) override { return inner_->check_host_buffer(name, p); }
  Status copy_to_host(T* host_dst, const T* src, int64_t count) override {
    enqueue([=] { return inner_->copy_to_host(host_dst, src, count); });
    return Status::ok();
  }
  Status copy_to_device(T* dst, const T* host_src, int64_t count) override {
    enqueue([=] { return inner_->copy_to_device(dst, host_src, count); });
    return Status::ok();
  }

 private:
  void enqueue(std::function<Status()> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.at(static_cast<size_t>(queue_)).push_back(std::move(task));
    }
    cv_.notify_all();
  }

  void worker(int q) {
    std::mt19937 rng(policy_.seed * 7919u + static_cast<unsigned>(q));
    for (;;) {
      std::function<Status()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !tasks_[q].empty(); });
        if (stop_) return;
        task = std::move(tasks_[q].front());
        tasks_[q].pop_front();
        busy_[q] = true;
      }
      int delay = policy_.max_delay_us > 0 ? static_cast<int>(rng() % (policy_.max_delay_us + 1)) : 0;
      if (q == policy_.slow_queue) delay += policy_.slow_delay_us;
      if (delay > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay));
      Status st = task();
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!st && error_) error_ = st;
        busy_[q] = false;
      }
      cv_.notify_all();
    }
  }

  std::unique_ptr<dynrnn::Executor<T>> inner_;
  DelayPolicy policy_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::deque<std::function<Status()>>> tasks_;
  std::vector<bool> busy_;
  std::vector<std::thread> threads_;
  std::vector<long> issued_;   // host side: records issued per event
  std::vector<long> reached_;  // queue side: records executed per event
  int queue_ = 0;
  bool stop_ = false;
  Status error_;
};

}  // namespace

template <typename T>
std::unique_ptr<dynrnn::Executor<T>> make_async_executor(std::unique_ptr<dynrnn::Executor<T>> inner,
                                                         const DelayPolicy& policy) {
  return std::make_unique<AsyncExecutor<T>>(std::move(inner), policy);
}

template std::unique_ptr<dynrnn::Executor<float>> make_async_executor<float>(std::unique_ptr<dynrnn::Executor<float>>,
                                                                             const DelayPolicy&);
template std::unique_ptr<dynrnn::Executor<double>> make_async_executor<double>(
    std::unique_ptr<dynrnn::Executor<double>>, const DelayPolicy&);

}  // namespace testing_support
