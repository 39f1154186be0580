// host/cuda_executor.h — factory of the CUDA executor (implemented in cuda/).
#pragma once

#include <memory>

#include "dynrnn/spec.h"
#include "host/executor.h"

namespace dynrnn {

/// Creates the CUDA executor on the current device: its cuBLAS handle, internal streams and events
/// are made here, once per handle. Fails with kCudaError/kCublasError (and a message) when there is
/// no usable device.
template <typename T>
Status make_cuda_executor(MathMode math, RecurrentAlgorithm algorithm, std::unique_ptr<Executor<T>>* out);

}  // namespace dynrnn
