// dynrnn::bfloat16 and dynrnn::float16 (include/dynrnn/half_types.h): the host conversions against
// independent oracles — NVIDIA's host implementations in <cuda_bf16.h> / <cuda_fp16.h>
// (__float2bfloat16_rn, __bfloat162float, __float2half_rn, __half2float) and GCC's _Float16.
//
//  * 16 -> float: all 65536 bit patterns, bitwise (NaN: NaN-ness only).
//  * float -> 16 -> float of every finite 16-bit value gives back its bits (exact round trip).
//  * float -> 16: every sign, exponent and kept-mantissa pattern times the rounding-critical bits
//    below the cut (0, 1, just below / at / just above the half-way point, all ones) — the cut
//    moves up with the exponent where float16 results are subnormal — plus a million random
//    floats; bitwise for non-NaN inputs. A NaN must store as the canonical NaN 0x7fff (the
//    library's documented choice, also what cvt.rn.{bf16,f16}.f32 gives); the oracles need only
//    agree that it is a NaN.
//  * DYNRNN_TEST_LEVEL >= 2: every one of the 2^32 floats (13 s per CUDA oracle, 5 minutes for
//    _Float16's software conversion).
#include "dynrnn/half_types.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <type_traits>

namespace {

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// ------------------------------------------------------------------------------------------------
// Oracles: T is the library's type; to_bits / to_float are the oracle's conversions. kept_bits is
// the number of float mantissa bits the type keeps when its result is normal, min_normal_exp the
// float biased exponent of its smallest normal value.

struct CudaBf16 {
  using T = dynrnn::bfloat16;
  static constexpr const char* name = "bfloat16 vs cuda_bf16.h";
  static constexpr bool available = true;
  static constexpr int kept_bits = 7;
  static constexpr uint32_t min_normal_exp = 1;
  static constexpr int64_t sweep_count = 2 * 256 * 128 * 6;  // signs, exponents, kept bits, low patterns
  static uint16_t to_bits(float f) {
    const __nv_bfloat16_raw r = __float2bfloat16_rn(f);
    return r.x;
  }
  static float to_float(uint16_t b) {
    __nv_bfloat16_raw r;
    r.x = b;
    return __bfloat162float(__nv_bfloat16(r));
  }
};

struct CudaFp16 {
  using T = dynrnn::float16;
  static constexpr const char* name = "float16 vs cuda_fp16.h";
  static constexpr bool available = true;
  static constexpr int kept_bits = 10;
  static constexpr uint32_t min_normal_exp = 113;  // 2^-14
  // Signs and low patterns times kept-bit patterns: 1024 for each normal exponent, fewer below.
  static constexpr int64_t sweep_count = 1770696;
  static uint16_t to_bits(float f) {
    const __half_raw r = __float2half_rn(f);
    return r.x;
  }
  static float to_float(uint16_t b) {
    __half_raw r;
    r.x = b;
    return __half2float(__half(r));
  }
};

#if defined(__FLT16_MAX__)
#define DYNRNN_HAVE_FLOAT16 1
#else
#define DYNRNN_HAVE_FLOAT16 0
#endif

struct GccFp16 {
  using T = dynrnn::float16;
  static constexpr const char* name = "float16 vs _Float16";
  static constexpr bool available = DYNRNN_HAVE_FLOAT16 != 0;
  static constexpr int kept_bits = 10;
  static constexpr uint32_t min_normal_exp = 113;
  static constexpr int64_t sweep_count = CudaFp16::sweep_count;
#if DYNRNN_HAVE_FLOAT16
  static uint16_t to_bits(float f) {
    const _Float16 h = static_cast<_Float16>(f);
    uint16_t b;
    std::memcpy(&b, &h, sizeof b);
    return b;
  }
  static float to_float(uint16_t b) {
    _Float16 h;
    std::memcpy(&h, &b, sizeof h);
    return static_cast<float>(h);
  }
#else
  static uint16_t to_bits(float) {
    return 0;
  }
  static float to_float(uint16_t) {
    return 0;
  }
#endif
};

/// Counts disagreements and keeps the first few for the failure message.
struct Mismatches {
  int64_t count = 0, checked = 0;
  std::string first;
  void add(const char* what, uint32_t input, uint32_t got, uint32_t want) {
    if (count++ < 8) {
      char line[160];
      std::snprintf(line, sizeof line, "  %s 0x%08x: library 0x%08x, oracle 0x%08x\n", what, input, got, want);
      first += line;
    }
  }
};

/// The library and the oracle on float -> 16 bits for one float.
template <typename O>
void check_from_float(uint32_t fbits, Mismatches& m) {
  const float f = bits_float(fbits);
  const uint16_t got = typename O::T(f).bits;
  const uint16_t want = O::to_bits(f);
  ++m.checked;
  if (std::isnan(f)) {
    if (got != dynrnn::half_detail::kCanonicalNaN) m.add("NaN not stored as 0x7fff:", fbits, got, want);
    if (!std::isnan(O::to_float(want))) m.add("oracle did not give a NaN for", fbits, got, want);
  } else if (got != want) {
    m.add("float", fbits, got, want);
  }
}

template <typename O>
class HalfConversion : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!O::available) GTEST_SKIP() << "this compiler has no _Float16";
  }
};

