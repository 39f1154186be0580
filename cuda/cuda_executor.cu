// cuda/cuda_executor.cu — the CUDA executor: every verb enqueues asynchronous work on the stream of
// the current queue (queue 0 = the caller's stream that begin() bound, queues 1.. = internal
// streams). Nothing synchronizes the host and nothing allocates device memory during a call, so a
// whole forward/backward call can be captured into a CUDA graph.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdio>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "cuda/blas.h"
#include "cuda/cuda_check.h"
#include "cuda/matrix_ops.h"
#include "cuda/persistent_steps.h"
#include "cuda/pointwise_kernels.cuh"
#include "cuda/reductions.h"
#include "host/cuda_executor.h"
#include "host/element_types.h"
#include "host/status_macros.h"

namespace dynrnn {
namespace {

/// cuBLAS workspace per queue. Every queue that may run GEMMs concurrently needs its own, and a call
/// uses 1 + layers (+1 copy queue) queues, so this stays below NVIDIA's 32 MiB recommendation for
/// Hopper (which pays off for GEMMs far larger than an RNN step's); 4 MiB before Hopper. One size
/// for all queues, so a GEMM's algorithm does not depend on the queue that runs it.
size_t blas_workspace_bytes(int cc_major) {
  return (cc_major >= 9 ? size_t(8) : size_t(4)) << 20;
}

template <typename T>
class CudaExecutor final : public Executor<T> {
 public:
  CudaExecutor(int device, MathMode math, RecurrentAlgorithm algorithm)
      : device_(device), math_(math), algorithm_(algorithm) {}

  ~CudaExecutor() override {
    (void)binding_.restore();
    if (fence_recorded_) (void)cudaEventSynchronize(fence_);  // the last call's copies may use host_
    for (cudaStream_t s : internal_) (void)cudaStreamDestroy(s);
    for (cudaEvent_t e : events_) (void)cudaEventDestroy(e);
    for (cudaEvent_t e : joins_) (void)cudaEventDestroy(e);
    if (fork_) (void)cudaEventDestroy(fork_);
    if (fence_) (void)cudaEventDestroy(fence_);
    if (handle_) (void)cublasDestroy(handle_);
    for (void* w : workspaces_) (void)cudaFree(w);
    (void)cudaGetLastError();
  }

  CudaExecutor(const CudaExecutor&) = delete;
  CudaExecutor& operator=(const CudaExecutor&) = delete;

