// DropoutWrapper masks: the float64 reference's Philox4x32-10 and the library's
// (include/dynrnn/dropout_mask.h) against Random123's known-answer vectors, the reference's masks
// against the library's Mask<double> / Mask<float> element for element (the input, output and state
// sites), the sites' streams, and the masks' statistics.
#include "dynrnn/dropout_mask.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "reference.h"

namespace {

struct Kat {
  std::array<uint32_t, 4> counter;
  std::array<uint32_t, 2> key;
  std::array<uint32_t, 4> expected;
};

// Random123 kat_vectors, philox4x32 10 rounds: counter[4] key[2] -> output[4].
const Kat kKats[] = {
    {{0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u},
     {0x00000000u, 0x00000000u},
     {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
    {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
     {0xffffffffu, 0xffffffffu},
     {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
    {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
     {0xa4093822u, 0x299f31d0u},
     {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
};

TEST(ReferenceDropoutMask, PhiloxKnownAnswers) {
  for (const Kat& k : kKats) {
    const std::array<uint32_t, 4> r = ref::philox4x32_10(k.counter, k.key[0], k.key[1]);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(r[i], k.expected[i]) << "vector " << (&k - kKats) << " word " << i;
  }
}

TEST(ReferenceDropoutMask, LibraryPhiloxKnownAnswers) {
  for (const Kat& k : kKats) {
    const dynrnn::dropout::Words c{{k.counter[0], k.counter[1], k.counter[2], k.counter[3]}};
    const dynrnn::dropout::Words r = dynrnn::dropout::philox4x32_10(c, k.key[0], k.key[1]);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(r.w[i], k.expected[i]) << "vector " << (&k - kKats) << " word " << i;
  }
}

// The uniform is word 0's top 24 bits over 2^24, keyed by the seed's low and high halves.
TEST(ReferenceDropoutMask, UniformIsWordZeroOfTheContractCounter) {
  const uint64_t seed = 0x0123456789abcdefULL;
  const std::array<uint32_t, 4> r = ref::philox4x32_10({7u, 5u, 3u, 4u * 2u + 2u * 1u + 1u}, 0x89abcdefu, 0x01234567u);
  EXPECT_EQ(ref::dropout_uniform(seed, 1, 2, 1, false, 3, 5, 7), static_cast<double>(r[0] >> 8) / 16777216.0);
  const std::array<uint32_t, 4> v = ref::philox4x32_10({7u, 0u, 0u, 4u * 2u + 0u + 0u}, 0x89abcdefu, 0x01234567u);
  EXPECT_EQ(ref::dropout_uniform(seed, 0, 2, 0, true, 3, 5, 7), static_cast<double>(v[0] >> 8) / 16777216.0);
  // The state site (2): stream 0x80000000 | (2 * layer + direction).
  const std::array<uint32_t, 4> st =
      ref::philox4x32_10({7u, 5u, 3u, 0x80000000u | (2u * 2u + 1u)}, 0x89abcdefu, 0x01234567u);
  EXPECT_EQ(ref::dropout_uniform(seed, 1, 2, 2, false, 3, 5, 7), static_cast<double>(st[0] >> 8) / 16777216.0);
  const std::array<uint32_t, 4> sv =
      ref::philox4x32_10({7u, 0u, 0u, 0x80000000u | (2u * 3u + 0u)}, 0x89abcdefu, 0x01234567u);
  EXPECT_EQ(ref::dropout_uniform(seed, 0, 3, 2, true, 3, 5, 7), static_cast<double>(sv[0] >> 8) / 16777216.0);
}

dynrnn::dropout::Site site_of(int site) {
  return site == 0   ? dynrnn::dropout::Site::kInput
         : site == 1 ? dynrnn::dropout::Site::kOutput
                     : dynrnn::dropout::Site::kState;
}

// The contract's stream of a site, written out here: 4 * layer + 2 * direction + site for the
// input (0) and output (1) sites, 0x80000000 | (2 * layer + direction) for the state site (2).
uint32_t contract_stream(int direction, int64_t layer, int site) {
  if (site == 2) return 0x80000000u | static_cast<uint32_t>(2 * layer + direction);
  return static_cast<uint32_t>(4 * layer + 2 * direction + site);
}

TEST(ReferenceDropoutMask, LibraryStreamsFollowTheContract) {
  std::mt19937_64 rng(77);
  std::vector<int64_t> layers;
  for (int64_t l = 0; l < 64; ++l) layers.push_back(l);
  for (int64_t l : {int64_t(1) << 20, (int64_t(1) << 29) - 1, int64_t(1) << 29, (int64_t(1) << 30) + 5,
                    (int64_t(1) << 31) - 1, int64_t(1) << 32, (int64_t(1) << 40) + 3})
    layers.push_back(l);
  for (int i = 0; i < 1000; ++i) layers.push_back(static_cast<int64_t>(rng() % (uint64_t(1) << 29)));
  for (int64_t l : layers)
    for (int d = 0; d < 2; ++d)
      for (int site = 0; site < 3; ++site)
        ASSERT_EQ(dynrnn::dropout::stream(d, l, site_of(site)), contract_stream(d, l, site))
            << "layer " << l << " direction " << d << " site " << site;
  EXPECT_EQ(dynrnn::dropout::stream(0, 0, dynrnn::dropout::Site::kState), 0x80000000u);
  EXPECT_EQ(dynrnn::dropout::stream(1, 5, dynrnn::dropout::Site::kState), 0x8000000Bu);
  EXPECT_EQ(static_cast<uint32_t>(dynrnn::dropout::Site::kState), 2u);
}

// For every layer < 2^29 the state streams (top bit set) never meet the input and output streams
// (top bit clear), and all streams of a seed are distinct: the sites draw independent masks.
TEST(ReferenceDropoutMask, StateStreamsNeverCollideWithInputOutputStreams) {
  const int64_t kLayers = int64_t(1) << 29;
  // The extremes: the largest input/output stream stays below 2^31, the state streams above it.
  EXPECT_EQ(dynrnn::dropout::stream(1, kLayers - 1, dynrnn::dropout::Site::kOutput), 0x7FFFFFFFu);
  EXPECT_EQ(dynrnn::dropout::stream(0, 0, dynrnn::dropout::Site::kInput), 0u);
  EXPECT_EQ(dynrnn::dropout::stream(1, kLayers - 1, dynrnn::dropout::Site::kState), 0x80000000u | 0x3FFFFFFFu);
  // Exhaustively over the small layers, and over a sample of the large ones.
  std::set<uint32_t> seen;
  size_t n = 0;
  auto add = [&](int64_t l) {
    for (int d = 0; d < 2; ++d)
      for (int site = 0; site < 3; ++site) {
        const uint32_t s = dynrnn::dropout::stream(d, l, site_of(site));
        EXPECT_EQ((s >> 31) != 0, site == 2) << "layer " << l << " direction " << d << " site " << site;
        seen.insert(s);
        ++n;
      }
  };
  for (int64_t l = 0; l < 4096; ++l) add(l);
  std::mt19937_64 rng(5);
  std::set<int64_t> large;
  while (large.size() < 4096) large.insert(4096 + static_cast<int64_t>(rng() % static_cast<uint64_t>(kLayers - 4096)));
  large.insert(kLayers - 1);
  for (int64_t l : large) add(l);
  EXPECT_EQ(seen.size(), n);
  // The state stream is an injection of (layer, direction) below 2^30 layers, the input/output
  // stream of (layer, direction, site) below 2^30 layers: equal streams would mean equal
  // coordinates. Check both maps' inverses on the sample.
  for (int64_t l : large)
    for (int d = 0; d < 2; ++d) {
      const uint32_t s = dynrnn::dropout::stream(d, l, dynrnn::dropout::Site::kState);
      EXPECT_EQ((s & 0x7FFFFFFFu) >> 1, static_cast<uint32_t>(l));
      EXPECT_EQ(s & 1u, static_cast<uint32_t>(d));
      const uint32_t o = dynrnn::dropout::stream(d, l, dynrnn::dropout::Site::kOutput);
      EXPECT_EQ(o >> 2, static_cast<uint32_t>(l));
      EXPECT_EQ((o >> 1) & 1u, static_cast<uint32_t>(d));
      EXPECT_EQ(o & 1u, 1u);
    }
}

// floor(keep + u) of the library in float: keep rounded to float, u (exact in float) added in float.
float float_mask(double u, double keep) {
  return std::floor(static_cast<float>(keep) + static_cast<float>(u));
}

TEST(ReferenceDropoutMask, ReferenceMasksEqualLibraryMasks) {
  std::mt19937_64 rng(20240611);
  const double special_keeps[] = {1.0, 0.5, 0.7, 0.9, 0.95, 0.6, 1e-3, 0.999999, std::nextafter(1.0, 0.0)};
  int kept_d = 0, total = 0, float_double_differ = 0;
  for (int i = 0; i < 200000; ++i) {
    const uint64_t seed = i % 3 == 0 ? rng() : rng() % 8;
    const int direction = static_cast<int>(rng() % 2), layer = static_cast<int>(rng() % 8);
    const int site = static_cast<int>(rng() % 3);  // 2: the state site
    const bool variational = rng() % 4 == 0;
    // Mostly small coordinates; sometimes beyond 2^32 (the contract takes them modulo 2^32).
    const int64_t big = i % 50 == 0 ? (int64_t(1) << 40) : 64;
    const int64_t step = static_cast<int64_t>(rng() % static_cast<uint64_t>(big));
    const int64_t row = static_cast<int64_t>(rng() % static_cast<uint64_t>(big));
    const int64_t col = static_cast<int64_t>(rng() % static_cast<uint64_t>(big));
    const double keep = i % 5 == 0 ? special_keeps[rng() % (sizeof(special_keeps) / sizeof(double))]
                                   : 1.0 - static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);  // (0, 1]
    const double u = ref::dropout_uniform(seed, direction, layer, site, variational, step, row, col);
    const double m = ref::dropout_mask(seed, direction, layer, site, variational, step, row, col, keep);
    ASSERT_TRUE(u >= 0.0 && u < 1.0) << u;
    ASSERT_TRUE(m == 0.0 || m == 1.0) << m;
    EXPECT_EQ(m, std::floor(keep + u));

    dynrnn::dropout::Mask<double> md;
    md.seed = seed;
    md.stream = dynrnn::dropout::stream(direction, layer, site_of(site));
    md.keep = keep;
    md.variational = variational;
    dynrnn::dropout::Mask<float> mf;
    mf.seed = seed;
    mf.stream = md.stream;
    mf.keep = static_cast<float>(keep);
    mf.variational = variational;
    const std::string where = "seed " + std::to_string(seed) + " dir " + std::to_string(direction) + " layer " +
                              std::to_string(layer) + " site " + std::to_string(site) + " var " +
                              std::to_string(variational) + " step " + std::to_string(step) + " row " +
                              std::to_string(row) + " col " + std::to_string(col) + " keep " + std::to_string(keep);
    ASSERT_EQ(md.at(step, row, col), m) << where;
    ASSERT_EQ(mf.at(step, row, col), float_mask(u, keep)) << where;
    float_double_differ += float_mask(u, keep) != m;
    kept_d += m == 1.0;
    ++total;
  }
  // keep 1 always keeps; both outcomes occur; float and double masks agree but for keep's rounding.
  EXPECT_GT(kept_d, 0);
  EXPECT_LT(kept_d, total);
  EXPECT_LE(float_double_differ, 2) << "of " << total;
}

// A batch run sorted by length draws the caller's rows' masks (Mask::rows); seed_at replaces seed.
TEST(ReferenceDropoutMask, LibrarySortedRowsAndSeedPointerDrawCallerRows) {
  const uint64_t seed = 0xfeedfacecafebeefULL;
  const int32_t rows[] = {3, 0, 4, 1, 2};
  for (bool variational : {false, true}) {
    dynrnn::dropout::Mask<double> m;
    m.seed = 1;  // ignored: seed_at is set
    m.seed_at = &seed;
    m.stream = dynrnn::dropout::stream(1, 2, dynrnn::dropout::Site::kOutput);
    m.keep = 0.6;
    m.variational = variational;
    m.rows = rows;
    for (int step = 0; step < 6; ++step)
      for (int b = 0; b < 5; ++b)
        for (int j = 0; j < 9; ++j)
          ASSERT_EQ(m.at(step, b, j), ref::dropout_mask(seed, 1, 2, 1, variational, step, rows[b], j, 0.6))
              << variational << " " << step << " " << b << " " << j;
    m.stream = dynrnn::dropout::stream(0, 3, dynrnn::dropout::Site::kState);
    for (int step = 0; step < 6; ++step)
      for (int b = 0; b < 5; ++b)
        for (int j = 0; j < 9; ++j)
          ASSERT_EQ(m.at(step, b, j), ref::dropout_mask(seed, 0, 3, 2, variational, step, rows[b], j, 0.6))
              << "state " << variational << " " << step << " " << b << " " << j;
  }
}

TEST(ReferenceDropoutMask, KeptFractionMatchesKeep) {
  for (double keep : {0.05, 0.3, 0.5, 0.7, 0.9, 0.95})
    for (int site : {0, 2})
      for (bool variational : {false, true}) {
        int kept = 0, n = 0;
        // 100k draws: variational masks vary by column only, so draw 100k columns there.
        for (int64_t s = 0; s < (variational ? 1 : 100); ++s)
          for (int64_t r = 0; r < (variational ? 1 : 10); ++r)
            for (int64_t c = 0; c < (variational ? 100000 : 100); ++c) {
              kept += ref::dropout_mask(99, 1, 3, site, variational, s, r, c, keep) == 1.0;
              ++n;
            }
        ASSERT_EQ(n, 100000);
        EXPECT_NEAR(static_cast<double>(kept) / n, keep, 0.01)
            << "keep " << keep << " site " << site << " variational " << variational;
      }
  // The uniforms fill [0, 1) evenly: ten buckets within 5% of 10000 each.
  std::vector<int> buckets(10, 0);
  for (int64_t i = 0; i < 100000; ++i)
    ++buckets[static_cast<int>(ref::dropout_uniform(5, 0, 0, 1, false, i % 7, i / 7 % 11, i) * 10)];
  for (int k = 0; k < 10; ++k) EXPECT_NEAR(buckets[k], 10000, 500) << "bucket " << k;
  // keep 1: every element kept.
  for (int64_t i = 0; i < 10000; ++i) ASSERT_EQ(ref::dropout_mask(i, 0, 0, 0, false, i, i, i, 1.0), 1.0);
}

// The mask of 256 columns at a site, step and row.
std::vector<double> mask_row(uint64_t seed, int direction, int layer, int site, bool variational, int64_t step,
                             int64_t row) {
  std::vector<double> m;
  for (int64_t c = 0; c < 256; ++c)
    m.push_back(ref::dropout_mask(seed, direction, layer, site, variational, step, row, c, 0.5));
  return m;
}

TEST(ReferenceDropoutMask, EveryCoordinateChangesTheMask) {
  const std::vector<double> base = mask_row(11, 0, 1, 0, false, 2, 3);
  EXPECT_NE(base, mask_row(12, 0, 1, 0, false, 2, 3));                        // seed
  EXPECT_NE(base, mask_row(11 + (uint64_t(1) << 32), 0, 1, 0, false, 2, 3));  // the seed's high half
  EXPECT_NE(base, mask_row(11, 1, 1, 0, false, 2, 3));                        // direction
  EXPECT_NE(base, mask_row(11, 0, 0, 0, false, 2, 3));                        // layer
  EXPECT_NE(base, mask_row(11, 0, 1, 1, false, 2, 3));                        // site
  EXPECT_NE(base, mask_row(11, 0, 1, 2, false, 2, 3));                        // the state site
  EXPECT_NE(base, mask_row(11, 0, 1, 0, false, 3, 3));                        // step
  EXPECT_NE(base, mask_row(11, 0, 1, 0, false, 2, 4));                        // row
  EXPECT_NE(base, mask_row(11, 0, 1, 0, true, 2, 3));                         // variational
  // All 2 * 3 * 4 streams of a seed distinct (input, output and state sites), and all (step, row)
  // pairs of a stream.
  std::set<std::vector<double>> seen;
  for (int d = 0; d < 2; ++d)
    for (int l = 0; l < 4; ++l)
      for (int s = 0; s < 3; ++s) seen.insert(mask_row(11, d, l, s, false, 0, 0));
  EXPECT_EQ(seen.size(), 24u);
  seen.clear();
  for (int64_t step = 0; step < 8; ++step)
    for (int64_t row = 0; row < 8; ++row) seen.insert(mask_row(11, 0, 1, 0, false, step, row));
  EXPECT_EQ(seen.size(), 64u);
  // Variational: one mask for every step and row, distinct per stream.
  for (int64_t step = 0; step < 8; ++step)
    for (int64_t row = 0; row < 8; ++row)
      EXPECT_EQ(mask_row(11, 0, 1, 0, true, step, row), mask_row(11, 0, 1, 0, true, 0, 0));
  EXPECT_NE(mask_row(11, 0, 1, 0, true, 0, 0), mask_row(11, 0, 1, 1, true, 0, 0));
  EXPECT_NE(mask_row(11, 0, 1, 0, true, 0, 0), mask_row(11, 1, 1, 0, true, 0, 0));
  EXPECT_NE(mask_row(11, 0, 1, 2, true, 0, 0), mask_row(11, 0, 1, 0, true, 0, 0));
  EXPECT_NE(mask_row(11, 0, 1, 2, true, 0, 0), mask_row(11, 0, 1, 1, true, 0, 0));
  for (int64_t step = 0; step < 8; ++step)
    for (int64_t row = 0; row < 8; ++row)
      EXPECT_EQ(mask_row(11, 1, 2, 2, true, step, row), mask_row(11, 1, 2, 2, true, 0, 0));
}

}  // namespace
