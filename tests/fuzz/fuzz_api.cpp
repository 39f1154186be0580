// libFuzzer target: every public entry point of dynrnn on Backend::kCpu, driven by arbitrary bytes.
//
// The bytes decode (sequentially; missing bytes read as 0, and 0 always means the most ordinary
// choice, so an empty input is a valid small LSTM call) into:
//   * an RnnSpec with any values: every element type (float32, float64, bfloat16, float16; the
//     calls' buffers hold it) and invalid ones, invalid enums, negative/huge/overflowing sizes,
//     NaN/Inf/negative clips and forget_bias, empty stacks, bidirectional stacks of mixed cells, any
//     parallel_iterations, swap_memory with any activation_memory_budget, recompute;
//   * Rnn::create with any backend value (kCuda reaches the no-CUDA stub: kNotSupported) or a null
//     `out`; every accessor; find_param; output_width with any direction;
//   * get_workspace_size / get_reserve_size / get_host_reserve_size with any (T, B, training) and
//     null `bytes`;
//   * forward then backward with any x_shape, sequence_length (size and values), null or present
//     pointers, aliasing between buffers, and any workspace/reserve byte counts;
//   * tf_to_cudnn / cudnn_to_tf with any cell and input size; status_string with any code.
//
// The harness never lies about a buffer: every non-null pointer points at host memory of at least
// the size its declaration implies (x_shape, the spec, sequence_length_size, workspace_bytes,
// reserve_bytes), with ASan redzones right after it. Declared shapes too large to back (over
// kMaxBuffer) get a null pointer, or the workspace is declared one byte short so that rejection is
// guaranteed. Oracles, any failure of which aborts:
//   * ASan/UBSan/LSan: no out-of-bounds access, no UB (signed overflow, invalid shifts, float->int
//     overflow, misaligned or null dereference), no leak;
//   * an independent model of the validation rules (README and rnn.h): every call that breaks one
//     must be rejected, every call that breaks none must succeed;
//   * a rejected call writes nothing (every buffer byte-identical), an accepted call never writes
//     its inputs;
//   * param_count / params() / state_layout() / output_width agree with widths computed here in
//     128-bit arithmetic, and create fails whenever those do not fit in int64 or the dtype is none
//     of the four;
//   * after a successful forward, outputs at t >= length are exactly 0 and rows of length 0 copy
//     the initial state to the final state bit for bit; with finite weights, a successful backward
//     gives exactly zero input gradients at padded positions and passes the final-state gradient
//     of a length-0 row to its initial-state gradient; repeating a forward is bitwise identical;
//   * cost: a call with B = 0 (nothing to compute) must return at once, whatever T is (libFuzzer's
//     -timeout catches a loop over T).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "dynrnn/dynrnn.h"
#include "dynrnn/half_types.h"

namespace {

using dynrnn::Activation;
using dynrnn::Backend;
using dynrnn::BackwardArgs;
using dynrnn::CellKind;
using dynrnn::CellSpec;
using dynrnn::DataType;
using dynrnn::ForwardArgs;
using dynrnn::MathMode;
using dynrnn::RecurrentAlgorithm;
using dynrnn::Rnn;
using dynrnn::RnnSpec;
using dynrnn::Status;
using dynrnn::StatusCode;
using i128 = __int128;

constexpr int64_t kMaxBuffer = 512 << 10;  ///< bytes: larger declared buffers get null or force a rejection
constexpr double kMaxCost = 4e6;           ///< multiply-adds (+ per-step overhead) a call may cost

[[noreturn]] void oracle_failure(const char* what, const std::string& detail) {
  std::fprintf(stderr, "\n*** dynrnn fuzz oracle failure: %s\n%s\n", what, detail.c_str());
  std::fflush(stderr);
  std::abort();
}

/// DYNRNN_FUZZ_VERBOSE=1 prints what each input decodes to (for writing seeds and reading crashes).
bool verbose() {
  static const bool v = [] {
    const char* e = std::getenv("DYNRNN_FUZZ_VERBOSE");
    return e && *e && *e != '0';
  }();
  return v;
}

// ------------------------------------------------------------------------------------------------
// Decoding

constexpr int64_t kEdges[] = {0,
                              -1,
                              1,
                              2,
                              3,
                              31,
                              32,
                              33,
                              37,
                              255,
                              256,
                              65535,
                              65536,
                              int64_t(1) << 20,
                              int64_t(INT32_MAX),
                              int64_t(INT32_MAX) + 1,
                              int64_t(INT32_MIN),
                              int64_t(UINT32_MAX),
                              int64_t(UINT32_MAX) + 1,
                              int64_t(1) << 36,
                              int64_t(1) << 38,
                              int64_t(1) << 40,
                              (int64_t(1) << 40) + 1,
                              int64_t(1) << 52,
                              int64_t(1) << 62,
                              INT64_MAX,
                              INT64_MAX - 1,
                              INT64_MIN,
                              -(int64_t(1) << 31),
                              -2};
constexpr int kNumEdges = sizeof(kEdges) / sizeof(kEdges[0]);

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : d_(data), n_(size) {}
  uint8_t u8() { return i_ < n_ ? d_[i_++] : 0; }
  uint64_t u64() {
    uint64_t v = 0;
    for (int k = 0; k < 8; ++k) v |= uint64_t(u8()) << (8 * k);
    return v;
  }
  bool bit() { return (u8() & 1) != 0; }
  /// A size: usually base + small, sometimes an edge value, sometimes any 64-bit value.
  int64_t size(int64_t base, int64_t span) {
    const uint8_t s = u8();
    if (s < 160) return base + s % span;
    if (s < 232) return kEdges[(s - 160) % kNumEdges];
    return static_cast<int64_t>(u64());
  }
  /// A double option value: usually `typical`, else a special value or raw bits.
  double real(double typical) {
    const uint8_t s = u8();
    switch (s % 12) {
      case 0: return typical;
      case 1: return 0.0;
      case 2: return -0.0;
      case 3: return -0.5;
      case 4: return 2.5;
      case 5: return std::numeric_limits<double>::quiet_NaN();
      case 6: return std::numeric_limits<double>::infinity();
      case 7: return -std::numeric_limits<double>::infinity();
      case 8: return 1e-300;
      case 9: return 1e300;
      case 10: return std::numeric_limits<double>::denorm_min();
      default: {
        uint64_t bits = u64();
        double v;
        std::memcpy(&v, &bits, sizeof v);
        return v;
      }
    }
  }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t i_ = 0;
};

CellSpec decode_cell(Reader& r) {
  static const CellKind kKinds[5] = {CellKind::kLSTM, CellKind::kGRU, CellKind::kBasicLSTM, CellKind::kBasicRNN,
                                     CellKind::kGRUResetAfter};
  CellSpec c;
  const uint8_t k = r.u8();
  c.kind = k < 240 ? kKinds[k % 5] : static_cast<CellKind>(static_cast<int8_t>(r.u8()));
  c.num_units = r.size(1, 8);
  const uint8_t a = r.u8();
  c.activation = a < 240 ? static_cast<Activation>(a % 2) : static_cast<Activation>(static_cast<int8_t>(r.u8()));
  // bit 0 forget_bias, 1 peepholes, 2 cell_clip, 3 num_proj, 4 proj_clip, 5 residual, 6 dropout
  const uint8_t opts = r.u8();
  if (opts & 1) c.forget_bias = r.real(1.0);
  c.use_peepholes = (opts & 2) != 0;
  if (opts & 4) c.cell_clip = r.real(0.5);
  if (opts & 8) c.num_proj = r.size(1, 8);
  if (opts & 16) c.proj_clip = r.real(0.4);
  c.residual = (opts & 32) != 0;
  if (opts & 64) {
    c.input_keep_prob = r.real(0.7);
    c.output_keep_prob = r.real(0.8);
    c.state_keep_prob = r.real(0.9);
    c.variational_recurrent = r.bit();
  }
  return c;
}

