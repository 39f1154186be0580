// tests/cuda_emulation/hooks.h — test hooks of the emulated device (no CUDA counterpart).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace cuda_emulation {

/// Fault injection: the n-th counted runtime or cuBLAS call from now on fails (n = 1: the next one)
/// with the error that call reports when it runs out of resources (cudaErrorMemoryAllocation,
/// CUBLAS_STATUS_ALLOC_FAILED) or, for calls that allocate nothing, cudaErrorNotPermitted /
/// CUBLAS_STATUS_EXECUTION_FAILED — none of them sticky. n = 0 disarms. Counted: every call that
/// creates, binds, enqueues or queries. Not counted: frees and destroys (a failure there could only
/// leak), synchronization, and error queries.
void fail_nth_call(int64_t n);

/// Counted calls since the last fail_nth_call.
int64_t counted_calls();

/// The name of the call that the last armed fail_nth_call made fail ("" while none has).
const char* failed_call();

/// How many times each runtime and cuBLAS function was called (by name) since reset_call_counts;
/// kernel launches count as "cudaLaunchKernel" / "cudaLaunchCooperativeKernel".
std::map<std::string, int64_t> call_counts();
void reset_call_counts();

/// What the device and the runtime hold right now.
struct Resources {
  size_t device_bytes = 0;
  size_t pinned_bytes = 0;
  size_t streams = 0;  ///< created and not destroyed (the legacy stream not counted)
  size_t events = 0;
  size_t blas_handles = 0;
  bool operator==(const Resources& o) const {
    return device_bytes == o.device_bytes && pinned_bytes == o.pinned_bytes && streams == o.streams &&
           events == o.events && blas_handles == o.blas_handles;
  }
};
Resources resources();

}  // namespace cuda_emulation
