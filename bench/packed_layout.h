// bench/packed_layout.h — the packed sequence layout of a ragged batch (pure host code): what
// PyTorch's pack_padded_sequence builds and cuDNN reads as CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED.
//
// The batch is sorted by length, longest first (ties keep their batch order), and stored step by
// step without padding: the rows of step t are the sequences with length > t, in sorted order,
// which is always a prefix of the sorted batch. A padded time-major buffer [T, B, W] becomes
// [sum of lengths, W]. cuDNN's seqLengthArray is the sorted lengths, and its hidden-state tensors
// (hx, cx, hy, cy and their gradients) are indexed by the sorted position too, so final states
// must be put back in batch order as well (PyTorch's permute_hidden does the same).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bench {

struct PackedLayout {
  int64_t T = 0, B = 0;                 ///< the padded shape [T, B, W] the layout maps from
  std::vector<int32_t> order;           ///< order[k]: the batch row of the k-th sequence in sorted order
  std::vector<int32_t> sorted_lengths;  ///< the lengths in sorted order, clamped to [0, T] (seqLengthArray)
  std::vector<int64_t> step_offset;     ///< first packed row of step t, t <= max length; back() = rows()

  /// Steps that hold at least one row (the longest sequence's length).
  int64_t max_length() const { return static_cast<int64_t>(step_offset.size()) - 1; }
  /// Rows of step t: the sequences longer than t (PyTorch's batch_sizes[t]).
  int64_t step_rows(int64_t t) const { return step_offset[t + 1] - step_offset[t]; }
  /// Packed rows in all: the sum of the (clamped) lengths.
  int64_t rows() const { return step_offset.back(); }
};

/// The layout of a batch with these lengths (one per row, clamped to [0, T]); a stable sort, so
/// equal lengths keep their batch order.
PackedLayout make_packed_layout(const std::vector<int32_t>& lengths, int64_t T);

/// Whether the lengths (clamped to [0, T]) differ: only then is packing something else than the
/// padded layout (equal lengths pack to the very same bytes, in the same order).
bool lengths_ragged(const std::vector<int32_t>& lengths, int64_t T);

/// Non-empty when the batch cannot be packed: a sequence of length 0 has no row at any step, and
/// pack_padded_sequence rejects such batches ("Length of all samples has to be greater than 0").
std::string packed_unsupported_reason(const PackedLayout& layout);

/// Padded [T, B, width] (batch order) -> packed [rows(), width]. Throws BenchError on a size mismatch
/// (as do the other two).
std::vector<double> pack_rows(const PackedLayout& layout, const std::vector<double>& padded, int64_t width);
/// Packed [rows(), width] -> padded [T, B, width] in batch order, zero past each sequence's length.
std::vector<double> unpack_rows(const PackedLayout& layout, const std::vector<double>& packed, int64_t width);
/// States [groups, B, width] whose batch index is the sorted position -> the same in batch order.
std::vector<double> unsort_state_rows(const PackedLayout& layout, const std::vector<double>& sorted, int64_t width);

}  // namespace bench
