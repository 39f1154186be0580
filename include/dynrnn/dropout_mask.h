// dynrnn/dropout_mask.h — DropoutWrapper's masks, shared by the CPU executor, the CUDA kernels and
// the cell stages (a state mask, cell_math.h).
//
// A mask element is a pure function of the call's seed and the element's coordinates (a counter-based
// generator, Philox4x32-10 of Salmon et al., SC'11, as in Random123, cuRAND and TensorFlow), so the
// CPU path and the GPU draw the same masks, a batch sorted by length draws the caller's rows' masks,
// and backward regenerates forward's masks instead of storing them.
//
// The contract (test oracles reimplement it from this description):
//  * key = (low, high) 32 bits of the seed;
//  * counter = (column j, caller batch row b, step s, stream); with variational_recurrent (j, 0, 0,
//    stream), one mask for every row and step, as TF's noise of shape [1, width] drawn once per run.
//    stream = 4 * layer + 2 * direction + site for the cell's input (site 0) and output (site 1), and
//    2^31 + 2 * layer + direction for its state;
//  * u = (word 0 of Philox4x32-10(counter, key) >> 8) * 2^-24, in [0, 1);
//  * mask = floor(keep + u) computed in the compute type A (TF: binary_tensor = floor(keep_prob +
//    noise)), 1 keeps and 0 drops; forward value = v / keep * mask, gradient = g * mask / keep.
// Coordinates are taken modulo 2^32 (widths, batch and steps beyond that would repeat masks).
#pragma once

#include <cmath>
#include <cstdint>

#include "dynrnn/host_device.h"

namespace dynrnn {
namespace dropout {

struct Words {
  uint32_t w[4];
};

/// Philox4x32-10: ten rounds of two 32x32 -> 64-bit multiplies, the key bumped between rounds.
DYNRNN_HD Words philox4x32_10(Words c, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    const uint64_t p0 = uint64_t(0xD2511F53u) * c.w[0];
    const uint64_t p1 = uint64_t(0xCD9E8D57u) * c.w[2];
    const uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
    const uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
    c = Words{{hi1 ^ c.w[1] ^ k0, lo1, hi0 ^ c.w[3] ^ k1, lo0}};
  }
  return c;
}

/// Where a DropoutWrapper multiplies a mask: the cell's input, its output, its new state.
enum class Site : uint32_t { kInput = 0, kOutput = 1, kState = 2 };

DYNRNN_HD uint32_t stream(int direction, int64_t layer, Site site) {
  if (site == Site::kState) return 0x80000000u | (uint32_t(layer) * 2u + uint32_t(direction));
  return uint32_t(layer) * 4u + uint32_t(direction) * 2u + uint32_t(site);
}

/// The uniform number of one element, exactly representable in float and double.
DYNRNN_HD float uniform(uint64_t seed, uint32_t stream, uint64_t step, uint64_t row, uint64_t col) {
  const Words c{{uint32_t(col), uint32_t(row), uint32_t(step), stream}};
  const Words r = philox4x32_10(c, uint32_t(seed), uint32_t(seed >> 32));
  return float(r.w[0] >> 8) * (1.0f / 16777216.0f);
}

/// One wrapper site's masks for a call, in the compute type A.
template <typename A>
struct Mask {
  uint64_t seed = 0;
  const uint64_t* seed_at = nullptr;  ///< when set, the seed is read here when the stage runs
  uint32_t stream = 0;
  A keep = A(1);
  bool variational = false;
  const int32_t* rows = nullptr;  ///< run row b is caller row rows[b] (a batch sorted by length), or null

  /// floor(keep + u): 1 or 0.
  DYNRNN_HD A at(int64_t step, int64_t b, int64_t j) const {
    using std::floor;
    const uint64_t s = seed_at ? *seed_at : seed;
    const int64_t row = rows ? rows[b] : b;
    const float u = variational ? uniform(s, stream, 0, 0, uint64_t(j))
                                : uniform(s, stream, uint64_t(step), uint64_t(row), uint64_t(j));
    return floor(keep + A(u));
  }
};

}  // namespace dropout
}  // namespace dynrnn
