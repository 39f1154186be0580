// Host-side tests of bench/packed_layout.h: the sort, the step offsets, pack/unpack of padded
// buffers and the state order, i.e. everything the cuDNN packed rows rely on besides cuDNN itself.
#include "bench/packed_layout.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "bench/types.h"

namespace bench {
namespace {

/// A padded [T, B, W] buffer whose every element names its position: 1000 t + 10 b + j + 1.
std::vector<double> labelled(int64_t T, int64_t B, int64_t W) {
  std::vector<double> v(static_cast<size_t>(T * B * W));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < W; ++j) v[static_cast<size_t>((t * B + b) * W + j)] = 1000.0 * t + 10.0 * b + j + 1;
  return v;
}

TEST(PackedLayout, SortsDescendingAndKeepsTiesInBatchOrder) {
  const PackedLayout l = make_packed_layout({3, 5, 3, 5, 1}, 5);
  EXPECT_EQ(l.order, (std::vector<int32_t>{1, 3, 0, 2, 4}));
  EXPECT_EQ(l.sorted_lengths, (std::vector<int32_t>{5, 5, 3, 3, 1}));
  // Step t holds the sequences longer than t: 5, 4, 4, 2, 2 rows.
  EXPECT_EQ(l.step_offset, (std::vector<int64_t>{0, 5, 9, 13, 15, 17}));
  EXPECT_EQ(l.max_length(), 5);
  EXPECT_EQ(l.step_rows(0), 5);
  EXPECT_EQ(l.step_rows(4), 2);
  EXPECT_EQ(l.rows(), 3 + 5 + 3 + 5 + 1);
}

TEST(PackedLayout, ClampsLengthsToTheTimeAxis) {
  const PackedLayout l = make_packed_layout({9, -2, 4}, 4);
  EXPECT_EQ(l.order, (std::vector<int32_t>{0, 2, 1}));
  EXPECT_EQ(l.sorted_lengths, (std::vector<int32_t>{4, 4, 0}));
  EXPECT_EQ(l.rows(), 8);
}

TEST(PackedLayout, ZeroLengthIsReportedUnsupportedButHandled) {
  const PackedLayout l = make_packed_layout({2, 0, 3}, 3);
  const std::string why = packed_unsupported_reason(l);
  EXPECT_NE(why.find("batch row 1"), std::string::npos) << why;
  EXPECT_NE(why.find("length 0"), std::string::npos) << why;
  // The layout itself stays well-defined (the zero-length row sorts last and owns no packed row),
  // so nothing crashes before the runner reports the batch unsupported.
  EXPECT_EQ(l.order, (std::vector<int32_t>{2, 0, 1}));
  EXPECT_EQ(l.rows(), 5);
  const std::vector<double> x = labelled(3, 3, 2);
  const std::vector<double> back = unpack_rows(l, pack_rows(l, x, 2), 2);
  for (int64_t t = 0; t < 3; ++t)
    for (int64_t j = 0; j < 2; ++j) EXPECT_EQ(back[static_cast<size_t>((t * 3 + 1) * 2 + j)], 0.0);

  EXPECT_EQ(packed_unsupported_reason(make_packed_layout({1, 3, 2}, 3)), "");
}

TEST(PackedLayout, PacksStepByStepInSortedOrder) {
  const int64_t T = 4, B = 3, W = 2;
  const PackedLayout l = make_packed_layout({2, 4, 1}, T);  // order 1, 0, 2
  const std::vector<double> packed = pack_rows(l, labelled(T, B, W), W);
  ASSERT_EQ(packed.size(), static_cast<size_t>(7 * W));
  // Rows: t0: b1 b0 b2 | t1: b1 b0 | t2: b1 | t3: b1.
  const int rows[7][2] = {{0, 1}, {0, 0}, {0, 2}, {1, 1}, {1, 0}, {2, 1}, {3, 1}};
  for (int r = 0; r < 7; ++r)
    for (int j = 0; j < W; ++j)
      EXPECT_EQ(packed[static_cast<size_t>(r * W + j)], 1000.0 * rows[r][0] + 10.0 * rows[r][1] + j + 1) << r;
}

TEST(PackedLayout, RoundTripKeepsValidPositionsAndZeroesPadding) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    const int64_t T = 1 + static_cast<int64_t>(rng() % 9), B = 1 + static_cast<int64_t>(rng() % 7),
                  W = 1 + static_cast<int64_t>(rng() % 4);
    std::vector<int32_t> lengths(static_cast<size_t>(B));
    // Lengths in [1, T] over a small range, so that ties are common.
    for (int32_t& len : lengths) len = static_cast<int32_t>(1 + rng() % static_cast<uint32_t>(std::min<int64_t>(T, 3)));
    const PackedLayout l = make_packed_layout(lengths, T);
    ASSERT_EQ(packed_unsupported_reason(l), "");
    int64_t sum = 0;
    for (int32_t len : lengths) sum += len;
    ASSERT_EQ(l.rows(), sum);
    for (size_t k = 1; k < l.sorted_lengths.size(); ++k) {
      ASSERT_GE(l.sorted_lengths[k - 1], l.sorted_lengths[k]);
      if (l.sorted_lengths[k - 1] == l.sorted_lengths[k]) {
        ASSERT_LT(l.order[k - 1], l.order[k]);  // stable: ties in batch order
      }
    }
    const std::vector<double> x = labelled(T, B, W);
    const std::vector<double> back = unpack_rows(l, pack_rows(l, x, W), W);
    ASSERT_EQ(back.size(), x.size());
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t b = 0; b < B; ++b) {
        for (int64_t j = 0; j < W; ++j) {
          const size_t i = static_cast<size_t>((t * B + b) * W + j);
          EXPECT_EQ(back[i], t < lengths[static_cast<size_t>(b)] ? x[i] : 0.0) << "t " << t << " b " << b;
        }
      }
    }
  }
}

