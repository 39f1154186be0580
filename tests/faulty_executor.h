// tests/faulty_executor.h — wraps a handle's executor (through RnnTestAccess) to count the verbs a
// call issues, record its GEMMs' shapes and, optionally, to fail the n-th verb. Used by the
// fault-injection, regression and length-aware tests.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dynrnn/rnn.h"
#include "host/executor.h"
#include "host/rnn_impl.h"

namespace testing_support {

using dynrnn::Executor;
using dynrnn::MatRef;
using dynrnn::PointwiseOp;
using dynrnn::Rnn;
using dynrnn::Status;
using dynrnn::StatusCode;
using dynrnn::Stream;

/// A gemm or gemm_wide verb as issued: its extents and its B operand.
struct GemmCall {
  int64_t m, n, k;
  const void* b;
};

/// Forwards every verb to the real executor, except the fail_at-th call (none when fail_at <= 0),
/// which returns kCudaError "injected fault at call N" without running.
template <typename T>
class FaultyExecutor final : public Executor<T> {
 public:
  explicit FaultyExecutor(std::unique_ptr<Executor<T>> inner, int64_t fail_at)
      : inner_(std::move(inner)), fail_at_(fail_at) {}
  std::unique_ptr<Executor<T>> release() { return std::move(inner_); }
  int64_t calls() const { return calls_; }
  /// Verbs other than end() issued after the injected failure.
  int64_t issued_after_fault() const { return after_fault_; }
  static std::string message(int64_t n) { return "injected fault at call " + std::to_string(n); }
  /// Every gemm and gemm_wide issued, in order.
  const std::vector<GemmCall>& gemms() const { return gemms_; }

  Status begin(Stream stream, int queues, int events) override {
    return step(false) ? fault() : inner_->begin(stream, queues, events);
  }
  Status end() override { return step(true) ? fault() : inner_->end(); }
  Status set_queue(int queue) override { return step(false) ? fault() : inner_->set_queue(queue); }
  Status record(int event) override { return step(false) ? fault() : inner_->record(event); }
  Status wait(int event) override { return step(false) ? fault() : inner_->wait(event); }
  Status gemm(int64_t m, int64_t n, int64_t k, dynrnn::compute_t<T> alpha, MatRef<T> a, MatRef<T> b,
              dynrnn::compute_t<T> beta, T* c, int64_t ldc) override {
    gemms_.push_back({m, n, k, b.data});
    return step(false) ? fault() : inner_->gemm(m, n, k, alpha, a, b, beta, c, ldc);
  }
  Status gemm_wide(int64_t m, int64_t n, int64_t k, dynrnn::compute_t<T> alpha, MatRef<T> a, MatRef<T> b,
                   dynrnn::compute_t<T> beta, dynrnn::compute_t<T>* c, int64_t ldc) override {
    gemms_.push_back({m, n, k, b.data});
    return step(false) ? fault() : inner_->gemm_wide(m, n, k, alpha, a, b, beta, c, ldc);
  }
  Status pointwise(const PointwiseOp<T>& op) override { return step(false) ? fault() : inner_->pointwise(op); }
  Status fill_zero(T* dst, int64_t rows, int64_t cols, int64_t ld) override {
    return step(false) ? fault() : inner_->fill_zero(dst, rows, cols, ld);
  }
  Status copy(T* dst, const T* src, int64_t count) override {
    return step(false) ? fault() : inner_->copy(dst, src, count);
  }
  Status order_by_length(const int32_t* lengths, int64_t batch, int64_t max_time, int32_t* rows,
                         int32_t* sorted_len) override {
    return step(false) ? fault() : inner_->order_by_length(lengths, batch, max_time, rows, sorted_len);
  }
  Status column_sum(int64_t rows, int64_t cols, const T* src, int64_t ld, bool accumulate, T* dst) override {
    return step(false) ? fault() : inner_->column_sum(rows, cols, src, ld, accumulate, dst);
  }
  Status column_sum_wide(int64_t rows, int64_t cols, const T* src, int64_t ld, bool accumulate,
                         dynrnn::compute_t<T>* dst) override {
    return step(false) ? fault() : inner_->column_sum_wide(rows, cols, src, ld, accumulate, dst);
  }
  Status check_host_buffer(const char* name, const void* p) override { return inner_->check_host_buffer(name, p); }
  Status copy_to_host(T* host_dst, const T* src, int64_t count) override {
    return step(false) ? fault() : inner_->copy_to_host(host_dst, src, count);
  }
  Status copy_to_device(T* dst, const T* host_src, int64_t count) override {
    return step(false) ? fault() : inner_->copy_to_device(dst, host_src, count);
  }

 private:
  /// Counts a verb; true when this one must fail.
  bool step(bool is_end) {
    ++calls_;
    if (faulted_ && !is_end) ++after_fault_;
    return calls_ == fail_at_;
  }
  Status fault() {
    faulted_ = true;
    return Status(StatusCode::kCudaError, message(calls_));
  }

  std::unique_ptr<Executor<T>> inner_;
  int64_t fail_at_;
  int64_t calls_ = 0;
  int64_t after_fault_ = 0;
  bool faulted_ = false;
  std::vector<GemmCall> gemms_;
};

template <typename T>
std::unique_ptr<Executor<T>>& executor_slot(Rnn& rnn) {
  return dynrnn::RnnTestAccess::impl(rnn).executor<T>();
}

/// Wraps the handle's executor for its lifetime, then puts the real one back.
template <typename T>
class Injection {
 public:
  Injection(Rnn& rnn, int64_t fail_at) : rnn_(rnn) {
    auto wrapper = std::make_unique<FaultyExecutor<T>>(std::move(executor_slot<T>(rnn)), fail_at);
    faulty_ = wrapper.get();
    executor_slot<T>(rnn) = std::move(wrapper);
  }
  ~Injection() {
    std::unique_ptr<Executor<T>> real = faulty_->release();
    executor_slot<T>(rnn_) = std::move(real);
  }
  const FaultyExecutor<T>& faulty() const { return *faulty_; }

 private:
  Rnn& rnn_;
  FaultyExecutor<T>* faulty_;
};

}  // namespace testing_support