using Oracles = ::testing::Types<CudaBf16, CudaFp16, GccFp16>;
struct OracleNames {
  template <typename O>
  static std::string GetName(int) {
    return std::is_same<O, CudaBf16>::value ? "CudaBf16" : (std::is_same<O, CudaFp16>::value ? "CudaFp16" : "GccFp16");
  }
};
TYPED_TEST_SUITE(HalfConversion, Oracles, OracleNames);

TYPED_TEST(HalfConversion, EveryBitPatternWidensExactly) {
  using O = TypeParam;
  Mismatches m;
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    const float got = static_cast<float>(O::T::from_bits(static_cast<uint16_t>(b)));
    const float want = O::to_float(static_cast<uint16_t>(b));
    ++m.checked;
    if (std::isnan(want) ? !std::isnan(got) : float_bits(got) != float_bits(want)) {
      m.add("bits", b, float_bits(got), float_bits(want));
    }
  }
  EXPECT_EQ(m.checked, 65536);
  EXPECT_EQ(m.count, 0) << O::name << ": " << m.count << " of " << m.checked << " differ\n" << m.first;
}

TYPED_TEST(HalfConversion, EveryNonNaNValueRoundTripsExactly) {
  using O = TypeParam;
  Mismatches m;
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    const float f = static_cast<float>(O::T::from_bits(static_cast<uint16_t>(b)));
    if (std::isnan(f)) continue;
    ++m.checked;
    const uint16_t back = typename O::T(f).bits;
    if (back != b) m.add("bits", b, back, b);
  }
  // Both types have 2 * (2^(16-1) - 2^mantissa_bits + 1) non-NaN patterns (every exponent but the
  // all-ones one, plus the two infinities).
  EXPECT_EQ(m.checked, 2 * (32768 - (int64_t(1) << O::kept_bits) + 1));
  EXPECT_EQ(m.count, 0) << O::name << ": " << m.count << " of " << m.checked << " do not round-trip\n" << m.first;
}

TYPED_TEST(HalfConversion, StructuredSweepOfRoundingCases) {
  using O = TypeParam;
  Mismatches m;
  for (uint32_t sign = 0; sign < 2; ++sign) {
    for (uint32_t e = 0; e < 256; ++e) {
      // Float mantissa bits below the type's last kept bit: 23 - kept_bits for normal results, more
      // for float16's subnormal results (each exponent step down drops one more), capped where
      // every mantissa bit and the implicit one are dropped.
      const uint32_t eff = e == 0 ? 1 : e;  // float subnormals share exponent 1's scale
      const uint32_t extra = eff < O::min_normal_exp ? O::min_normal_exp - eff : 0;
      const uint32_t cut = std::min<uint32_t>(23 - O::kept_bits + extra, 25);
      const uint64_t half = uint64_t(1) << (cut - 1);
      const uint64_t lows[] = {0, 1, half - 1, half, half + 1, (uint64_t(1) << cut) - 1};
      const uint32_t highs = cut < 23 ? 1u << (23 - cut) : 1u;
      for (uint32_t hi = 0; hi < highs; ++hi) {
        for (uint64_t low : lows) {
          const uint32_t mant = static_cast<uint32_t>(((uint64_t(hi) << cut) | low) & 0x7fffffu);
          check_from_float<O>((sign << 31) | (e << 23) | mant, m);
        }
      }
    }
  }
  EXPECT_EQ(m.checked, O::sweep_count);
  EXPECT_EQ(m.count, 0) << O::name << ": " << m.count << " of " << m.checked << " differ\n" << m.first;
}

TYPED_TEST(HalfConversion, RandomFloatsRound) {
  using O = TypeParam;
  Mismatches m;
  std::mt19937 rng(0xB16F);
  for (int i = 0; i < 500000; ++i) check_from_float<O>(rng(), m);  // any bit pattern: NaN and Inf included
  // Exponents around the type's range (float16: subnormal results, overflow, the normal range).
  std::uniform_int_distribution<uint32_t> exp(O::min_normal_exp > 30 ? O::min_normal_exp - 30 : 0,
                                              O::min_normal_exp > 30 ? 145 : 255);
  for (int i = 0; i < 500000; ++i) {
    check_from_float<O>((rng() & 0x807fffffu) | (exp(rng) << 23), m);
  }
  EXPECT_EQ(m.count, 0) << O::name << ": " << m.count << " of " << m.checked << " differ\n" << m.first;
}

#if DYNRNN_TEST_LEVEL >= 2
TYPED_TEST(HalfConversion, EveryFloatRounds) {
  using O = TypeParam;
  Mismatches m;
  uint32_t b = 0;
  do {
    check_from_float<O>(b, m);
  } while (++b != 0);
  EXPECT_EQ(m.count, 0) << O::name << ": " << m.count << " of " << m.checked << " differ\n" << m.first;
}
#endif

