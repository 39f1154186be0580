// tests/cuda_emulation/cublas.cpp — the emulated cuBLAS: handle state and cublasGemmEx(_64).
//
// Arguments are checked as cuBLAS documents them (CUBLAS_STATUS_INVALID_VALUE / NOT_SUPPORTED) when
// the call is made; the operands must lie in device memory when the GEMM runs (otherwise a device
// fault, as a real kernel's illegal address). The product is column-major:
//   C[i + j ldc] = alpha sum_l op(A)(i, l) op(B)(l, j) + beta C[i + j ldc]  (C is not read if beta == 0)
// summed in a fixed order in the compute type (float for the 32F types, double for 64F). TF32 rounds
// each operand to 10 mantissa bits first.
#include <cublas_v2.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "dynrnn/half_types.h"
#include "emulator.h"

struct cublasContext {
  int device = 0;  ///< current at cublasCreate: the handle works only while it is current
  cudaStream_t stream = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  cublasPointerMode_t pointer_mode = CUBLAS_POINTER_MODE_HOST;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

using namespace cuda_emulation;

namespace {

size_t blas_handles = 0;  // guarded by device_mutex()

/// The counted calls of hooks.h: every cuBLAS call here but cublasDestroy and the status names.
#define EMU_BLAS_CALL(api, failure)                                \
  std::lock_guard<std::recursive_mutex> emu_lock_(device_mutex()); \
  if (inject_fault(api)) return failure

size_t type_bytes(cudaDataType_t t) {
  switch (t) {
    case CUDA_R_32F: return 4;
    case CUDA_R_64F: return 8;
    case CUDA_R_16F:
    case CUDA_R_16BF: return 2;
  }
  return 0;
}

double load(const void* base, int64_t i, cudaDataType_t t) {
  switch (t) {
    case CUDA_R_32F: return static_cast<const float*>(base)[i];
    case CUDA_R_64F: return static_cast<const double*>(base)[i];
    case CUDA_R_16F: return dynrnn::half_detail::f16_bits_to_float(static_cast<const uint16_t*>(base)[i]);
    case CUDA_R_16BF: return dynrnn::half_detail::bf16_bits_to_float(static_cast<const uint16_t*>(base)[i]);
  }
  return 0;
}

void store(void* base, int64_t i, cudaDataType_t t, double v) {
  switch (t) {
    case CUDA_R_32F: static_cast<float*>(base)[i] = static_cast<float>(v); return;
    case CUDA_R_64F: static_cast<double*>(base)[i] = v; return;
    case CUDA_R_16F:
      static_cast<uint16_t*>(base)[i] = dynrnn::half_detail::float_to_f16_bits(static_cast<float>(v));
      return;
    case CUDA_R_16BF:
      static_cast<uint16_t*>(base)[i] = dynrnn::half_detail::float_to_bf16_bits(static_cast<float>(v));
      return;
  }
}

/// Round to nearest (ties away) to TF32's 10 mantissa bits, as the tensor cores' conversion does.
float to_tf32(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
  std::memcpy(&f, &u, 4);
  return f;
}

/// The documented combinations of cublasGemmEx (operand types equal; C as listed).
bool supported(cublasComputeType_t compute, cudaDataType_t ab, cudaDataType_t c) {
  switch (compute) {
    case CUBLAS_COMPUTE_64F: return ab == CUDA_R_64F && c == CUDA_R_64F;
    case CUBLAS_COMPUTE_32F:
    case CUBLAS_COMPUTE_32F_PEDANTIC:
      return (ab == CUDA_R_32F && c == CUDA_R_32F) ||
             ((ab == CUDA_R_16F || ab == CUDA_R_16BF) && (c == ab || c == CUDA_R_32F));
    case CUBLAS_COMPUTE_32F_FAST_TF32:
    case CUBLAS_COMPUTE_32F_FAST_16F:
    case CUBLAS_COMPUTE_32F_FAST_16BF: return ab == CUDA_R_32F && c == CUDA_R_32F;
    default: return false;
  }
}

/// Bytes spanned by a column-major rows x cols operand with leading dimension ld.
size_t span_bytes(int64_t rows, int64_t cols, int64_t ld, cudaDataType_t t) {
  if (rows == 0 || cols == 0) return 0;
  return static_cast<size_t>((cols - 1) * ld + rows) * type_bytes(t);
}

/// Eight interleaved partial sums, added in a fixed order: deterministic, and the compiler may
/// vectorize it (a single running sum it may not reorder).
template <typename Acc>
Acc dot(const Acc* x, const Acc* y, int64_t k) {
  constexpr int kLanes = 8;
  Acc lane[kLanes] = {};
  int64_t l = 0;
  for (; l + kLanes <= k; l += kLanes) {
    for (int i = 0; i < kLanes; ++i) lane[i] += x[l + i] * y[l + i];
  }
  for (; l < k; ++l) lane[0] += x[l] * y[l];
  Acc acc = 0;
  for (int i = 0; i < kLanes; ++i) acc += lane[i];
  return acc;
}

struct Gemm {
  cublasOperation_t ta, tb;
  int64_t m, n, k, lda, ldb, ldc;
  const void *a, *b;
  void* c;
  cudaDataType_t at, bt, ct;
  cublasComputeType_t compute;
  double alpha, beta;
  int device;

