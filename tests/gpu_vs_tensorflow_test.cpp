// The CUDA backend against TensorFlow's golden fixtures, as CpuVsTensorFlow does for the CPU
// backend: every fixture (cells, options, stacks, layouts, length edge cases, bidirectional), in
// float64 and float32, outputs, final states and every gradient within the same tolerances; and again
// with the persistent kernels (RnnSpec::algorithm = kPersistent). Skips without a device (CI runs it
// on the emulated device).
#include <gtest/gtest.h>

#include "gpu_support.h"
#include "library_vs_fixture.h"
#include "reference/fixture_compare.h"

namespace {

class GpuVsTensorFlow : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuVsTensorFlow, OutputsStatesAndGradients) {
  REQUIRE_GPU();
  testing_support::expect_library_matches_fixture(GetParam(), dynrnn::Backend::kCuda);
}

class GpuPersistentVsTensorFlow : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuPersistentVsTensorFlow, OutputsStatesAndGradients) {
  REQUIRE_GPU();
  testing_support::expect_library_matches_fixture(GetParam(), dynrnn::Backend::kCuda,
                                                  dynrnn::RecurrentAlgorithm::kPersistent);
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  return ref::fixture_test_name(info.param);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GpuVsTensorFlow, ::testing::ValuesIn(ref::golden_fixture_paths()), test_name);
INSTANTIATE_TEST_SUITE_P(Fixtures, GpuPersistentVsTensorFlow, ::testing::ValuesIn(ref::golden_fixture_paths()),
                         test_name);

}  // namespace