  /// Creates the handle's resources on the current device (which is device_).
  Status init() {
    int cc_major = 0;
    DYNRNN_CUDA_CHECK(cudaDeviceGetAttribute(&cc_major, cudaDevAttrComputeCapabilityMajor, device_));
    queue_ws_bytes_ = blas_workspace_bytes(cc_major);
    DYNRNN_CUBLAS_CHECK(cublasCreate(&handle_));
    DYNRNN_CUBLAS_CHECK(cublasSetMathMode(handle_, cuda_detail::blas_math_mode(math_)));
    DYNRNN_CUDA_CHECK(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming));
    DYNRNN_CUDA_CHECK(cudaEventCreateWithFlags(&fence_, cudaEventDisableTiming));
    if (algorithm_ == RecurrentAlgorithm::kPersistent) {
      int sms = 0, coop = 0, shared = 0;
      DYNRNN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device_));
      DYNRNN_CUDA_CHECK(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, device_));
      DYNRNN_CUDA_CHECK(cudaDeviceGetAttribute(&shared, cudaDevAttrMaxSharedMemoryPerBlockOptin, device_));
      persistent_.multiprocessors = sms;
      persistent_.shared_bytes = static_cast<size_t>(shared);
      persistent_.cooperative = coop != 0;
    }
    return Status::ok();
  }

  /// The pools are made here, once: Rnn::create prepares what its calls can need (pool_sizes). A call
  /// that would still need more grows them at its begin() (outside graph capture only).
  Status prepare(int queues, int events) override { return grow(queues, events); }

  Status begin(Stream stream, int queues, int events) override {
    if (binding_.bound()) return Status(StatusCode::kInternal, "CudaExecutor::begin called twice without end");
    if (queues < 1 || events < 0) {
      return Status(StatusCode::kInternal, "CudaExecutor::begin: queues is " + std::to_string(queues) +
                                               " and events is " + std::to_string(events) +
                                               "; expected queues >= 1 and events >= 0");
    }
    int current = 0;
    DYNRNN_CUDA_CHECK(cudaGetDevice(&current));
    if (current != device_) DYNRNN_CUDA_CHECK(cudaSetDevice(device_));
    saved_device_ = current;
    const Status st = start_call(stream, queues, events);
    if (!st) {  // the caller does not call end() after a failed begin()
      (void)binding_.restore();
      active_queues_ = 0;
      (void)restore_device();
    }
    return st;
  }

  Status end() override {
    // Every step runs even after a failure, so that the handle is usable again; the first error wins.
    Status first = Status::ok();
    auto keep = [&first](Status s) {
      if (first && !s) (void)(first = std::move(s));
    };
    keep(join_internal_queues());
    keep(binding_.restore());
    keep(record_fence());
    keep(restore_device());
    active_queues_ = 0;
    active_events_ = 0;
    return first;
  }

  Status set_queue(int queue) override {
    DYNRNN_TRY(require_bound("set_queue"));
    if (queue < 0 || queue >= active_queues_) {
      return Status(StatusCode::kInternal, "CudaExecutor::set_queue(" + std::to_string(queue) + "): this call has " +
                                               std::to_string(active_queues_) + " queues");
    }
    if (queue == queue_) return Status::ok();
    const cudaStream_t s = queue == 0 ? stream_ : internal_[static_cast<size_t>(queue - 1)];
    DYNRNN_TRY(binding_.switch_stream(s, queue_workspace(queue), queue_ws_bytes_));
    queue_ = queue;
    cur_ = s;
    return Status::ok();
  }

  Status record(int event) override {
    DYNRNN_TRY(check_event("record", event));
    DYNRNN_CUDA_CHECK(cudaEventRecord(events_[static_cast<size_t>(event)], cur_));
    recorded_[static_cast<size_t>(event)] = 1;
    return Status::ok();
  }

  /// A wait on an event that this call has not recorded yet is skipped: every queue of this call
  /// already starts after all work of earlier calls (begin's fork), so the earlier record adds no
  /// ordering, and waiting on it would cross a graph-capture boundary (cudaErrorStreamCaptureIsolation
  /// inside a capture, cudaErrorCapturedEvent after one).
  Status wait(int event) override {
    DYNRNN_TRY(check_event("wait", event));
    if (!recorded_[static_cast<size_t>(event)]) return Status::ok();
    DYNRNN_CUDA_CHECK(cudaStreamWaitEvent(cur_, events_[static_cast<size_t>(event)], 0));
    return Status::ok();
  }

  Status gemm(int64_t m, int64_t n, int64_t k, compute_t<T> alpha, MatRef<T> a, MatRef<T> b, compute_t<T> beta, T* c,
              int64_t ldc) override {
    DYNRNN_TRY(require_bound("gemm"));
    return cuda_detail::gemm_row_major<T, T>(handle_, cur_, math_, m, n, k, alpha, a, b, beta, c, ldc);
  }

  Status gemm_wide(int64_t m, int64_t n, int64_t k, compute_t<T> alpha, MatRef<T> a, MatRef<T> b, compute_t<T> beta,
                   compute_t<T>* c, int64_t ldc) override {
    DYNRNN_TRY(require_bound("gemm_wide"));
    return cuda_detail::gemm_row_major<T, compute_t<T>>(handle_, cur_, math_, m, n, k, alpha, a, b, beta, c, ldc);
  }

  Status pointwise(const PointwiseOp<T>& op) override {
    DYNRNN_TRY(require_bound("pointwise"));
    const cudaStream_t s = cur_;
    return std::visit([s](const auto& p) { return cuda_detail::launch_pointwise(p, s); }, op);
  }

  Status recurrent_steps(const RecurrentSteps<T>& r) override {
    if (algorithm_ == RecurrentAlgorithm::kPersistent) {
      DYNRNN_TRY(require_bound("recurrent_steps"));
      bool ran = false;
      DYNRNN_TRY(cuda_detail::persistent_steps(r, persistent_, cur_, &ran));
      if (ran) return Status::ok();
    }
    return Executor<T>::recurrent_steps(r);
  }

  Status recurrent_backward_steps(const RecurrentBackwardSteps<T>& r) override {
    if (algorithm_ == RecurrentAlgorithm::kPersistent) {
      DYNRNN_TRY(require_bound("recurrent_backward_steps"));
      bool ran = false;
      DYNRNN_TRY(cuda_detail::persistent_backward_steps(r, persistent_, cur_, &ran));
      if (ran) return Status::ok();
    }
    return Executor<T>::recurrent_backward_steps(r);
  }

  Status fill_zero(T* dst, int64_t rows, int64_t cols, int64_t ld) override {
    DYNRNN_TRY(require_bound("fill_zero"));
    return cuda_detail::fill_zero_2d<T>(dst, rows, cols, ld, cur_);
  }

  Status copy(T* dst, const T* src, int64_t count) override {
    return memcpy_async("copy", dst, src, count, cudaMemcpyDeviceToDevice);
  }

  Status order_by_length(const int32_t* lengths, int64_t batch, int64_t max_time, int32_t* rows,
                         int32_t* sorted_len) override {
    DYNRNN_TRY(require_bound("order_by_length"));
    return cuda_detail::order_by_length(lengths, batch, max_time, rows, sorted_len, cur_);
  }

  Status column_sum(int64_t rows, int64_t cols, const T* src, int64_t ld, bool accumulate, T* dst) override {
    DYNRNN_TRY(require_bound("column_sum"));
    return cuda_detail::column_sum<T, T>(rows, cols, src, ld, accumulate, dst, cur_);
  }

  Status column_sum_wide(int64_t rows, int64_t cols, const T* src, int64_t ld, bool accumulate,
                         compute_t<T>* dst) override {
    DYNRNN_TRY(require_bound("column_sum_wide"));
    return cuda_detail::column_sum<T, compute_t<T>>(rows, cols, src, ld, accumulate, dst, cur_);
  }

  Status check_host_buffer(const char* name, const void* p) override {
    cudaPointerAttributes attr{};
    DYNRNN_CUDA_CHECK(cudaPointerGetAttributes(&attr, p));
    if (attr.type == cudaMemoryTypeHost) return Status::ok();
    char where[32];
    std::snprintf(where, sizeof where, "%p", p);
    const std::string kind = attr.type == cudaMemoryTypeUnregistered ? "pageable host memory"
                             : attr.type == cudaMemoryTypeDevice     ? "device memory"
                                                                     : "managed memory";
    return Status(StatusCode::kInvalidValue,
                  std::string(name) + " is " + where + ", " + kind +
                      "; swap_memory copies need pinned host memory (cudaHostAlloc or cudaHostRegister), which "
                      "they use without synchronizing the host");
  }

  Status copy_to_host(T* host_dst, const T* src, int64_t count) override {
    return memcpy_async("copy_to_host", host_dst, src, count, cudaMemcpyDeviceToHost);
  }

  Status copy_to_device(T* dst, const T* host_src, int64_t count) override {
    return memcpy_async("copy_to_device", dst, host_src, count, cudaMemcpyHostToDevice);
  }

 private:
  Status start_call(cudaStream_t stream, int queues, int events) {
    // Whether this call is being captured into a graph; it cannot change before the call returns.
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    DYNRNN_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
    captured_ = capture != cudaStreamCaptureStatusNone;
    if (workspaces_.empty() || queues > queue_capacity() || events > static_cast<int>(events_.size())) {
      if (captured_) {
        return Status(StatusCode::kNotSupported, "this call needs " + std::to_string(queues) + " queues and " +
                                                     std::to_string(events) + " events but the handle was made with " +
                                                     std::to_string(queue_capacity()) + " and " +
                                                     std::to_string(events_.size()) +
                                                     "; growing the pools cannot happen inside CUDA graph capture");
      }
      DYNRNN_TRY(grow(queues, events));
    }
    stream_ = stream;
    cur_ = stream;
    queue_ = 0;
    DYNRNN_TRY(fence_previous_stream());
    DYNRNN_TRY(
        binding_.bind(handle_, stream_, queue_workspace(0), queue_ws_bytes_, cuda_detail::blas_math_mode(math_)));
    active_queues_ = queues;
    active_events_ = events;
    recorded_.assign(static_cast<size_t>(events), 0);
    if (queues > 1) {  // fork: the internal queues start after everything issued to the caller's stream
      DYNRNN_CUDA_CHECK(cudaEventRecord(fork_, stream_));
      for (int q = 1; q < queues; ++q) {
        DYNRNN_CUDA_CHECK(cudaStreamWaitEvent(internal_[static_cast<size_t>(q - 1)], fork_, 0));
      }
    }
    return Status::ok();
  }

  /// Join: the caller's stream waits for every internal queue of the call.
  Status join_internal_queues() {
    for (int q = 1; q < active_queues_; ++q) {
      const size_t i = static_cast<size_t>(q - 1);
      DYNRNN_CUDA_CHECK(cudaEventRecord(joins_[i], internal_[i]));
      DYNRNN_CUDA_CHECK(cudaStreamWaitEvent(stream_, joins_[i], 0));
    }
    return Status::ok();
  }

  /// Makes room for `queues` queues and `events` events. A larger workspace is a new allocation;
  /// the old one stays alive until destruction (work of earlier calls may still use it), so no
  /// synchronization is needed.
  Status grow(int queues, int events) {
    while (static_cast<int>(events_.size()) < events) {
      cudaEvent_t e = nullptr;
      DYNRNN_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
      events_.push_back(e);
    }
    while (queue_capacity() < queues) {
      cudaStream_t s = nullptr;
      DYNRNN_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
      internal_.push_back(s);
      cudaEvent_t e = nullptr;
      DYNRNN_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
      joins_.push_back(e);
    }
    const size_t need = static_cast<size_t>(queue_capacity()) * queue_ws_bytes_;
    if (workspaces_.empty() || workspace_total_ < need) {
      void* w = nullptr;
      const cudaError_t e = cudaMalloc(&w, need);
      if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return Status(StatusCode::kAllocationFailed, "cudaMalloc of the " + std::to_string(need) +
                                                         "-byte cuBLAS workspace failed with " + cudaGetErrorName(e) +
                                                         " (" + cudaGetErrorString(e) + ")");
      }
      workspaces_.push_back(w);
      workspace_total_ = need;
    }
    return Status::ok();
  }

  int queue_capacity() const { return 1 + static_cast<int>(internal_.size()); }

  void* queue_workspace(int queue) const {
    return static_cast<char*>(workspaces_.back()) + static_cast<size_t>(queue) * queue_ws_bytes_;
  }

  Status require_bound(const char* verb) const {
    if (binding_.bound()) return Status::ok();
    return Status(StatusCode::kInternal, std::string("CudaExecutor::") + verb + " called outside begin()/end()");
  }

  Status check_event(const char* verb, int event) const {
    DYNRNN_TRY(require_bound(verb));
    if (event >= 0 && event < active_events_) return Status::ok();
    return Status(StatusCode::kInternal, std::string("CudaExecutor::") + verb + "(" + std::to_string(event) +
                                             "): this call has " + std::to_string(active_events_) + " events");
  }

  Status memcpy_async(const char* verb, void* dst, const void* src, int64_t count, cudaMemcpyKind kind) {
    DYNRNN_TRY(require_bound(verb));
    if (count <= 0) return Status::ok();
    DYNRNN_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(count) * sizeof(T), kind, cur_));
    DYNRNN_LAUNCH_CHECK(cur_, "cudaMemcpyAsync");
    return Status::ok();
  }

  /// Queue 0's cuBLAS workspace is used by every call's caller stream. When consecutive calls use
  /// different streams, the new one waits for the previous call (end() joined all its queues into its
  /// stream) so that the two never use the workspaces at once. Skipped inside graph capture (a
  /// captured stream may not wait on an event recorded outside it); ordering a graph's launches
  /// against other calls of the same handle is the caller's job.
  Status fence_previous_stream() {
    if (!fence_recorded_ || last_stream_ == stream_ || captured_) return Status::ok();
    DYNRNN_CUDA_CHECK(cudaStreamWaitEvent(stream_, fence_, 0));
    return Status::ok();
  }

  Status record_fence() {
    if (captured_) return Status::ok();
    DYNRNN_CUDA_CHECK(cudaEventRecord(fence_, stream_));
    fence_recorded_ = true;
    last_stream_ = stream_;
    return Status::ok();
  }

  /// Puts back the device that was current when begin() ran.
  Status restore_device() {
    const int saved = saved_device_;
    saved_device_ = -1;
    if (saved >= 0 && saved != device_) DYNRNN_CUDA_CHECK(cudaSetDevice(saved));
    return Status::ok();
  }

  int device_ = 0;
  MathMode math_ = MathMode::kDefault;
  RecurrentAlgorithm algorithm_ = RecurrentAlgorithm::kStandard;
  cuda_detail::PersistentDevice persistent_;  ///< kPersistent: the device's limits and what calls learnt
  cublasHandle_t handle_ = nullptr;
  size_t queue_ws_bytes_ = 0;
  std::vector<void*> workspaces_;  ///< back() is current: queue q uses [q * queue_ws_bytes_, +queue_ws_bytes_)
  size_t workspace_total_ = 0;
  std::vector<cudaStream_t> internal_;  ///< queue q >= 1 runs on internal_[q - 1]
  std::vector<cudaEvent_t> joins_;      ///< per internal queue, for end()
  std::vector<cudaEvent_t> events_;     ///< the orchestrator's event ids
  std::vector<char> recorded_;          ///< per event id: recorded during the current call
  cudaEvent_t fork_ = nullptr;
  cudaEvent_t fence_ = nullptr;
  bool fence_recorded_ = false;
  cudaStream_t last_stream_ = nullptr;
  // state of the call between begin() and end()
  cudaStream_t stream_ = nullptr;  ///< the caller's stream (queue 0)
  cudaStream_t cur_ = nullptr;     ///< the current queue's stream
  bool captured_ = false;          ///< the caller's stream is being captured into a graph
  int queue_ = 0;
  int active_queues_ = 0;
  int active_events_ = 0;
  int saved_device_ = -1;
  cuda_detail::BlasBinding binding_;
};

}  // namespace

