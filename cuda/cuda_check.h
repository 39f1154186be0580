// cuda/cuda_check.h — turns cudaError_t / cublasStatus_t into dynrnn::Status (naming the failed
// expression, file and line) and checks every kernel launch.
//
// DYNRNN_DEBUG_SYNC (compile-time, off by default; CMake option of the same name) additionally
// synchronizes the stream after every launch and GEMM so that an asynchronous fault is reported
// at the call that caused it. It skips the synchronization while the stream is being captured
// into a CUDA graph (synchronizing would invalidate the capture).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "dynrnn/status.h"

namespace dynrnn {
namespace cuda_detail {

inline Status cuda_error(cudaError_t e, const char* expr, const char* file, int line) {
  return Status(StatusCode::kCudaError, std::string(expr) + " failed with " + cudaGetErrorName(e) + " (" +
                                            cudaGetErrorString(e) + ") at " + file + ":" + std::to_string(line));
}

inline Status cublas_error(cublasStatus_t s, const char* expr, const char* file, int line) {
  return Status(StatusCode::kCublasError, std::string(expr) + " failed with " + cublasGetStatusName(s) + " (" +
                                              cublasGetStatusString(s) + ") at " + file + ":" + std::to_string(line));
}

/// After a kernel launch or library call on `stream`: reports a launch error (bad configuration,
/// no kernel image for the device, ...) and, with DYNRNN_DEBUG_SYNC, any asynchronous fault.
inline Status after_launch(cudaStream_t stream, const char* what, const char* file, int line) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return cuda_error(e, what, file, line);
#if defined(DYNRNN_DEBUG_SYNC) && DYNRNN_DEBUG_SYNC
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  e = cudaStreamIsCapturing(stream, &capture);
  if (e != cudaSuccess) return cuda_error(e, what, file, line);
  if (capture == cudaStreamCaptureStatusNone) {
    e = cudaStreamSynchronize(stream);
    if (e == cudaSuccess) e = cudaGetLastError();
    if (e != cudaSuccess) return cuda_error(e, what, file, line);
  }
#else
  (void)stream;
#endif
  return Status::ok();
}

}  // namespace cuda_detail
}  // namespace dynrnn

/// Returns a kCudaError Status from the enclosing function when `expr` is not cudaSuccess.
#define DYNRNN_CUDA_CHECK(expr)                                                         \
  do {                                                                                  \
    const cudaError_t dynrnn_e_ = (expr);                                               \
    if (dynrnn_e_ != cudaSuccess) {                                                     \
      (void)cudaGetLastError(); /* clear a non-sticky error so later calls are clean */ \
      return ::dynrnn::cuda_detail::cuda_error(dynrnn_e_, #expr, __FILE__, __LINE__);   \
    }                                                                                   \
  } while (0)

/// Returns a kCublasError Status from the enclosing function when `expr` is not CUBLAS_STATUS_SUCCESS.
#define DYNRNN_CUBLAS_CHECK(expr)                                                       \
  do {                                                                                  \
    const cublasStatus_t dynrnn_s_ = (expr);                                            \
    if (dynrnn_s_ != CUBLAS_STATUS_SUCCESS) {                                           \
      return ::dynrnn::cuda_detail::cublas_error(dynrnn_s_, #expr, __FILE__, __LINE__); \
    }                                                                                   \
  } while (0)

/// Put right after a `kernel<<<...>>>(...)` launch (or a library call) on `stream`; `what` names it.
#define DYNRNN_LAUNCH_CHECK(stream, what)                                                                    \
  do {                                                                                                       \
    ::dynrnn::Status dynrnn_ls_ = ::dynrnn::cuda_detail::after_launch((stream), (what), __FILE__, __LINE__); \
    if (!dynrnn_ls_) return dynrnn_ls_;                                                                      \
  } while (0)
