// Host-side tests of bench/sorted_batch.h: reordering a problem's batch and putting results back.
// (The sorted dynrnn rows themselves are verified end to end by the emulated bench tests.)
#include "bench/sorted_batch.h"

#include <gtest/gtest.h>

#include "bench/packed_layout.h"

namespace bench {
namespace {

/// Every element names its place: 1000 g + 10 b + j + 1 for a [groups, B, width] block.
std::vector<double> labelled(int64_t groups, int64_t B, int64_t width, double base = 0) {
  std::vector<double> v;
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < width; ++j) v.push_back(base + 1000.0 * g + 10.0 * b + j + 1);
  return v;
}

TEST(SortedBatch, RowsMoveWithTheirLengthsAndComeBack) {
  Problem p;
  p.shape.T = 3;
  p.shape.B = 4;
  p.shape.I = 2;
  p.shape.H = 3;
  p.lengths = {2, 3, 0, 3};
  p.has_lengths = true;
  // Two state leaves of different widths (an LSTM's c [B, 3] then a projected h [B, 2]).
  p.state = {{"fw/0/c", 0, 0, true, 3, 0}, {"fw/0/h", 0, 0, false, 2, 3}};
  p.state_width = 5;
  p.weights = {1.0, 2.0};
  p.sets.push_back({labelled(3, 4, 2), labelled(3, 4, 3, 0.5), {}});
  const std::vector<int32_t> order = make_packed_layout(p.lengths, p.shape.T).order;
  ASSERT_EQ(order, (std::vector<int32_t>{1, 3, 0, 2}));

  const Problem q = reorder_batch(p, order);
  EXPECT_EQ(q.lengths, (std::vector<int32_t>{3, 3, 2, 0}));
  EXPECT_EQ(q.weights, p.weights);
  for (int64_t t = 0; t < 3; ++t) {
    for (int64_t k = 0; k < 4; ++k) {
      EXPECT_EQ(q.sets[0].x[static_cast<size_t>((t * 4 + k) * 2 + 1)], 1000.0 * t + 10.0 * order[k] + 2);
      EXPECT_EQ(q.sets[0].dy_fw[static_cast<size_t>((t * 4 + k) * 3)], 1000.0 * t + 10.0 * order[k] + 1.5);
    }
  }
  EXPECT_TRUE(q.sets[0].dy_bw.empty());

  // A result of q in q's row order: sequences gathered like q's inputs, states leaf by leaf.
  HostResult r;
  r.out_fw = q.sets[0].dy_fw;
  r.dx = q.sets[0].x;
  std::vector<double> state(20);
  for (int64_t k = 0; k < 4; ++k) {
    for (int64_t j = 0; j < 3; ++j) state[static_cast<size_t>(k * 3 + j)] = 10.0 * order[k] + j;
    for (int64_t j = 0; j < 2; ++j) state[static_cast<size_t>(12 + k * 2 + j)] = 100.0 + 10.0 * order[k] + j;
  }
  r.final_state = state;
  r.has_grads = true;
  r.dw = {3.0};
  const HostResult back = restore_batch_order(p, order, r);
  EXPECT_EQ(back.out_fw, p.sets[0].dy_fw);
  EXPECT_EQ(back.dx, p.sets[0].x);
  EXPECT_TRUE(back.out_bw.empty());
  EXPECT_TRUE(back.dinit.empty());
  EXPECT_EQ(back.dw, r.dw);
  for (int64_t b = 0; b < 4; ++b) {
    for (int64_t j = 0; j < 3; ++j) EXPECT_EQ(back.final_state[static_cast<size_t>(b * 3 + j)], 10.0 * b + j);
    for (int64_t j = 0; j < 2; ++j)
      EXPECT_EQ(back.final_state[static_cast<size_t>(12 + b * 2 + j)], 100.0 + 10.0 * b + j);
  }
  r.final_state.pop_back();
  EXPECT_THROW(restore_batch_order(p, order, r), BenchError);
}

}  // namespace
}  // namespace bench
