#include "host/cpu_executor.h"

#include <cstring>
#include <vector>

#include "host/element_types.h"
#include "host/length_order.h"

namespace dynrnn {
namespace {

template <typename T>
T element(const MatRef<T>& a, int64_t r, int64_t c) {
  return a.trans ? a.data[c * a.ld + r] : a.data[r * a.ld + c];
}

template <typename T>
class CpuExecutor final : public Executor<T> {
  using A = compute_t<T>;

 public:
  // One host thread runs every queue in call order, so fences are already satisfied.
  Status begin(Stream, int, int) override { return Status::ok(); }
  Status end() override { return Status::ok(); }
  Status set_queue(int) override { return Status::ok(); }
  Status record(int) override { return Status::ok(); }
  Status wait(int) override { return Status::ok(); }

  Status gemm(int64_t m, int64_t n, int64_t k, A alpha, MatRef<T> a, MatRef<T> b, A beta, T* c, int64_t ldc) override {
    return gemm_into(m, n, k, alpha, a, b, beta, c, ldc);
  }
  Status gemm_wide(int64_t m, int64_t n, int64_t k, A alpha, MatRef<T> a, MatRef<T> b, A beta, A* c,
                   int64_t ldc) override {
    return gemm_into(m, n, k, alpha, a, b, beta, c, ldc);
  }

  template <typename C>
  static Status gemm_into(int64_t m, int64_t n, int64_t k, A alpha, MatRef<T> a, MatRef<T> b, A beta, C* c,
                          int64_t ldc) {
    std::vector<A> acc(static_cast<size_t>(n));
    for (int64_t i = 0; i < m; ++i) {
      std::fill(acc.begin(), acc.end(), A(0));
      for (int64_t p = 0; p < k; ++p) {
        const A aip = element(a, i, p);
        for (int64_t j = 0; j < n; ++j) acc[j] += aip * A(element(b, p, j));
      }
      C* row = c + i * ldc;
      for (int64_t j = 0; j < n; ++j) {
        // beta == 0 overwrites (BLAS semantics): C may hold garbage, even NaN.
        row[j] = beta == A(0) ? alpha * acc[j] : alpha * acc[j] + beta * A(row[j]);
      }
    }
    return Status::ok();
  }

  Status pointwise(const PointwiseOp<T>& op) override {
    std::visit(
        [](const auto& p) {
          for (int64_t b = 0; b < p.batch; ++b) {
            for (int64_t j = 0; j < p.cols; ++j) p.apply(b, j);
          }
        },
        op);
    return Status::ok();
  }

  Status fill_zero(T* dst, int64_t rows, int64_t cols, int64_t ld) override {
    for (int64_t r = 0; r < rows; ++r) std::fill(dst + r * ld, dst + r * ld + cols, T(A(0)));
    return Status::ok();
  }

  Status copy(T* dst, const T* src, int64_t count) override {
    if (count > 0) std::memcpy(dst, src, static_cast<size_t>(count) * sizeof(T));
    return Status::ok();
  }

  Status copy_to_host(T* host_dst, const T* src, int64_t count) override { return copy(host_dst, src, count); }
  Status copy_to_device(T* dst, const T* host_src, int64_t count) override { return copy(dst, host_src, count); }

  Status order_by_length(const int32_t* lengths, int64_t batch, int64_t max_time, int32_t* rows,
                         int32_t* sorted_len) override {
    const std::vector<int32_t> order = length_order(lengths, batch, max_time);
    for (int64_t k = 0; k < batch; ++k) {
      rows[k] = order[static_cast<size_t>(k)];
      sorted_len[k] = lengths[rows[k]];
    }
    return Status::ok();
  }
  Status column_sum(int64_t rows, int64_t cols, const T* src, int64_t ld, bool accumulate, T* dst) override {
    return column_sum_into(rows, cols, src, ld, accumulate, dst);
  }
  Status column_sum_wide(int64_t rows, int64_t cols, const T* src, int64_t ld, bool accumulate, A* dst) override {
    return column_sum_into(rows, cols, src, ld, accumulate, dst);
  }

  template <typename C>
  static Status column_sum_into(int64_t rows, int64_t cols, const T* src, int64_t ld, bool accumulate, C* dst) {
    for (int64_t c = 0; c < cols; ++c) {
      A s = A(0);
      for (int64_t r = 0; r < rows; ++r) s += A(src[r * ld + c]);
      dst[c] = accumulate ? A(dst[c]) + s : s;
    }
    return Status::ok();
  }
};

}  // namespace

template <typename T>
std::unique_ptr<Executor<T>> make_cpu_executor() {
  return std::make_unique<CpuExecutor<T>>();
}

#define DYNRNN_INSTANTIATE(T) template std::unique_ptr<Executor<T>> make_cpu_executor<T>();
DYNRNN_FOR_EACH_ELEMENT_TYPE(DYNRNN_INSTANTIATE)
#undef DYNRNN_INSTANTIATE

}  // namespace dynrnn
