// cuda/launch.h — every kernel launch of the library goes through launch(): kernel<<<grid, block, 0,
// stream>>>(args...) spelled as the runtime's cudaLaunchKernel, so that cuda/*.cu also compiles as
// plain C++ against the CPU emulation of the runtime in tests/cuda_emulation, with no #ifdef here.
#pragma once

#include <cuda_runtime.h>

#include "cuda/cuda_check.h"
#include "dynrnn/status.h"

namespace dynrnn {
namespace cuda_detail {

template <typename T>
struct NotDeduced {
  using type = T;
};

/// Enqueues `kernel` on `stream` with the launch error (and, with DYNRNN_DEBUG_SYNC, any fault) as a
/// Status naming `what`. The arguments convert to the kernel's parameter types, as in <<<>>>.
template <typename... P>
Status launch(void (*kernel)(P...), dim3 grid, dim3 block, cudaStream_t stream, const char* what,
              typename NotDeduced<P>::type... args) {
  void* argv[] = {static_cast<void*>(&args)..., nullptr};  // the extra slot keeps the array non-empty
  DYNRNN_CUDA_CHECK(cudaLaunchKernel(kernel, grid, block, argv, 0, stream));
  DYNRNN_LAUNCH_CHECK(stream, what);
  return Status::ok();
}

}  // namespace cuda_detail
}  // namespace dynrnn
