// bench/cuda_check.h — CUDA and cuBLAS return codes become BenchError (expression, file, line),
// which the driver turns into an "error" row.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "bench/types.h"

namespace bench {

[[noreturn]] inline void throw_cuda(cudaError_t e, const char* expr, const char* file, int line) {
  throw BenchError(std::string(expr) + " failed: " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ") at " +
                   file + ":" + std::to_string(line));
}

[[noreturn]] inline void throw_cublas(cublasStatus_t s, const char* expr, const char* file, int line) {
  throw BenchError(std::string(expr) + " failed: " + cublasGetStatusName(s) + " (" + cublasGetStatusString(s) +
                   ") at " + file + ":" + std::to_string(line));
}

}  // namespace bench

#define BENCH_CUDA_CHECK(expr)                                  \
  do {                                                          \
    const cudaError_t bench_e_ = (expr);                        \
    if (bench_e_ != cudaSuccess) {                              \
      (void)cudaGetLastError();                                 \
      ::bench::throw_cuda(bench_e_, #expr, __FILE__, __LINE__); \
    }                                                           \
  } while (0)

#define BENCH_CUBLAS_CHECK(expr)                                                                       \
  do {                                                                                                 \
    const cublasStatus_t bench_s_ = (expr);                                                            \
    if (bench_s_ != CUBLAS_STATUS_SUCCESS) ::bench::throw_cublas(bench_s_, #expr, __FILE__, __LINE__); \
  } while (0)
