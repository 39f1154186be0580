// The CPU emulation of the CUDA runtime and cuBLAS checked against CUDA's documented behaviour, so
// that a GPU test passing under it means what it says: host code cannot touch device memory, work
// past an allocation faults, a missing dependency between streams changes the result, the legacy
// stream synchronizes with blocking streams only, capture enforces CUDA's rules, __syncthreads
// orders a block, grid.sync() orders a cooperative grid (and __syncthreads does not), each block has
// its own dynamic shared memory within the opt-in limits, and cublasGemmEx computes the column-major product it
// documents.
#include <cooperative_groups.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <vector>

#include "dynrnn/half_types.h"

namespace {

#define EMU_OK(expr) ASSERT_EQ((expr), cudaSuccess) << #expr

__global__ void fill_kernel(float* dst, int64_t n, float value) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = value;
}

/// Thread t writes t to shared memory, then reads thread (t + 1)'s value: right only with the barrier.
__global__ void rotate_kernel(int* out) {
  __shared__ int values[64];
  const unsigned t = threadIdx.x;
  values[t] = static_cast<int>(t);
  __syncthreads();
  out[blockIdx.x * blockDim.x + t] = values[(t + 1) % blockDim.x] + static_cast<int>(blockIdx.x) * 1000;
}

/// Each block publishes its index, passes a barrier (grid-wide or its own), then reads the next
/// block's: right only with grid.sync(). It also keeps its own index in its dynamic shared memory,
/// after checking that memory starts as 0xff bytes, to show that every block has its own.
__global__ void neighbour_kernel(int* published, int* out, bool grid_barrier) {
  int* shared = reinterpret_cast<int*>(cuda_emulation::dynamic_shared_memory());
  const int b = static_cast<int>(blockIdx.x);
  if (threadIdx.x == 0) {
    const bool poisoned = shared[1] == -1;
    shared[0] = b;
    published[b] = b;
    out[2 * b + 1] = poisoned;
  }
  if (grid_barrier) {
    cooperative_groups::this_grid().sync();
  } else {
    __syncthreads();
  }
  if (threadIdx.x == 0) out[2 * b] = published[(b + 1) % gridDim.x] + 1000 * shared[0];
}

/// Reads element `index` of its dynamic shared memory (ints).
__global__ void shared_read_kernel(int64_t index, int* out) {
  *out = reinterpret_cast<const int*>(cuda_emulation::dynamic_shared_memory())[index];
}

cudaError_t fill(float* dst, int64_t n, float value, cudaStream_t stream) {
  void* args[] = {&dst, &n, &value};
  return cudaLaunchKernel(fill_kernel, dim3(static_cast<unsigned>((n + 63) / 64)), dim3(64), args, 0, stream);
}