  void check_operand(const char* name, const void* p, int64_t rows, int64_t cols, int64_t ld, cudaDataType_t t) const {
    const size_t bytes = span_bytes(rows, cols, ld, t);
    if (bytes > 0 && !device_range(p, bytes)) {
      fault(std::string("cublasGemmEx operand ") + name + " (" + std::to_string(rows) + " x " + std::to_string(cols) +
            ", ld " + std::to_string(ld) + ") is not inside one device allocation");
    } else if (bytes > 0 && device_of(p) != device) {
      fault(std::string("cublasGemmEx operand ") + name + " is memory of device " + std::to_string(device_of(p)) +
            " but the GEMM runs on device " + std::to_string(device) + " (no peer access)");
    }
  }

  void run() const {
    check_operand("A", a, ta == CUBLAS_OP_N ? m : k, ta == CUBLAS_OP_N ? k : m, lda, at);
    check_operand("B", b, tb == CUBLAS_OP_N ? k : n, tb == CUBLAS_OP_N ? n : k, ldb, bt);
    check_operand("C", c, m, n, ldc, ct);
    if (sticky_error() != cudaSuccess) return;
    if (compute == CUBLAS_COMPUTE_64F) {
      product<double>();
    } else {
      product<float>();
    }
  }

  /// op(A) as m rows and op(B)^T as n rows of k contiguous values of the compute type, then one dot
  /// product per element of C.
  template <typename Acc>
  void product() const {
    const bool tf32 = compute == CUBLAS_COMPUTE_32F_FAST_TF32;
    const auto value = [tf32](const void* base, int64_t i, cudaDataType_t t) {
      const Acc v = static_cast<Acc>(load(base, i, t));
      return tf32 ? static_cast<Acc>(to_tf32(static_cast<float>(v))) : v;
    };
    std::vector<Acc> rows_a(static_cast<size_t>(m * k)), cols_b(static_cast<size_t>(n * k));
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t l = 0; l < k; ++l) rows_a[i * k + l] = value(a, ta == CUBLAS_OP_N ? i + l * lda : l + i * lda, at);
    }
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t l = 0; l < k; ++l) cols_b[j * k + l] = value(b, tb == CUBLAS_OP_N ? l + j * ldb : j + l * ldb, bt);
    }
    const Acc al = static_cast<Acc>(alpha), be = static_cast<Acc>(beta);
    for (int64_t j = 0; j < n; ++j) {
      const Acc* y = &cols_b[j * k];
      for (int64_t i = 0; i < m; ++i) {
        const Acc* x = &rows_a[i * k];
        const Acc acc = dot(x, y, k);
        const int64_t ci = i + j * ldc;
        store(c, ci, ct, al * acc + (be == 0 ? Acc(0) : be * static_cast<Acc>(load(c, ci, ct))));
      }
    }
  }
};

