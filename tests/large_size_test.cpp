// Sizes and indices past 2^31 elements, without allocating them.
//
//  * Size queries for shapes with more than 2^31 elements (T = B = 2^16, H = D = 1024): exact
//    64-bit byte counts (lower bounds from the values a training forward must keep, exact linear
//    scaling in T and in B, monotone, larger than 2^31 elements), and overflow rejections that say
//    which sizes overflowed.
//  * Validation of calls with such shapes: the messages carry the exact 64-bit counts (nothing is
//    truncated to 32 bits), and nothing is touched (the buffers passed are a few bytes long).
//  * cell_math.h index arithmetic: the pointwise stages run at rows whose element offsets pass 2^31
//    (and 2^33), inside a 512 GiB MAP_NORESERVE mapping of which only the touched
//    pages ever exist; each result must equal, bit for bit, the same stage run at row 0 of small
//    buffers — a 32-bit index would read or write elsewhere.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dynrnn/cell_math.h"
#include "dynrnn/rnn.h"

namespace {

using dynrnn::Backend;
using dynrnn::CellSpec;
using dynrnn::Rnn;
using dynrnn::RnnSpec;
using dynrnn::StatusCode;

constexpr int64_t k2_31 = int64_t(1) << 31;

std::unique_ptr<Rnn> make(const RnnSpec& spec) {
  std::unique_ptr<Rnn> rnn;
  const dynrnn::Status st = Rnn::create(spec, Backend::kCpu, &rnn);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return rnn;
}

RnnSpec big_lstm() {
  RnnSpec s;
  s.cells_fw = {CellSpec::lstm(1024)};
  s.input_size = 1024;
  return s;
}

size_t reserve(const Rnn& rnn, int64_t T, int64_t B) {
  size_t bytes = 0;
  const dynrnn::Status st = rnn.get_reserve_size(T, B, &bytes);
  EXPECT_TRUE(st.is_ok()) << "T=" << T << " B=" << B << ": " << st.to_string();
  return bytes;
}

size_t workspace(const Rnn& rnn, int64_t T, int64_t B, bool training) {
  size_t bytes = 0;
  const dynrnn::Status st = rnn.get_workspace_size(T, B, training, &bytes);
  EXPECT_TRUE(st.is_ok()) << "T=" << T << " B=" << B << ": " << st.to_string();
  return bytes;
}

// ------------------------------------------------------------------------------------------------
// Size queries

TEST(LargeSizes, QueriesPastTwoToThe31ElementsAreExact) {
  const int64_t T = 1 << 16, B = 1 << 16, H = 1024;  // T * B * H = 2^42 elements
  const struct {
    dynrnn::DataType dtype;
    size_t bytes;
  } kTypes[] = {{dynrnn::DataType::kFloat32, 4},
                {dynrnn::DataType::kFloat64, 8},
                {dynrnn::DataType::kBFloat16, 2},
                {dynrnn::DataType::kFloat16, 2}};
  size_t reserves[4] = {0, 0, 0, 0};
  for (const auto& type : kTypes) {
    SCOPED_TRACE("dtype " + std::to_string(static_cast<int>(type.dtype)));
    RnnSpec spec = big_lstm();
    spec.dtype = type.dtype;
    const size_t eb = type.bytes;
    auto rnn = make(spec);
    ASSERT_TRUE(rnn);
    const size_t rs = reserve(*rnn, T, B);
    reserves[static_cast<int>(type.dtype)] = rs;
    // A saving training forward keeps, per row and step, at least h (H), c (H) and the four gate
    // pre-activations (4H): 6H values.
    const unsigned __int128 lower = static_cast<unsigned __int128>(T) * B * 6 * H * eb;
    EXPECT_GE(static_cast<unsigned __int128>(rs), lower) << rs;
    EXPECT_GT(rs, size_t(k2_31) * eb);
    // Exact linear scaling: T and B are multiples of the chunk (32 steps) and of the alignment.
    EXPECT_EQ(reserve(*rnn, 2 * T, B), 2 * rs);
    EXPECT_EQ(reserve(*rnn, T, 2 * B), 2 * rs);
    EXPECT_EQ(reserve(*rnn, 4 * T, 4 * B), 16 * rs);
    EXPECT_EQ(reserve(*rnn, T / 2, B), rs / 2);
    // Workspace: affine in T (per-chunk scratch plus, at most, per-step terms), monotone in B.
    for (bool training : {false, true}) {
      const size_t w1 = workspace(*rnn, T, B, training), w2 = workspace(*rnn, 2 * T, B, training),
                   w3 = workspace(*rnn, 3 * T, B, training);
      EXPECT_EQ(w3 - w2, w2 - w1) << "training=" << training;
      EXPECT_GE(w2, w1);
      EXPECT_GE(workspace(*rnn, T, 2 * B, training), w1);
      // At least one [B, 4H] recurrent GEMM result and one chunk of projected inputs.
      EXPECT_GE(w1, size_t(B) * 4 * H * eb) << "training=" << training;
    }
  }
  // The two 16-bit types plan alike, and keep less than float32 (even with the LSTM cell state in
  // float32) and float32 less than float64.
  EXPECT_EQ(reserves[2], reserves[3]);
  EXPECT_LT(reserves[2], reserves[0]);
  EXPECT_LT(reserves[0], reserves[1]);
}

TEST(LargeSizes, EveryCellKindAndDirectionScalesLinearly) {
  RnnSpec s;
  CellSpec lstm = CellSpec::lstm(512);
  lstm.use_peepholes = true;
  lstm.num_proj = 256;
  s.cells_fw = {lstm, CellSpec::gru(768)};
  s.cells_bw = {CellSpec::basic_rnn(1024), CellSpec::basic_lstm(256), CellSpec::gru_reset_after(512)};
  s.input_size = 640;
  s.time_major = true;
  for (bool swap : {false, true}) {
    for (bool recompute : {false, true}) {
      s.swap_memory = swap;
      s.recompute = recompute;
      SCOPED_TRACE(std::string("swap_memory=") + (swap ? "1" : "0") + " recompute=" + (recompute ? "1" : "0"));
      auto rnn = make(s);
      ASSERT_TRUE(rnn);
      const int64_t T = 1 << 15, B = 1 << 17;  // 2^32 rows
      const size_t rs = reserve(*rnn, T, B);
      if (!swap) {
        // Every step's h of every layer (5 layers, widths 256, 768, 1024, 256, 512) is kept at least.
        const unsigned __int128 lower = static_cast<unsigned __int128>(T) * B * (256 + 768 + 1024 + 256 + 512) * 4;
        EXPECT_GE(static_cast<unsigned __int128>(rs), lower);
        EXPECT_EQ(reserve(*rnn, 2 * T, B), 2 * rs);
      } else {
        // The device part is a ring of chunks: bounded in T.
        EXPECT_EQ(reserve(*rnn, 2 * T, B), rs);
        size_t host = 0;
        ASSERT_TRUE(rnn->get_host_reserve_size(T, B, &host).is_ok());
        EXPECT_GT(host, size_t(k2_31) * 4);
      }
      EXPECT_EQ(reserve(*rnn, T, 2 * B), 2 * rs);
      const size_t w1 = workspace(*rnn, T, B, true), w2 = workspace(*rnn, 2 * T, B, true),
                   w3 = workspace(*rnn, 3 * T, B, true);
      EXPECT_EQ(w3 - w2, w2 - w1);
    }
  }
}

TEST(LargeSizes, OverflowIsRejectedWithTheSizes) {
  auto rnn = make(big_lstm());
  ASSERT_TRUE(rnn);
  size_t bytes = 0;
  // T * B itself overflows.
  dynrnn::Status st = rnn->get_workspace_size(int64_t(1) << 40, int64_t(1) << 30, false, &bytes);
  EXPECT_EQ(st.code(), StatusCode::kInvalidValue);
  EXPECT_NE(st.message().find("1099511627776"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("1073741824"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("overflow"), std::string::npos) << st.message();
  // T * B fits (2^62) but what a training forward keeps of every step (x H x bytes) does not.
  for (bool reserve_query : {true, false}) {
    const int64_t T = k2_31, B = k2_31;
    st = reserve_query ? rnn->get_reserve_size(T, B, &bytes) : rnn->get_workspace_size(T, B, true, &bytes);
    EXPECT_EQ(st.code(), StatusCode::kInvalidValue) << st.to_string();
    EXPECT_NE(st.message().find("2147483648"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("overflow"), std::string::npos) << st.message();
  }
  // Inference keeps a ring of chunks, so its workspace does not grow with T: still representable.
  st = rnn->get_workspace_size(k2_31, k2_31, false, &bytes);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_GE(bytes, size_t(k2_31) * 4 * 1024 * 4);
  EXPECT_EQ(workspace(*rnn, int64_t(1) << 32, k2_31 / 2, false), workspace(*rnn, k2_31, k2_31 / 2, false));
  // Just below int64: 2^61 rows of one unit are still too many bytes for a training forward.
  RnnSpec tiny;
  tiny.cells_fw = {CellSpec::basic_rnn(1)};
  tiny.input_size = 1;
  auto small = make(tiny);
  ASSERT_TRUE(small);
  st = small->get_reserve_size(int64_t(1) << 61, 4, &bytes);
  EXPECT_EQ(st.code(), StatusCode::kInvalidValue) << st.to_string();
}

// ------------------------------------------------------------------------------------------------
// Validation of calls with > 2^31 elements: exact 64-bit numbers in the messages, nothing touched.

TEST(LargeSizes, ValidationOfHugeCallsKeepsSixtyFourBitCounts) {
  auto rnn = make(big_lstm());
  ASSERT_TRUE(rnn);
  const int64_t T = 1 << 16, B = 1 << 16;
  const size_t ws = workspace(*rnn, T, B, true), rs = reserve(*rnn, T, B);
  ASSERT_GT(ws, size_t(1) << 32);
  float few[4] = {0, 0, 0, 0};  // stands for every buffer: each call must be rejected untouched
  char scratch[4] = {0, 0, 0, 0};
  auto base = [&] {
    dynrnn::ForwardArgs f;
    f.x_shape[0] = B;
    f.x_shape[1] = T;
    f.x_shape[2] = 1024;
    f.x = few;
    f.weights = few;
    f.outputs = few;
    f.workspace = scratch;
    f.workspace_bytes = ws;
    f.training = true;
    f.reserve = scratch;
    f.reserve_bytes = rs;
    return f;
  };
  struct Case {
    const char* what;
    void (*mutate)(dynrnn::ForwardArgs&, size_t, size_t);
    StatusCode code;
    std::string needle;
  };
  const std::string rows = std::to_string(T * B);
  const std::string out_bytes = std::to_string(T * B * 1024 * 4);
  const Case cases[] = {
      {"workspace one byte short", [](dynrnn::ForwardArgs& f, size_t w, size_t) { f.workspace_bytes = w - 1; },
       StatusCode::kWorkspaceTooSmall,
       "workspace_bytes is " + std::to_string(ws - 1) + "; this call needs " + std::to_string(ws)},
      {"reserve one byte short", [](dynrnn::ForwardArgs& f, size_t, size_t r) { f.reserve_bytes = r - 1; },
       StatusCode::kWorkspaceTooSmall, "reserve_bytes is " + std::to_string(rs - 1)},
      {"workspace 2^32 bytes short (a 32-bit truncation would pass)",
       [](dynrnn::ForwardArgs& f, size_t w, size_t) { f.workspace_bytes = w - (size_t(1) << 32); },
       StatusCode::kWorkspaceTooSmall, "this call needs " + std::to_string(ws)},
      {"null x", [](dynrnn::ForwardArgs& f, size_t, size_t) { f.x = nullptr; }, StatusCode::kInvalidValue,
       "x is null but x_shape has " + rows + " rows"},
      {"null outputs", [](dynrnn::ForwardArgs& f, size_t, size_t) { f.outputs = nullptr; }, StatusCode::kInvalidValue,
       out_bytes + " bytes"},
      {"lengths of 2^32 - 1 entries",
       [](dynrnn::ForwardArgs& f, size_t, size_t) {
         f.sequence_length = reinterpret_cast<const int32_t*>(f.x);
         f.sequence_length_size = (int64_t(1) << 32) - 1;
       },
       StatusCode::kInvalidValue, "sequence_length_size is 4294967295 but the batch size is 65536"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    dynrnn::ForwardArgs f = base();
    c.mutate(f, ws, rs);
    const dynrnn::Status st = rnn->forward(f);
    EXPECT_EQ(st.code(), c.code) << st.to_string();
    EXPECT_NE(st.message().find(c.needle), std::string::npos) << st.message() << "\nlacks: " << c.needle;
  }
  for (float v : few) EXPECT_EQ(v, 0.f);
  for (char v : scratch) EXPECT_EQ(v, 0);
}

// ------------------------------------------------------------------------------------------------
// cell_math.h at element offsets past 2^31

/// A large private anonymous mapping reserved without backing store: a page exists only once
/// touched, so arrays of 2^33 elements cost a few pages when only a few rows are used.
class VirtualArena {
 public:
  explicit VirtualArena(size_t bytes) : size_(bytes) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    base_ = p == MAP_FAILED ? nullptr : static_cast<char*>(p);
  }
  ~VirtualArena() {
    if (base_) munmap(base_, size_);
  }
  bool ok() const { return base_ != nullptr; }
  /// `elems` elements of T, page aligned.
  template <typename T>
  T* take(int64_t elems) {
    const size_t bytes = (static_cast<size_t>(elems) * sizeof(T) + 4095) / 4096 * 4096;
    if (used_ + bytes > size_) {
      ADD_FAILURE() << "virtual arena exhausted";
      return nullptr;
    }
    T* p = reinterpret_cast<T*>(base_ + used_);
    used_ += bytes;
    return p;
  }

 private:
  char* base_ = nullptr;
  size_t size_ = 0;
  size_t used_ = 0;
};

constexpr size_t kArenaBytes = size_t(1) << 39;  // 512 GiB of address space, a few pages of memory

#define REQUIRE_ARENA(arena) \
  if (!(arena).ok()) GTEST_SKIP() << "cannot reserve 512 GiB of address space (ulimit -v?)";

TEST(LargeSizes, StepMapAndSeqViewOffsetsAreSixtyFourBit) {
  VirtualArena arena(kArenaBytes);
  REQUIRE_ARENA(arena);
  const int64_t stride_t = 3 * (int64_t(1) << 30) + 1, stride_b = k2_31 + 7;
  float* base = arena.take<float>(int64_t(3) * stride_t + 8 * stride_b + 16);  // ~1.1e10 elements
  ASSERT_TRUE(base);
  int32_t* len = arena.take<int32_t>(8);
  len[3] = 5;
  len[6] = 2;
  dynrnn::cell::StepMap m{len, 2, 4};
  EXPECT_EQ(m.length(3), 4);  // clamped to max_time
  EXPECT_EQ(m.time(3, true), 1);
  EXPECT_EQ(m.time(6, true), 2);  // finished row: its own position
  dynrnn::cell::SeqView<float> v{base, stride_t, stride_b, false, 0};
  EXPECT_EQ(v.at(m, 3) - base, 2 * stride_t + 3 * stride_b);
  v.reverse = true;
  EXPECT_EQ(v.at(m, 3) - base, 1 * stride_t + 3 * stride_b);
  EXPECT_EQ(v.at(m, 7) - base, 2 * stride_t + 7 * stride_b);  // beyond 2^34 elements
  v.t_offset = 1;
  EXPECT_EQ(v.at(m, 7) - base, 1 * stride_t + 7 * stride_b);
  *v.at(m, 7) = 3.5f;  // the page exists and holds what was written
  EXPECT_EQ(base[1 * stride_t + 7 * stride_b], 3.5f);
}

/// Runs `stage` at row `b` of big buffers and at row 0 of small ones with the same values, and
/// compares the written elements bit for bit.
void expect_same_bits(const float* big, const float* small, int64_t n, const char* what) {
  EXPECT_EQ(std::memcmp(big, small, static_cast<size_t>(n) * sizeof(float)), 0) << what;
}

void fill(float* p, int64_t n, float seed) {
  for (int64_t i = 0; i < n; ++i) p[i] = std::sin(seed + 0.37f * static_cast<float>(i)) * 0.8f;
}

TEST(LargeSizes, LstmStagesAtRowsPastTwoToThe31) {
  VirtualArena arena(kArenaBytes);
  REQUIRE_ARENA(arena);
  const int64_t H = 32, B = (int64_t(1) << 26) + 2, b = (int64_t(1) << 26) + 1;  // b * H > 2^31, b * 4H > 2^33
  ASSERT_GT(b * H, k2_31);
  // Big buffers, [B, width]; gx is a time-major [T = 2, B, 4H] sequence read at step 1.
  float* gx = arena.take<float>(2 * B * 4 * H);
  float* gh = arena.take<float>(B * 4 * H);
  float* z = arena.take<float>(B * 4 * H);
  float* c_prev = arena.take<float>(B * H);
  float* h_prev = arena.take<float>(B * H);
  float* c_out = arena.take<float>(B * H);
  float* h_out = arena.take<float>(B * H);
  float* y = arena.take<float>(2 * B * H);
  float* dz = arena.take<float>(B * 4 * H);
  float* dc = arena.take<float>(B * H);
  float* dh_next = arena.take<float>(B * H);
  float* dh_prev = arena.take<float>(B * H);
  float* dpeep = arena.take<float>(B * 3 * H);
  int32_t* len = arena.take<int32_t>(B);
  ASSERT_TRUE(gx && gh && z && c_prev && h_prev && c_out && h_out && y && dz && dc && dh_next && dh_prev && dpeep &&
              len);
  // Small buffers: one row.
  std::vector<float> s_gx(2 * 4 * H), s_gh(4 * H), s_z(4 * H), s_cp(H), s_hp(H), s_co(H), s_ho(H), s_y(2 * H),
      s_dz(4 * H), s_dc(H), s_dhn(H), s_dhp(H), s_dpeep(3 * H);
  std::vector<float> bias(4 * H), peep(3 * H);
  int32_t s_len = 2;
  fill(bias.data(), 4 * H, 0.1f);
  fill(peep.data(), 3 * H, 0.2f);
  fill(s_gx.data() + 4 * H, 4 * H, 0.3f);
  fill(s_gh.data(), 4 * H, 0.4f);
  fill(s_cp.data(), H, 0.5f);
  fill(s_hp.data(), H, 0.6f);
  fill(s_dc.data(), H, 0.7f);
  fill(s_dhn.data(), H, 0.8f);
  std::memcpy(gx + (1 * B + b) * 4 * H, s_gx.data() + 4 * H, 4 * H * sizeof(float));
  std::memcpy(gh + b * 4 * H, s_gh.data(), 4 * H * sizeof(float));
  std::memcpy(c_prev + b * H, s_cp.data(), H * sizeof(float));
  std::memcpy(h_prev + b * H, s_hp.data(), H * sizeof(float));
  std::memcpy(dc + b * H, s_dc.data(), H * sizeof(float));
  std::memcpy(dh_next + b * H, s_dhn.data(), H * sizeof(float));
  len[b] = 2;

  dynrnn::cell::LstmConfig<float> cfg;
  cfg.forget_bias = 1.0f;
  cfg.w_f = peep.data();
  cfg.w_i = peep.data() + H;
  cfg.w_o = peep.data() + 2 * H;
  auto forward = [&](int64_t rows, const int32_t* lens, float* gx_, float* gh_, float* cp, float* hp, float* co,
                     float* ho, float* y_, float* z_) {
    dynrnn::cell::LstmForwardParams<float> k;
    k.map = {lens, 1, 2};
    k.batch = rows;
    k.cols = H;
    k.cfg = cfg;
    k.gx = {gx_, rows * 4 * H, 4 * H, false, 0};
    k.gh = gh_;
    k.bias = bias.data();
    k.c_prev = cp;
    k.h_prev = hp;
    k.c_out = co;
    k.h_out = ho;
    k.y = {y_, rows * H, H, false, 0};
    k.z_save = z_;
    return k;
  };
  const auto big_f = forward(B, len, gx, gh, c_prev, h_prev, c_out, h_out, y, z);
  const auto small_f = forward(1, &s_len, s_gx.data(), s_gh.data(), s_cp.data(), s_hp.data(), s_co.data(), s_ho.data(),
                               s_y.data(), s_z.data());
  for (int64_t j = 0; j < H; ++j) {
    big_f.apply(b, j);
    small_f.apply(0, j);
  }
  expect_same_bits(z + b * 4 * H, s_z.data(), 4 * H, "z_save");
  expect_same_bits(c_out + b * H, s_co.data(), H, "c_out");
  expect_same_bits(h_out + b * H, s_ho.data(), H, "h_out");
  expect_same_bits(y + (1 * B + b) * H, s_y.data() + H, H, "y (time-major, step 1)");

  auto backward = [&](int64_t rows, const int32_t* lens, float* z_, float* cp, float* dhn, float* dhp, float* dc_,
                      float* dz_, float* dpeep_) {
    dynrnn::cell::LstmBackwardParams<float> k;
    k.map = {lens, 1, 2};
    k.batch = rows;
    k.cols = H;
    k.cfg = cfg;
    k.z = z_;
    k.c_prev = cp;
    k.dh_next = dhn;
    k.dh_prev = dhp;
    k.dc = dc_;
    k.dz = dz_;
    k.dpeep = dpeep_;
    return k;
  };
  const auto big_b = backward(B, len, z, c_prev, dh_next, dh_prev, dc, dz, dpeep);
  const auto small_b = backward(1, &s_len, s_z.data(), s_cp.data(), s_dhn.data(), s_dhp.data(), s_dc.data(),
                                s_dz.data(), s_dpeep.data());
  for (int64_t j = 0; j < H; ++j) {
    big_b.apply(b, j);
    small_b.apply(0, j);
  }
  expect_same_bits(dz + b * 4 * H, s_dz.data(), 4 * H, "dz");
  expect_same_bits(dc + b * H, s_dc.data(), H, "dc");
  expect_same_bits(dh_prev + b * H, s_dhp.data(), H, "dh_prev");
  expect_same_bits(dpeep + b * 3 * H, s_dpeep.data(), 3 * H, "dpeep");
  // Where a 32-bit wrapped row offset would have written: still zero (untouched pages read as 0).
  const int64_t wrapped = static_cast<int64_t>(static_cast<uint32_t>(b * 4 * H));
  for (int64_t j = 0; j < 4 * H; ++j) {
    EXPECT_EQ(dz[wrapped + j], 0.f);
    EXPECT_EQ(z[wrapped + j], 0.f);
  }
}

TEST(LargeSizes, GatherAndRnnStagesAtOffsetsPastTwoToThe31) {
  VirtualArena arena(kArenaBytes);
  REQUIRE_ARENA(arena);
  // Gather: chunk row r = step * B + b of a batch-major [B, T, cols] caller sequence; r * cols > 2^31.
  const int64_t B = 4, cols = 64, T = (int64_t(1) << 25) + 8;
  const int64_t r = (int64_t(1) << 25) + 1;  // step 2^23, row 1
  float* src = arena.take<float>(B * T * cols);
  float* dst = arena.take<float>((r + 1) * cols);
  ASSERT_TRUE(src && dst);
  const int64_t step = r / B, row = r % B;
  for (int64_t j = 0; j < cols; ++j) src[(row * T + step) * cols + j] = 1.0f + static_cast<float>(j);
  dynrnn::cell::SeqCopyParams<float> g;
  g.map = {nullptr, 0, T};
  g.batch = r + 1;
  g.cols = cols;
  g.rows_per_step = B;
  g.src = {src, cols, T * cols, false, 0};
  g.dst = {dst, B * cols, cols, false, 0};  // the step-ordered chunk
  for (int64_t j = 0; j < cols; ++j) g.apply(r, j);
  for (int64_t j = 0; j < cols; ++j) EXPECT_EQ(dst[r * cols + j], 1.0f + static_cast<float>(j)) << j;

  // BasicRNNCell forward at row b with b * H > 2^31.
  const int64_t H = 16, rows = (int64_t(1) << 27) + 2, b = (int64_t(1) << 27) + 1;
  float* gx = arena.take<float>(rows * H);
  float* gh = arena.take<float>(rows * H);
  float* hp = arena.take<float>(rows * H);
  float* ho = arena.take<float>(rows * H);
  float* z = arena.take<float>(rows * H);
  ASSERT_TRUE(gx && gh && hp && ho && z);
  std::vector<float> s_gx(H), s_gh(H), s_hp(H), s_ho(H), s_z(H), bias(H);
  fill(s_gx.data(), H, 1.1f);
  fill(s_gh.data(), H, 1.2f);
  fill(s_hp.data(), H, 1.3f);
  fill(bias.data(), H, 1.4f);
  std::memcpy(gx + b * H, s_gx.data(), H * sizeof(float));
  std::memcpy(gh + b * H, s_gh.data(), H * sizeof(float));
  std::memcpy(hp + b * H, s_hp.data(), H * sizeof(float));
  auto make_rnn = [&](int64_t n, float* gx_, float* gh_, float* hp_, float* ho_, float* z_) {
    dynrnn::cell::RnnForwardParams<float> k;
    k.map = {nullptr, 0, 1};
    k.batch = n;
    k.cols = H;
    k.gx = {gx_, n * H, H, false, 0};
    k.gh = gh_;
    k.bias = bias.data();
    k.h_prev = hp_;
    k.h_out = ho_;
    k.z_save = z_;
    return k;
  };
  const auto big = make_rnn(rows, gx, gh, hp, ho, z);
  const auto small = make_rnn(1, s_gx.data(), s_gh.data(), s_hp.data(), s_ho.data(), s_z.data());
  for (int64_t j = 0; j < H; ++j) {
    big.apply(b, j);
    small.apply(0, j);
  }
  expect_same_bits(ho + b * H, s_ho.data(), H, "h_out");
  expect_same_bits(z + b * H, s_z.data(), H, "z_save");
}

}  // namespace
