// The float64 reference against TensorFlow's golden fixtures: outputs, final
// states and every gradient (x, initial state, every parameter).
// Needs the compile definition DYNRNN_GOLDEN_DIR (string literal).
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <exception>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "../golden/fixture.h"
#include "fixture_compare.h"
#include "from_fixture.h"
#include "reference.h"

#ifndef DYNRNN_GOLDEN_DIR
#error "DYNRNN_GOLDEN_DIR must be defined (directory holding the *.txt fixtures)"
#endif

namespace {

class ReferenceVsTensorFlow : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceVsTensorFlow, OutputsStatesAndGradients) {
  const std::string path = GetParam();
  golden::Fixture fx;
  ASSERT_NO_THROW(fx = golden::load_fixture(path)) << path;
  const std::string dtype = fx.meta_str("dtype");
  ASSERT_TRUE(dtype == "float32" || dtype == "float64") << dtype;
  const ref::Tolerance tol = ref::fixture_tolerance(dtype);

  ref::Problem p;
  ref::Upstream u;
  try {
    p = ref::problem_from_fixture(fx);
    u = ref::upstream_from_fixture(fx);
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  const ref::Forward f = ref::forward(p);
  const ref::Gradients g = ref::backward(p, u);

  ref::compare_with_fixture(fx, f, g, p.has_initial_state, tol, fx.name, "ReferenceVsTensorFlow " + dtype);
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  return ref::fixture_test_name(info.param);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ReferenceVsTensorFlow, ::testing::ValuesIn(ref::golden_fixture_paths()), test_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(ReferenceVsTensorFlow);

TEST(ReferenceVsTensorFlowSuite, AtLeastFortyFixtures) {
  EXPECT_GE(ref::golden_fixture_paths().size(), 40u) << "fixtures in " << DYNRNN_GOLDEN_DIR;
}

}  // namespace