RnnSpec decode_spec(Reader& r) {
  RnnSpec s;
  const uint8_t layers = r.u8();
  const int n_fw = (layers & 3) == 3 ? 0 : (layers & 3) + 1;
  const int n_bw = (layers >> 2) & 3;
  s.stack_bidirectional = (layers & 16) != 0;
  s.pipeline_projections = (layers & 32) != 0;
  for (int i = 0; i < n_fw; ++i) s.cells_fw.push_back(decode_cell(r));
  for (int i = 0; i < n_bw; ++i) s.cells_bw.push_back(decode_cell(r));
  s.input_size = r.size(1, 8);
  const uint8_t flags = r.u8();  // bits 0-1 dtype, 2 time_major, 3 swap_memory, 4-5 math, 6-7 parallel_iterations
  s.dtype = static_cast<DataType>(flags & 3);  // float32, float64, bfloat16, float16
  s.time_major = (flags & 4) != 0;
  s.swap_memory = (flags & 8) != 0;
  const int math = (flags >> 4) & 3;
  s.math = math == 3 ? static_cast<MathMode>(static_cast<int8_t>(r.u8())) : static_cast<MathMode>(math % 2);
  switch ((flags >> 6) & 3) {
    case 0: break;  // 32
    case 1: s.parallel_iterations = 1 + r.u8() % 8; break;
    case 2: s.parallel_iterations = 0; break;
    default: s.parallel_iterations = static_cast<int>(static_cast<int32_t>(r.u64())); break;
  }
  // bit 0 recompute, bits 1-2 activation_memory_budget, 3 any dtype, 4 kPersistent (all four of
  // bits 4-7: an invalid algorithm)
  const uint8_t more = r.u8();
  s.recompute = (more & 1) != 0;
  if (more & 16) s.algorithm = (more >> 4) == 15 ? static_cast<RecurrentAlgorithm>(2) : RecurrentAlgorithm::kPersistent;
  if (more & 8) s.dtype = static_cast<DataType>(static_cast<int8_t>(r.u8()));
  switch ((more >> 1) & 3) {
    case 0: break;  // 0: the smallest ring
    case 1: s.activation_memory_budget = static_cast<size_t>(r.u8()) << (r.u8() % 24); break;
    case 2: s.activation_memory_budget = static_cast<size_t>(r.u64()); break;
    default: s.activation_memory_budget = 1; break;
  }
  return s;
}

// ------------------------------------------------------------------------------------------------
// What the spec implies, computed here in 128-bit arithmetic (independent of the library)

constexpr i128 kHuge = i128(1) << 100;  ///< stands for "does not fit anywhere"

/// Product of non-negative factors, saturated at kHuge (so that no 128-bit arithmetic overflows).
i128 sat(std::initializer_list<i128> factors) {
  i128 p = 1;
  for (i128 f : factors) {
    if (f < 0) return -1;
    if (f != 0 && p > kHuge / f) return kHuge;
    p *= f;
  }
  return p;
}

struct LayerFacts {
  i128 in = 0, units = 0, out = 0, gates = 0;
  bool lstm = false, gru = false, reset_after = false, project = false, peep = false;
};

struct Facts {
  std::vector<LayerFacts> dirs[2];
  i128 params = 0, state = 0, out[2] = {0, 0};
  int num_dirs = 1;
  bool stacked = false;  ///< stack_bidirectional: one outputs buffer of out[0] + out[1] columns
};

Facts facts_of(const RnnSpec& s) {
  Facts f;
  f.num_dirs = s.bidirectional() ? 2 : 1;
  f.stacked = s.stack_bidirectional;
  auto out_width = [](const CellSpec& c) -> i128 { return c.num_proj > 0 ? c.num_proj : c.num_units; };
  for (int d = 0; d < f.num_dirs; ++d) {
    i128 in = s.input_size;
    const std::vector<CellSpec>& cells = d == 0 ? s.cells_fw : s.cells_bw;
    for (size_t i = 0; i < cells.size(); ++i) {
      const CellSpec& c = cells[i];
      LayerFacts l;
      // stack_bidirectional (equal depths, or create fails): both directions' layer below, concatenated.
      l.in = f.stacked && i > 0 ? out_width(s.cells_fw[i - 1]) + out_width(s.cells_bw[i - 1]) : in;
      l.units = c.num_units;
      l.lstm = c.kind == CellKind::kLSTM || c.kind == CellKind::kBasicLSTM;
      l.gru = c.kind == CellKind::kGRU;
      l.reset_after = c.kind == CellKind::kGRUResetAfter;
      l.project = c.num_proj > 0;
      l.peep = c.use_peepholes;
      l.out = l.project ? c.num_proj : c.num_units;
      l.gates = l.lstm ? 4 : (l.gru ? 2 : (l.reset_after ? 3 : 1));
      const i128 H = l.units;
      // Saturated: meaningful for valid specs (positive widths), never overflowing for any spec.
      if (l.gru) {
        f.params += sat({l.in + H, 2, H}) + sat({2, H}) + sat({l.in + H, H}) + H;
      } else {
        // A reset-after GRU's bias has two rows (input and recurrent).
        f.params += sat({l.in + l.out, l.gates, H}) + sat({l.reset_after ? 2 : 1, l.gates, H});
        if (l.peep) f.params += sat({3, H});
        if (l.project) f.params += sat({H, l.out});
      }
      f.state += (l.lstm ? H : 0) + l.out;
      in = l.out;
      f.dirs[d].push_back(l);
    }
    f.out[d] = in;
  }
  return f;
}

std::string str128(i128 v) {
  if (v == 0) return "0";
  const bool neg = v < 0;
  std::string s;
  while (v != 0) {
    const int digit = static_cast<int>(v % 10);
    s.insert(s.begin(), static_cast<char>('0' + (neg ? -digit : digit)));
    v /= 10;
  }
  return neg ? "-" + s : s;
}

std::string spec_string(const RnnSpec& s) {
  std::string out =
      "spec: input_size=" + std::to_string(s.input_size) + " dtype=" + std::to_string(int(s.dtype)) +
      " time_major=" + std::to_string(s.time_major) + " parallel_iterations=" + std::to_string(s.parallel_iterations) +
      " swap=" + std::to_string(s.swap_memory) + " budget=" + std::to_string(s.activation_memory_budget) +
      " recompute=" + std::to_string(s.recompute) + " stack_bidirectional=" + std::to_string(s.stack_bidirectional) +
      " pipeline_projections=" + std::to_string(s.pipeline_projections) + "\n";
  for (int d = 0; d < 2; ++d) {
    for (const CellSpec& c : d == 0 ? s.cells_fw : s.cells_bw) {
      out += std::string(d == 0 ? "  fw " : "  bw ") + "kind=" + std::to_string(int(c.kind)) +
             " units=" + std::to_string(c.num_units) + " act=" + std::to_string(int(c.activation)) +
             " fb=" + std::to_string(c.forget_bias) + " peep=" + std::to_string(c.use_peepholes) +
             " cell_clip=" + (c.cell_clip ? std::to_string(*c.cell_clip) : "none") +
             " num_proj=" + std::to_string(c.num_proj) +
             " proj_clip=" + (c.proj_clip ? std::to_string(*c.proj_clip) : "none") +
             " residual=" + std::to_string(c.residual) + " keep_in=" + std::to_string(c.input_keep_prob) +
             " keep_out=" + std::to_string(c.output_keep_prob) + " keep_state=" + std::to_string(c.state_keep_prob) +
             " variational=" + std::to_string(c.variational_recurrent) + "\n";
    }
  }
  return out;
}

