// dynrnn/recompute_math.h — the stages with which backward regenerates a chunk's saved fields
// (RnnSpec::recompute; part of cell_math.h).
#pragma once

#include <cstdint>

#include "dynrnn/cell_common.h"
#include "dynrnn/gru_cell_math.h"
#include "dynrnn/lstm_cell_math.h"

namespace dynrnn {
namespace cell {

// ---------------------------------------------------------------------------------------------
// Recompute (RnnSpec::recompute): backward regenerates a chunk's saved fields from its states with
// the very arithmetic of the forward stages, rows = steps * B at once.

/// z = gx + gh + bias: a pre-activation from its input and recurrent GEMM results.
template <typename T>
struct PreactivationParams {
  using A = compute_t<T>;
  int64_t batch = 0, cols = 0;
  const T* gx = nullptr;    ///< [rows, cols]
  const T* gh = nullptr;    ///< [rows, cols]
  const T* bias = nullptr;  ///< [cols]
  T* z = nullptr;           ///< [rows, cols]

  DYNRNN_HD void apply(int64_t r, int64_t j) const {
    const int64_t i = r * cols + j;
    z[i] = gx[i] + gh[i] + bias[j];
  }
};

/// Reset-after GRU: the saved pre-activations and n from a chunk's two GEMM results [rows, 3H].
template <typename T>
struct GruResetAfterRegenParams {
  using A = compute_t<T>;
  int64_t batch = 0, cols = 0;  ///< rows, H
  const T* gx = nullptr;        ///< [rows, 3H] x W
  const T* gh = nullptr;        ///< [rows, 3H] h R
  const T* bias = nullptr;      ///< [2, 3H]
  T* z = nullptr;               ///< [rows, 3H]
  T* n = nullptr;               ///< [rows, H]

  DYNRNN_HD void apply(int64_t r, int64_t j) const {
    const int64_t H = cols;
    const T* h3 = gh + r * 3 * H;
    const GruResetAfterPreacts<T> s(gx + r * 3 * H, A(h3[j]), A(h3[H + j]), A(h3[2 * H + j]), bias, H, j);
    T* z3 = z + r * 3 * H;
    z3[j] = s.z;
    z3[H + j] = s.r;
    z3[2 * H + j] = s.h;
    n[r * H + j] = s.n;
  }
};

/// GRU: r * h from the gate pre-activations.
template <typename T>
struct GruResetParams {
  using A = compute_t<T>;
  int64_t batch = 0, cols = 0;  ///< rows, H
  const T* zg = nullptr;        ///< [rows, 2H]
  const T* h_prev = nullptr;    ///< [rows, H]
  T* rh = nullptr;              ///< [rows, H]

  DYNRNN_HD void apply(int64_t r, int64_t j) const {
    rh[r * cols + j] = sigmoid(A(zg[r * 2 * cols + j])) * h_prev[r * cols + j];
  }
};

/// LSTM with projection: m_raw = sigma(o^) * act(c) from the pre-activations and c_prev.
template <typename T>
struct LstmOutputParams {
  using A = compute_t<T>;
  int64_t batch = 0, cols = 0;  ///< rows, H
  LstmConfig<T> cfg;
  const T* z = nullptr;       ///< [rows, 4H]
  const A* c_prev = nullptr;  ///< [rows, H]
  T* m_raw = nullptr;         ///< [rows, H]

  DYNRNN_HD void apply(int64_t r, int64_t j) const {
    const int64_t H = cols;
    const T* z4 = z + r * 4 * H;
    LstmGates<A> s = lstm_gates(cfg, z4[j], z4[H + j], z4[2 * H + j], z4[3 * H + j], c_prev[r * H + j], j);
    m_raw[r * H + j] = s.so * s.a;
  }
};

}  // namespace cell
}  // namespace dynrnn
