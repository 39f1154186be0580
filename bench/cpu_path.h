// bench/cpu_path.h — the run without a GPU (or with --cpu): dynrnn's CPU backend (by default in
// float32, bfloat16 and float64), and the naive op graph on the host, on small shapes, timed with
// the host clock.
#pragma once

#include "bench/cli.h"
#include "bench/report.h"

namespace bench {

/// Runs the CPU rows into `report`; returns the process exit status (0 ok, 1 failure).
int run_cpu_path(const Options& opt, Report& report);

}  // namespace bench