cublasStatus_t gemm(const char* api, cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n,
                    int64_t k, const void* alpha, const void* A, cudaDataType_t at, int64_t lda, const void* B,
                    cudaDataType_t bt, int64_t ldb, const void* beta, void* C, cudaDataType_t ct, int64_t ldc,
                    cublasComputeType_t compute) {
  EMU_BLAS_CALL(api, CUBLAS_STATUS_EXECUTION_FAILED);
  if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (alpha == nullptr || beta == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  if ((ta != CUBLAS_OP_N && ta != CUBLAS_OP_T) || (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T)) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
  const auto at_least = [](int64_t v) { return v > 1 ? v : int64_t(1); };
  if (lda < at_least(ta == CUBLAS_OP_N ? m : k) || ldb < at_least(tb == CUBLAS_OP_N ? k : n) || ldc < at_least(m)) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  if (at != bt || !supported(compute, at, ct)) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (h->pointer_mode != CUBLAS_POINTER_MODE_HOST) return CUBLAS_STATUS_NOT_SUPPORTED;  // not emulated
  if (current_device_of_thread() != h->device || stream_device(h->stream) != h->device) {
    std::fprintf(stderr, "cuda emulation: %s with a handle of device %d, its stream on device %d, device %d current\n",
                 api, h->device, stream_device(h->stream), current_device_of_thread());
    return CUBLAS_STATUS_EXECUTION_FAILED;
  }
  Gemm g{ta, tb, m, n, k, lda, ldb, ldc, A, B, C, at, bt, ct, compute, 0, 0, h->device};
  if (compute == CUBLAS_COMPUTE_64F) {
    g.alpha = *static_cast<const double*>(alpha);
    g.beta = *static_cast<const double*>(beta);
  } else {
    g.alpha = *static_cast<const float*>(alpha);
    g.beta = *static_cast<const float*>(beta);
  }
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  const cudaError_t e = enqueue(h->stream, "cublasGemmEx", [g] { g.run(); });
  if (e != cudaSuccess) {
    set_error(e);
    return CUBLAS_STATUS_EXECUTION_FAILED;
  }
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  EMU_BLAS_CALL(__func__, CUBLAS_STATUS_ALLOC_FAILED);
  if (handle == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  if (check_capture_safe("cublasCreate") != cudaSuccess) return CUBLAS_STATUS_NOT_INITIALIZED;
  *handle = new cublasContext;
  (*handle)->device = current_device_of_thread();
  ++blas_handles;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  std::lock_guard<std::recursive_mutex> lock(device_mutex());
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  --blas_handles;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  EMU_BLAS_CALL(__func__, CUBLAS_STATUS_EXECUTION_FAILED);
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  handle->workspace = nullptr;  // as in cuBLAS: setting the stream resets the user workspace
  handle->workspace_bytes = 0;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t* stream) {
  EMU_BLAS_CALL(__func__, CUBLAS_STATUS_EXECUTION_FAILED);
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (stream == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *stream = handle->stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void* workspace, size_t bytes) {
  EMU_BLAS_CALL(__func__, CUBLAS_STATUS_EXECUTION_FAILED);
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (bytes > 0 && (reinterpret_cast<uintptr_t>(workspace) % 256 != 0 || !device_range(workspace, bytes))) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  handle->workspace = workspace;
  handle->workspace_bytes = bytes;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetPointerMode(cublasHandle_t handle, cublasPointerMode_t mode) {
  EMU_BLAS_CALL(__func__, CUBLAS_STATUS_EXECUTION_FAILED);
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->pointer_mode = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetPointerMode(cublasHandle_t handle, cublasPointerMode_t* mode) {
  EMU_BLAS_CALL(__func__, CUBLAS_STATUS_EXECUTION_FAILED);
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = handle->pointer_mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  EMU_BLAS_CALL(__func__, CUBLAS_STATUS_EXECUTION_FAILED);
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode) {
  EMU_BLAS_CALL(__func__, CUBLAS_STATUS_EXECUTION_FAILED);
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = handle->math;
  return CUBLAS_STATUS_SUCCESS;
}

namespace cuda_emulation {
size_t live_blas_handles() {
  std::lock_guard<std::recursive_mutex> lock(device_mutex());
  return blas_handles;
}
}  // namespace cuda_emulation

const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
#define EMU_NAME(s) \
  case s: return #s;
    EMU_NAME(CUBLAS_STATUS_SUCCESS)
    EMU_NAME(CUBLAS_STATUS_NOT_INITIALIZED)
    EMU_NAME(CUBLAS_STATUS_ALLOC_FAILED)
    EMU_NAME(CUBLAS_STATUS_INVALID_VALUE)
    EMU_NAME(CUBLAS_STATUS_ARCH_MISMATCH)
    EMU_NAME(CUBLAS_STATUS_MAPPING_ERROR)
    EMU_NAME(CUBLAS_STATUS_EXECUTION_FAILED)
    EMU_NAME(CUBLAS_STATUS_INTERNAL_ERROR)
    EMU_NAME(CUBLAS_STATUS_NOT_SUPPORTED)
#undef EMU_NAME
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

const char* cublasGetStatusString(cublasStatus_t status) {
  return status == CUBLAS_STATUS_SUCCESS ? "success" : "error reported by the CPU emulation of cuBLAS";
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void* alpha, const void* A, cudaDataType_t Atype, int lda, const void* B,
                            cudaDataType_t Btype, int ldb, const void* beta, void* C, cudaDataType_t Ctype, int ldc,
                            cublasComputeType_t compute, cublasGemmAlgo_t /*algo*/) {
  return gemm(__func__, handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc,
              compute);
}

cublasStatus_t cublasGemmEx_64(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int64_t m,
                               int64_t n, int64_t k, const void* alpha, const void* A, cudaDataType_t Atype,
                               int64_t lda, const void* B, cudaDataType_t Btype, int64_t ldb, const void* beta, void* C,
                               cudaDataType_t Ctype, int64_t ldc, cublasComputeType_t compute,
                               cublasGemmAlgo_t /*algo*/) {
  return gemm(__func__, handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc,
              compute);
}

cublasStatus_t cublasGetProperty(libraryPropertyType /*type*/, int* value) {
  if (value == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *value = 0;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                           int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                           const float* beta, float* C, int ldc) {
  const cublasComputeType_t compute = handle != nullptr && handle->math == CUBLAS_TF32_TENSOR_OP_MATH
                                          ? CUBLAS_COMPUTE_32F_FAST_TF32
                                          : CUBLAS_COMPUTE_32F;
  return gemm(__func__, handle, transa, transb, m, n, k, alpha, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, beta, C,
              CUDA_R_32F, ldc, compute);
}

cublasStatus_t cublasDgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                           int k, const double* alpha, const double* A, int lda, const double* B, int ldb,
                           const double* beta, double* C, int ldc) {
  return gemm(__func__, handle, transa, transb, m, n, k, alpha, A, CUDA_R_64F, lda, B, CUDA_R_64F, ldb, beta, C,
              CUDA_R_64F, ldc, CUBLAS_COMPUTE_64F);
}
