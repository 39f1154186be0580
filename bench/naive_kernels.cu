// bench/naive_kernels.cu — the naive baseline's primitive ops on the GPU: one small kernel per op
// (as TF launches one per graph node) and cuBLAS for the GEMMs, all on the bench stream. Every
// launch and cuBLAS call is checked.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <memory>
#include <type_traits>

#include "bench/cuda_check.h"
#include "bench/naive_baseline.h"
#include "bench/naive_kernels.h"
#include "bench/naive_op_math.h"
#include "bench/precision_types.h"
#include "cuda/launch.h"

namespace bench {
namespace {

// Every kernel loads T, computes in A = compute_t<T> (T for float and double, float for the 16-bit
// types) and stores T once, as a TF op in that dtype does.
template <typename T>
using A = dynrnn::compute_t<T>;

constexpr int kThreads = 256;

inline unsigned grid_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>(blocks, 1), 65535 * 8));
}

// The op is a kernel argument (uniform branch): one kernel per call, as in TF's graph.
template <typename T>
__global__ void unary_kernel(UnaryOp op, int64_t rows, int64_t cols, const T* x, int64_t ldx, T* y, int64_t ldy) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i - r * cols;
    y[r * ldy + c] = T(apply_unary(op, A<T>(x[r * ldx + c])));
  }
}

template <typename T>
__global__ void binary_kernel(BinaryOp op, int64_t rows, int64_t cols, const T* a, int64_t lda, const T* b, int64_t ldb,
                              T* y, int64_t ldy) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i - r * cols;
    y[r * ldy + c] = T(apply_binary(op, A<T>(a[r * lda + c]), A<T>(b[r * ldb + c])));
  }
}

template <typename T>
__global__ void add_scalar_kernel(int64_t rows, int64_t cols, const T* x, int64_t ldx, T s, T* y, int64_t ldy) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i - r * cols;
    y[r * ldy + c] = T(A<T>(x[r * ldx + c]) + A<T>(s));
  }
}

template <typename T>
__global__ void bias_add_kernel(int64_t rows, int64_t cols, const T* x, int64_t ldx, const T* bias, T* y, int64_t ldy) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i - r * cols;
    y[r * ldy + c] = T(A<T>(x[r * ldx + c]) + A<T>(bias[c]));
  }
}

template <typename T>
__global__ void concat_kernel(int64_t rows, const T* a, int64_t lda, int64_t wa, const T* b, int64_t ldb, int64_t wb,
                              T* y) {
  const int64_t w = wa + wb, n = rows * w;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / w, c = i - r * w;
    y[i] = c < wa ? a[r * lda + c] : b[r * ldb + (c - wa)];
  }
}

template <typename T>
__global__ void copy_kernel(int64_t rows, int64_t cols, const T* x, int64_t ldx, T* y, int64_t ldy) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i - r * cols;
    y[r * ldy + c] = x[r * ldx + c];
  }
}

template <typename T>
__global__ void select_kernel(int64_t rows, int64_t cols, const int32_t* len, int64_t t, const T* a, int64_t lda,
                              const T* b, int64_t ldb, T* y, int64_t ldy) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i - r * cols;
    const bool valid = t < len[r];
    const T* src = valid ? a : b;
    const int64_t ld = valid ? lda : ldb;
    y[r * ldy + c] = src ? src[r * ld + c] : T(A<T>(0));
  }
}

// One thread per column, summing rows in order (a reduction kernel like TF's BiasAddGrad, simple).
template <typename T>
__global__ void column_sum_add_kernel(int64_t rows, int64_t cols, const T* x, int64_t ldx, T* y) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < cols; c += int64_t(gridDim.x) * blockDim.x) {
    A<T> s = A<T>(0);
    for (int64_t r = 0; r < rows; ++r) s += A<T>(x[r * ldx + c]);
    y[c] = T(A<T>(y[c]) + s);
  }
}

template <typename T>
__global__ void reverse_sequence_kernel(int64_t steps, int64_t batch, int64_t width, const int32_t* len, const T* x,
                                        T* y) {
  const int64_t n = steps * batch * width;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t k = i % width;
    const int64_t b = (i / width) % batch;
    const int64_t t = i / (width * batch);
    int64_t l = steps;
    if (len) {
      l = len[b] < 0 ? 0 : len[b];
      if (l > steps) l = steps;
    }
    const int64_t src = t < l ? l - 1 - t : t;
    y[i] = x[(src * batch + b) * width + k];
  }
}

/// cuBLAS's name of a 16-bit storage type.
template <typename T>
constexpr cudaDataType_t cuda_data_type() {
  return std::is_same_v<T, dynrnn::bfloat16> ? CUDA_R_16BF : CUDA_R_16F;
}

