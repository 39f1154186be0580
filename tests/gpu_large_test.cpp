// One real CUDA training run whose buffers hold more than 2^31 elements, so that every device index
// (GEMM operands, pointwise stages, masking, the scatter of dx, the weight-gradient sums) must be
// 64-bit. The batch is 2^20 + 1 rows; all rows but the first and the last hold one constant
// pattern, so the CPU checks the first, a constant and the last row (B = 3) and the weight
// gradients follow as sum(rows 0, 1, B - 1) + (B - 3) x row 1. GpuHarness.LargeRunChecksOnTheCpu
// runs the same harness with the CPU backend on both sides and a small batch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "dtype_support.h"
#include "dynrnn/rnn.h"
#include "gpu_support.h"

namespace {

using dynrnn::bfloat16;

constexpr int64_t kT = 64, kD = 32, kH = 32;
constexpr int64_t kB = (int64_t(1) << 20) + 1;
static_assert(kT * kB * kD > (int64_t(1) << 31), "x must pass 2^31 elements");
constexpr uint16_t kPatternBits = 0x3e3e;  // bfloat16 0.1855..., what cudaMemset(0x3e) writes
constexpr double kTol = 16 * 0x1p-8;       // 16 bfloat16 ulps, as GpuRnn.MatchesCpuBFloat16

/// A buffer of one backend: device memory for kCuda, host memory for kCpu.
class Mem {
 public:
  Mem(dynrnn::Backend be, size_t bytes) : be_(be), bytes_(bytes) {
    if (be_ == dynrnn::Backend::kCuda) {
      CUDA_OK(cudaMalloc(&p_, std::max<size_t>(bytes, 1)));
    } else {
      host_.resize(bytes);
      p_ = host_.data();
    }
  }
  ~Mem() {
    if (be_ == dynrnn::Backend::kCuda) (void)cudaFree(p_);
  }
  Mem(const Mem&) = delete;
  Mem& operator=(const Mem&) = delete;

  void* get() const { return p_; }
  void fill(int byte) {
    if (be_ == dynrnn::Backend::kCuda) {
      CUDA_OK(cudaMemset(p_, byte, bytes_));
    } else {
      std::memset(p_, byte, bytes_);
    }
  }
  template <typename U>
  void put(int64_t offset, const std::vector<U>& v) {
    copy(static_cast<U*>(p_) + offset, v.data(), v.size() * sizeof(U), cudaMemcpyHostToDevice);
  }
  template <typename U>
  std::vector<U> take(int64_t offset, int64_t count) const {
    std::vector<U> v(static_cast<size_t>(count));
    copy(v.data(), static_cast<U*>(p_) + offset, v.size() * sizeof(U), cudaMemcpyDeviceToHost);
    return v;
  }

 private:
  void copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) const {
    if (be_ == dynrnn::Backend::kCuda) {
      CUDA_OK(cudaMemcpy(dst, src, bytes, kind));
    } else {
      std::memcpy(dst, src, bytes);
    }
  }
  dynrnn::Backend be_;
  size_t bytes_;
  void* p_ = nullptr;
  std::vector<char> host_;
};

/// Inputs of the checked rows (first, constant, last) and everything else the calls share.
struct Rows {
  std::vector<bfloat16> x[3], dy[3];  ///< [T, D] and [T, H] per checked row
  int32_t len[3] = {kT - 5, kT, kT - 3};
  std::vector<bfloat16> w;
};

Rows make_rows(int64_t param_count) {
  Rows r;
  std::mt19937_64 rng(31);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int i = 0; i < 3; ++i) {
    r.x[i].resize(kT * kD);
    r.dy[i].resize(kT * kH);
    for (auto& v : r.x[i]) v = i == 1 ? bfloat16::from_bits(kPatternBits) : bfloat16(u(rng));
    for (auto& v : r.dy[i]) v = i == 1 ? bfloat16::from_bits(kPatternBits) : bfloat16(u(rng));
  }
  r.w.resize(static_cast<size_t>(param_count));
  for (auto& v : r.w) v = bfloat16(0.3f * u(rng));
  return r;
}

