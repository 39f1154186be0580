// host/length_order.h — the order in which a batch runs sorted by length (Executor::order_by_length).
#pragma once

#include <cstdint>
#include <vector>

namespace dynrnn {

/// rows[k] = the batch row at position k when the rows are ordered by decreasing length, lengths
/// clamped to [0, max_time] as dynamic_rnn clamps them, ties by increasing row: a stable order, so
/// every executor computes the same one.
std::vector<int32_t> length_order(const int32_t* lengths, int64_t batch, int64_t max_time);

/// Whether the batch is in that order already (lengths non-increasing after clamping).
bool in_length_order(const int32_t* lengths, int64_t batch, int64_t max_time);

}  // namespace dynrnn
