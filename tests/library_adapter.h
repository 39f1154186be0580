// Runs a ref::Problem through dynrnn's public API (CPU backend, or CUDA), so that every test compares
// the library with the float64 reference (or TensorFlow's values) on the same problem.
#pragma once

#include <functional>
#include <memory>

#include "dynrnn/rnn.h"
#include "reference/reference.h"

namespace testing_support {

/// Library knobs that do not change the results beyond rounding (parallel_iterations) or at all
/// (swap_memory, pipeline_projections).
struct LibraryOptions {
  int parallel_iterations = 32;
  bool swap_memory = false;
  size_t activation_memory_budget = 0;
  bool recompute = false;
  bool inference = false;                           ///< forward without a reserve (and no backward)
  dynrnn::Backend backend = dynrnn::Backend::kCpu;  ///< kCuda: the buffers are mirrored to the device
  dynrnn::RecurrentAlgorithm algorithm = dynrnn::RecurrentAlgorithm::kStandard;
  bool pipeline_projections = false;
};

/// The RnnSpec that describes the problem's cells and layout.
dynrnn::RnnSpec spec_from_problem(const ref::Problem& p, dynrnn::DataType dtype, const LibraryOptions& opt = {});

/// The flat weight buffer (in the handle's parameter table order) holding the problem's weights.
std::vector<double> flat_weights(const dynrnn::Rnn& rnn, const ref::Problem& p);

struct LibraryRun {
  ref::Forward forward;
  ref::Gradients gradients;  ///< empty unless backward ran
};

/// Forward (training) then, if `upstream` is given, backward, in dtype T on opt.backend.
/// `prepare`, if given, may adjust the handle first (tests swap in instrumented executors).
/// Fails the current test (and returns what it has) on any non-OK status.
template <typename T>
LibraryRun run_library(const ref::Problem& p, const ref::Upstream* upstream, const LibraryOptions& opt = {},
                       const std::function<void(dynrnn::Rnn&)>& prepare = {});

/// Expects every output, state and gradient of two runs to be equal bit for bit.
void expect_bit_equal(const LibraryRun& a, const LibraryRun& b, const std::string& what);

/// Relative error ||a - b|| / max(||b||, floor) of two equally long vectors.
double rel_error(const std::vector<double>& a, const std::vector<double>& b, double floor = 1e-30);

}  // namespace testing_support
