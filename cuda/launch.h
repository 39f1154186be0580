// cuda/launch.h — every kernel launch of the library goes through launch(): kernel<<<grid, block, 0,
// stream>>>(args...) spelled as the runtime's cudaLaunchKernel, so that cuda/*.cu also compiles as
// plain C++ against the CPU emulation of the runtime in tests/cuda_emulation, with no #ifdef here.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "cuda/cuda_check.h"
#include "dynrnn/status.h"

namespace dynrnn {
namespace cuda_detail {

template <typename T>
struct NotDeduced {
  using type = T;
};

/// kernel<<<grid, block, 0, stream>>>(args...): the launch error. The arguments convert to the
/// kernel's parameter types, as in <<<>>>. (dynrnn-bench launches its kernels with it too.)
template <typename... P>
cudaError_t launch_kernel(void (*kernel)(P...), dim3 grid, dim3 block, cudaStream_t stream,
                          typename NotDeduced<P>::type... args) {
  void* argv[] = {static_cast<void*>(&args)..., nullptr};  // the extra slot keeps the array non-empty
  return cudaLaunchKernel(kernel, grid, block, argv, 0, stream);
}

/// Enqueues `kernel` on `stream` with the launch error (and, with DYNRNN_DEBUG_SYNC, any fault) as a
/// Status naming `what`.
template <typename... P>
Status launch(void (*kernel)(P...), dim3 grid, dim3 block, cudaStream_t stream, const char* what,
              typename NotDeduced<P>::type... args) {
  const cudaError_t e = launch_kernel(kernel, grid, block, stream, args...);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();  // not sticky: later calls start clean
    return cuda_error(e, (std::string("cudaLaunchKernel of ") + what).c_str(), __FILE__, __LINE__);
  }
  DYNRNN_LAUNCH_CHECK(stream, what);
  return Status::ok();
}

}  // namespace cuda_detail
}  // namespace dynrnn
