// cuda/reductions.h — deterministic reductions (no atomics: the summation order depends only on
// the shape, so repeated runs are bitwise identical), and the length order of a batch.
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

/// Executor::order_by_length on `stream` (lengths, rows and sorted_len in device memory).
Status order_by_length(const int32_t* lengths, int64_t batch, int64_t max_time, int32_t* rows, int32_t* sorted_len,
                       cudaStream_t stream);

}  // namespace cuda_detail
}  // namespace dynrnn