dynrnn::RnnSpec spec() {
  dynrnn::RnnSpec s;
  s.cells_fw = {dynrnn::CellSpec::basic_rnn(kH)};
  s.input_size = kD;
  s.dtype = dynrnn::DataType::kBFloat16;
  return s;
}

/// The buffers of one training step (pointers of the rnn's backend).
struct StepBuffers {
  const void *x, *len, *w, *dy;
  void *y, *h, *dx, *dw, *work, *reserve;
  size_t ws, rs;
};

/// A training forward and its backward over batch B.
dynrnn::Status train(dynrnn::Rnn& rnn, int64_t B, const StepBuffers& s) {
  dynrnn::ForwardArgs f;
  f.x_shape[0] = B, f.x_shape[1] = kT, f.x_shape[2] = kD;
  f.x = s.x;
  f.sequence_length = static_cast<const int32_t*>(s.len);
  f.sequence_length_size = B;
  f.weights = s.w;
  f.outputs = s.y;
  f.final_state = s.h;
  f.workspace = s.work, f.workspace_bytes = s.ws;
  f.training = true;
  f.reserve = s.reserve, f.reserve_bytes = s.rs;
  const dynrnn::Status st = rnn.forward(f);
  if (!st.is_ok()) return st;
  dynrnn::BackwardArgs b = dynrnn::BackwardArgs::of(f);
  b.grad_outputs = s.dy;
  b.grad_inputs = s.dx;
  b.grad_weights = s.dw;
  return rnn.backward(b);
}

/// The CPU run of the given checked rows: outputs, final h, dx and weight gradients, as doubles.
struct CpuRun {
  std::vector<double> y, h, dx, dw;
};

CpuRun run_cpu(const Rows& r, const std::vector<int>& rows) {
  std::unique_ptr<dynrnn::Rnn> rnn;
  EXPECT_TRUE(dynrnn::Rnn::create(spec(), dynrnn::Backend::kCpu, &rnn).is_ok());
  const int64_t B = static_cast<int64_t>(rows.size());
  std::vector<bfloat16> x, dy;
  std::vector<int32_t> len;
  for (int i : rows) {
    x.insert(x.end(), r.x[i].begin(), r.x[i].end());
    dy.insert(dy.end(), r.dy[i].begin(), r.dy[i].end());
    len.push_back(r.len[i]);
  }
  std::vector<bfloat16> y(x.size() / kD * kH), h(B * kH), dx(x.size()), dw(r.w.size());
  size_t ws = 0, rs = 0;
  EXPECT_TRUE(rnn->get_workspace_size(kT, B, true, &ws).is_ok());
  EXPECT_TRUE(rnn->get_reserve_size(kT, B, &rs).is_ok());
  std::vector<char> work(ws), reserve(rs);
  const dynrnn::Status st = train(*rnn, B,
                                  {x.data(), len.data(), r.w.data(), dy.data(), y.data(), h.data(), dx.data(),
                                   dw.data(), work.data(), reserve.data(), ws, rs});
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  auto wide = [](const std::vector<bfloat16>& v) { return std::vector<double>(v.begin(), v.end()); };
  return {wide(y), wide(h), wide(dx), wide(dw)};
}

/// max |got - want| <= kTol * max |want| (and no NaN: the device buffers started as NaN).
void expect_close(const std::vector<double>& got, const std::vector<double>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 0, err = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    scale = std::max(scale, std::fabs(want[i]));
    err = std::isnan(got[i]) ? INFINITY : std::max(err, std::fabs(got[i] - want[i]));
  }
  EXPECT_LE(err, kTol * std::max(scale, 1e-3)) << what << " (max |want| " << scale << ")";
}

