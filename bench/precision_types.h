// bench/precision_types.h — the storage type behind each --precision, and the one dispatch from a
// Precision to code templated on that type (so no runner keeps a copy of its setup per type).
//
// fp32 and tf32 store float (tf32 only changes the GEMM arithmetic), fp64 double, bf16 and fp16
// dynrnn's 16-bit storage types (dynrnn/half_types.h: float arithmetic between a load and a store).
#pragma once

#include <type_traits>
#include <utility>

#include "bench/types.h"
#include "dynrnn/half_types.h"
#include "dynrnn/spec.h"
#include "host/element_types.h"  // the library's list of element types and its dispatch

namespace bench {

/// dynrnn's RnnSpec::dtype for `p`.
inline dynrnn::DataType data_type(Precision p) {
  switch (p) {
    case Precision::kFp64: return dynrnn::DataType::kFloat64;
    case Precision::kBf16: return dynrnn::DataType::kBFloat16;
    case Precision::kFp16: return dynrnn::DataType::kFloat16;
    case Precision::kFp32:
    case Precision::kTf32: break;
  }
  return dynrnn::DataType::kFloat32;
}

/// Calls f(TypeTag<T>{}) with the storage type of `p`; every branch must return the same type.
template <typename F>
decltype(auto) with_storage_type(Precision p, F&& f) {
  return dynrnn::dispatch_dtype(data_type(p), std::forward<F>(f));
}

/// True for the 16-bit storage types.
template <typename T>
constexpr bool is_16bit_v = std::is_same_v<T, dynrnn::bfloat16> || std::is_same_v<T, dynrnn::float16>;

}  // namespace bench
