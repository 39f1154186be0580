// bench/naive_op_math.h — the element math of the naive baseline's unary and binary ops, one copy
// for the host loops (naive_ops_cpu.cpp) and the CUDA kernels (naive_kernels.cu). Computed in
// compute_t<T> by the callers, as TF's ops in that dtype (the *Grad ops as TF's SigmoidGrad,
// TanhGrad, ReluGrad: a = the activation's output, b = dL/dy).
#pragma once

#include <cmath>

#include "bench/naive_baseline.h"
#include "dynrnn/host_device.h"

namespace bench {

template <typename T>
DYNRNN_HD T apply_unary(UnaryOp op, T x) {
  using std::exp;
  using std::tanh;
  switch (op) {
    case UnaryOp::kSigmoid: return T(1) / (T(1) + exp(-x));
    case UnaryOp::kTanh: return tanh(x);
    case UnaryOp::kRelu: return x > T(0) ? x : T(0);
    case UnaryOp::kOneMinus: return T(1) - x;
  }
  return x;
}

template <typename T>
DYNRNN_HD T apply_binary(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::kAdd: return a + b;
    case BinaryOp::kSub: return a - b;
    case BinaryOp::kMul: return a * b;
    case BinaryOp::kSigmoidGrad: return b * a * (T(1) - a);
    case BinaryOp::kTanhGrad: return b * (T(1) - a * a);
    case BinaryOp::kReluGrad: return a > T(0) ? b : T(0);
  }
  return a;
}

}  // namespace bench
