// cuda/dynamic_shared.cuh — the block's dynamic shared memory (the launch's shared-memory bytes).
// `extern __shared__` has no C++ spelling, so the CPU emulation of the runtime (tests/cuda_emulation),
// which compiles cuda/*.cu as plain C++, gives each emulated block its own buffer instead.
#pragma once

#include <cuda_runtime.h>

namespace dynrnn {
namespace cuda_detail {

#if defined(__CUDACC__)
__device__ inline unsigned char* dynamic_shared_memory() {
  extern __shared__ __align__(16) unsigned char dynamic_shared[];
  return dynamic_shared;
}
#else
inline unsigned char* dynamic_shared_memory() {
  return cuda_emulation::dynamic_shared_memory();
}
#endif

}  // namespace cuda_detail
}  // namespace dynrnn
