#include "bench/packed_layout.h"

#include <algorithm>
#include <numeric>

#include "bench/types.h"

namespace bench {
namespace {

int32_t clamp_length(int32_t len, int64_t T) {
  return static_cast<int32_t>(std::clamp<int64_t>(len, 0, T));
}

void check_size(const std::vector<double>& v, int64_t want, const char* what) {
  if (static_cast<int64_t>(v.size()) != want) {
    throw BenchError(std::string(what) + ": " + std::to_string(v.size()) + " elements, expected " +
                     std::to_string(want));
  }
}

}  // namespace

PackedLayout make_packed_layout(const std::vector<int32_t>& lengths, int64_t T) {
  PackedLayout l;
  l.T = T;
  l.B = static_cast<int64_t>(lengths.size());
  l.order.resize(lengths.size());
  std::iota(l.order.begin(), l.order.end(), 0);
  // Stable: equal lengths keep their batch order, so the layout is a function of the lengths alone.
  std::stable_sort(l.order.begin(), l.order.end(), [&](int32_t a, int32_t b) {
    return clamp_length(lengths[static_cast<size_t>(a)], T) > clamp_length(lengths[static_cast<size_t>(b)], T);
  });
  for (int32_t b : l.order) l.sorted_lengths.push_back(clamp_length(lengths[static_cast<size_t>(b)], T));
  const int64_t steps = l.sorted_lengths.empty() ? 0 : l.sorted_lengths.front();
  l.step_offset.assign(static_cast<size_t>(steps + 1), 0);
  // Sorted descending, so the sequences longer than t are a prefix of the sorted batch.
  int64_t live = l.B;
  for (int64_t t = 0; t < steps; ++t) {
    while (live > 0 && l.sorted_lengths[static_cast<size_t>(live - 1)] <= t) --live;
    l.step_offset[static_cast<size_t>(t + 1)] = l.step_offset[static_cast<size_t>(t)] + live;
  }
  return l;
}

bool lengths_ragged(const std::vector<int32_t>& lengths, int64_t T) {
  return std::any_of(lengths.begin(), lengths.end(),
                     [&](int32_t len) { return clamp_length(len, T) != clamp_length(lengths.front(), T); });
}

std::string packed_unsupported_reason(const PackedLayout& layout) {
  for (size_t k = 0; k < layout.sorted_lengths.size(); ++k) {
    if (layout.sorted_lengths[k] == 0) {
      return "batch row " + std::to_string(layout.order[k]) +
             " has length 0: the packed layout has no row for it (pack_padded_sequence rejects such batches)";
    }
  }
  return {};
}

std::vector<double> pack_rows(const PackedLayout& layout, const std::vector<double>& padded, int64_t width) {
  check_size(padded, layout.T * layout.B * width, "pack_rows");
  std::vector<double> packed(static_cast<size_t>(layout.rows() * width));
  for (int64_t t = 0; t < layout.max_length(); ++t) {
    for (int64_t k = 0; k < layout.step_rows(t); ++k) {
      const auto src = padded.begin() + (t * layout.B + layout.order[static_cast<size_t>(k)]) * width;
      std::copy(src, src + width, packed.begin() + (layout.step_offset[static_cast<size_t>(t)] + k) * width);
    }
  }
  return packed;
}

std::vector<double> unpack_rows(const PackedLayout& layout, const std::vector<double>& packed, int64_t width) {
  check_size(packed, layout.rows() * width, "unpack_rows");
  std::vector<double> padded(static_cast<size_t>(layout.T * layout.B * width), 0.0);
  for (int64_t t = 0; t < layout.max_length(); ++t) {
    for (int64_t k = 0; k < layout.step_rows(t); ++k) {
      const auto src = packed.begin() + (layout.step_offset[static_cast<size_t>(t)] + k) * width;
      std::copy(src, src + width, padded.begin() + (t * layout.B + layout.order[static_cast<size_t>(k)]) * width);
    }
  }
  return padded;
}

std::vector<double> unsort_state_rows(const PackedLayout& layout, const std::vector<double>& sorted, int64_t width) {
  const int64_t group = layout.B * width;
  if (group == 0 || sorted.size() % static_cast<size_t>(group) != 0) {
    throw BenchError("unsort_state_rows: " + std::to_string(sorted.size()) +
                     " elements is not a multiple of B * width = " + std::to_string(group));
  }
  std::vector<double> out(sorted.size());
  for (size_t g = 0; g < sorted.size() / static_cast<size_t>(group); ++g) {
    for (int64_t k = 0; k < layout.B; ++k) {
      const auto src = sorted.begin() + static_cast<int64_t>(g) * group + k * width;
      std::copy(src, src + width,
                out.begin() + static_cast<int64_t>(g) * group + layout.order[static_cast<size_t>(k)] * width);
    }
  }
  return out;
}

}  // namespace bench
