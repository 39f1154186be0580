#include "host/length_order.h"

#include <algorithm>
#include <numeric>

#include "dynrnn/cell_math.h"

namespace dynrnn {

std::vector<int32_t> length_order(const int32_t* lengths, int64_t batch, int64_t max_time) {
  const cell::StepMap map{lengths, 0, max_time};
  std::vector<int32_t> rows(static_cast<size_t>(batch));
  std::iota(rows.begin(), rows.end(), 0);
  std::stable_sort(rows.begin(), rows.end(), [&](int32_t a, int32_t b) { return map.length(a) > map.length(b); });
  return rows;
}

bool in_length_order(const int32_t* lengths, int64_t batch, int64_t max_time) {
  const cell::StepMap map{lengths, 0, max_time};
  for (int64_t b = 1; b < batch; ++b) {
    if (map.length(b) > map.length(b - 1)) return false;
  }
  return true;
}

}  // namespace dynrnn
