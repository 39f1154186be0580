// cuda/persistent_steps.h — RnnSpec::algorithm = kPersistent: a chunk of a layer's forward (or
// backward) steps in one cooperative kernel that keeps the layer's recurrent weights in shared memory.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <map>
#include <set>
#include <utility>

#include "dynrnn/status.h"
#include "host/executor.h"

namespace dynrnn {
namespace cuda_detail {

/// What decides whether a layer fits (queried once, when the executor is created), and what the
/// executor's calls learnt, so that after a kernel's first launch of a size a chunk costs one launch
/// and no other runtime call.
struct PersistentDevice {
  int multiprocessors = 0;
  size_t shared_bytes = 0;  ///< dynamic shared memory a block may opt in to
  bool cooperative = false;
  std::set<const void*> opted_in;                          ///< kernels allowed shared_bytes (cudaFuncSetAttribute)
  std::map<std::pair<const void*, size_t>, int> resident;  ///< (kernel, shared bytes) -> blocks per SM
};

/// Enqueues r's steps as one cooperative kernel on `stream` when every block's slice of the recurrent
/// weights fits in shared memory with all blocks resident; otherwise enqueues nothing and sets
/// *ran = false (the caller runs the steps one GEMM and one kernel at a time).
template <typename T>
Status persistent_steps(const RecurrentSteps<T>& r, PersistentDevice& device, cudaStream_t stream, bool* ran);

/// The same for a backward chunk's steps.
template <typename T>
Status persistent_backward_steps(const RecurrentBackwardSteps<T>& r, PersistentDevice& device, cudaStream_t stream,
                                 bool* ran);

}  // namespace cuda_detail
}  // namespace dynrnn
