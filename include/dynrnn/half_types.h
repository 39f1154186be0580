// dynrnn/half_types.h — the 16-bit storage types of DataType::kBFloat16 and kFloat16, and the
// arithmetic type every element type computes in.
//
// bfloat16 and float16 are storage only: they convert to float on load and from float (round to
// nearest even) on store, and every operation in between is float (compute_t). Their layout is the
// IEEE/bfloat16 bit pattern, so device buffers of them are what cuBLAS calls CUDA_R_16BF / CUDA_R_16F
// and what PyTorch calls torch.bfloat16 / torch.float16. The host conversions are exact software
// versions of the device instructions (cvt.rn.bf16.f32, cvt.rn.f16.f32), so the CPU and CUDA paths
// round identically. A NaN stores as the canonical NaN 0x7fff.
#pragma once

#include <cstdint>
#include <cstring>

#include "dynrnn/host_device.h"

namespace dynrnn {
namespace half_detail {

DYNRNN_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

DYNRNN_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

constexpr uint16_t kCanonicalNaN = 0x7fff;

DYNRNN_HD uint16_t float_to_bf16_bits(float f) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  uint16_t h;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
#else
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return kCanonicalNaN;
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even (overflow carries into inf)
  return static_cast<uint16_t>(u >> 16);
#endif
}

DYNRNN_HD float bf16_bits_to_float(uint16_t h) {
  return bits_float(static_cast<uint32_t>(h) << 16);
}

DYNRNN_HD uint16_t float_to_f16_bits(float f) {
#if defined(__CUDA_ARCH__)
  uint16_t h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
#else
  const uint32_t u = float_bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return kCanonicalNaN;
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to inf
  uint32_t r, rem, half;
  if (a >= 0x38800000u) {  // a normal half (>= 2^-14): rebias the exponent, drop 13 mantissa bits
    r = (a >> 13) - (112u << 10);
    rem = a & 0x1fffu;
    half = 0x1000u;
  } else {  // a subnormal half or zero: the result counts units of 2^-24
    if (a <= 0x33000000u) return static_cast<uint16_t>(sign);  // <= 2^-25 rounds to zero (tie to even)
    const uint32_t m = (a & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - (a >> 23);  // 14..24
    r = m >> shift;
    rem = m & ((1u << shift) - 1u);
    half = 1u << (shift - 1u);
  }
  if (rem > half || (rem == half && (r & 1u))) ++r;  // a carry into the exponent is still exact
  return static_cast<uint16_t>(sign | r);
#endif
}

DYNRNN_HD float f16_bits_to_float(uint16_t h) {
#if defined(__CUDA_ARCH__)
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
#else
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu;
  const uint32_t m = h & 0x3ffu;
  if (e == 0) {  // zero or subnormal: m * 2^-24, exact in float
    const float v = static_cast<float>(m) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  if (e == 31) return bits_float(sign | 0x7f800000u | (m << 13));
  return bits_float(sign | ((e + 112u) << 23) | (m << 13));
#endif
}

/// The bit formats: encode rounds a float to nearest even, decode is exact.
struct BFloat16Format {
  DYNRNN_HD static uint16_t encode(float f) { return float_to_bf16_bits(f); }
  DYNRNN_HD static float decode(uint16_t h) { return bf16_bits_to_float(h); }
};
struct Float16Format {
  DYNRNN_HD static uint16_t encode(float f) { return float_to_f16_bits(f); }
  DYNRNN_HD static float decode(uint16_t h) { return f16_bits_to_float(h); }
};

/// A 16-bit storage type: trivially copyable, converts implicitly from and to float.
template <typename Format>
struct Storage16 {
  uint16_t bits;

  Storage16() = default;
  DYNRNN_HD Storage16(float f) : bits(Format::encode(f)) {}  // NOLINT: implicit by design
  DYNRNN_HD operator float() const { return Format::decode(bits); }
  DYNRNN_HD static Storage16 from_bits(uint16_t b) {
    Storage16 h;
    h.bits = b;
    return h;
  }
};

}  // namespace half_detail

/// bfloat16: 1 sign, 8 exponent, 7 mantissa bits (float's range, about 3 significant digits).
using bfloat16 = half_detail::Storage16<half_detail::BFloat16Format>;
/// IEEE binary16: 1 sign, 5 exponent, 10 mantissa bits (largest finite 65504).
using float16 = half_detail::Storage16<half_detail::Float16Format>;

static_assert(sizeof(bfloat16) == 2 && sizeof(float16) == 2, "16-bit storage types must be 2 bytes");

/// The type an element type T computes in: float for the 16-bit storage types, T otherwise.
template <typename T>
struct ComputeType {
  using type = T;
};
template <typename Format>
struct ComputeType<half_detail::Storage16<Format>> {
  using type = float;
};
template <typename T>
using compute_t = typename ComputeType<T>::type;

}  // namespace dynrnn
