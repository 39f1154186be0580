#include "fixture_compare.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <exception>
#include <map>
#include <sstream>
#include <utility>
#include <vector>

namespace ref {
namespace {

// Compares one tensor; returns its relative error and the scaled max abs error.
std::pair<double, double> compare(const std::string& who, const std::string& name, const std::vector<double>& got,
                                  const golden::Tensor& want, const Tolerance& tol) {
  if (got.size() != want.values.size()) {
    ADD_FAILURE() << who << ": " << name << ": has " << got.size() << " values, TF has " << want.values.size();
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
    os << who << ": " << name << ": relative error " << rel << " (limit " << tol.rel << "), max abs error " << max_diff
       << " (limit " << abs_limit << "), ||tf|| = " << den << "\n  first mismatches:";
    int shown = 0;
    for (size_t i = 0; i < got.size() && shown < 8; ++i) {
      const double d = std::fabs(got[i] - want.values[i]);
      if (d > tol.rel * std::max(std::fabs(want.values[i]), tol.floor) || std::isnan(d)) {
        os << "\n    [" << i << "] got " << got[i] << "  tf " << want.values[i] << "  diff " << got[i] - want.values[i];
        ++shown;
      }
    }
    ADD_FAILURE() << os.str();
  }
  return {rel, max_diff / std::max(max_tf, tol.floor)};
}

// Worst relative error seen per category over all fixtures, printed when the program ends.
std::map<std::string, CompareSummary>& worst_per_category() {
  static std::map<std::string, CompareSummary> s;
  return s;
}

class WorstErrorReporter : public ::testing::EmptyTestEventListener {
  void OnTestProgramEnd(const ::testing::UnitTest&) override {
    for (const auto& [category, s] : worst_per_category())
      printf("[%s] max relative error %.3g (%s), max scaled abs error %.3g\n", category.c_str(), s.max_rel,
             s.worst.c_str(), s.max_abs_ratio);
  }
};
const bool registered_reporter = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new WorstErrorReporter);
  return true;
}();

}  // namespace

std::vector<std::string> golden_fixture_paths() {
  try {
    return golden::list_fixtures(DYNRNN_GOLDEN_DIR);
  } catch (const std::exception&) {
    return {};
  }
}

std::string fixture_test_name(const std::string& path) {
  std::string base = path.substr(path.find_last_of('/') + 1);
  if (base.size() > 4 && base.compare(base.size() - 4, 4, ".txt") == 0) base.resize(base.size() - 4);
  for (char& c : base)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return base;
}

Tolerance fixture_tolerance(const std::string& dtype, bool computed_in_float32) {
  if (dtype == "float64" && !computed_in_float32) return {1e-10, 1e-9, 1e-3};
  // TF rounds every op to float32; a float32 computation adds its own rounding on top.
  return computed_in_float32 ? Tolerance{5e-5, 1e-4, 1e-3} : Tolerance{2e-5, 5e-5, 1e-3};
}

CompareSummary compare_with_fixture(const golden::Fixture& fx, const Forward& f, const Gradients& g,
                                    bool has_initial_state, const Tolerance& tol, const std::string& who,
                                    const std::string& category) {
  // Every result tensor in the fixture must be matched by a computed value.
  std::map<std::string, const std::vector<double>*> mine;
  mine["out/fw"] = &f.out_fw;
  if (!g.dw_bw.empty()) mine["out/bw"] = &f.out_bw;
  for (const auto& [k, v] : f.final_state) mine["final/" + k] = &v;
  mine["grad/x"] = &g.dx;
  if (has_initial_state)
    for (const auto& [k, v] : g.dinit) mine["grad/init/" + k] = &v;
  for (int d = 0; d < 2; ++d) {
    const auto& dw = d == 0 ? g.dw_fw : g.dw_bw;
    for (size_t l = 0; l < dw.size(); ++l)
      for (const auto& [name, v] : dw[l])
        mine["grad/" + std::string(d == 0 ? "fw/" : "bw/") + std::to_string(l) + "/" + name] = &v;
  }

  CompareSummary s;
  for (const auto& [name, t] : fx.tensors) {
    const bool is_result = name.rfind("out/", 0) == 0 || name.rfind("final/", 0) == 0 || name.rfind("grad/", 0) == 0;
    if (!is_result) continue;
    auto it = mine.find(name);
    if (it == mine.end()) {
      ADD_FAILURE() << who << ": fixture tensor '" << name << "' has no computed counterpart";
      continue;
    }
    const auto [rel, abs_ratio] = compare(who, name, *it->second, t, tol);
    ++s.compared;
    if (rel > s.max_rel) {
      s.max_rel = rel;
      s.worst = fx.name + " " + name;
    }
    s.max_abs_ratio = std::max(s.max_abs_ratio, abs_ratio);
  }
  // ...and every computed value must have a TF value to compare with.
  for (const auto& [name, v] : mine) {
    (void)v;
    EXPECT_TRUE(fx.has(name)) << who << ": TF fixture lacks '" << name << "'";
  }
  EXPECT_EQ(s.compared, static_cast<int>(mine.size())) << who;
  CompareSummary& w = worst_per_category()[category];
  if (s.max_rel >= w.max_rel) {
    w.max_rel = s.max_rel;
    w.worst = s.worst;
  }
  w.max_abs_ratio = std::max(w.max_abs_ratio, s.max_abs_ratio);
  return s;
}

}  // namespace ref
