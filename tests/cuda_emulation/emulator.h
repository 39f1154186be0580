// tests/cuda_emulation/emulator.h — what the emulated runtime, kernels and cuBLAS share: the device
// lock, enqueueing work on a stream (or into its capture), device-memory ranges and faults.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <functional>
#include <mutex>
#include <string>

namespace cuda_emulation {

/// Every API call and every piece of device work runs under this lock: the device is one
/// sequential executor that host threads share.
std::recursive_mutex& device_mutex();

/// Records `e` as the calling thread's last error (cudaGetLastError) and returns it.
cudaError_t set_error(cudaError_t e);

/// The error every call returns after a fault (cudaSuccess while none happened).
cudaError_t sticky_error();

/// Appends `work` to `stream` (0 = the legacy default stream) or, while the stream is being captured,
/// to its capture graph. `what` names it in diagnostics.
cudaError_t enqueue(cudaStream_t stream, std::string what, std::function<void()> work);

/// The calling thread's current device (cudaSetDevice).
int current_device_of_thread();

/// The device of a stream (0 = the current device's legacy stream).
int stream_device(cudaStream_t stream);

/// The device of the allocation holding p (-1 if none).
int device_of(const void* p);

/// Whether [p, p + bytes) lies inside one live device allocation.
bool device_range(const void* p, size_t bytes);

/// Whether [p, p + bytes) lies inside one live pinned host allocation (cudaHostAlloc).
bool pinned_range(const void* p, size_t bytes);

/// Whether [p, p + bytes) is host memory (not inside or overlapping a device allocation).
bool host_range(const void* p, size_t bytes);

/// Called by device work that found an illegal access: the context becomes unusable (sticky
/// cudaErrorIllegalAddress) and the reason is printed once.
void fault(const std::string& reason);

/// Calls that CUDA forbids while a global-mode capture is in progress (allocation, synchronization)
/// invalidate the capture and fail with cudaErrorStreamCaptureUnsupported.
cudaError_t check_capture_safe(const char* api);

/// The host's page size (the granule of guard pages).
size_t page_size();

/// Counts one call of `api` (hooks.h call_counts).
void note_call(const char* api);

/// note_call, and counts the call for fault injection (hooks.h); true when it is the one to fail.
bool inject_fault(const char* api);

/// cuBLAS handles created and not destroyed (cublas.cpp).
size_t live_blas_handles();

}  // namespace cuda_emulation
