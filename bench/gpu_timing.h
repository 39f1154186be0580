// bench/gpu_timing.h — CUDA-event timing: warm-up runs, then every timed run bracketed by its own
// pair of events on the bench stream (events created before, read after one final sync).
#pragma once

#include <cuda_runtime.h>

#include <functional>
#include <vector>

namespace bench {

/// Calls fn(i) `warmup` times untimed, then `iters` times each between two events; returns the
/// per-call milliseconds. fn enqueues on `stream` (the host may run ahead; the events measure
/// device time including any idle gaps the host leaves between launches).
std::vector<double> time_gpu_ms(cudaStream_t stream, int warmup, int iters, const std::function<void(int)>& fn);

}  // namespace bench
