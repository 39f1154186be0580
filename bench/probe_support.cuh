// bench/probe_support.cuh — what the calibration and the overlap probes share: device buffers, a
// cuBLAS handle with a fixed workspace (capturable), fills, the probe kernels and a median timer.
// Private to bench/; everything is in an anonymous namespace (each translation unit its own kernels).
#pragma once

#include <cooperative_groups.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <functional>

#include "bench/cuda_check.h"
#include "bench/gpu_timing.h"
#include "bench/stats.h"
#include "cuda/launch.h"
#include "dynrnn/half_types.h"

namespace bench {
namespace {

namespace cg = cooperative_groups;

__global__ void empty_kernel() {}

__global__ void grid_sync_kernel(int iters, int* sink) {
  cg::grid_group grid = cg::this_grid();
  for (int i = 0; i < iters; ++i) grid.sync();
  if (grid.thread_rank() == 0) *sink = iters;
}

template <typename T>
__global__ void fill_kernel(T* p, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 16;
    h *= 2246822519u;
    h ^= h >> 13;
    const float v = (static_cast<float>(h & 0xffff) / 65536.0f - 0.5f) * 0.1f;
    p[i] = static_cast<T>(v);
  }
}

template <typename T>
void fill(T* p, int64_t n, uint32_t seed, cudaStream_t s) {
  BENCH_CUDA_CHECK(dynrnn::cuda_detail::launch_kernel(fill_kernel<T>, dim3(1024), dim3(256), s, p, n, seed));
}

/// Fills a GEMM operand of cuBLAS type `type` (dynrnn's 16-bit types are CUDA_R_16BF / CUDA_R_16F
/// bit for bit, and round from float on the device).
inline void fill_operand(cudaDataType_t type, void* p, int64_t n, uint32_t seed, cudaStream_t s) {
  switch (type) {
    case CUDA_R_16BF: fill(static_cast<dynrnn::bfloat16*>(p), n, seed, s); break;
    case CUDA_R_16F: fill(static_cast<dynrnn::float16*>(p), n, seed, s); break;
    case CUDA_R_64F: fill(static_cast<double*>(p), n, seed, s); break;
    default: fill(static_cast<float*>(p), n, seed, s); break;
  }
}

/// RAII device buffer.
struct DevBuf {
  void* p = nullptr;
  explicit DevBuf(size_t bytes) { BENCH_CUDA_CHECK(cudaMalloc(&p, bytes)); }
  ~DevBuf() {
    if (p) (void)cudaFree(p);
  }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
};

struct HostPinned {
  void* p = nullptr;
  explicit HostPinned(size_t bytes) { BENCH_CUDA_CHECK(cudaMallocHost(&p, bytes)); }
  ~HostPinned() {
    if (p) (void)cudaFreeHost(p);
  }
  HostPinned(const HostPinned&) = delete;
  HostPinned& operator=(const HostPinned&) = delete;
};

struct Blas {
  cublasHandle_t h = nullptr;
  DevBuf workspace{size_t(32) << 20};
  explicit Blas(cudaStream_t s) {
    BENCH_CUBLAS_CHECK(cublasCreate(&h));
    BENCH_CUBLAS_CHECK(cublasSetStream(h, s));
    // A fixed workspace makes cuBLAS calls capturable into graphs.
    BENCH_CUBLAS_CHECK(cublasSetWorkspace(h, workspace.p, size_t(32) << 20));
  }
  ~Blas() {
    if (h) (void)cublasDestroy(h);
  }
};

inline double median_ms(cudaStream_t s, int warmup, int iters, const std::function<void(int)>& fn) {
  return summarize(time_gpu_ms(s, warmup, iters, fn)).median;
}

}  // namespace
}  // namespace bench