/// The handle's tables against the facts.
void check_tables(const Rnn& rnn, const Facts& f, const RnnSpec& spec) {
  if (f.params > INT64_MAX || f.state > INT64_MAX) {
    oracle_failure("create accepted a spec whose weight or state count does not fit in int64",
                   spec_string(spec) + "expected param_count " + str128(f.params) + ", state width " + str128(f.state) +
                       "; the handle reports " + std::to_string(rnn.param_count()) + " and " +
                       std::to_string(rnn.state_width()));
  }
  if (rnn.param_count() != static_cast<int64_t>(f.params) || rnn.state_width() != static_cast<int64_t>(f.state)) {
    oracle_failure("param_count or state_width differs from the spec's",
                   spec_string(spec) + "expected " + str128(f.params) + " / " + str128(f.state) + ", got " +
                       std::to_string(rnn.param_count()) + " / " + std::to_string(rnn.state_width()));
  }
  for (int d = 0; d < 2; ++d) {
    const i128 want = d < f.num_dirs ? f.out[d] : 0;
    if (rnn.output_width(d) != static_cast<int64_t>(want)) oracle_failure("output_width", spec_string(spec));
  }
  int64_t next = 0;
  for (const dynrnn::ParamInfo& p : rnn.params()) {
    i128 count = 1;
    for (int64_t dim : p.shape) count *= dim;
    if (p.offset != next || count != p.count || p.count <= 0) {
      oracle_failure("params() table is not contiguous or a count is not the product of its shape",
                     spec_string(spec) + p.name);
    }
    next += p.count;
    if (rnn.find_param(p.name) == nullptr) oracle_failure("find_param misses a listed name", p.name);
  }
  if (next != rnn.param_count()) oracle_failure("params() do not add up to param_count", spec_string(spec));
  int64_t col = 0;
  for (const dynrnn::StateLeaf& leaf : rnn.state_layout()) {
    if (leaf.column_offset != col || leaf.width <= 0) oracle_failure("state_layout is not contiguous", leaf.name);
    col += leaf.width;
  }
  if (col != rnn.state_width()) oracle_failure("state_layout does not add up to state_width", spec_string(spec));
}

// ------------------------------------------------------------------------------------------------
// Buffers: slabs of host memory with ASan redzones right after them; several buffers may share one
// slab (aliasing). Every buffer is at least as long as its declaration implies.

struct Slab {
  char* base = nullptr;
  size_t size = 0;
  bool has_output = false;
  std::vector<char> snapshot;
};

struct Buffer {
  const char* name = "";
  bool output = false;  ///< written by the call (outputs, scratch)
  i128 need = 0;        ///< bytes the declaration implies (the library's span for the alias checks)
  i128 backing = 0;     ///< bytes that must be addressable (>= need; the declared workspace_bytes)
  int slab = -1;        ///< -1: null
  size_t offset = 0;
  char* ptr = nullptr;
};

class Arena {
 public:
  ~Arena() {
    for (Slab& s : slabs_) std::free(s.base);
  }
  /// Places `b`: null (mode says so, or it cannot be backed), its own slab, or inside an earlier slab.
  void place(Reader& r, Buffer& b, bool present) {
    b.slab = -1;
    if (!present || b.backing > kMaxBuffer || b.backing < 0) return;
    const uint8_t m = r.u8();
    const size_t bytes = static_cast<size_t>(b.backing);
    if (m >= 224 && !slabs_.empty()) {
      const int k = static_cast<int>(r.u8() % slabs_.size());
      Slab& s = slabs_[k];
      const size_t off = (s.size * r.u8() / 256) & ~size_t(7);
      s.size = std::max(s.size, off + bytes);
      s.has_output |= b.output;
      b.slab = k;
      b.offset = off;
      return;
    }
    Slab s;
    s.size = bytes;
    s.has_output = b.output;
    slabs_.push_back(std::move(s));
    b.slab = static_cast<int>(slabs_.size()) - 1;
    b.offset = 0;
  }
  /// Allocates every slab (exact sizes: ASan flags the first byte past the end) and resolves pointers.
  void allocate(std::vector<Buffer*>& buffers) {
    for (Slab& s : slabs_) {
      s.base = static_cast<char*>(std::malloc(s.size));  // malloc(0): a unique pointer to nothing
      if (!s.base && s.size > 0) std::abort();
      if (s.size > 0) std::memset(s.base, 0xA5, s.size);
    }
    for (Buffer* b : buffers) b->ptr = b->slab < 0 ? nullptr : slabs_[b->slab].base + b->offset;
  }
  void snapshot() {
    for (Slab& s : slabs_) s.snapshot.assign(s.base, s.base + s.size);
  }
  /// Slabs that differ from the snapshot: all of them (rejected call) or the input-only ones.
  std::string changed(bool inputs_only) const {
    std::string out;
    for (size_t i = 0; i < slabs_.size(); ++i) {
      const Slab& s = slabs_[i];
      if (inputs_only && s.has_output) continue;
      if (s.size > 0 && std::memcmp(s.base, s.snapshot.data(), s.size) != 0) out += " slab" + std::to_string(i);
    }
    return out;
  }
  const Slab& slab(int i) const { return slabs_[i]; }

 private:
  std::vector<Slab> slabs_;
};

bool overlaps(const Buffer& a, const Buffer& b) {
  if (!a.ptr || !b.ptr || a.need <= 0 || b.need <= 0) return false;
  const uintptr_t a0 = reinterpret_cast<uintptr_t>(a.ptr), b0 = reinterpret_cast<uintptr_t>(b.ptr);
  return a0 < b0 + static_cast<uintptr_t>(b.need) && b0 < a0 + static_cast<uintptr_t>(a.need);
}

/// The first overlap of an output with an input or another output, or "".
std::string find_alias(const std::vector<Buffer*>& inputs, const std::vector<Buffer*>& outputs) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    for (const Buffer* in : inputs) {
      if (overlaps(*outputs[i], *in)) return std::string(outputs[i]->name) + " overlaps " + in->name;
    }
    for (size_t j = i + 1; j < outputs.size(); ++j) {
      if (overlaps(*outputs[i], *outputs[j])) return std::string(outputs[i]->name) + " overlaps " + outputs[j]->name;
    }
  }
  return "";
}

// ------------------------------------------------------------------------------------------------
// Element types: the harness handles every buffer in the spec's dtype T through double.

template <typename T>
struct TypeTag {
  using type = T;
};

/// Calls f(TypeTag<T>{}) with the element type of a valid dtype (false for any other value).
template <typename F>
bool with_element_type(DataType dt, F&& f) {
  switch (static_cast<int>(dt)) {
    case 0: f(TypeTag<float>{}); return true;
    case 1: f(TypeTag<double>{}); return true;
    case 2: f(TypeTag<dynrnn::bfloat16>{}); return true;
    case 3: f(TypeTag<dynrnn::float16>{}); return true;
    default: return false;
  }
}

template <typename T>
T from_double(double v) {
  return static_cast<T>(static_cast<dynrnn::compute_t<T>>(v));
}

