// dynrnn's orchestration and cell math, run by the CPU executor through the public API, against the
// independent float64 reference on random configurations (every cell and option, stacks, both
// directions, both layouts, length edge cases, T = 0 and B = 0).
#include <gtest/gtest.h>

#include "library_adapter.h"
#include "random_problem.h"

namespace {

using testing_support::describe;
using testing_support::rel_error;

void expect_close(const std::string& what, const std::vector<double>& got, const std::vector<double>& want, double tol,
                  const std::string& ctx) {
  const double e = rel_error(got, want, 1e-6);
  EXPECT_LE(e, tol) << what << " relative error " << e << " — " << ctx;
}

void compare_named(const std::string& what, const ref::Named& got, const ref::Named& want, double tol,
                   const std::string& ctx) {
  EXPECT_EQ(got.size(), want.size()) << what << " — " << ctx;
  for (const auto& [name, values] : want) {
    auto it = got.find(name);
    if (it == got.end()) {
      ADD_FAILURE() << what << " lacks " << name << " — " << ctx;
      continue;
    }
    expect_close(what + " " + name, it->second, values, tol, ctx);
  }
}

void compare_params(const std::string& what, const std::vector<ref::Params>& got, const std::vector<ref::Params>& want,
                    double tol, const std::string& ctx) {
  ASSERT_EQ(got.size(), want.size()) << ctx;
  for (size_t l = 0; l < want.size(); ++l) {
    for (const auto& [name, values] : want[l]) {
      auto it = got[l].find(name);
      if (it == got[l].end()) {
        ADD_FAILURE() << what << " layer " << l << " lacks " << name << " — " << ctx;
        continue;
      }
      expect_close(what + " layer " + std::to_string(l) + " " + name, it->second, values, tol, ctx);
    }
  }
}

/// Runs one problem through the library in dtype T and compares everything with the reference.
template <typename T>
void check_problem(const ref::Problem& p, const ref::Upstream& up, double tol,
                   const testing_support::LibraryOptions& opt = {}) {
  const std::string ctx = describe(p) + " parallel_iterations=" + std::to_string(opt.parallel_iterations) +
                          (opt.swap_memory ? " swap_memory" : "") + (opt.recompute ? " recompute" : "");
  const ref::Forward want = ref::forward(p);
  const ref::Gradients want_g = ref::backward(p, up);
  const testing_support::LibraryRun got = testing_support::run_library<T>(p, &up, opt);
  expect_close("out_fw", got.forward.out_fw, want.out_fw, tol, ctx);
  expect_close("out_bw", got.forward.out_bw, want.out_bw, tol, ctx);
  compare_named("final_state", got.forward.final_state, want.final_state, tol, ctx);
  expect_close("grad x", got.gradients.dx, want_g.dx, tol, ctx);
  compare_named("grad initial_state", got.gradients.dinit, want_g.dinit, tol, ctx);
  compare_params("grad fw", got.gradients.dw_fw, want_g.dw_fw, tol, ctx);
  compare_params("grad bw", got.gradients.dw_bw, want_g.dw_bw, tol, ctx);

  // TF's exact rules: outputs past each length are exactly zero; a row of length <= 0 returns its
  // initial state bit for bit.
  if (!p.has_seq_len) return;
  const int64_t width = ref::output_width(p.fw.back());
  for (int b = 0; b < p.B; ++b) {
    const int len = std::min(std::max(p.seq_len[b], 0), p.T);
    for (int t = len; t < p.T; ++t) {
      const int64_t row = p.time_major ? int64_t(t) * p.B + b : int64_t(b) * p.T + t;
      for (int64_t j = 0; j < width; ++j) {
        ASSERT_EQ(got.forward.out_fw[row * width + j], 0.0) << "t=" << t << " b=" << b << " — " << ctx;
      }
    }
    if (len > 0) continue;
    for (const auto& [name, values] : got.forward.final_state) {
      const int64_t w = static_cast<int64_t>(values.size()) / p.B;
      for (int64_t j = 0; j < w; ++j) {
        const double init = p.has_initial_state ? static_cast<double>(static_cast<T>(p.init.at(name)[b * w + j])) : 0.0;
        ASSERT_EQ(values[b * w + j], init) << name << " row " << b << " — " << ctx;
      }
    }
  }
}

TEST(CpuVsReference, Float64RandomConfigurations) {
  std::mt19937_64 rng(20261127);
  testing_support::ProblemOptions opt;
  for (int i = 0; i < 200; ++i) {
    const ref::Problem p = testing_support::random_problem(rng, opt);
    const ref::Upstream up = testing_support::random_upstream(p, rng);
    SCOPED_TRACE("configuration " + std::to_string(i));
    check_problem<double>(p, up, 1e-11);
    if (HasFatalFailure()) return;
  }
}

// Chunked schedules (parallel_iterations below T: layer wavefront, per-chunk projections and
// weight-gradient GEMMs), swap_memory with the smallest ring, and recompute give the reference's
// results too.
TEST(CpuVsReference, Float64ChunkedAndSwappedSchedules) {
  std::mt19937_64 rng(99);
  testing_support::ProblemOptions opt;
  opt.max_time = 9;
  for (int i = 0; i < 120; ++i) {
    const ref::Problem p = testing_support::random_problem(rng, opt);
    const ref::Upstream up = testing_support::random_upstream(p, rng);
    testing_support::LibraryOptions lib;
    lib.parallel_iterations = 1 + static_cast<int>(rng() % 4);
    lib.swap_memory = rng() % 2 == 0;
    lib.recompute = rng() % 2 == 0;
    SCOPED_TRACE("configuration " + std::to_string(i));
    check_problem<double>(p, up, 1e-11, lib);
    if (HasFatalFailure()) return;
  }
}

TEST(CpuVsReference, Float32RandomConfigurations) {
  std::mt19937_64 rng(7);
  testing_support::ProblemOptions opt;
  opt.allow_relu = false;  // float32 rounding may cross a kink the float64 reference does not
  opt.allow_clip = false;
  for (int i = 0; i < 60; ++i) {
    const ref::Problem p = testing_support::random_problem(rng, opt);
    const ref::Upstream up = testing_support::random_upstream(p, rng);
    SCOPED_TRACE("configuration " + std::to_string(i));
    check_problem<float>(p, up, 2e-5);
    if (HasFatalFailure()) return;
  }
}

TEST(CpuVsReference, Float64LargerShapesNotMultiplesOf32) {
  std::mt19937_64 rng(33);
  testing_support::ProblemOptions opt;
  opt.max_time = 9;
  opt.max_batch = 7;
  opt.max_depth = 37;
  opt.max_units = 33;
  opt.max_layers = 2;
  for (int i = 0; i < 6; ++i) {
    const ref::Problem p = testing_support::random_problem(rng, opt);
    const ref::Upstream up = testing_support::random_upstream(p, rng);
    SCOPED_TRACE("configuration " + std::to_string(i));
    check_problem<double>(p, up, 1e-11);
  }
}

}  // namespace
