// The element types the tests run the library in: each one's DataType and unit roundoff, a
// dispatch from a DataType to its type, and rounding of float64 reference problems to a type (so
// that the reference and the library start from the very same values and a comparison measures
// only the library's arithmetic).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "dynrnn/half_types.h"
#include "dynrnn/spec.h"
#include "reference/reference.h"

namespace testing_support {

template <typename T>
struct DtypeOf;
template <>
struct DtypeOf<float> {
  static constexpr dynrnn::DataType value = dynrnn::DataType::kFloat32;
  static constexpr int mantissa_bits = 24;  ///< significand bits, the implicit one included
};
template <>
struct DtypeOf<double> {
  static constexpr dynrnn::DataType value = dynrnn::DataType::kFloat64;
  static constexpr int mantissa_bits = 53;
};
template <>
struct DtypeOf<dynrnn::bfloat16> {
  static constexpr dynrnn::DataType value = dynrnn::DataType::kBFloat16;
  static constexpr int mantissa_bits = 8;
};
template <>
struct DtypeOf<dynrnn::float16> {
  static constexpr dynrnn::DataType value = dynrnn::DataType::kFloat16;
  static constexpr int mantissa_bits = 11;
};

/// The DataType whose buffers hold T.
template <typename T>
constexpr dynrnn::DataType dtype_of() {
  return DtypeOf<T>::value;
}

/// Unit roundoff of T: the largest relative error of one round-to-nearest, 2^-p.
template <typename T>
double unit_roundoff() {
  return std::ldexp(1.0, -DtypeOf<T>::mantissa_bits);
}

/// A short name for messages.
inline const char* dtype_name(dynrnn::DataType dt) {
  switch (dt) {
    case dynrnn::DataType::kFloat32: return "float32";
    case dynrnn::DataType::kFloat64: return "float64";
    case dynrnn::DataType::kBFloat16: return "bfloat16";
    case dynrnn::DataType::kFloat16: return "float16";
  }
  return "unknown dtype";
}

template <typename T>
struct TypeTag {
  using type = T;
};

/// Calls f(TypeTag<T>{}) with the element type of `dt` (one of the four DataTypes).
template <typename F>
decltype(auto) with_element_type(dynrnn::DataType dt, F&& f) {
  switch (dt) {
    case dynrnn::DataType::kFloat64: return f(TypeTag<double>{});
    case dynrnn::DataType::kBFloat16: return f(TypeTag<dynrnn::bfloat16>{});
    case dynrnn::DataType::kFloat16: return f(TypeTag<dynrnn::float16>{});
    case dynrnn::DataType::kFloat32:
    default: return f(TypeTag<float>{});
  }
}

/// v as T and back: the value a T buffer holds for v. (Through float for the 16-bit types, which
/// may round twice; the tests only need the result to be a T value, used on both sides.)
template <typename T>
double round_to(double v) {
  return static_cast<double>(static_cast<T>(static_cast<dynrnn::compute_t<T>>(v)));
}

template <typename T>
void round_all(std::vector<double>& v) {
  for (double& e : v) e = round_to<T>(e);
}

template <typename T>
void round_all(ref::Named& named) {
  for (auto& kv : named) round_all<T>(kv.second);
}

/// `p` with its inputs, weights and initial state rounded to T.
template <typename T>
ref::Problem rounded(ref::Problem p) {
  round_all<T>(p.x);
  round_all<T>(p.init);
  for (std::vector<ref::Params>* stack : {&p.w_fw, &p.w_bw}) {
    for (ref::Params& layer : *stack) round_all<T>(layer);
  }
  return p;
}

/// `u` with every upstream gradient rounded to T.
template <typename T>
ref::Upstream rounded(ref::Upstream u) {
  round_all<T>(u.dout_fw);
  round_all<T>(u.dout_bw);
  round_all<T>(u.dfinal);
  return u;
}

/// Bitwise equality of two doubles (tells -0 from +0; NaN equals a NaN of the same bits).
inline bool same_bits(double a, double b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

/// Names typed tests after their element type (gtest's NameGenerator).
struct DtypeNames {
  template <typename T>
  static std::string GetName(int) {
    return dtype_name(dtype_of<T>());
  }
};

}  // namespace testing_support
