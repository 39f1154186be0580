// The library itself (CPU executor, public API) against TensorFlow's golden fixtures: outputs, final
// states and every gradient, in float32 and float64; and TF's variable names in the weight table.
#include <gtest/gtest.h>

#include "golden/fixture.h"
#include "library_adapter.h"
#include "library_vs_fixture.h"
#include "reference/fixture_compare.h"
#include "reference/from_fixture.h"

namespace {

class CpuVsTensorFlow : public ::testing::TestWithParam<std::string> {};

TEST_P(CpuVsTensorFlow, OutputsStatesGradientsAndNames) {
  testing_support::expect_library_matches_fixture(GetParam(), dynrnn::Backend::kCpu);

  golden::Fixture fx;
  ASSERT_NO_THROW(fx = golden::load_fixture(GetParam()));
  ref::Problem p;
  ASSERT_NO_THROW(p = ref::problem_from_fixture(fx));
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
