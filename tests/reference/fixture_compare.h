// Compares forward results and gradients (in the reference's types) with a TensorFlow fixture:
// every out/*, final/* and grad/* tensor, both ways round. Shared by the reference's and the
// library's golden tests.
#pragma once

#include <string>
#include <vector>

#include "../golden/fixture.h"
#include "reference.h"

namespace ref {

struct Tolerance {
  double rel;  // ||got - tf|| / ||tf|| per tensor
  double abs;  // max |got - tf| <= abs * max(max |tf|, floor)
  double floor;
};

/// Limits for results computed in float64 (or float32) against a fixture of `dtype`.
Tolerance fixture_tolerance(const std::string& dtype, bool computed_in_float32 = false);

struct CompareSummary {
  double max_rel = 0;
  std::string worst;
  double max_abs_ratio = 0;  // max |got - tf| / max(max |tf|, floor)
  int compared = 0;
};

/// Adds a gtest failure (prefixed with `who`) for every tensor off limits or missing on either side.
/// The worst error per `category` is printed when the test program ends.
CompareSummary compare_with_fixture(const golden::Fixture& fx, const Forward& f, const Gradients& g,
                                    bool has_initial_state, const Tolerance& tol, const std::string& who,
                                    const std::string& category);

/// Sorted fixture paths in DYNRNN_GOLDEN_DIR (empty if unreadable; a test checks there are >= 40).
std::vector<std::string> golden_fixture_paths();

/// A gtest parameter name from a fixture path: its base name without ".txt".
std::string fixture_test_name(const std::string& path);

}  // namespace ref
