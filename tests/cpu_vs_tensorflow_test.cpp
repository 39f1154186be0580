// The library itself (CPU executor, public API) against TensorFlow's golden fixtures: outputs, final
// states and every gradient, in float32 and float64; and TF's variable names in the weight table.
#include <gtest/gtest.h>

#include "golden/fixture.h"
#include "library_adapter.h"
#include "reference/fixture_compare.h"
#include "reference/from_fixture.h"

namespace {

class CpuVsTensorFlow : public ::testing::TestWithParam<std::string> {};

TEST_P(CpuVsTensorFlow, OutputsStatesGradientsAndNames) {
  golden::Fixture fx;
  ASSERT_NO_THROW(fx = golden::load_fixture(GetParam()));
  ref::Problem p;
  ref::Upstream u;
  ASSERT_NO_THROW(p = ref::problem_from_fixture(fx));
  ASSERT_NO_THROW(u = ref::upstream_from_fixture(fx));
  const std::string dtype = fx.meta_str("dtype");

  const testing_support::LibraryRun run64 = testing_support::run_library<double>(p, &u);
  ref::compare_with_fixture(fx, run64.forward, run64.gradients, p.has_initial_state, ref::fixture_tolerance(dtype),
                            fx.name + " (dynrnn float64)", "CpuVsTensorFlow dynrnn-float64 vs TF-" + dtype);
  const testing_support::LibraryRun run32 = testing_support::run_library<float>(p, &u);
  ref::compare_with_fixture(fx, run32.forward, run32.gradients, p.has_initial_state,
                            ref::fixture_tolerance(dtype, true), fx.name + " (dynrnn float32)",
                            "CpuVsTensorFlow dynrnn-float32 vs TF-" + dtype);

  // Rnn::params() names every variable as TensorFlow does.
  std::unique_ptr<dynrnn::Rnn> rnn;
  ASSERT_TRUE(dynrnn::Rnn::create(testing_support::spec_from_problem(p, dynrnn::DataType::kFloat32),
                                  dynrnn::Backend::kCpu, &rnn)
                  .is_ok());
  ASSERT_EQ(fx.tf_names.size(), rnn->params().size());
  for (const dynrnn::ParamInfo& info : rnn->params()) {
    const std::string key =
        std::string(info.direction == 0 ? "fw/" : "bw/") + std::to_string(info.layer) + "/" + info.local_name;
    auto it = fx.tf_names.find(key);
    ASSERT_NE(it, fx.tf_names.end()) << key;
    EXPECT_EQ(info.name, it->second) << key;
    EXPECT_EQ(info.shape, fx.at(key).dims) << key;
  }
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  return ref::fixture_test_name(info.param);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CpuVsTensorFlow, ::testing::ValuesIn(ref::golden_fixture_paths()), test_name);

}  // namespace
