// bench/naive_ops_cpu.cpp — the naive baseline's primitive ops on the host, one plain loop per op,
// so that the CPU path checks the per-step op graph against dynrnn.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "bench/naive_baseline.h"
#include "bench/naive_op_math.h"
#include "bench/precision_types.h"

namespace bench {
namespace {

// Every op loads T, computes in A = compute_t<T> (T itself for float and double, float for the
// 16-bit types) and stores T once.
template <typename T>
class CpuNaiveOps final : public NaiveOps<T> {
  using A = dynrnn::compute_t<T>;

 public:
  void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T beta,
            T* c, int64_t ldc) override {
    std::vector<A> acc(static_cast<size_t>(n));
    const A beta_a = A(beta);
    for (int64_t i = 0; i < m; ++i) {
      std::fill(acc.begin(), acc.end(), A(0));
      for (int64_t p = 0; p < k; ++p) {
        const A aip = A(ta ? a[p * lda + i] : a[i * lda + p]);
        if (tb) {
          for (int64_t j = 0; j < n; ++j) acc[j] += aip * A(b[j * ldb + p]);
        } else {
          const T* brow = b + p * ldb;
          for (int64_t j = 0; j < n; ++j) acc[j] += aip * A(brow[j]);
        }
      }
      T* row = c + i * ldc;
      for (int64_t j = 0; j < n; ++j) row[j] = T(beta_a == A(0) ? acc[j] : acc[j] + beta_a * A(row[j]));
    }
  }

  void unary(UnaryOp op, int64_t rows, int64_t cols, const T* x, int64_t ldx, T* y, int64_t ldy) override {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) y[r * ldy + c] = T(apply_unary(op, A(x[r * ldx + c])));
    }
  }

  void binary(BinaryOp op, int64_t rows, int64_t cols, const T* a, int64_t lda, const T* b, int64_t ldb, T* y,
              int64_t ldy) override {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) y[r * ldy + c] = T(apply_binary(op, A(a[r * lda + c]), A(b[r * ldb + c])));
    }
  }

  void add_scalar(int64_t rows, int64_t cols, const T* x, int64_t ldx, T s, T* y, int64_t ldy) override {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) y[r * ldy + c] = T(A(x[r * ldx + c]) + A(s));
    }
  }

  void bias_add(int64_t rows, int64_t cols, const T* x, int64_t ldx, const T* bias, T* y, int64_t ldy) override {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) y[r * ldy + c] = T(A(x[r * ldx + c]) + A(bias[c]));
    }
  }

  void concat(int64_t rows, const T* a, int64_t lda, int64_t wa, const T* b, int64_t ldb, int64_t wb, T* y) override {
    for (int64_t r = 0; r < rows; ++r) {
      std::copy(a + r * lda, a + r * lda + wa, y + r * (wa + wb));
      std::copy(b + r * ldb, b + r * ldb + wb, y + r * (wa + wb) + wa);
    }
  }

  void copy(int64_t rows, int64_t cols, const T* x, int64_t ldx, T* y, int64_t ldy) override {
    for (int64_t r = 0; r < rows; ++r) std::copy(x + r * ldx, x + r * ldx + cols, y + r * ldy);
  }

  void select(int64_t rows, int64_t cols, const int32_t* len, int64_t t, const T* a, int64_t lda, const T* b,
              int64_t ldb, T* y, int64_t ldy) override {
    for (int64_t r = 0; r < rows; ++r) {
      const bool valid = t < len[r];
      const T* src = valid ? a : b;
      const int64_t ld = valid ? lda : ldb;
      for (int64_t c = 0; c < cols; ++c) y[r * ldy + c] = src ? src[r * ld + c] : T(A(0));
    }
  }

  void column_sum_add(int64_t rows, int64_t cols, const T* x, int64_t ldx, T* y) override {
    for (int64_t c = 0; c < cols; ++c) {
      A s = A(0);
      for (int64_t r = 0; r < rows; ++r) s += A(x[r * ldx + c]);
      y[c] = T(A(y[c]) + s);
    }
  }

  void reverse_sequence(int64_t steps, int64_t batch, int64_t width, const int32_t* len, const T* x, T* y) override {
    for (int64_t t = 0; t < steps; ++t) {
      for (int64_t b = 0; b < batch; ++b) {
        int64_t l = len ? std::min<int64_t>(std::max<int32_t>(len[b], 0), steps) : steps;
        const int64_t src = t < l ? l - 1 - t : t;
        std::copy(x + (src * batch + b) * width, x + (src * batch + b + 1) * width, y + (t * batch + b) * width);
      }
    }
  }

  void fill_zero(T* y, int64_t count) override {
    if (count > 0) std::memset(y, 0, static_cast<size_t>(count) * sizeof(T));
  }
};

}  // namespace

template <typename T>
std::unique_ptr<NaiveOps<T>> make_cpu_naive_ops() {
  return std::make_unique<CpuNaiveOps<T>>();
}

#define BENCH_INSTANTIATE(T) template std::unique_ptr<NaiveOps<T>> make_cpu_naive_ops<T>();
DYNRNN_FOR_EACH_ELEMENT_TYPE(BENCH_INSTANTIATE)
#undef BENCH_INSTANTIATE

}  // namespace bench
