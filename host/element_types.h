// host/element_types.h — the element types the library is built for (DataType), in one list that
// every explicit instantiation and every dispatch uses.
#pragma once

#include <type_traits>

#include "dynrnn/half_types.h"
#include "dynrnn/spec.h"

/// X(T) for every element type, in DataType order.
#define DYNRNN_FOR_EACH_ELEMENT_TYPE(X) X(float) X(double) X(::dynrnn::bfloat16) X(::dynrnn::float16)
/// X(T) for the element types whose compute type differs (what needs T -> float instantiations).
#define DYNRNN_FOR_EACH_16BIT_TYPE(X) X(::dynrnn::bfloat16) X(::dynrnn::float16)

namespace dynrnn {

template <typename T>
struct TypeTag {
  using type = T;
};

/// Calls f(TypeTag<T>{}) with the element type of `dtype` (which validation has checked).
template <typename F>
decltype(auto) dispatch_dtype(DataType dtype, F&& f) {
  switch (dtype) {
    case DataType::kFloat64: return f(TypeTag<double>{});
    case DataType::kBFloat16: return f(TypeTag<bfloat16>{});
    case DataType::kFloat16: return f(TypeTag<float16>{});
    case DataType::kFloat32:
    default: return f(TypeTag<float>{});
  }
}

/// Bytes of one element of `dtype`, and of the type it computes in.
inline size_t element_bytes(DataType dtype) {
  return dispatch_dtype(dtype, [](auto tag) { return sizeof(typename decltype(tag)::type); });
}
inline size_t compute_bytes(DataType dtype) {
  return dispatch_dtype(dtype, [](auto tag) { return sizeof(compute_t<typename decltype(tag)::type>); });
}

}  // namespace dynrnn
