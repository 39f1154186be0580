// cuda/cuda_executor.cu — the CUDA executor: every verb enqueues asynchronous work on the stream that
// begin() bound; nothing synchronizes the host and nothing allocates after creation, so a whole
// forward/backward call can be captured into a CUDA graph.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <memory>
#include <string>
#include <variant>

#include "cuda/blas.h"
#include "cuda/cuda_check.h"
#include "cuda/matrix_ops.h"
#include "cuda/pointwise_kernels.cuh"
#include "cuda/reductions.h"
#include "host/cuda_executor.h"
#include "host/status_macros.h"

namespace dynrnn {
namespace {

/// cuBLAS workspace per handle, allocated once (NVIDIA's recommendation: 32 MiB on Hopper and
/// later, 4 MiB before).
size_t blas_workspace_bytes(int cc_major) { return (cc_major >= 9 ? size_t(32) : size_t(4)) << 20; }

template <typename T>
class CudaExecutor final : public Executor<T> {
 public:
  CudaExecutor(int device, MathMode math) : device_(device), math_(math) {}

  ~CudaExecutor() override {
    (void)binding_.restore();
    if (handle_) (void)cublasDestroy(handle_);
    if (workspace_) (void)cudaFree(workspace_);
    if (fence_) (void)cudaEventDestroy(fence_);
    (void)cudaGetLastError();
  }

  CudaExecutor(const CudaExecutor&) = delete;
  CudaExecutor& operator=(const CudaExecutor&) = delete;

  /// Creates the handle's resources on the current device (which is device_).
  Status init() {
    int cc_major = 0;
    DYNRNN_CUDA_CHECK(cudaDeviceGetAttribute(&cc_major, cudaDevAttrComputeCapabilityMajor, device_));
    workspace_bytes_ = blas_workspace_bytes(cc_major);
    const cudaError_t e = cudaMalloc(&workspace_, workspace_bytes_);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      workspace_ = nullptr;
      return Status(StatusCode::kAllocationFailed, "cudaMalloc of the " + std::to_string(workspace_bytes_) +
                                                       "-byte cuBLAS workspace failed with " + cudaGetErrorName(e) +
                                                       " (" + cudaGetErrorString(e) + ")");
    }
    DYNRNN_CUBLAS_CHECK(cublasCreate(&handle_));
    DYNRNN_CUBLAS_CHECK(cublasSetWorkspace(handle_, workspace_, workspace_bytes_));
    DYNRNN_CUBLAS_CHECK(cublasSetMathMode(handle_, cuda_detail::blas_math_mode(math_)));
    DYNRNN_CUDA_CHECK(cudaEventCreateWithFlags(&fence_, cudaEventDisableTiming));
    return Status::ok();
  }

  Status begin(Stream stream) override {
    if (binding_.bound()) return Status(StatusCode::kInternal, "CudaExecutor::begin called twice without end");
    int current = 0;
    DYNRNN_CUDA_CHECK(cudaGetDevice(&current));
    if (current != device_) DYNRNN_CUDA_CHECK(cudaSetDevice(device_));
    saved_device_ = current;
    stream_ = stream;
    const Status st = bind_stream();
    if (!st) {  // the caller does not call end() after a failed begin()
      (void)binding_.restore();
      (void)restore_device();
    }
    return st;
  }

  Status end() override {
    const Status unbound = binding_.restore();
    const Status fenced = unbound ? record_fence() : Status::ok();
    const Status device = restore_device();
    if (!unbound) return unbound;
    return fenced ? device : fenced;
  }

  Status gemm(int64_t m, int64_t n, int64_t k, T alpha, MatRef<T> a, MatRef<T> b, T beta, T* c,
              int64_t ldc) override {
    DYNRNN_TRY(require_bound("gemm"));
    return cuda_detail::gemm_row_major<T>(handle_, stream_, math_, m, n, k, alpha, a, b, beta, c, ldc);
  }

