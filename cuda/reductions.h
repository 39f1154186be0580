// cuda/reductions.h — deterministic reductions (no atomics: the summation order depends only on
// the shape, so repeated runs are bitwise identical).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "dynrnn/status.h"

namespace dynrnn {
namespace cuda_detail {

/// dst[c] (of type C: T, or compute_t<T>) = sum_r src[r * ld + c] (+ dst[c] when accumulate) for
/// c < cols, summed in compute_t<T>, enqueued on `stream`.
template <typename T, typename C>
Status column_sum(int64_t rows, int64_t cols, const T* src, int64_t ld, bool accumulate, C* dst, cudaStream_t stream);

}  // namespace cuda_detail
}  // namespace dynrnn
