// bench/calibrate.h — performance.md §3.4: measure this card's ceilings once, so that every
// "% of roofline" rests on numbers taken here rather than on datasheet leads.
#pragma once

#include <cuda_runtime.h>

#include <functional>

#include "bench/flops.h"
#include "bench/report.h"

namespace bench {

/// Runs the calibration micro-benchmarks on the current device and records each result in
/// `report` (value, unit, note; a failed measurement is recorded with its error and leaves the
/// default in place). Returns the ceilings to use: measured where available, else `defaults`.
/// `cudnn_t1_us`, when set, measures cuDNN's per-call fixed cost (T = 1).
Ceilings calibrate(cudaStream_t stream, const Ceilings& defaults, Report& report,
                   const std::function<double()>& cudnn_t1_us);

}  // namespace bench