TEST(PackedLayout, EqualLengthsPackToThePaddedBytes) {
  EXPECT_FALSE(lengths_ragged({5, 5, 5}, 5));
  EXPECT_FALSE(lengths_ragged({5, 7}, 5));  // both clamp to T
  EXPECT_FALSE(lengths_ragged({3}, 5));
  EXPECT_TRUE(lengths_ragged({5, 4, 5}, 5));
  const PackedLayout l = make_packed_layout({3, 3, 3, 3}, 3);
  const std::vector<double> x = labelled(3, 4, 2);
  EXPECT_EQ(pack_rows(l, x, 2), x);
}

TEST(PackedLayout, StatesGoBackToBatchOrder) {
  // What cuDNN computes in the packed layout, emulated: sorted sequence k owns packed row
  // step_offset[t] + k at every step t < its length, and its state sits at batch index k. Here the
  // "state" is the sum of the sequence's inputs; after unsorting it must equal the same sum taken
  // over the padded buffer in batch order, for each of two state groups (layers or directions).
  const int64_t T = 6, B = 5, W = 2, groups = 2;
  const std::vector<int32_t> lengths = {2, 6, 2, 5, 1};
  const PackedLayout l = make_packed_layout(lengths, T);
  const std::vector<double> x = labelled(T, B, W);
  const std::vector<double> packed = pack_rows(l, x, W);
  std::vector<double> sorted_states(static_cast<size_t>(groups * B * W), 0.0);
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t t = 0; t < l.max_length(); ++t)
      for (int64_t k = 0; k < l.step_rows(t); ++k)
        for (int64_t j = 0; j < W; ++j)
          sorted_states[static_cast<size_t>((g * B + k) * W + j)] +=
              (g + 1) * packed[static_cast<size_t>((l.step_offset[static_cast<size_t>(t)] + k) * W + j)];
  const std::vector<double> states = unsort_state_rows(l, sorted_states, W);
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t j = 0; j < W; ++j) {
        double want = 0;
        for (int64_t t = 0; t < lengths[static_cast<size_t>(b)]; ++t)
          want += (g + 1) * x[static_cast<size_t>((t * B + b) * W + j)];
        EXPECT_EQ(states[static_cast<size_t>((g * B + b) * W + j)], want) << "group " << g << " b " << b;
      }
    }
  }
}

TEST(PackedLayout, SizeMismatchesThrow) {
  const PackedLayout l = make_packed_layout({2, 1}, 2);
  EXPECT_THROW(pack_rows(l, std::vector<double>(5), 1), BenchError);
  EXPECT_THROW(unpack_rows(l, std::vector<double>(4), 1), BenchError);
  EXPECT_THROW(unsort_state_rows(l, std::vector<double>(5), 1), BenchError);
}

}  // namespace
}  // namespace bench
