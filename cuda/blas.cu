#include <climits>
#include <string>

#include "cuda/blas.h"
#include "cuda/cuda_check.h"
#include "cuda/matrix_ops.h"
#include "host/element_types.h"
#include "host/status_macros.h"

namespace dynrnn {
namespace cuda_detail {
namespace {

template <typename T>
struct BlasType;
template <>
struct BlasType<float> {
  static constexpr cudaDataType_t data = CUDA_R_32F;
  static cublasComputeType_t compute(MathMode math) {
    return math == MathMode::kTF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  }
};
template <>
struct BlasType<double> {
  static constexpr cudaDataType_t data = CUDA_R_64F;
  static cublasComputeType_t compute(MathMode) { return CUBLAS_COMPUTE_64F; }
};
// 16-bit storage: tensor-core products accumulated in float32 (alpha and beta are float).
template <>
struct BlasType<bfloat16> {
  static constexpr cudaDataType_t data = CUDA_R_16BF;
  static cublasComputeType_t compute(MathMode) { return CUBLAS_COMPUTE_32F; }
};
template <>
struct BlasType<float16> {
  static constexpr cudaDataType_t data = CUDA_R_16F;
  static cublasComputeType_t compute(MathMode) { return CUBLAS_COMPUTE_32F; }
};

/// A row-major operand as cuBLAS sees it: a column-major matrix of `lead` x `other` elements with
/// leading dimension ld. When only one column is touched the stride is never used, so a smaller
/// ld than cuBLAS demands (max(1, lead)) is raised; otherwise it is a planning bug.
Status leading_dim(const char* name, int64_t ld, int64_t lead, int64_t other, int64_t* out) {
  const int64_t need = lead > 1 ? lead : 1;
  if (ld >= need) {
    *out = ld;
    return Status::ok();
  }
  if (other <= 1) {
    *out = need;
    return Status::ok();
  }
  return Status(StatusCode::kInternal, std::string("gemm: ") + name + " has leading dimension " + std::to_string(ld) +
                                           " below " + std::to_string(need));
}

bool fits_int(int64_t v) {
  return v <= static_cast<int64_t>(INT_MAX);
}

}  // namespace

cublasMath_t blas_math_mode(MathMode math) {
  return math == MathMode::kTF32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH;
}

template <typename T, typename C>
Status gemm_row_major(cublasHandle_t handle, cudaStream_t stream, MathMode math, int64_t m, int64_t n, int64_t k,
                      compute_t<T> alpha, MatRef<T> a, MatRef<T> b, compute_t<T> beta, C* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return Status::ok();
  if (k <= 0) return scale_2d<C>(c, m, n, ldc, beta, stream);

  // Column-major call: C^T (n x m) = op_b(B') (n x k) * op_a(A') (k x m), where B' / A' are the
  // caller's buffers read column-major. Untransposed row-major B (k x n) is column-major n x k
  // (CUBLAS_OP_N, lead n); a transposed one is stored n x k row-major = k x n column-major (OP_T).
  const cublasOperation_t op_b = b.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = a.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  int64_t ldb = 0, lda = 0, ldc_cm = 0;
  DYNRNN_TRY(leading_dim("B", b.ld, b.trans ? k : n, b.trans ? n : k, &ldb));
  DYNRNN_TRY(leading_dim("A", a.ld, a.trans ? m : k, a.trans ? k : m, &lda));
  DYNRNN_TRY(leading_dim("C", ldc, n, m, &ldc_cm));

  const cudaDataType_t type = BlasType<T>::data;
  const cudaDataType_t c_type = BlasType<C>::data;
  const cublasComputeType_t compute = BlasType<T>::compute(math);
  if (fits_int(m) && fits_int(n) && fits_int(k) && fits_int(lda) && fits_int(ldb) && fits_int(ldc_cm)) {
    DYNRNN_CUBLAS_CHECK(cublasGemmEx(handle, op_b, op_a, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k),
                                     &alpha, b.data, type, static_cast<int>(ldb), a.data, type, static_cast<int>(lda),
                                     &beta, c, c_type, static_cast<int>(ldc_cm), compute, CUBLAS_GEMM_DEFAULT));
  } else {
    DYNRNN_CUBLAS_CHECK(cublasGemmEx_64(handle, op_b, op_a, n, m, k, &alpha, b.data, type, ldb, a.data, type, lda,
                                        &beta, c, c_type, ldc_cm, compute, CUBLAS_GEMM_DEFAULT));
  }
  DYNRNN_LAUNCH_CHECK(stream, "cublasGemmEx");
  return Status::ok();
}

Status BlasBinding::bind(cublasHandle_t handle, cudaStream_t stream, void* workspace, size_t workspace_bytes,
                         cublasMath_t math) {
  if (handle_ != nullptr)
    return Status(StatusCode::kInternal, "the cuBLAS handle is already bound (begin without end)");
  DYNRNN_CUBLAS_CHECK(cublasGetStream(handle, &saved_stream_));
  DYNRNN_CUBLAS_CHECK(cublasGetPointerMode(handle, &saved_pointer_mode_));
  DYNRNN_CUBLAS_CHECK(cublasGetMathMode(handle, &saved_math_));
  handle_ = handle;
  workspace_ = workspace;
  workspace_bytes_ = workspace_bytes;
  DYNRNN_CUBLAS_CHECK(cublasSetStream(handle, stream));
  DYNRNN_CUBLAS_CHECK(cublasSetWorkspace(handle, workspace, workspace_bytes));
  DYNRNN_CUBLAS_CHECK(cublasSetPointerMode(handle, CUBLAS_POINTER_MODE_HOST));
  DYNRNN_CUBLAS_CHECK(cublasSetMathMode(handle, math));
  return Status::ok();
}

Status BlasBinding::switch_stream(cudaStream_t stream, void* workspace, size_t workspace_bytes) {
  if (handle_ == nullptr) return Status(StatusCode::kInternal, "switch_stream on an unbound cuBLAS handle");
  DYNRNN_CUBLAS_CHECK(cublasSetStream(handle_, stream));
  DYNRNN_CUBLAS_CHECK(cublasSetWorkspace(handle_, workspace, workspace_bytes));
  return Status::ok();
}

Status BlasBinding::restore() {
  if (handle_ == nullptr) return Status::ok();
  cublasHandle_t h = handle_;
  handle_ = nullptr;
  DYNRNN_CUBLAS_CHECK(cublasSetStream(h, saved_stream_));
  // cublasSetStream dropped the workspace; keep ours so the handle never falls back to allocating.
  DYNRNN_CUBLAS_CHECK(cublasSetWorkspace(h, workspace_, workspace_bytes_));
  DYNRNN_CUBLAS_CHECK(cublasSetPointerMode(h, saved_pointer_mode_));
  DYNRNN_CUBLAS_CHECK(cublasSetMathMode(h, saved_math_));
  return Status::ok();
}

#define DYNRNN_INSTANTIATE(T)                                                                             \
  template Status gemm_row_major<T, T>(cublasHandle_t, cudaStream_t, MathMode, int64_t, int64_t, int64_t, \
                                       compute_t<T>, MatRef<T>, MatRef<T>, compute_t<T>, T*, int64_t);
DYNRNN_FOR_EACH_ELEMENT_TYPE(DYNRNN_INSTANTIATE)
#undef DYNRNN_INSTANTIATE
#define DYNRNN_INSTANTIATE(T)                                                                                        \
  template Status gemm_row_major<T, float>(cublasHandle_t, cudaStream_t, MathMode, int64_t, int64_t, int64_t, float, \
                                           MatRef<T>, MatRef<T>, float, float*, int64_t);
DYNRNN_FOR_EACH_16BIT_TYPE(DYNRNN_INSTANTIATE)
#undef DYNRNN_INSTANTIATE

}  // namespace cuda_detail
}  // namespace dynrnn
