// bench/device_arena.h — an Arena in device memory (cudaMalloc, copies on the bench stream), and
// the device-memory probe used for the peak-memory column.
#pragma once

#include <cuda_runtime.h>

#include <memory>

#include "bench/arena.h"

namespace bench {

std::unique_ptr<Arena> make_device_arena(cudaStream_t stream);

/// Bytes of device memory in use on the current device (total - free, cudaMemGetInfo).
size_t device_bytes_in_use();

}  // namespace bench
