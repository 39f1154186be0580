// bench/stats.h — order statistics of timing samples.
#pragma once

#include <vector>

namespace bench {

struct Stats {
  double median = 0, p10 = 0, p90 = 0, min = 0, max = 0, mean = 0;
  int count = 0;
};

/// Percentiles by linear interpolation between order statistics (numpy's default), in the unit
/// of the samples.
Stats summarize(std::vector<double> samples);

}  // namespace bench