  Status pointwise(const PointwiseOp<T>& op) override {
    DYNRNN_TRY(require_bound("pointwise"));
    const cudaStream_t s = stream_;
    return std::visit([s](const auto& p) { return cuda_detail::launch_pointwise(p, s); }, op);
  }

  Status fill_zero(T* dst, int64_t rows, int64_t cols, int64_t ld) override {
    DYNRNN_TRY(require_bound("fill_zero"));
    return cuda_detail::fill_zero_2d<T>(dst, rows, cols, ld, stream_);
  }

  Status copy(T* dst, const T* src, int64_t count) override {
    DYNRNN_TRY(require_bound("copy"));
    if (count <= 0) return Status::ok();
    DYNRNN_CUDA_CHECK(
        cudaMemcpyAsync(dst, src, static_cast<size_t>(count) * sizeof(T), cudaMemcpyDeviceToDevice, stream_));
    DYNRNN_LAUNCH_CHECK(stream_, "cudaMemcpyAsync");
    return Status::ok();
  }

  Status column_sum(int64_t rows, int64_t cols, const T* src, bool accumulate, T* dst) override {
    DYNRNN_TRY(require_bound("column_sum"));
    return cuda_detail::column_sum<T>(rows, cols, src, accumulate, dst, stream_);
  }

 private:
  Status require_bound(const char* verb) const {
    if (binding_.bound()) return Status::ok();
    return Status(StatusCode::kInternal, std::string("CudaExecutor::") + verb + " called outside begin()/end()");
  }

  Status bind_stream() {
    DYNRNN_TRY(fence_previous_stream());
    return binding_.bind(handle_, stream_, workspace_, workspace_bytes_, cuda_detail::blas_math_mode(math_));
  }

  /// Puts back the device that was current when begin() ran.
  Status restore_device() {
    const int saved = saved_device_;
    saved_device_ = -1;
    if (saved >= 0 && saved != device_) DYNRNN_CUDA_CHECK(cudaSetDevice(saved));
    return Status::ok();
  }

  static bool capturing(cudaStream_t s) {
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(s, &cs) != cudaSuccess) {
      (void)cudaGetLastError();
      return true;  // unknown: do not touch the stream with cross-stream dependencies
    }
    return cs != cudaStreamCaptureStatusNone;
  }

  /// The cuBLAS workspace is shared by every call of this handle. When consecutive calls use
  /// different streams, the new stream waits for the previous call's work so that the two never
  /// use the workspace at once. Skipped inside a graph capture (a captured stream may not wait on
  /// an event recorded outside it); a graph's launches are ordered by the caller.
  Status fence_previous_stream() {
    if (!fence_recorded_ || last_stream_ == stream_ || capturing(stream_)) return Status::ok();
    DYNRNN_CUDA_CHECK(cudaStreamWaitEvent(stream_, fence_, 0));
    return Status::ok();
  }

  Status record_fence() {
    if (capturing(stream_)) return Status::ok();
    DYNRNN_CUDA_CHECK(cudaEventRecord(fence_, stream_));
    fence_recorded_ = true;
    last_stream_ = stream_;
    return Status::ok();
  }

  int device_ = 0;
  MathMode math_ = MathMode::kDefault;
  cublasHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  cudaEvent_t fence_ = nullptr;
  bool fence_recorded_ = false;
  cudaStream_t last_stream_ = nullptr;
  cudaStream_t stream_ = nullptr;
  int saved_device_ = -1;
  cuda_detail::BlasBinding binding_;
};

}  // namespace

template <typename T>
Status make_cuda_executor(MathMode math, std::unique_ptr<Executor<T>>* out) {
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
  auto ex = std::make_unique<CudaExecutor<T>>(device, math);
  DYNRNN_TRY(ex->init());
  *out = std::move(ex);
  return Status::ok();
}

template Status make_cuda_executor<float>(MathMode, std::unique_ptr<Executor<float>>*);
template Status make_cuda_executor<double>(MathMode, std::unique_ptr<Executor<double>>*);

}  // namespace dynrnn