template <typename T>
double to_double(T v) {
  return static_cast<double>(static_cast<dynrnn::compute_t<T>>(v));
}

/// The largest finite value and the smallest subnormal of T.
template <typename T>
struct Extremes {
  static T largest() { return std::numeric_limits<T>::max(); }
  static T tiniest() { return std::numeric_limits<T>::denorm_min(); }
};
template <>
struct Extremes<dynrnn::bfloat16> {
  static dynrnn::bfloat16 largest() { return dynrnn::bfloat16::from_bits(0x7f7f); }
  static dynrnn::bfloat16 tiniest() { return dynrnn::bfloat16::from_bits(0x0001); }
};
template <>
struct Extremes<dynrnn::float16> {
  static dynrnn::float16 largest() { return dynrnn::float16::from_bits(0x7bff); }
  static dynrnn::float16 tiniest() { return dynrnn::float16::from_bits(0x0001); }
};

/// Fills a float buffer: small values from a seeded generator, with special values sprinkled in.
template <typename T>
void fill_values(Reader& r, char* p, i128 bytes) {
  if (!p || bytes <= 0) return;
  const uint8_t mode = r.u8();
  uint64_t state = 0x9E3779B97F4A7C15ull ^ (uint64_t(mode) << 32) ^ uint64_t(bytes);
  const int64_t n = static_cast<int64_t>(bytes) / static_cast<int64_t>(sizeof(T));
  T* v = reinterpret_cast<T*>(p);
  for (int64_t i = 0; i < n; ++i) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    T x = from_double<T>(static_cast<double>(state >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
    if (mode >= 192 && (state & 0xF) == 0) {
      const T specials[] = {from_double<T>(std::numeric_limits<double>::quiet_NaN()),
                            from_double<T>(std::numeric_limits<double>::infinity()),
                            from_double<T>(-std::numeric_limits<double>::infinity()),
                            Extremes<T>::largest(),
                            Extremes<T>::tiniest(),
                            from_double<T>(-0.0),
                            from_double<T>(1e4)};
      x = specials[(state >> 4) % 7];
    }
    v[i] = x;
  }
}

// ------------------------------------------------------------------------------------------------
// One forward + backward

struct CallShape {
  int64_t T = 0, B = 0, D = 0;
  i128 x = 0, out[2] = {0, 0}, state = 0, weights = 0, lengths = 0;  ///< bytes
};

/// Multiply-adds of a forward + backward plus per-step overhead (0 when B == 0: nothing to do).
double cost_of(const Facts& f, int64_t T, int64_t B) {
  if (T <= 0 || B <= 0) return 0;
  double c = 0;
  for (int d = 0; d < f.num_dirs; ++d) {
    for (const LayerFacts& l : f.dirs[d]) {
      const double H = static_cast<double>(l.units), in = static_cast<double>(l.in), out = static_cast<double>(l.out);
      double per_row = (in + out) * static_cast<double>(l.gates) * H + 16 * H;
      if (l.gru) per_row += (in + H) * H;
      if (l.project) per_row += H * out;
      c += 3.0 * static_cast<double>(T) * static_cast<double>(B) * per_row + 64.0 * static_cast<double>(T);
    }
  }
  return c;
}

int64_t effective_length(const int32_t* len, int64_t b, int64_t T) {
  if (!len) return T;
  const int64_t v = len[b];
  return v < 0 ? 0 : (v > T ? T : v);
}

template <typename T>
bool all_finite(const char* p, i128 bytes) {
  const T* v = reinterpret_cast<const T*>(p);
  for (int64_t i = 0; i < static_cast<int64_t>(bytes) / static_cast<int64_t>(sizeof(T)); ++i) {
    if (!std::isfinite(to_double(v[i]))) return false;
  }
  return true;
}

template <typename T>
bool same_value(T a, T b) {
  const double x = to_double(a), y = to_double(b);
  return x == y || (std::isnan(x) && std::isnan(y));
}

struct Verdict {
  std::string must_reject;  ///< why a rule is broken ("" = none)
  void rule(bool broken, const std::string& why) {
    if (broken && must_reject.empty()) must_reject = why;
  }
};

void check_verdict(const char* call, const Status& st, const Verdict& v, const std::string& context) {
  if (st.is_ok() && !v.must_reject.empty()) {
    oracle_failure("a call that breaks a rule was accepted", std::string(call) + ": " + v.must_reject + "\n" + context);
  }
  if (!st.is_ok() && v.must_reject.empty()) {
    oracle_failure("a valid call was rejected", std::string(call) + ": " + st.to_string() + "\n" + context);
  }
  if (!st.is_ok() && st.message().empty()) oracle_failure("an error without a message", call);
}

template <typename T>
void run_calls(Reader& r, Rnn& rnn, const RnnSpec& spec, const Facts& f) {
  const int eb = static_cast<int>(sizeof(T));
  const bool bi = spec.bidirectional();
  CallShape c;
  c.T = r.size(1, 8);
  c.B = r.size(1, 4);
  c.D = r.u8() < 240 ? spec.input_size : r.size(0, 8);
  int64_t x_shape[3] = {spec.time_major ? c.T : c.B, spec.time_major ? c.B : c.T, c.D};
  if (verbose()) {
    std::fprintf(stderr, "call: T=%lld B=%lld D=%lld\n", static_cast<long long>(c.T), static_cast<long long>(c.B),
                 static_cast<long long>(c.D));
  }
  const bool shape_ok = c.T >= 0 && c.B >= 0 && c.D >= 0 && c.D == spec.input_size;
  c.x = shape_ok ? sat({c.T, c.B, c.D, eb}) : -1;
  // stack_bidirectional: both directions' outputs in `outputs`, none in outputs_bw.
  const bool own_bw = bi && !f.stacked;
  c.out[0] = shape_ok ? sat({c.T, c.B, f.stacked ? f.out[0] + f.out[1] : f.out[0], eb}) : -1;
  c.out[1] = shape_ok && own_bw ? sat({c.T, c.B, f.out[1], eb}) : 0;
  c.state = shape_ok ? sat({c.B, f.state, eb}) : -1;
  c.weights = sat({f.params, eb});
  const bool sizes_fit = c.x <= INT64_MAX && c.out[0] <= INT64_MAX && c.out[1] <= INT64_MAX && c.state <= INT64_MAX &&
                         c.weights <= INT64_MAX;

  std::string context = spec_string(spec) + "x_shape = {" + std::to_string(x_shape[0]) + ", " +
                        std::to_string(x_shape[1]) + ", " + std::to_string(x_shape[2]) + "}";

  // Lengths.
  const uint8_t len_mode = r.u8() % 8;
  bool seq_present = false, host_present = false;
  int64_t seq_size = 0;
  switch (len_mode) {
    case 0:
    case 1: break;
    case 2:
    case 3:
    case 4: seq_present = true, seq_size = c.B; break;
    case 5: seq_present = true, seq_size = r.size(0, 8); break;
    case 6: seq_size = r.size(0, 8); break;
    default: host_present = true, seq_size = r.bit() ? c.B : 0; break;
  }
  if (seq_present && r.u8() >= 240) host_present = true;
  // `training`: a reserve (and, with swap_memory, a host reserve) is passed and backward may follow;
  // ForwardArgs::training usually agrees.
  const bool training = r.u8() < 200;
  const bool flag_training = r.u8() >= 240 ? !training : training;

  // Size queries for this shape (their failure means the call must fail too).
  // (The reserve is always backed when training: its declared size is capped below.)
  size_t ws_needed = 0, rs_needed = 0, ws_train = 0, ws_flag = 0;
  const bool ws_ok = rnn.get_workspace_size(c.T, c.B, training, &ws_needed).is_ok();
  const bool rs_ok = rnn.get_reserve_size(c.T, c.B, &rs_needed).is_ok();
  size_t hr_needed = 0;  // swap_memory's host half of the reserve
  const bool hr_ok = rnn.get_host_reserve_size(c.T, c.B, &hr_needed).is_ok();
  const bool ws_train_ok = rnn.get_workspace_size(c.T, c.B, true, &ws_train).is_ok();
  const bool ws_flag_ok = rnn.get_workspace_size(c.T, c.B, flag_training, &ws_flag).is_ok();

  const double cost = cost_of(f, shape_ok ? c.T : 0, shape_ok ? c.B : 0);
  const bool affordable = cost <= kMaxCost;

  Arena arena;
  Buffer x{"x", false, c.x, c.x}, lengths{"sequence_length", false, 0, 0},
      host_len{"host_sequence_length", false, 0, 0}, init{"initial_state", false, c.state, c.state},
      w{"weights", false, c.weights, c.weights}, out{"outputs", true, c.out[0], c.out[0]},
      out_bw{"outputs_bw", true, c.out[1], c.out[1]}, fin{"final_state", true, c.state, c.state},
      ws{"workspace", true, 0, 0}, rs{"reserve", true, 0, 0};
  const i128 len_bytes = seq_size < 0 ? -1 : i128(seq_size) * 4;
  lengths.need = lengths.backing = len_bytes;
  host_len.need = host_len.backing = len_bytes;

  // Workspace and reserve byte counts: exact, short, long, zero or any; never more than backed.
  auto declare = [&](size_t needed, bool query_ok) -> size_t {
    const uint8_t m = r.u8() % 8;
    size_t bytes = needed;
    if (!query_ok)
      bytes = static_cast<size_t>(r.size(0, 1024) & 0xFFFFF);
    else if (m == 4)
      bytes = needed > 0 ? needed - 1 : 0;
    else if (m == 5)
      bytes = needed + r.u8();
    else if (m == 6)
      bytes = 0;
    else if (m == 7)
      bytes = static_cast<size_t>(r.size(0, 4096) & 0xFFFFF);
    return bytes;
  };
  size_t ws_bytes = declare(ws_needed, ws_ok);
  size_t rs_bytes = training ? declare(rs_needed, rs_ok) : 0;
  size_t hr_bytes = training && (hr_needed > 0 || r.u8() >= 240) ? declare(hr_needed, hr_ok) : 0;
  // A call too large or too costly to run here is made to fail: one byte of workspace short.
  bool forced = false;
  if (ws_ok && ws_needed > 0 && (!affordable || ws_needed > size_t(kMaxBuffer)) && ws_bytes >= ws_needed) {
    ws_bytes = std::min(ws_needed - 1, size_t(kMaxBuffer));
    forced = true;
  }
  // A flipped training flag changes the forward's plan: keep a forced rejection forced.
  if (forced && ws_flag_ok && ws_bytes >= ws_flag) ws_bytes = ws_flag > 0 ? ws_flag - 1 : 0;
  if (ws_bytes > size_t(kMaxBuffer)) ws_bytes = std::min(ws_needed > 0 ? ws_needed - 1 : 0, size_t(kMaxBuffer));
  if (rs_bytes > size_t(kMaxBuffer)) rs_bytes = std::min(rs_needed > 0 ? rs_needed - 1 : 0, size_t(kMaxBuffer));
  if (hr_bytes > size_t(kMaxBuffer)) hr_bytes = std::min(hr_needed > 0 ? hr_needed - 1 : 0, size_t(kMaxBuffer));
  ws.backing = ws_bytes;
  ws.need = ws_flag_ok ? static_cast<i128>(ws_flag) : 0;  // the library's span: the plan of this call
  rs.backing = rs_bytes;
  rs.need = flag_training && rs_ok ? static_cast<i128>(rs_needed) : 0;
  Buffer hr{"host_reserve", true, flag_training && hr_ok ? static_cast<i128>(hr_needed) : 0,
            static_cast<i128>(hr_bytes)};

  // Pointers: mode byte per buffer (0..127 the usual choice, 128..191 null, 192..255 present).
  auto presence = [&](bool usual) {
    const uint8_t m = r.u8();
    return m < 128 ? usual : m >= 192;
  };
  arena.place(r, x, presence(true));
  arena.place(r, lengths, seq_present);
  arena.place(r, host_len, host_present);
  arena.place(r, init, presence(true));
  arena.place(r, w, presence(true));
  arena.place(r, out, presence(true));
  arena.place(r, out_bw, presence(own_bw));
  arena.place(r, fin, presence(true));
  arena.place(r, ws, presence(true));
  arena.place(r, rs, training);
  arena.place(r, hr, training && presence(hr_bytes > 0));
  // Backward buffers.
  Buffer dout{"grad_outputs", false, c.out[0], c.out[0]}, dout_bw{"grad_outputs_bw", false, c.out[1], c.out[1]},
      dfin{"grad_final_state", false, c.state, c.state}, dx{"grad_inputs", true, c.x, c.x},
      dinit{"grad_initial_state", true, c.state, c.state}, dw{"grad_weights", true, c.weights, c.weights};
  arena.place(r, dout, presence(true));
  arena.place(r, dout_bw, presence(own_bw));
  arena.place(r, dfin, presence(true));
  arena.place(r, dx, presence(true));
  arena.place(r, dinit, presence(true));
  arena.place(r, dw, presence(true));
  std::vector<Buffer*> all = {&x,  &lengths, &host_len, &init,    &w,    &out, &out_bw, &fin, &ws,
                              &rs, &hr,      &dout,     &dout_bw, &dfin, &dx,  &dinit,  &dw};
  arena.allocate(all);
  // Initialise inputs (an input aliasing an output gets the input's values; outputs keep 0xA5).
  fill_values<T>(r, x.ptr, x.backing);
  fill_values<T>(r, init.ptr, init.backing);
  fill_values<T>(r, w.ptr, w.backing);
  fill_values<T>(r, dout.ptr, dout.backing);
  fill_values<T>(r, dout_bw.ptr, dout_bw.backing);
  fill_values<T>(r, dfin.ptr, dfin.backing);
  if (lengths.ptr || host_len.ptr) {
    const int64_t n = std::max<int64_t>(0, seq_size);
    const int64_t Tc = std::min<int64_t>(std::max<int64_t>(c.T, 0), 200);
    for (int64_t b = 0; b < n; ++b) {
      const uint8_t v = r.u8();
      int32_t len;
      if (v >= 248) {
        const int32_t edges[] = {INT32_MIN,
                                 INT32_MAX,
                                 -1,
                                 static_cast<int32_t>(std::min<int64_t>(c.T, INT32_MAX)),
                                 static_cast<int32_t>(std::min<int64_t>(c.T, INT32_MAX - 1) + 1),
                                 -100,
                                 0,
                                 1};
        len = edges[v - 248];
      } else {
        const int64_t idx = v % (Tc + 4);
        len = static_cast<int32_t>(idx == 0 ? Tc : idx == 1 ? 0 : idx == 2 ? -1 : idx == 3 ? Tc + 1 : idx - 3);
      }
      if (lengths.ptr) std::memcpy(lengths.ptr + 4 * b, &len, 4);
      if (host_len.ptr) std::memcpy(host_len.ptr + 4 * b, &len, 4);
    }
  }
  const int32_t* len_ptr = reinterpret_cast<const int32_t*>(lengths.ptr);

  // ---- forward
  ForwardArgs fa;
  std::copy(x_shape, x_shape + 3, fa.x_shape);
  fa.x = x.ptr;
  fa.sequence_length = len_ptr;
  fa.sequence_length_size = seq_size;
  fa.host_sequence_length = reinterpret_cast<const int32_t*>(host_len.ptr);
  fa.initial_state = init.ptr;
  fa.weights = w.ptr;
  fa.outputs = out.ptr;
  fa.outputs_bw = out_bw.ptr;
  fa.final_state = fin.ptr;
  fa.workspace = ws.ptr;
  fa.workspace_bytes = ws_bytes;
  fa.training = flag_training;
  fa.reserve = rs.ptr;
  fa.reserve_bytes = rs_bytes;
  fa.host_reserve = hr.ptr;
  fa.host_reserve_bytes = hr_bytes;
  fa.dropout_seed = r.u64();
  const uint64_t seed_in_memory = r.u64();
  if (r.bit()) fa.dropout_seed_at = &seed_in_memory;
  const bool lengths_ok = !seq_present || !len_ptr || !bi || c.B <= 0 || seq_size != c.B || [&] {
    for (int64_t b = 0; b < c.B; ++b) {
      if (len_ptr[b] < 0 || len_ptr[b] > c.T) return false;
    }
    return true;
  }();

  auto common_rules = [&](Verdict& v, bool ws_query_ok, size_t ws_need) {
    v.rule(x_shape[0] < 0 || x_shape[1] < 0 || x_shape[2] < 0, "negative x_shape");
    v.rule(c.D != spec.input_size, "x_shape[2] != input_size");
    v.rule(!sizes_fit, "a buffer size overflows int64");
    v.rule(!ws_query_ok, "the workspace query fails for this shape");
    v.rule(!x.ptr && c.x > 0, "x null");
    v.rule(!w.ptr, "weights null");
    v.rule(len_ptr && seq_size != c.B, "sequence_length_size != B");
    v.rule(!len_ptr && (seq_size != 0 || host_len.ptr), "size or host lengths without sequence_length");
    v.rule(!lengths_ok, "bidirectional length out of [0, T]");
    v.rule(ws_bytes < ws_need, "workspace_bytes short");
    v.rule(!ws.ptr && ws_need > 0, "workspace null");
  };

  Verdict fv;
  common_rules(fv, ws_flag_ok, ws_flag);
  fv.rule(flag_training && !rs_ok, "the reserve query fails");
  fv.rule(!flag_training && (rs.ptr || rs_bytes > 0), "a reserve without training");
  fv.rule(flag_training && !rs.ptr && rs_needed > 0, "training without a reserve");
  fv.rule(flag_training && rs_bytes < rs_needed, "reserve_bytes short");
  fv.rule(flag_training && !hr_ok, "the host reserve query fails");
  fv.rule(flag_training && hr_needed > 0 && hr_bytes < hr_needed, "host_reserve_bytes short");
  fv.rule(flag_training && hr_needed > 0 && !hr.ptr, "host_reserve null");
  fv.rule(!flag_training && (hr.ptr || hr_bytes > 0), "a host_reserve without training");
  fv.rule(!out.ptr && c.out[0] > 0, "outputs null");
  fv.rule(own_bw && !out_bw.ptr && c.out[1] > 0, "outputs_bw null");
  fv.rule(!own_bw && out_bw.ptr, "outputs_bw on a unidirectional or stack_bidirectional RNN");
  fv.rule(!find_alias({&x, &w, &lengths, &init}, {&out, &out_bw, &fin, &ws, &rs, &hr}).empty(),
          find_alias({&x, &w, &lengths, &init}, {&out, &out_bw, &fin, &ws, &rs, &hr}));
  if (forced && fv.must_reject.empty()) oracle_failure("harness: a forced rejection breaks no rule", context);

  arena.snapshot();
  if (verbose()) {
    std::fprintf(stderr,
                 "%s\nforward: training %d (reserve %s, %zu of %zu bytes), workspace %s (%zu of %zu bytes), lengths %s "
                 "(size %lld), initial_state %s, final_state %s, outputs %s, outputs_bw %s, weights %s, x %s\n",
                 context.c_str(), int(flag_training), rs.ptr ? "set" : "null", rs_bytes, rs_needed,
                 ws.ptr ? "set" : "null", ws_bytes, ws_flag, len_ptr ? "set" : "null", static_cast<long long>(seq_size),
                 init.ptr ? "set" : "null", fin.ptr ? "set" : "null", out.ptr ? "set" : "null",
                 out_bw.ptr ? "set" : "null", w.ptr ? "set" : "null", x.ptr ? "set" : "null");
  }
  const Status fst = rnn.forward(fa);
  if (verbose()) std::fprintf(stderr, "forward: %s\n", fst.to_string().c_str());
  check_verdict("forward", fst, fv, context);
  if (!fst.is_ok()) {
    const std::string ch = arena.changed(false);
    if (!ch.empty()) oracle_failure("a rejected forward wrote memory", fst.to_string() + ":" + ch + "\n" + context);
  } else {
    const std::string ch = arena.changed(true);
    if (!ch.empty()) oracle_failure("forward wrote an input", ch + "\n" + context);
    // Masking: outputs past each length are exactly zero; length-0 rows copy the state through.
    const int64_t T_ = c.T, B = c.B;
    for (int d = 0; d < (own_bw ? 2 : 1); ++d) {
      const T* o = reinterpret_cast<const T*>(d == 0 ? out.ptr : out_bw.ptr);
      const int64_t O = static_cast<int64_t>(f.stacked ? f.out[0] + f.out[1] : f.out[d]);
      if (!o) continue;
      for (int64_t b = 0; b < B; ++b) {
        for (int64_t t = effective_length(len_ptr, b, T_); t < T_; ++t) {
          const T* e = o + (spec.time_major ? (t * B + b) : (b * T_ + t)) * O;
          for (int64_t j = 0; j < O; ++j) {
            if (to_double(e[j]) != 0.0) oracle_failure("a padded output is not zero", context);
          }
        }
      }
    }
    if (fin.ptr) {
      for (int64_t b = 0; b < B; ++b) {
        if (effective_length(len_ptr, b, T_) != 0) continue;
        for (const dynrnn::StateLeaf& leaf : rnn.state_layout()) {
          const int64_t at = (B * leaf.column_offset + b * leaf.width) * eb;
          if (init.ptr ? std::memcmp(fin.ptr + at, init.ptr + at, leaf.width * eb) != 0
                       : !std::all_of(reinterpret_cast<const T*>(fin.ptr + at),
                                      reinterpret_cast<const T*>(fin.ptr + at) + leaf.width,
                                      [](T v) { return to_double(v) == 0.0; })) {
            oracle_failure("a length-0 row's final state is not its initial state", leaf.name + "\n" + context);
          }
        }
      }
    }
    // Determinism: the same call again gives the same bits.
    if (r.u8() >= 192) {
      auto grab = [](const char* p, i128 n) {
        return p ? std::vector<char>(p, p + static_cast<size_t>(std::max<i128>(n, 0))) : std::vector<char>();
      };
      const std::vector<char> o1 = grab(out.ptr, c.out[0]), f1 = grab(fin.ptr, c.state);
      const Status again = rnn.forward(fa);
      if (!again.is_ok()) oracle_failure("a repeated forward failed", again.to_string());
      if (o1 != grab(out.ptr, c.out[0]) || f1 != grab(fin.ptr, c.state)) {
        oracle_failure("a repeated forward is not bitwise identical", context);
      }
    }
  }

  // ---- backward (after a training forward, or a failed one: the reserve then holds 0xA5 bytes)
  if (!training || r.u8() >= 240) return;
  BackwardArgs ba;
  std::copy(x_shape, x_shape + 3, ba.x_shape);
  ba.x = x.ptr;
  ba.sequence_length = len_ptr;
  ba.sequence_length_size = seq_size;
  ba.host_sequence_length = fa.host_sequence_length;
  ba.initial_state = init.ptr;
  ba.weights = w.ptr;
  ba.grad_outputs = dout.ptr;
  ba.grad_outputs_bw = dout_bw.ptr;
  ba.grad_final_state = dfin.ptr;
  ba.grad_inputs = dx.ptr;
  ba.grad_initial_state = dinit.ptr;
  ba.grad_weights = dw.ptr;
  ba.accumulate_grad_weights = r.bit();
  ba.workspace = ws.ptr;
  ba.workspace_bytes = ws_bytes;
  ba.reserve = rs.ptr;
  ba.reserve_bytes = rs_bytes;
  ba.host_reserve = hr.ptr;
  ba.host_reserve_bytes = hr_bytes;
  ba.dropout_seed = fa.dropout_seed;
  ba.dropout_seed_at = fa.dropout_seed_at;
  Buffer bws = ws;  // backward's workspace span is the training one
  bws.need = ws_train_ok ? static_cast<i128>(ws_train) : 0;
  Buffer brs = rs;
  brs.output = false;
  brs.need = rs_ok ? static_cast<i128>(rs_needed) : 0;
  Buffer bhr = hr;
  bhr.output = false;
  bhr.need = hr_ok ? static_cast<i128>(hr_needed) : 0;

  Verdict bv;
  common_rules(bv, ws_train_ok, ws_train);
  bv.rule(!rs_ok, "the reserve query fails");
  bv.rule(!own_bw && dout_bw.ptr, "grad_outputs_bw on a unidirectional or stack_bidirectional RNN");
  bv.rule(!rs.ptr && rs_needed > 0, "reserve null");
  bv.rule(rs_bytes < rs_needed, "reserve_bytes short");
  bv.rule(!hr_ok, "the host reserve query fails");
  bv.rule(hr_needed > 0 && hr_bytes < hr_needed, "host_reserve_bytes short");
  bv.rule(hr_needed > 0 && !hr.ptr, "host_reserve null");
  const std::string alias =
      find_alias({&x, &w, &lengths, &init, &dout, &dout_bw, &dfin, &brs, &bhr}, {&dx, &dinit, &dw, &bws});
  bv.rule(!alias.empty(), alias);
  if (bv.must_reject.empty() && !affordable) return;  // a valid call too costly to run here

  arena.snapshot();
  const std::vector<char> reserve_before(rs.ptr, rs.ptr + (rs.ptr ? std::min<size_t>(rs_bytes, rs_needed) : 0));
  const std::vector<char> host_before(hr.ptr, hr.ptr + (hr.ptr ? std::min<size_t>(hr_bytes, hr_needed) : 0));
  const Status bst = rnn.backward(ba);
  if (verbose()) std::fprintf(stderr, "backward: %s\n", bst.to_string().c_str());
  check_verdict("backward", bst, bv, context);
  if (!bst.is_ok()) {
    const std::string ch = arena.changed(false);
    if (!ch.empty()) oracle_failure("a rejected backward wrote memory", bst.to_string() + ":" + ch + "\n" + context);
    return;
  }
  // Inputs (the reserve included) untouched. Slabs holding the workspace or a gradient are outputs.
  {
    std::string ch = arena.changed(true);
    if (!ch.empty()) oracle_failure("backward wrote an input", ch + "\n" + context);
    if (!reserve_before.empty() && std::memcmp(reserve_before.data(), rs.ptr, reserve_before.size()) != 0) {
      oracle_failure("backward wrote the reserve (BackwardArgs::reserve is [in])", context);
    }
    if (!host_before.empty() && std::memcmp(host_before.data(), hr.ptr, host_before.size()) != 0) {
      oracle_failure("backward wrote the host reserve (BackwardArgs::host_reserve is [in])", context);
    }
  }
  // Determinism: the same backward again gives the same bits.
  if (!ba.accumulate_grad_weights && r.u8() >= 160) {
    auto grab = [](const Buffer& b, i128 bytes) {
      return b.ptr ? std::vector<char>(b.ptr, b.ptr + static_cast<size_t>(bytes)) : std::vector<char>();
    };
    const std::vector<char> g1 = grab(dx, c.x), g2 = grab(dinit, c.state), g3 = grab(dw, c.weights);
    const Status again = rnn.backward(ba);
    if (!again.is_ok()) oracle_failure("a repeated backward failed", again.to_string() + "\n" + context);
    if (g1 != grab(dx, c.x) || g2 != grab(dinit, c.state) || g3 != grab(dw, c.weights)) {
      oracle_failure("a repeated backward is not bitwise identical", context);
    }
  }
  // Nothing to differentiate (B = 0 or T = 0): the weight gradient is exactly zero.
  if ((c.B == 0 || c.T == 0) && dw.ptr && !ba.accumulate_grad_weights) {
    const T* g = reinterpret_cast<const T*>(dw.ptr);
    for (int64_t i = 0; i < static_cast<int64_t>(c.weights) / eb; ++i) {
      if (to_double(g[i]) != 0.0) oracle_failure("grad_weights of an empty batch or sequence is not zero", context);
    }
  }
  if (!fst.is_ok() || !w.ptr || !all_finite<T>(w.ptr, c.weights)) return;
  const int64_t T_ = c.T, B = c.B;
  if (dx.ptr) {
    const T* g = reinterpret_cast<const T*>(dx.ptr);
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t t = effective_length(len_ptr, b, T_); t < T_; ++t) {
        const T* e = g + (spec.time_major ? (t * B + b) : (b * T_ + t)) * c.D;
        for (int64_t j = 0; j < c.D; ++j) {
          if (to_double(e[j]) != 0.0) oracle_failure("grad_inputs at a padded position is not zero", context);
        }
      }
    }
  }
  if (dinit.ptr) {
    for (int64_t b = 0; b < B; ++b) {
      if (effective_length(len_ptr, b, T_) != 0) continue;
      for (const dynrnn::StateLeaf& leaf : rnn.state_layout()) {
        const int64_t at = B * leaf.column_offset + b * leaf.width;
        const T* gi = reinterpret_cast<const T*>(dinit.ptr) + at;
        const T* gf = dfin.ptr ? reinterpret_cast<const T*>(dfin.ptr) + at : nullptr;
        for (int64_t j = 0; j < leaf.width; ++j) {
          if (!same_value(gi[j], gf ? gf[j] : T(0))) {
            oracle_failure("a length-0 row's initial-state gradient is not its final-state gradient",
                           leaf.name + "\n" + context);
          }
        }
      }
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Weight conversion

template <typename T>
void fuzz_conversion(Reader& r, const CellSpec& cell, int64_t D) {
  const bool lstm = cell.kind == CellKind::kLSTM || cell.kind == CellKind::kBasicLSTM;
  const bool reset_after = cell.kind == CellKind::kGRUResetAfter;  // 3 gates, bias [2, 3H]
  const i128 G = lstm ? 4 : (reset_after ? 3 : 1), H = cell.num_units,
             P = cell.kind == CellKind::kLSTM ? cell.num_proj : 0;
  const i128 Hs = P > 0 ? P : H;
  const bool dims_ok = H > 0 && D > 0;
  // Saturated products (any of these may be huge or negative; only dims_ok shapes are backed).
  const i128 sizes[8] = {sat({i128(D) + Hs, G, H}),
                         sat({reset_after ? 2 : 1, G, H}),
                         P > 0 ? sat({H, P}) : 0,
                         sat({G, H, D}),
                         sat({G, H, Hs}),
                         sat({G, H}),
                         sat({G, H}),
                         P > 0 ? sat({P, H}) : 0};
  bool fits = dims_ok;
  for (i128 s : sizes) fits = fits && s >= 0 && s <= kMaxBuffer / static_cast<i128>(sizeof(T));
  std::vector<std::vector<T>> buf(8);
  for (int i = 0; i < 8; ++i) {
    if (fits) buf[i].assign(static_cast<size_t>(sizes[i]), from_double<T>(0.25 * i));
  }
  // Null pointers by choice (and always when the shapes cannot be backed: rejection is then certain).
  const uint8_t nulls = fits ? r.u8() : 0xFF;
  auto ptr = [&](int i) -> T* { return (nulls >> i) & 1 || !fits ? nullptr : buf[i].data(); };
  dynrnn::CudnnLayerWeights<T> cw{ptr(3), ptr(4), ptr(5), ptr(6), ptr(7)};
  const Status st = dynrnn::tf_to_cudnn<T>(cell, D, ptr(0), ptr(1), ptr(2), cw);
  const bool convertible =
      cell.kind != CellKind::kGRU && dims_ok && !cell.use_peepholes && !cell.cell_clip && !cell.proj_clip;
  if (st.is_ok() && !convertible) oracle_failure("tf_to_cudnn accepted an inconvertible cell", "");
  if (!st.is_ok() && st.message().empty()) oracle_failure("tf_to_cudnn: an error without a message", "");
  dynrnn::CudnnLayerWeights<const T> in{ptr(3), ptr(4), ptr(5), ptr(6), ptr(7)};
  std::vector<T> k2(buf[0].size()), b2(buf[1].size()), p2(buf[2].size());
  const Status st2 = dynrnn::cudnn_to_tf<T>(cell, D, in, ptr(0) ? k2.data() : nullptr, ptr(1) ? b2.data() : nullptr,
                                            ptr(2) ? p2.data() : nullptr);
  if (st2.is_ok() && !convertible) oracle_failure("cudnn_to_tf accepted an inconvertible cell", "");
  if (st.is_ok() && st2.is_ok() && !k2.empty() && std::memcmp(k2.data(), buf[0].data(), k2.size() * sizeof(T)) != 0) {
    oracle_failure("tf_to_cudnn -> cudnn_to_tf changed the kernel", "");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader r(data, size);
  const RnnSpec spec = decode_spec(r);

  // Status strings for any code.
  const Status any(static_cast<StatusCode>(static_cast<int8_t>(r.u8())), "m");
  if (any.to_string().empty() || dynrnn::status_string(any.code()) == nullptr) std::abort();

  const uint8_t be = r.u8();
  Backend backend = Backend::kCpu;
  if (be >= 248)
    backend = static_cast<Backend>(static_cast<int8_t>(r.u8()));
  else if (be >= 240)
    backend = Backend::kCuda;  // the no-CUDA stub: kNotSupported
  std::unique_ptr<Rnn> rnn;
  const Status st = Rnn::create(spec, backend, be == 239 ? nullptr : &rnn);
  if (verbose()) std::fprintf(stderr, "%screate: %s\n", spec_string(spec).c_str(), st.to_string().c_str());
  if (!st.is_ok()) {
    if (st.message().empty()) oracle_failure("create: an error without a message", st.to_string());
    if (rnn) oracle_failure("a failed create produced a handle", st.to_string());
  }

  // Weight conversion with this spec's first cell.
  if (!spec.cells_fw.empty() && r.u8() >= 224) {
    const int64_t D = r.bit() ? spec.input_size : r.size(0, 8);
    const bool valid_dtype = with_element_type(
        spec.dtype, [&](auto tag) { fuzz_conversion<typename decltype(tag)::type>(r, spec.cells_fw[0], D); });
    if (!valid_dtype) fuzz_conversion<float>(r, spec.cells_fw[0], D);  // the conversion has no dtype
  }
  if (!st.is_ok()) return 0;
  if (be == 239) oracle_failure("create with a null out succeeded", "");
  if (!with_element_type(spec.dtype, [](auto) {}))
    oracle_failure("create accepted an invalid dtype", spec_string(spec));
  if (backend != Backend::kCpu) oracle_failure("create succeeded for a backend this build lacks", "");
  for (const auto* cells : {&spec.cells_fw, &spec.cells_bw}) {
    for (const CellSpec& c : *cells) {
      for (double keep : {c.input_keep_prob, c.output_keep_prob, c.state_keep_prob}) {
        if (!(keep > 0.0 && keep <= 1.0 && static_cast<float>(keep) > 0.0f)) {
          oracle_failure("create accepted a keep probability outside (0, 1] (or 0 in float32)", "");
        }
      }
    }
  }

  if (spec.stack_bidirectional && spec.cells_bw.size() != spec.cells_fw.size())
    oracle_failure("create accepted stack_bidirectional with stacks of different depths", spec_string(spec));
  const Facts f = facts_of(spec);
  check_tables(*rnn, f, spec);
  const RnnSpec& kept = rnn->spec();
  if (kept.input_size != spec.input_size || kept.cells_fw.size() != spec.cells_fw.size()) {
    oracle_failure("spec() differs from the spec given", "");
  }
  (void)rnn->backend();
  (void)rnn->output_width(static_cast<int8_t>(r.u8()));
  (void)rnn->find_param(std::string(reinterpret_cast<const char*>(data), std::min<size_t>(size, 24)));

  // Size queries with anything.
  const int queries = r.u8() % 4;
  for (int q = 0; q < queries; ++q) {
    const int64_t T = r.size(0, 8), B = r.size(0, 8);
    const uint8_t m = r.u8();
    size_t bytes = 0;
    size_t* out = (m & 1) ? nullptr : &bytes;
    if (verbose()) {
      std::fprintf(stderr, "%s(T=%lld, B=%lld, training=%d)\n",
                   (m & 8)   ? "get_host_reserve_size"
                   : (m & 2) ? "get_reserve_size"
                             : "get_workspace_size",
                   static_cast<long long>(T), static_cast<long long>(B), (m & 4) != 0);
    }
    auto query = [&](size_t* o) {
      if (m & 8) return rnn->get_host_reserve_size(T, B, o);
      return (m & 2) ? rnn->get_reserve_size(T, B, o) : rnn->get_workspace_size(T, B, (m & 4) != 0, o);
    };
    const Status qs = query(out);
    if (qs.is_ok() && (!out || T < 0 || B < 0)) oracle_failure("a size query accepted a bad argument", "");
    if (!qs.is_ok() && qs.message().empty()) oracle_failure("a size query failed without a message", "");
    if (qs.is_ok()) {
      size_t again = 1;
      const Status qs2 = query(&again);
      if (!qs2.is_ok() || again != bytes) oracle_failure("a size query is not repeatable", "");
    }
  }

  with_element_type(spec.dtype, [&](auto tag) { run_calls<typename decltype(tag)::type>(r, *rnn, spec, f); });
  return 0;
}