std::vector<float> to_host(const float* dev, size_t n) {
  std::vector<float> h(n);
  EXPECT_EQ(cudaMemcpy(h.data(), dev, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  return h;
}

TEST(CudaEmulation, HostCodeCannotTouchDeviceMemory) {
  float* p = nullptr;
  EMU_OK(cudaMalloc(&p, 256));
  EXPECT_DEATH(p[0] = 1.0f, "");
  EMU_OK(cudaFree(p));
}

TEST(CudaEmulation, KernelWritingPastAnAllocationFaults) {
  float* p = nullptr;
  EMU_OK(cudaMalloc(&p, 1024 * sizeof(float)));
  EXPECT_DEATH(
      {
        (void)fill(p, 1024 + 64, 1.0f, nullptr);
        (void)cudaDeviceSynchronize();
      },
      "");
  EMU_OK(fill(p, 1024, 2.0f, nullptr));
  EXPECT_EQ(to_host(p, 1024).back(), 2.0f);
  EMU_OK(cudaFree(p));
}

TEST(CudaEmulation, FreshDeviceMemoryIsNaN) {
  float* p = nullptr;
  EMU_OK(cudaMalloc(&p, 16 * sizeof(float)));
  for (float v : to_host(p, 16)) EXPECT_TRUE(v != v);
  EMU_OK(cudaFree(p));
}

/// Writer on one stream, reader on another: only an event orders them.
std::vector<float> write_then_read(bool with_event, unsigned reader_flags) {
  cudaStream_t writer = nullptr, reader = nullptr;
  cudaEvent_t written = nullptr;
  float *a = nullptr, *b = nullptr;
  EXPECT_EQ(cudaStreamCreateWithFlags(&writer, cudaStreamNonBlocking), cudaSuccess);
  EXPECT_EQ(cudaStreamCreateWithFlags(&reader, reader_flags), cudaSuccess);
  EXPECT_EQ(cudaEventCreateWithFlags(&written, cudaEventDisableTiming), cudaSuccess);
  EXPECT_EQ(cudaMalloc(&a, 64 * sizeof(float)), cudaSuccess);
  EXPECT_EQ(cudaMalloc(&b, 64 * sizeof(float)), cudaSuccess);
  EXPECT_EQ(fill(b, 64, 0.0f, nullptr), cudaSuccess);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(fill(a, 64, 7.0f, writer), cudaSuccess);
  if (with_event) {
    EXPECT_EQ(cudaEventRecord(written, writer), cudaSuccess);
    EXPECT_EQ(cudaStreamWaitEvent(reader, written, 0), cudaSuccess);
  }
  EXPECT_EQ(cudaMemcpyAsync(b, a, 64 * sizeof(float), cudaMemcpyDeviceToDevice, reader), cudaSuccess);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> out = to_host(b, 64);
  (void)cudaFree(a);
  (void)cudaFree(b);
  (void)cudaEventDestroy(written);
  (void)cudaStreamDestroy(writer);
  (void)cudaStreamDestroy(reader);
  return out;
}

TEST(CudaEmulation, AMissingDependencyBetweenStreamsChangesTheResult) {
  EXPECT_EQ(write_then_read(true, cudaStreamNonBlocking)[0], 7.0f);
  const float unordered = write_then_read(false, cudaStreamNonBlocking)[0];
  EXPECT_TRUE(unordered != 7.0f) << "the reader ran after the writer without an event";
}

TEST(CudaEmulation, LegacyStreamSynchronizesWithBlockingStreamsOnly) {
  float* p = nullptr;
  cudaStream_t blocking = nullptr, non_blocking = nullptr;
  EMU_OK(cudaStreamCreate(&blocking));
  EMU_OK(cudaStreamCreateWithFlags(&non_blocking, cudaStreamNonBlocking));
  EMU_OK(cudaMalloc(&p, 64 * sizeof(float)));
  for (cudaStream_t s : {blocking, non_blocking}) {
    EMU_OK(fill(p, 64, 1.0f, nullptr));
    EMU_OK(cudaDeviceSynchronize());
    EMU_OK(fill(p, 64, 2.0f, nullptr));  // legacy stream, then s: ordered only if s is blocking
    EMU_OK(fill(p, 64, 3.0f, s));
    EMU_OK(cudaDeviceSynchronize());
    EXPECT_EQ(to_host(p, 64)[0], s == blocking ? 3.0f : 2.0f);
  }
  EMU_OK(cudaFree(p));
  EMU_OK(cudaStreamDestroy(blocking));
  EMU_OK(cudaStreamDestroy(non_blocking));
}

TEST(CudaEmulation, CaptureFollowsCudaRules) {
  cudaStream_t s = nullptr, side = nullptr;
  cudaEvent_t outside = nullptr, fork = nullptr;
  float* p = nullptr;
  EMU_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  EMU_OK(cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking));
  EMU_OK(cudaEventCreate(&outside));
  EMU_OK(cudaEventCreate(&fork));
  EMU_OK(cudaMalloc(&p, 64 * sizeof(float)));
  EMU_OK(cudaEventRecord(outside, s));
  cudaGraph_t g = nullptr;

  // Waiting on an event recorded outside the capture.
  EMU_OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  EXPECT_EQ(cudaStreamWaitEvent(s, outside, 0), cudaErrorStreamCaptureIsolation);
  EXPECT_EQ(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
  (void)cudaGetLastError();

  // Synchronizing or allocating inside a global capture.
  EMU_OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  EXPECT_EQ(cudaStreamSynchronize(s), cudaErrorStreamCaptureUnsupported);
  EXPECT_EQ(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
  EMU_OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  float* q = nullptr;
  EXPECT_EQ(cudaMalloc(&q, 64), cudaErrorStreamCaptureUnsupported);
  EXPECT_EQ(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
  (void)cudaGetLastError();

  // A fork that is not joined back.
  EMU_OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  EMU_OK(cudaEventRecord(fork, s));
  EMU_OK(cudaStreamWaitEvent(side, fork, 0));
  EMU_OK(fill(p, 64, 1.0f, side));
  EXPECT_EQ(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureUnjoined);
  (void)cudaGetLastError();

  // Fork and join: the graph replays both branches in order.
  cudaEvent_t join = nullptr;
  EMU_OK(cudaEventCreate(&join));
  EMU_OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  EMU_OK(cudaEventRecord(fork, s));
  EMU_OK(cudaStreamWaitEvent(side, fork, 0));
  EMU_OK(fill(p, 64, 5.0f, side));
  EMU_OK(cudaEventRecord(join, side));
  EMU_OK(cudaStreamWaitEvent(s, join, 0));
  EMU_OK(cudaMemsetAsync(p, 0, sizeof(float), s));
  EMU_OK(cudaStreamEndCapture(s, &g));
  const float before = to_host(p, 64)[1];
  EXPECT_TRUE(before != before) << "capturing ran the captured work (fresh memory is NaN)";
  cudaGraphExec_t exec = nullptr;
  EMU_OK(cudaGraphInstantiate(&exec, g, 0));
  EMU_OK(cudaGraphLaunch(exec, s));
  EMU_OK(cudaStreamSynchronize(s));
  const std::vector<float> h = to_host(p, 64);
  EXPECT_EQ(h[0], 0.0f);
  EXPECT_EQ(h[1], 5.0f);
  EXPECT_EQ(cudaStreamWaitEvent(s, join, 0), cudaErrorCapturedEvent);
  EMU_OK(cudaGraphExecDestroy(exec));
  EMU_OK(cudaGraphDestroy(g));
  EMU_OK(cudaFree(p));
}

TEST(CudaEmulation, LaunchConfigurationLimits) {
  float* p = nullptr;
  EMU_OK(cudaMalloc(&p, 64));
  int64_t n = 16;
  float v = 0;
  void* args[] = {&p, &n, &v};
  EXPECT_EQ(cudaLaunchKernel(fill_kernel, dim3(1), dim3(2048), args, 0, nullptr), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(cudaLaunchKernel(fill_kernel, dim3(1, 65536), dim3(32), args, 0, nullptr), cudaErrorInvalidConfiguration);
  (void)cudaGetLastError();
  EMU_OK(cudaFree(p));
}

TEST(CudaEmulation, SyncthreadsOrdersABlock) {
  int* out = nullptr;
  EMU_OK(cudaMalloc(&out, 3 * 64 * sizeof(int)));
  void* args[] = {&out};
  for (int launch = 0; launch < 2; ++launch) {  // the second launch of a barrier kernel also uses fibers
    EMU_OK(cudaLaunchKernel(rotate_kernel, dim3(3), dim3(64), args, 0, nullptr));
    std::vector<int> h(3 * 64);
    EMU_OK(cudaMemcpy(h.data(), out, h.size() * sizeof(int), cudaMemcpyDeviceToHost));
    for (int b = 0; b < 3; ++b) {
      for (int t = 0; t < 64; ++t) ASSERT_EQ(h[b * 64 + t], (t + 1) % 64 + b * 1000);
    }
  }
  EMU_OK(cudaFree(out));
}

TEST(CudaEmulation, CooperativeGridsAndDynamicSharedMemory) {
  constexpr int kBlocks = 8;  // 4 multiprocessors x 2 blocks
  int *published = nullptr, *out = nullptr;
  EMU_OK(cudaMalloc(&published, kBlocks * sizeof(int)));
  EMU_OK(cudaMalloc(&out, 2 * kBlocks * sizeof(int)));
  const auto run = [&](bool grid_barrier, size_t shared) {
    EXPECT_EQ(cudaMemset(published, 0xff, kBlocks * sizeof(int)), cudaSuccess);
    void* args[] = {&published, &out, &grid_barrier};
    EXPECT_EQ(cudaLaunchCooperativeKernel(neighbour_kernel, dim3(kBlocks), dim3(32), args, shared, nullptr),
              cudaSuccess);
    std::vector<int> h(2 * kBlocks);
    EXPECT_EQ(cudaMemcpy(h.data(), out, h.size() * sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  };
  // grid.sync(): every block sees its neighbour's index, and its own shared memory (fresh: 0xff).
  std::vector<int> h = run(true, 64);
  for (int b = 0; b < kBlocks; ++b) {
    EXPECT_EQ(h[2 * b], (b + 1) % kBlocks + 1000 * b) << "block " << b;
    EXPECT_EQ(h[2 * b + 1], 1) << "block " << b << ": shared memory did not start as 0xff bytes";
  }
  // __syncthreads only: some block reads its neighbour before the neighbour ran (in either order).
  h = run(false, 64);
  int stale = 0;
  for (int b = 0; b < kBlocks; ++b) stale += h[2 * b] == -1 + 1000 * b;
  EXPECT_GT(stale, 0);
  // Above 48 KiB a kernel must opt in; what one multiprocessor holds bounds a cooperative grid.
  bool grid_barrier = true;
  void* args[] = {&published, &out, &grid_barrier};
  EXPECT_EQ(cudaLaunchCooperativeKernel(neighbour_kernel, dim3(4), dim3(32), args, size_t(64) << 10, nullptr),
            cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EMU_OK(cudaFuncSetAttribute(neighbour_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 160 << 10));
  int resident = 0;
  EMU_OK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, neighbour_kernel, 32, size_t(160) << 10));
  EXPECT_EQ(resident, 1);
  EXPECT_EQ(cudaLaunchCooperativeKernel(neighbour_kernel, dim3(kBlocks), dim3(32), args, size_t(160) << 10, nullptr),
            cudaErrorCooperativeLaunchTooLarge);
  (void)cudaGetLastError();
  EMU_OK(cudaLaunchCooperativeKernel(neighbour_kernel, dim3(4), dim3(32), args, size_t(160) << 10, nullptr));
  EMU_OK(cudaDeviceSynchronize());
  EMU_OK(cudaFree(published));
  EMU_OK(cudaFree(out));
}

TEST(CudaEmulation, SharedMemoryEndsAtAGuardPage) {
  int* out = nullptr;
  EMU_OK(cudaMalloc(&out, sizeof(int)));
  int64_t last = 1023;  // 4 KiB of ints: the last one is readable, the next one is not
  void* args[] = {&last, &out};
  EMU_OK(cudaLaunchKernel(shared_read_kernel, dim3(1), dim3(1), args, 4096, nullptr));
  EMU_OK(cudaDeviceSynchronize());
  int64_t past = 1024;
  void* past_args[] = {&past, &out};
  EXPECT_DEATH(
      (cudaLaunchKernel(shared_read_kernel, dim3(1), dim3(1), past_args, 4096, nullptr), cudaDeviceSynchronize()), "");
  EMU_OK(cudaFree(out));
}

TEST(CudaEmulation, MemcpyKindMustMatchThePointers) {
  float* d = nullptr;
  std::vector<float> h(16);
  EMU_OK(cudaMalloc(&d, 16 * sizeof(float)));
  EXPECT_EQ(cudaMemcpy(d, h.data(), 64, cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(h.data(), d, 128, cudaMemcpyDeviceToHost), cudaErrorInvalidValue) << "past the allocation";
  (void)cudaGetLastError();
  EMU_OK(cudaFree(d));
}

/// C = alpha op(A) op(B) + beta C in double, straight from the column-major definition.
std::vector<double> gemm_definition(bool ta, bool tb, int m, int n, int k, double alpha, const std::vector<double>& a,
                                    int lda, const std::vector<double>& b, int ldb, double beta, std::vector<double> c,
                                    int ldc) {
  for (int j = 0; j < n; ++j) {
    for (int i = 0; i < m; ++i) {
      double s = 0;
      for (int l = 0; l < k; ++l) s += (ta ? a[l + i * lda] : a[i + l * lda]) * (tb ? b[j + l * ldb] : b[l + j * ldb]);
      c[i + j * ldc] = alpha * s + beta * c[i + j * ldc];
    }
  }
  return c;
}

template <typename T>
std::vector<T> rounded(const std::vector<double>& v) {
  std::vector<T> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = T(static_cast<float>(v[i]));
  return r;
}

template <typename T>
T* upload(const std::vector<T>& h) {
  T* d = nullptr;
  EXPECT_EQ(cudaMalloc(&d, h.size() * sizeof(T)), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  return d;
}

template <typename T>
void check_gemm(cudaDataType_t type, double tol) {
  cublasHandle_t h = nullptr;
  ASSERT_EQ(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(-1, 1);
  const int m = 5, n = 3, k = 4;
  for (int ta = 0; ta < 2; ++ta) {
    for (int tb = 0; tb < 2; ++tb) {
      const int lda = (ta ? k : m) + 2, ldb = (tb ? n : k) + 1, ldc = m + 3;
      std::vector<double> a(lda * (ta ? m : k)), b(ldb * (tb ? k : n)), c(ldc * n);
      for (auto* v : {&a, &b, &c}) {
        for (double& x : *v) x = static_cast<double>(static_cast<float>(T(static_cast<float>(u(rng)))));
      }
      T *da = upload(rounded<T>(a)), *db = upload(rounded<T>(b)), *dc = upload(rounded<T>(c));
      const float alpha = 0.5f, beta = -2.0f;
      ASSERT_EQ(cublasGemmEx(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &alpha, da,
                             type, lda, db, type, ldb, &beta, dc, type, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                CUBLAS_STATUS_SUCCESS);
      std::vector<T> got(c.size());
      EMU_OK(cudaMemcpy(got.data(), dc, got.size() * sizeof(T), cudaMemcpyDeviceToHost));
      const std::vector<double> want = gemm_definition(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      for (int j = 0; j < n; ++j) {
        for (int i = 0; i < ldc; ++i) {
          const double g = static_cast<float>(got[i + j * ldc]);
          if (i < m) {
            EXPECT_NEAR(g, want[i + j * ldc], tol) << "ta " << ta << " tb " << tb << " (" << i << ", " << j << ")";
          } else {
            EXPECT_EQ(g, c[i + j * ldc]) << "a GEMM wrote between the columns of C";
          }
        }
      }
      EXPECT_EQ(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, da, type, m - 1, db, type, ldb, &beta, dc,
                             type, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                CUBLAS_STATUS_INVALID_VALUE)
          << "lda below m";
      for (T* p : {da, db, dc}) EMU_OK(cudaFree(p));
    }
  }
  ASSERT_EQ(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
}

TEST(CudaEmulation, GemmExIsTheColumnMajorProduct) {
  check_gemm<float>(CUDA_R_32F, 1e-6);
  check_gemm<dynrnn::bfloat16>(CUDA_R_16BF, 2e-2);
  check_gemm<dynrnn::float16>(CUDA_R_16F, 4e-3);
}

/// A GEMM whose A (2 x 2, lda 4: six floats) reaches past a four-float allocation; exits 0 when the
/// device reports the fault.
void gemm_past_an_allocation() {
  cublasHandle_t h = nullptr;
  float* d = nullptr;
  (void)cublasCreate(&h);
  (void)cudaMalloc(&d, 4 * sizeof(float));
  const float one = 1;
  const float zero = 0;
  (void)cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, d, CUDA_R_32F, 4, d, CUDA_R_32F, 2, &zero, d,
                     CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  std::exit(cudaDeviceSynchronize() == cudaErrorIllegalAddress ? 0 : 1);
}

TEST(CudaEmulation, GemmOperandOutsideDeviceMemoryIsAFault) {
  EXPECT_EXIT(gemm_past_an_allocation(), ::testing::ExitedWithCode(0), "device fault");
}

}  // namespace