/// A training run of batch B on `be`, checked on its first, second (constant) and last rows and on
/// its weight gradients against CPU runs of those rows alone.
void check_large_run(dynrnn::Backend be, int64_t B) {
  std::unique_ptr<dynrnn::Rnn> rnn;
  ASSERT_TRUE(dynrnn::Rnn::create(spec(), be, &rnn).is_ok());
  size_t ws = 0, rs = 0;
  ASSERT_TRUE(rnn->get_workspace_size(kT, B, true, &ws).is_ok());
  ASSERT_TRUE(rnn->get_reserve_size(kT, B, &rs).is_ok());
  const size_t e = sizeof(bfloat16), x_bytes = kT * B * kD * e, y_bytes = kT * B * kH * e;
  if (be == dynrnn::Backend::kCuda) {
    const size_t need = 2 * x_bytes + 2 * y_bytes + ws + rs + (size_t(1) << 30);
    size_t free_bytes = 0, total = 0;
    CUDA_OK(cudaMemGetInfo(&free_bytes, &total));
    if (free_bytes < need) GTEST_SKIP() << "needs " << (need >> 30) << " GiB of free device memory";
  }

  const Rows r = make_rows(rnn->param_count());
  const int64_t rows[3] = {0, 1, B - 1};
  const int64_t P = rnn->param_count();
  Mem x(be, x_bytes), dy(be, y_bytes), y(be, y_bytes), dx(be, x_bytes), h(be, B * kH * e), w(be, P * e), dw(be, P * e),
      len(be, B * sizeof(int32_t)), work(be, ws), reserve(be, rs);
  x.fill(kPatternBits & 0xff);  // every row the constant pattern, then the two random rows
  dy.fill(kPatternBits & 0xff);
  for (Mem* out : {&y, &dx, &h, &dw}) out->fill(0xff);  // NaN: every checked element must be written
  std::vector<int32_t> lengths(static_cast<size_t>(B), static_cast<int32_t>(kT));
  for (int i = 0; i < 3; ++i) {
    lengths[static_cast<size_t>(rows[i])] = r.len[i];
    x.put(rows[i] * kT * kD, r.x[i]);
    dy.put(rows[i] * kT * kH, r.dy[i]);
  }
  len.put(0, lengths);
  w.put(0, r.w);

  const dynrnn::Status st = train(
      *rnn, B,
      {x.get(), len.get(), w.get(), dy.get(), y.get(), h.get(), dx.get(), dw.get(), work.get(), reserve.get(), ws, rs});
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  if (be == dynrnn::Backend::kCuda) CUDA_OK(cudaDeviceSynchronize());

  auto fetch = [](const Mem& m, int64_t offset, int64_t count) {
    const std::vector<bfloat16> v = m.take<bfloat16>(offset, count);
    return std::vector<double>(v.begin(), v.end());
  };
  const CpuRun cpu = run_cpu(r, {0, 1, 2});
  for (int i = 0; i < 3; ++i) {
    const std::string row = "row " + std::to_string(rows[i]);
    const auto cut = [&](const std::vector<double>& v, int64_t n) {
      return std::vector<double>(v.begin() + i * n, v.begin() + (i + 1) * n);
    };
    const std::vector<double> got_y = fetch(y, rows[i] * kT * kH, kT * kH);
    expect_close(got_y, cut(cpu.y, kT * kH), row + " outputs");
    for (int64_t t = r.len[i]; t < kT; ++t) {
      for (int64_t j = 0; j < kH; ++j) ASSERT_EQ(got_y[t * kH + j], 0.0) << row << " output past its length, t " << t;
    }
    expect_close(fetch(h, rows[i] * kH, kH), cut(cpu.h, kH), row + " final state");
    expect_close(fetch(dx, rows[i] * kT * kD, kT * kD), cut(cpu.dx, kT * kD), row + " grad_inputs");
  }
  // Weight gradients: the three checked rows, plus B - 3 more copies of the constant row. At 16
  // bfloat16 ulps this catches garbage (a wrong GEMM extent or stride), not one row more or less;
  // misplaced rows are what the row checks above catch.
  const CpuRun constant = run_cpu(r, {1});
  std::vector<double> want = cpu.dw;
  for (size_t k = 0; k < want.size(); ++k) want[k] += static_cast<double>(B - 3) * constant.dw[k];
  expect_close(fetch(dw, 0, P), want, "grad_weights");
}

TEST(GpuLarge, TrainingPastTwoToThe31Elements) {
  REQUIRE_GPU();
  try {
    check_large_run(dynrnn::Backend::kCuda, kB);
  } catch (const std::exception& ex) {
    ADD_FAILURE() << ex.what();
  }
}

/// The harness on the CPU backend with a small batch: its expectations hold where nothing is large.
TEST(GpuHarness, LargeRunChecksOnTheCpu) {
  check_large_run(dynrnn::Backend::kCpu, 67);
}

}  // namespace
