// The CUDA backend against TensorFlow's golden fixtures, as CpuVsTensorFlow does for the CPU
// backend: every fixture (cells, options, stacks, layouts, length edge cases, bidirectional), in
// float64 and float32, outputs, final states and every gradient within the same tolerances. Skips
// without a device (CI runs it on the emulated device).
#include <gtest/gtest.h>

#include "golden/fixture.h"
#include "gpu_support.h"
#include "library_adapter.h"
#include "reference/fixture_compare.h"
#include "reference/from_fixture.h"

namespace {

class GpuVsTensorFlow : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuVsTensorFlow, OutputsStatesAndGradients) {
  REQUIRE_GPU();
  golden::Fixture fx;
  ASSERT_NO_THROW(fx = golden::load_fixture(GetParam()));
  ref::Problem p;
  ref::Upstream u;
  ASSERT_NO_THROW(p = ref::problem_from_fixture(fx));
  ASSERT_NO_THROW(u = ref::upstream_from_fixture(fx));
  const std::string dtype = fx.meta_str("dtype");
  testing_support::LibraryOptions opt;
  opt.backend = dynrnn::Backend::kCuda;

  const testing_support::LibraryRun run64 = testing_support::run_library<double>(p, &u, opt);
  ref::compare_with_fixture(fx, run64.forward, run64.gradients, p.has_initial_state, ref::fixture_tolerance(dtype),
                            fx.name + " (dynrnn CUDA float64)", "GpuVsTensorFlow dynrnn-float64 vs TF-" + dtype);
  const testing_support::LibraryRun run32 = testing_support::run_library<float>(p, &u, opt);
  ref::compare_with_fixture(fx, run32.forward, run32.gradients, p.has_initial_state,
                            ref::fixture_tolerance(dtype, true), fx.name + " (dynrnn CUDA float32)",
                            "GpuVsTensorFlow dynrnn-float32 vs TF-" + dtype);
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  return ref::fixture_test_name(info.param);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GpuVsTensorFlow, ::testing::ValuesIn(ref::golden_fixture_paths()), test_name);

}  // namespace
