#include "library_vs_fixture.h"

#include <gtest/gtest.h>

#include "golden/fixture.h"
#include "library_adapter.h"
#include "reference/fixture_compare.h"
#include "reference/from_fixture.h"

namespace testing_support {

void expect_library_matches_fixture(const std::string& path, dynrnn::Backend backend,
                                    dynrnn::RecurrentAlgorithm algorithm) {
  golden::Fixture fx;
  ASSERT_NO_THROW(fx = golden::load_fixture(path));
  ref::Problem p;
  ref::Upstream u;
  ASSERT_NO_THROW(p = ref::problem_from_fixture(fx));
  ASSERT_NO_THROW(u = ref::upstream_from_fixture(fx));
  const std::string dtype = fx.meta_str("dtype");
  const bool persistent = algorithm == dynrnn::RecurrentAlgorithm::kPersistent;
  const std::string where = backend == dynrnn::Backend::kCuda ? (persistent ? "CUDA persistent" : "CUDA") : "CPU";
  LibraryOptions opt;
  opt.backend = backend;
  opt.algorithm = algorithm;

  const LibraryRun run64 = run_library<double>(p, &u, opt);
  ref::compare_with_fixture(fx, run64.forward, run64.gradients, p.has_initial_state, ref::fixture_tolerance(dtype),
                            fx.name + " (dynrnn " + where + " float64)", where + " dynrnn-float64 vs TF-" + dtype);
  const LibraryRun run32 = run_library<float>(p, &u, opt);
  ref::compare_with_fixture(fx, run32.forward, run32.gradients, p.has_initial_state,
                            ref::fixture_tolerance(dtype, true), fx.name + " (dynrnn " + where + " float32)",
                            where + " dynrnn-float32 vs TF-" + dtype);
}

}  // namespace testing_support
