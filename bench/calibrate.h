// bench/calibrate.h — performance.md §3.4: measure this card's ceilings once, so that every
// "% of roofline" rests on numbers taken here rather than on datasheet leads.
#pragma once

#include <cuda_runtime.h>

#include <functional>

#include "bench/flops.h"
#include "bench/report.h"

namespace bench {

/// The sizes the calibration measures: performance.md §3.4's by default. tiny() runs every item's code
/// on sizes an emulated device gets through in seconds (CI runs it so; its numbers mean nothing).
struct CalibrationSizes {
  int gemm_n = 8192;                    ///< ceilings: n x n x n GEMMs
  size_t copy_bytes = size_t(1) << 30;  ///< device-to-device copy
  int chain = 1000;                     ///< dependent launches, GEMMs and grid.sync()s per timing
  int chain_h[2] = {256, 1024};         ///< the tiny GEMM chains' [4H x B x H]
  int chain_b = 64;
  size_t pinned_bytes = size_t(256) << 20;         ///< host <-> device copies
  int probe_h = 1024, probe_b = 64, probe_k = 32;  ///< overlap probes: an LSTM layer's chunk of K steps

  static CalibrationSizes tiny() {
    CalibrationSizes s;
    s.gemm_n = 32;
    s.copy_bytes = size_t(1) << 20;
    s.chain = 8;
    s.chain_h[0] = 8, s.chain_h[1] = 16;
    s.chain_b = 4;
    s.pinned_bytes = size_t(1) << 20;
    s.probe_h = 8, s.probe_b = 4, s.probe_k = 4;
    return s;
  }
};

/// Runs the calibration micro-benchmarks on the current device and records each result in
/// `report` (value, unit, note; a failed measurement is recorded with its error and leaves the
/// default in place). Returns the ceilings to use: measured where available, else `defaults`.
/// `cudnn_t1_us`, when set, measures cuDNN's per-call fixed cost (T = 1).
Ceilings calibrate(cudaStream_t stream, const Ceilings& defaults, Report& report,
                   const std::function<double()>& cudnn_t1_us, const CalibrationSizes& sizes = {});

}  // namespace bench
