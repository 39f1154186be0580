// The 16-bit storage types accumulate in float32: GEMMs, column sums (bias gradients), and the
// weight-gradient sums over chunks (README, Precision), on the CPU backend against the float64
// reference. (tests/half_precision_test.cpp checks the arithmetic in general, with tolerances;
// GpuRnn.HalfPrecisionSumsAccumulateInFloat32 in tests/gpu_test.cpp the CUDA backend.)
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "dtype_support.h"
#include "library_adapter.h"

namespace {

using testing_support::LibraryOptions;
using testing_support::LibraryRun;
using testing_support::same_bits;

template <typename T>
class HalfAccumulation : public ::testing::Test {};
using HalfTypes = ::testing::Types<dynrnn::bfloat16, dynrnn::float16>;
TYPED_TEST_SUITE(HalfAccumulation, HalfTypes, testing_support::DtypeNames);

// Every input, weight and upstream gradient below is a multiple of 1/16 in (0, 1) (exact in both
// 16-bit types), so every product is a multiple of 2^-8 below 1 and every partial sum of up to
// 4096 of them a multiple of 2^-8 below 2^12: at most 20 significant bits, exact in float32 in any
// order of summation (the alignment of addends in tensor cores included), and exact in the float64
// reference. Summed in float32 and rounded once to T, the library's result must therefore equal
// the reference's rounded to T bit for bit: the tolerance is zero. Summed in bfloat16 (8
// significant bits) or float16 (11), partial sums lose low bits as soon as they pass 1 (4): a
// sequential sum of terms around 1/4 stalls in the low hundreds (bfloat16), where its spacing
// exceeds twice the terms, and even a pairwise tree of 16-bit additions misses the exactly rounded
// result in most elements. The relu BasicRNN's pre-activations are positive sums, so relu passes
// them (and the upstream gradients) unchanged.

/// A relu BasicRNN over D inputs, H units, T steps, B rows, all of whose values are sixteenths;
/// bias 0, and with zero_recurrent the recurrent kernel rows 0 (every step then is x_t K alone).
ref::Problem sums_problem(int D, int H, int T, int B, bool time_major, bool zero_recurrent, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto sixteenth = [&] { return static_cast<double>(1 + rng() % 15) / 16.0; };  // 1/16 .. 15/16
  ref::Problem p;
  p.T = T, p.B = B, p.D = D, p.time_major = time_major;
  ref::Cell rnn;
  rnn.kind = ref::CellKind::BasicRNN;
  rnn.units = H;
  rnn.relu = true;
  p.fw = {rnn};
  for (int i = 0; i < T * B * D; ++i) p.x.push_back(sixteenth());
  ref::Params w = ref::random_params(p.fw[0], D, rng, 1.0);
  std::vector<double>& kernel = w.at("kernel");  // [D + H, H]
  for (size_t i = 0; i < kernel.size(); ++i) kernel[i] = zero_recurrent && i >= size_t(D) * H ? 0.0 : sixteenth();
  for (double& b : w.at("bias")) b = 0;
  p.w_fw = {w};
  return p;
}

ref::Upstream sixteenths_upstream(const ref::Problem& p, uint64_t seed) {
  std::mt19937_64 rng(seed);
  ref::Upstream u;
  for (int i = 0; i < p.T * p.B * p.fw[0].units; ++i) u.dout_fw.push_back(static_cast<double>(1 + rng() % 15) / 16);
  return u;
}

template <typename T>
void expect_rounded_sums(const std::vector<double>& got, const std::vector<double>& want, size_t count,
                         const char* what) {
  ASSERT_GE(got.size(), count) << what;
  ASSERT_GE(want.size(), count) << what;
  int64_t bad = 0;
  size_t first = 0;
  for (size_t i = 0; i < count; ++i) {
    if (!same_bits(got[i], testing_support::round_to<T>(want[i])) && bad++ == 0) first = i;
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << count << " sums differ from the exact sum rounded once; "
                    << "first at " << first << ": " << got[first] << ", exact " << want[first];
}

TYPED_TEST(HalfAccumulation, GemmsAccumulateInFloat32) {
  using T = TypeParam;
  const int D = 4096, H = 16;
  const ref::Problem p = sums_problem(D, H, /*T=*/1, /*B=*/3, false, false, 1);
  LibraryOptions inference;
  inference.inference = true;
  const LibraryRun got = testing_support::run_library<T>(p, nullptr, inference);
  const std::vector<double> want = ref::forward(p).out_fw;
  expect_rounded_sums<T>(got.forward.out_fw, want, want.size(), "outputs (one GEMM, x K over D = 4096)");
}

TYPED_TEST(HalfAccumulation, WeightGradientGemmsAndColumnSumsAccumulateInFloat32) {
  using T = TypeParam;
  const int D = 8, H = 8;
  const ref::Problem p = sums_problem(D, H, /*T=*/1, /*B=*/4096, false, false, 2);
  const ref::Upstream u = sixteenths_upstream(p, 3);
  const LibraryRun got = testing_support::run_library<T>(p, &u);
  const ref::Gradients want = ref::backward(p, u);
  // The input rows of the kernel gradient (its recurrent rows multiply h0 = 0).
  expect_rounded_sums<T>(got.gradients.dw_fw.at(0).at("kernel"), want.dw_fw[0].at("kernel"), D * H,
                         "kernel gradient (one GEMM, x^T dz over 4096 rows)");
  expect_rounded_sums<T>(got.gradients.dw_fw.at(0).at("bias"), want.dw_fw[0].at("bias"), H,
                         "bias gradient (one column sum over 4096 rows)");
}

TYPED_TEST(HalfAccumulation, WeightGradientsAccumulateOverChunksInFloat32) {
  // 128 one-step chunks, each forming its own kernel-gradient GEMMs and bias column sum: the sums
  // over chunks must also be float32, rounded to T once at the end. With D = 1 and the recurrent
  // kernel rows 0, every h is a single product x K, exact in T, and every step's dz is its upstream
  // gradient, so the whole kernel gradient (x^T dz and h^T dz: sums of 1024 multiples of 2^-12
  // below 1, at most 22 significant bits) and the bias gradient are exact sums.
  using T = TypeParam;
  const int D = 1, H = 4;
  const ref::Problem p = sums_problem(D, H, /*T=*/128, /*B=*/8, /*time_major=*/true, /*zero_recurrent=*/true, 4);
  const ref::Upstream u = sixteenths_upstream(p, 5);
  LibraryOptions chunks;
  chunks.parallel_iterations = 1;
  const LibraryRun got = testing_support::run_library<T>(p, &u, chunks);
  const ref::Gradients want = ref::backward(p, u);
  expect_rounded_sums<T>(got.gradients.dw_fw.at(0).at("kernel"), want.dw_fw[0].at("kernel"), (D + H) * H,
                         "kernel gradient (x^T dz and h^T dz summed over 128 chunks)");
  expect_rounded_sums<T>(got.gradients.dw_fw.at(0).at("bias"), want.dw_fw[0].at("bias"), H,
                         "bias gradient (column sums over 128 chunks)");
}

}  // namespace
