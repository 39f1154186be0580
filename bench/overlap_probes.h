// bench/overlap_probes.h — calibration probes for two schedule questions that only a GPU answers
// (performance.md §4, items 1 and 5), so that the next change to dynrnn's schedule rests on numbers.
#pragma once

#include <cuda_runtime.h>

#include <functional>
#include <string>

#include "bench/calibrate.h"

namespace bench {

/// Records one calibration item: fn returns its value and sets its note, or throws BenchError.
using CalibrationItem = std::function<double(const std::string& name, const std::string& unit,
                                             const std::function<double(std::string*)>& fn)>;

/// 1. A layer's chunk of K steps (an LSTM's: per step a recurrent SGEMM [4H x B x H] and a kernel)
///    with its input projection (one SGEMM of K * B rows) before it on one stream, as dynrnn runs it
///    now, against the projection of the next chunk running on a second stream beside the steps
///    (double-buffered), with default and with high (steps) / low (projection) stream priorities:
///    whether the projection's blocks delay the dependent steps more than running it apart saves.
/// 2. Two cooperative kernels of half the multiprocessors each doing grid.sync() on two streams
///    against one alone: whether two persistent layers (a bidirectional RNN's directions) can run
///    at once on split multiprocessors.
void overlap_probes(cudaStream_t stream, const CalibrationSizes& sizes, const CalibrationItem& item);

}  // namespace bench
