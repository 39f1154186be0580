// bench/sorted_batch.h — a runner for a ragged batch sorted by decreasing length, as a caller sorts
// it for cuDNN's packed layout or PyTorch's pack_padded_sequence. dynrnn sorts an unsorted batch
// itself when it has host_sequence_length (the plain dynrnn rows); on a batch already in order it
// skips the permutation, so this row against the plain one is what that permutation costs. The sort
// happens once, untimed; results come back in batch order, so they verify against the unsorted
// problem's reference.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "bench/problem.h"
#include "bench/types.h"

namespace bench {

/// `p` with its batch rows in the order `order` (order[k]: the row of p that becomes row k):
/// lengths, inputs and upstream gradients move with their rows; weights are unchanged.
Problem reorder_batch(const Problem& p, const std::vector<int32_t>& order);

/// A result of the reordered problem with its batch rows put back where `order` took them from:
/// outputs and input gradients [T, B, width], states and their gradients leaf by leaf (p.state).
HostResult restore_batch_order(const Problem& p, const std::vector<int32_t>& order, const HostResult& r);

/// The note of a row that ran on the sorted batch.
constexpr const char* kSortedBatchNote = "batch sorted by length once, untimed";

/// Sorts p's batch by decreasing length (ties keep their order), builds the runner with `make` on
/// that problem, and restores batch order in fetch().
std::unique_ptr<Runner> make_sorted_batch_runner(const Problem& p,
                                                 const std::function<std::unique_ptr<Runner>(const Problem&)>& make);

}  // namespace bench
