// host/running_rows.h — which rows of a batch are still running at a step, from lengths the host
// can read: the per-step recurrent GEMMs stop after the last of them (Executor::recurrent_steps).
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "dynrnn/cell_math.h"

namespace dynrnn {

/// One past the last row whose length exceeds a step. For a batch sorted by decreasing length, as
/// cuDNN's packed layout and PyTorch's pack_padded_sequence order it, that is the number of rows
/// running at the step; every row past it has ended. O(B) memory whatever T is.
class RunningRows {
 public:
  RunningRows() = default;
  /// lengths null: unknown (every step covers the whole batch).
  RunningRows(const int32_t* lengths, int64_t batch, int64_t max_time) : batch_(batch), known_(lengths != nullptr) {
    if (!lengths) return;
    const cell::StepMap map{lengths, 0, max_time};
    for (int64_t b = 0; b < batch; ++b) {
      if (map.length(b) > 0) ends_.push_back({map.length(b), b + 1});
    }
    std::sort(ends_.begin(), ends_.end());
    // Now ends_[k].second = one past the last row whose length is at least ends_[k].first.
    for (size_t k = ends_.size(); k-- > 1;) ends_[k - 1].second = std::max(ends_[k - 1].second, ends_[k].second);
  }

  /// The rows a step's GEMMs must cover: [0, at(step)).
  int64_t at(int64_t step) const {
    if (!known_) return batch_;
    // The shortest length above `step` bounds the rows still running.
    const auto it = std::upper_bound(ends_.begin(), ends_.end(), std::pair<int64_t, int64_t>{step, INT64_MAX});
    return it == ends_.end() ? 0 : it->second;
  }

 private:
  int64_t batch_ = 0;
  bool known_ = false;
  std::vector<std::pair<int64_t, int64_t>> ends_;  ///< (length, rows), ascending length; lengths > 0 only
};

}  // namespace dynrnn
