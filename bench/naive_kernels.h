// bench/naive_kernels.h — factory of the naive baseline's GPU ops (naive_kernels.cu).
#pragma once

#include <cuda_runtime.h>

#include <memory>

#include "bench/naive_baseline.h"

namespace bench {

/// One cuBLAS handle (created here, bound to `stream`) and the per-op kernels. tf32: cuBLAS may use
/// TF32 tensor cores for float GEMMs; otherwise CUBLAS_DEFAULT_MATH (IEEE float32 unless
/// NVIDIA_TF32_OVERRIDE says otherwise). bf16/fp16 (T = dynrnn::bfloat16 / float16): cublasGemmEx
/// on tensor cores accumulating in float32; the kernels compute in float between load and store.
template <typename T>
std::unique_ptr<NaiveOps<T>> make_cuda_naive_ops(cudaStream_t stream, bool tf32);

}  // namespace bench
