// Random dynamic_rnn problems (cells, options, stacks, directions, layouts, length edge cases) for
// the library-vs-reference tests.
#pragma once

#include <random>
#include <string>

#include "reference/reference.h"

namespace testing_support {

struct ProblemOptions {
  int max_time = 6;
  int max_batch = 4;
  int max_depth = 6;
  int max_units = 6;
  int max_layers = 3;
  bool allow_relu = true;  ///< relu and clips make float32-vs-float64 comparisons kink-sensitive
  bool allow_clip = true;
};

ref::Problem random_problem(std::mt19937_64& rng, const ProblemOptions& opt);
ref::Upstream random_upstream(const ref::Problem& p, std::mt19937_64& rng);

/// One line naming the problem's shape, layout, cells and lengths (for failure messages).
std::string describe(const ref::Problem& p);

}  // namespace testing_support
