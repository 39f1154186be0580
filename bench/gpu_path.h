// bench/gpu_path.h — the GPU run: device discovery, optional calibration, and for every shape,
// precision, mode and implementation: setup, one verification run, warm-up, timed runs, a row.
#pragma once

#include <string>

#include "bench/cli.h"
#include "bench/report.h"

namespace bench {

/// Number of usable CUDA devices (0 when the runtime reports none or fails; `why` says why).
int gpu_device_count(std::string* why);

/// Runs the GPU rows into `report`; returns the process exit status (0 ok, 1 failure).
int run_gpu_path(const Options& opt, Report& report);

}  // namespace bench
