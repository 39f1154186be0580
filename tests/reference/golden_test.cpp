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
#include "from_fixture.h"
#include "reference.h"

#ifndef DYNRNN_GOLDEN_DIR
#error "DYNRNN_GOLDEN_DIR must be defined (directory holding the *.txt fixtures)"
#endif

namespace {

std::vector<std::string> fixture_paths() {
  try {
    return golden::list_fixtures(DYNRNN_GOLDEN_DIR);
  } catch (const std::exception&) {
    return {};  // reported by the AtLeastFortyFixtures test
  }
}

struct Tolerance {
  double rel;      // ||ref - tf|| / ||tf|| per tensor
  double abs;      // max |ref - tf| <= abs * max(max |tf|, floor)
  double floor;
};

Tolerance tolerance_for(const std::string& dtype) {
  if (dtype == "float64") return {1e-10, 1e-9, 1e-3};
  return {2e-5, 5e-5, 1e-3};  // float32: TF rounds every op to float32
}

struct Stats {
  double max_rel = 0;
  std::string worst;
  double max_abs_ratio = 0;  // max |ref - tf| / max(max |tf|, floor)
};

// Compares one tensor; returns its relative error and the scaled max abs error.
std::pair<double, double> compare(const std::string& fixture, const std::string& name, const std::vector<double>& got,
               const golden::Tensor& want, const Tolerance& tol) {
  if (got.size() != want.values.size()) {
    ADD_FAILURE() << fixture << ": " << name << ": reference has " << got.size() << " values, TF has "
                  << want.values.size();
    return {INFINITY, INFINITY};
  }
  double num = 0, den = 0, max_diff = 0, max_tf = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = got[i] - want.values[i];
    num += d * d;
    den += want.values[i] * want.values[i];
    max_diff = std::max(max_diff, std::fabs(d));
    max_tf = std::max(max_tf, std::fabs(want.values[i]));
    if (std::isnan(d)) max_diff = INFINITY;
  }
  num = std::sqrt(num);
  den = std::sqrt(den);
  // An all-zero (or tiny) TF tensor is compared absolutely against the floor.
  const double rel = num / std::max(den, tol.floor);
  const double abs_limit = tol.abs * std::max(max_tf, tol.floor);
  if (!(rel <= tol.rel) || !(max_diff <= abs_limit)) {
    std::ostringstream os;
    os.precision(10);
    os << fixture << ": " << name << ": relative error " << rel << " (limit " << tol.rel << "), max abs error "
       << max_diff << " (limit " << abs_limit << "), ||tf|| = " << den << "\n  first mismatches:";
    int shown = 0;
    for (size_t i = 0; i < got.size() && shown < 8; ++i) {
      const double d = std::fabs(got[i] - want.values[i]);
      if (d > tol.rel * std::max(std::fabs(want.values[i]), tol.floor) || std::isnan(d)) {
        os << "\n    [" << i << "] ref " << got[i] << "  tf " << want.values[i] << "  diff " << got[i] - want.values[i];
        ++shown;
      }
    }
    ADD_FAILURE() << os.str();
  }
  return {rel, max_diff / std::max(max_tf, tol.floor)};
}

// Worst relative error seen per dtype over all fixtures (printed at the end).
std::map<std::string, Stats>& worst_per_dtype() {
  static std::map<std::string, Stats> s;
  return s;
}

class ReferenceVsTensorFlow : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceVsTensorFlow, OutputsStatesAndGradients) {
  const std::string path = GetParam();
  golden::Fixture fx;
  ASSERT_NO_THROW(fx = golden::load_fixture(path)) << path;
  const std::string dtype = fx.meta_str("dtype");
  ASSERT_TRUE(dtype == "float32" || dtype == "float64") << dtype;
  const Tolerance tol = tolerance_for(dtype);

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

  // Every result tensor in the fixture must be matched by a reference value.
  std::map<std::string, const std::vector<double>*> mine;
  mine["out/fw"] = &f.out_fw;
  if (!p.bw.empty()) mine["out/bw"] = &f.out_bw;
  for (const auto& [k, v] : f.final_state) mine["final/" + k] = &v;
  mine["grad/x"] = &g.dx;
  if (p.has_initial_state)
    for (const auto& [k, v] : g.dinit) mine["grad/init/" + k] = &v;
  for (int d = 0; d < 2; ++d) {
    const auto& dw = d == 0 ? g.dw_fw : g.dw_bw;
    for (size_t l = 0; l < dw.size(); ++l)
      for (const auto& [name, v] : dw[l])
        mine["grad/" + std::string(d == 0 ? "fw/" : "bw/") + std::to_string(l) + "/" + name] = &v;
  }

  int compared = 0;
  for (const auto& [name, t] : fx.tensors) {
    const bool is_result = name.rfind("out/", 0) == 0 || name.rfind("final/", 0) == 0 || name.rfind("grad/", 0) == 0;
    if (!is_result) continue;
    auto it = mine.find(name);
    if (it == mine.end()) {
      ADD_FAILURE() << fx.name << ": fixture tensor '" << name << "' has no reference counterpart";
      continue;
    }
    const auto [rel, abs_ratio] = compare(fx.name, name, *it->second, t, tol);
    ++compared;
    Stats& s = worst_per_dtype()[dtype];
    if (rel > s.max_rel) {
      s.max_rel = rel;
      s.worst = fx.name + " " + name;
    }
    s.max_abs_ratio = std::max(s.max_abs_ratio, abs_ratio);
  }
  // ...and every reference value must have a TF value to compare with.
  for (const auto& [name, v] : mine) {
    (void)v;
    EXPECT_TRUE(fx.has(name)) << fx.name << ": TF fixture lacks '" << name << "'";
  }
  EXPECT_EQ(compared, static_cast<int>(mine.size())) << fx.name;
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string base = info.param;
  const size_t slash = base.find_last_of('/');
  if (slash != std::string::npos) base = base.substr(slash + 1);
  if (base.size() > 4 && base.compare(base.size() - 4, 4, ".txt") == 0) base.resize(base.size() - 4);
  for (char& c : base)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return base + "_" + std::to_string(info.index);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ReferenceVsTensorFlow, ::testing::ValuesIn(fixture_paths()), test_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(ReferenceVsTensorFlow);

TEST(ReferenceVsTensorFlowSuite, AtLeastFortyFixtures) {
  EXPECT_GE(fixture_paths().size(), 40u) << "fixtures in " << DYNRNN_GOLDEN_DIR;
}

// Prints the worst relative error per dtype once every fixture has run.
class WorstErrorReporter : public ::testing::EmptyTestEventListener {
  void OnTestProgramEnd(const ::testing::UnitTest&) override {
    for (const auto& [dtype, s] : worst_per_dtype())
      printf("[ReferenceVsTensorFlow] %s: max relative error %.3g (%s), max scaled abs error %.3g\n", dtype.c_str(),
             s.max_rel, s.worst.c_str(), s.max_abs_ratio);
  }
};
const bool registered_reporter = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new WorstErrorReporter);
  return true;
}();

}  // namespace