/// float and double: cublasSgemm / cublasDgemm (the handle's math mode decides TF32). The 16-bit
/// types: cublasGemmEx with float32 accumulation and float alpha/beta (CUBLAS_COMPUTE_32F), i.e.
/// tensor cores, as TF's MatMul in that dtype.
template <typename T>
cublasStatus_t gemm_call(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                         const A<T>* alpha, const T* a, int lda, const T* b, int ldb, const A<T>* beta, T* c, int ldc) {
  if constexpr (std::is_same_v<T, float>) {
    return cublasSgemm(h, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  } else if constexpr (std::is_same_v<T, double>) {
    return cublasDgemm(h, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  } else {
    static_assert(is_16bit_v<T>, "gemm_call: unexpected storage type");
    return cublasGemmEx(h, ta, tb, m, n, k, alpha, a, cuda_data_type<T>(), lda, b, cuda_data_type<T>(), ldb, beta, c,
                        cuda_data_type<T>(), ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  }
}

template <typename T>
class CudaNaiveOps final : public NaiveOps<T> {
 public:
  CudaNaiveOps(cudaStream_t stream, bool tf32) : stream_(stream) {
    BENCH_CUBLAS_CHECK(cublasCreate(&handle_));
    BENCH_CUBLAS_CHECK(cublasSetStream(handle_, stream_));
    BENCH_CUBLAS_CHECK(cublasSetPointerMode(handle_, CUBLAS_POINTER_MODE_HOST));
    BENCH_CUBLAS_CHECK(cublasSetMathMode(handle_, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  }
  ~CudaNaiveOps() override {
    if (handle_) (void)cublasDestroy(handle_);
  }

  void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T beta,
            T* c, int64_t ldc) override {
    // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T.
    const A<T> alpha = A<T>(1), beta_a = A<T>(beta);
    BENCH_CUBLAS_CHECK(gemm_call<T>(handle_, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                                    static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &alpha, b,
                                    static_cast<int>(ldb), a, static_cast<int>(lda), &beta_a, c,
                                    static_cast<int>(ldc)));
  }

  void unary(UnaryOp op, int64_t rows, int64_t cols, const T* x, int64_t ldx, T* y, int64_t ldy) override {
    BENCH_CUDA_CHECK(dynrnn::cuda_detail::launch_kernel(unary_kernel<T>, dim3(grid_for(rows * cols)), dim3(kThreads),
                                                        stream_, op, rows, cols, x, ldx, y, ldy));
  }

  void binary(BinaryOp op, int64_t rows, int64_t cols, const T* a, int64_t lda, const T* b, int64_t ldb, T* y,
              int64_t ldy) override {
    BENCH_CUDA_CHECK(dynrnn::cuda_detail::launch_kernel(binary_kernel<T>, dim3(grid_for(rows * cols)), dim3(kThreads),
                                                        stream_, op, rows, cols, a, lda, b, ldb, y, ldy));
  }

  void add_scalar(int64_t rows, int64_t cols, const T* x, int64_t ldx, T s, T* y, int64_t ldy) override {
    BENCH_CUDA_CHECK(dynrnn::cuda_detail::launch_kernel(add_scalar_kernel<T>, dim3(grid_for(rows * cols)),
                                                        dim3(kThreads), stream_, rows, cols, x, ldx, s, y, ldy));
  }

  void bias_add(int64_t rows, int64_t cols, const T* x, int64_t ldx, const T* bias, T* y, int64_t ldy) override {
    BENCH_CUDA_CHECK(dynrnn::cuda_detail::launch_kernel(bias_add_kernel<T>, dim3(grid_for(rows * cols)), dim3(kThreads),
                                                        stream_, rows, cols, x, ldx, bias, y, ldy));
  }

  void concat(int64_t rows, const T* a, int64_t lda, int64_t wa, const T* b, int64_t ldb, int64_t wb, T* y) override {
    BENCH_CUDA_CHECK(dynrnn::cuda_detail::launch_kernel(concat_kernel<T>, dim3(grid_for(rows * (wa + wb))),
                                                        dim3(kThreads), stream_, rows, a, lda, wa, b, ldb, wb, y));
  }

  void copy(int64_t rows, int64_t cols, const T* x, int64_t ldx, T* y, int64_t ldy) override {
    BENCH_CUDA_CHECK(dynrnn::cuda_detail::launch_kernel(copy_kernel<T>, dim3(grid_for(rows * cols)), dim3(kThreads),
                                                        stream_, rows, cols, x, ldx, y, ldy));
  }

  void select(int64_t rows, int64_t cols, const int32_t* len, int64_t t, const T* a, int64_t lda, const T* b,
              int64_t ldb, T* y, int64_t ldy) override {
    BENCH_CUDA_CHECK(dynrnn::cuda_detail::launch_kernel(select_kernel<T>, dim3(grid_for(rows * cols)), dim3(kThreads),
                                                        stream_, rows, cols, len, t, a, lda, b, ldb, y, ldy));
  }

  void column_sum_add(int64_t rows, int64_t cols, const T* x, int64_t ldx, T* y) override {
    BENCH_CUDA_CHECK(dynrnn::cuda_detail::launch_kernel(column_sum_add_kernel<T>, dim3(grid_for(cols)), dim3(kThreads),
                                                        stream_, rows, cols, x, ldx, y));
  }

  void reverse_sequence(int64_t steps, int64_t batch, int64_t width, const int32_t* len, const T* x, T* y) override {
    BENCH_CUDA_CHECK(dynrnn::cuda_detail::launch_kernel(reverse_sequence_kernel<T>,
                                                        dim3(grid_for(steps * batch * width)), dim3(kThreads), stream_,
                                                        steps, batch, width, len, x, y));
  }

  void fill_zero(T* y, int64_t count) override {
    if (count > 0) BENCH_CUDA_CHECK(cudaMemsetAsync(y, 0, static_cast<size_t>(count) * sizeof(T), stream_));
  }

 private:
  cudaStream_t stream_;
  cublasHandle_t handle_ = nullptr;
};

}  // namespace

template <typename T>
std::unique_ptr<NaiveOps<T>> make_cuda_naive_ops(cudaStream_t stream, bool tf32) {
  return std::make_unique<CudaNaiveOps<T>>(stream, tf32);
}

#define BENCH_INSTANTIATE(T) template std::unique_ptr<NaiveOps<T>> make_cuda_naive_ops<T>(cudaStream_t, bool);
DYNRNN_FOR_EACH_ELEMENT_TYPE(BENCH_INSTANTIATE)
#undef BENCH_INSTANTIATE

}  // namespace bench
