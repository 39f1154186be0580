// dynrnn/dropout_math.h — DropoutWrapper's input and output masks as a pointwise stage over a chunk
// of steps (the masks themselves: dropout_mask.h; the state mask lives in the cell stages,
// cell_math.h's StateDropout).
#pragma once

#include <cstdint>

#include "dynrnn/cell_math.h"
#include "dynrnn/dropout_mask.h"
#include "dynrnn/host_device.h"

namespace dynrnn {
namespace dropout {

/// Applies a site's masks to steps map.step .. map.step + batch / rows_per_step - 1 of a sequence:
/// forward dst = src / keep * mask, backward (gradient) dst = src * mask / keep; src may be dst. With
/// map.seq_len set, rows past their length are written 0 (the caller's outputs and their gradients,
/// which TF's select zeroes); without it, every row is computed.
template <typename T>
struct DropoutParams {
  using A = compute_t<T>;
  cell::StepMap map;
  int64_t batch = 0, cols = 0;  ///< rows (steps * B), width
  int64_t rows_per_step = 0;    ///< B
  cell::SeqView<const T> src;
  cell::SeqView<T> dst;
  Mask<A> mask;
  bool gradient = false;

  DYNRNN_HD void apply(int64_t r, int64_t j) const {
    const cell::StepMap m = map.chunk_row(r, rows_per_step);
    const int64_t b = r % rows_per_step;
    T& out = dst.at(m, b)[j];
    if (!m.valid(b)) {
      out = T(0);
      return;
    }
    const A v = A(src.at(m, b)[j]), keep = mask.keep, k = mask.at(m.step, b, j);
    out = T(gradient ? v * k / keep : v / keep * k);
  }
};

}  // namespace dropout
}  // namespace dynrnn