// ------------------------------------------------------------------------------------------------
// Named edge cases, so that a failure reads at once (the sweeps above cover them too).

TEST(HalfTypes, Float16EdgeValues) {
  using dynrnn::float16;
  EXPECT_EQ(float16(65504.0f).bits, 0x7bff);                        // largest finite
  EXPECT_EQ(float16(std::nextafter(65520.0f, 0.0f)).bits, 0x7bff);  // just below the half-way point to 2^16
  EXPECT_EQ(float16(65520.0f).bits, 0x7c00);                        // the tie rounds to even: infinity
  EXPECT_EQ(float16(-65520.0f).bits, 0xfc00);
  EXPECT_EQ(float16(1e30f).bits, 0x7c00);
  EXPECT_EQ(float16(INFINITY).bits, 0x7c00);
  EXPECT_EQ(float16(std::ldexp(1.0f, -24)).bits, 0x0001);                        // smallest subnormal
  EXPECT_EQ(float16(std::ldexp(1.0f, -25)).bits, 0x0000);                        // tie to even: zero
  EXPECT_EQ(float16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)).bits, 0x0001);  // above the tie
  EXPECT_EQ(float16(-std::ldexp(1.0f, -25)).bits, 0x8000);                       // keeps the sign
  EXPECT_EQ(float16(std::ldexp(3.0f, -25)).bits, 0x0002);                        // 1.5 units: tie to even (2)
  EXPECT_EQ(float16(std::ldexp(1023.5f, -24)).bits, 0x0400);                     // rounds up out of the subnormals
  EXPECT_EQ(float16(1.0f + std::ldexp(1.0f, -11)).bits, 0x3c00);                 // tie to even (down)
  EXPECT_EQ(float16(1.0f + std::ldexp(3.0f, -11)).bits, 0x3c02);                 // tie to even (up)
  EXPECT_EQ(float16(-0.0f).bits, 0x8000);
  EXPECT_EQ(float16(NAN).bits, 0x7fff);
  EXPECT_EQ(float16(-NAN).bits, 0x7fff);
  EXPECT_EQ(static_cast<float>(float16::from_bits(0x0001)), std::ldexp(1.0f, -24));
  EXPECT_EQ(static_cast<float>(float16::from_bits(0xfc00)), -INFINITY);
}

TEST(HalfTypes, BFloat16EdgeValues) {
  using dynrnn::bfloat16;
  EXPECT_EQ(bfloat16(3.3895313892515355e38f).bits, 0x7f7f);                    // largest finite bfloat16
  EXPECT_EQ(bfloat16(std::numeric_limits<float>::max()).bits, 0x7f80);         // rounds up to infinity
  EXPECT_EQ(bfloat16(1.0f + std::ldexp(1.0f, -8)).bits, 0x3f80);               // tie to even (down)
  EXPECT_EQ(bfloat16(1.0f + std::ldexp(3.0f, -8)).bits, 0x3f82);               // tie to even (up)
  EXPECT_EQ(bfloat16(std::numeric_limits<float>::denorm_min()).bits, 0x0000);  // tie to even: zero
  EXPECT_EQ(bfloat16(bits_float(0x00008001)).bits, 0x0001);                    // float subnormals round like the rest
  EXPECT_EQ(bfloat16(-0.0f).bits, 0x8000);
  EXPECT_EQ(bfloat16(NAN).bits, 0x7fff);
  EXPECT_EQ(bfloat16(bits_float(0xff800001)).bits, 0x7fff);  // a signalling, negative NaN too
  EXPECT_EQ(bfloat16(bits_float(0x7fffffff)).bits, 0x7fff);  // a NaN must not carry into infinity
}

TEST(HalfTypes, ComputeTypesAndSizes) {
  static_assert(sizeof(dynrnn::bfloat16) == 2 && sizeof(dynrnn::float16) == 2, "16-bit storage");
  static_assert(std::is_trivially_copyable<dynrnn::bfloat16>::value, "memcpy-able buffers");
  static_assert(std::is_trivially_copyable<dynrnn::float16>::value, "memcpy-able buffers");
  static_assert(std::is_same<dynrnn::compute_t<dynrnn::bfloat16>, float>::value, "bf16 computes in float");
  static_assert(std::is_same<dynrnn::compute_t<dynrnn::float16>, float>::value, "fp16 computes in float");
  static_assert(std::is_same<dynrnn::compute_t<float>, float>::value, "float computes in float");
  static_assert(std::is_same<dynrnn::compute_t<double>, double>::value, "double computes in double");
  // The layouts cuBLAS (CUDA_R_16BF / CUDA_R_16F) and PyTorch read.
  static_assert(sizeof(__nv_bfloat16) == 2 && sizeof(__half) == 2, "the oracle types are 16 bits too");
  SUCCEED();
}

}  // namespace
