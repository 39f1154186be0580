// One golden fixture of real TensorFlow through dynrnn's public API on a backend, float64 and
// float32: outputs, final states and every gradient within the fixture tolerances (shared by
// CpuVsTensorFlow and GpuVsTensorFlow).
#pragma once

#include <string>

#include "dynrnn/spec.h"

namespace testing_support {

/// Fails the current test where the library and TensorFlow disagree.
void expect_library_matches_fixture(const std::string& path, dynrnn::Backend backend,
                                    dynrnn::RecurrentAlgorithm algorithm = dynrnn::RecurrentAlgorithm::kStandard);

}  // namespace testing_support