template <typename T>
Status make_cuda_executor(MathMode math, RecurrentAlgorithm algorithm, std::unique_ptr<Executor<T>>* out) {
  if (out == nullptr) return Status(StatusCode::kInvalidValue, "make_cuda_executor: out is null");
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count <= 0) {
    (void)cudaGetLastError();
    std::string why = e != cudaSuccess ? std::string(cudaGetErrorName(e)) + " (" + cudaGetErrorString(e) + ")"
                                       : std::string("0 devices");
    return Status(StatusCode::kCudaError,
                  "Backend::kCuda needs a CUDA device, but none is usable: cudaGetDeviceCount reported " + why +
                      "; use Backend::kCpu on this machine");
  }
  int device = 0;
  DYNRNN_CUDA_CHECK(cudaGetDevice(&device));
  auto ex = std::make_unique<CudaExecutor<T>>(device, math, algorithm);
  DYNRNN_TRY(ex->init());
  *out = std::move(ex);
  return Status::ok();
}

#define DYNRNN_INSTANTIATE(T) \
  template Status make_cuda_executor<T>(MathMode, RecurrentAlgorithm, std::unique_ptr<Executor<T>>*);
DYNRNN_FOR_EACH_ELEMENT_TYPE(DYNRNN_INSTANTIATE)
#undef DYNRNN_INSTANTIATE

}  // namespace dynrnn
