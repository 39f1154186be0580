// The CUDA backend against the CPU backend (itself checked against the float64 reference), through
// the public API only: every cell kind and option, stacks, bidirectional, both layouts, every kind
// of sequence_length, tiny and odd sizes, float32, float64, bfloat16 and float16; plus CUDA graph
// capture, determinism, concurrent handles on threads and streams, TF32, and float32 accumulation in
// the 16-bit types' GEMMs. Every Gpu* test skips when cudaGetDeviceCount reports no device.
//
// Each run poisons every output, the workspace and the reserve with NaN first, so an element the
// library forgets to write (or a scratch value read before it is written) shows up as NaN. Masking
// is checked exactly: outputs at t >= length are 0, a row of length 0 copies its initial state to
// the final state (and its final-state gradient to the initial-state gradient) bit for bit, and the
// top layer's final h equals its last valid output bit for bit.
//
// GpuHarness.* run everywhere: they drive the same harness with the CPU backend on both sides
// (float32, bfloat16 and float16 against float64) to prove the checks and the tolerances have
// headroom.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dtype_support.h"
#include "dynrnn/rnn.h"
#include "gpu_support.h"

namespace {

using dynrnn::Activation;
using dynrnn::Backend;
using dynrnn::BackwardArgs;
using dynrnn::CellKind;
using dynrnn::CellSpec;
using dynrnn::DataType;
using dynrnn::ForwardArgs;
using dynrnn::MathMode;
using dynrnn::Rnn;
using dynrnn::RnnSpec;
using dynrnn::StateLeaf;
using dynrnn::Status;

constexpr double kTolFloat32 = 1e-5;  // max |gpu - cpu| / max |cpu|, per tensor
constexpr double kTolFloat64 = 1e-12;
constexpr double kTolTf32 = 1e-2;
constexpr int kRandomFloat32 = 40;  // random cases on top of the coverage cases
constexpr uint64_t kSeedFloat32 = 2000;
// The 16-bit types: the GPU and the CPU round to 16 bits at the same places, but their GEMMs sum
// in other orders and their expf/tanhf differ in the last float bits, so a float32 result a hair
// from a 16-bit rounding boundary rounds to the other side — one 16-bit ulp, 2u relative — and the
// recurrence carries that on. Each backend's error against exact arithmetic is about what the
// CPU's is, which GpuHarness.CpuHalfPrecisionWithinToleranceOfFloat64 holds to half of these on the
// very cases GpuRnn.MatchesCpu{BFloat16,Float16} run (2.5 u at most when set, in u = 2^-8 for
// bfloat16 and 2^-11 for float16); the difference of two such errors stays below the sum.
constexpr double kTolBFloat16 = 16 * 0x1p-8;
constexpr double kTolFloat16 = 16 * 0x1p-11;
constexpr int kRandomHalf = 20;
constexpr uint64_t kSeedHalf = 4000;

// ------------------------------------------------------------------------------------------------
// Device plumbing

/// A byte buffer in the memory of one backend (host for kCpu, device for kCuda).
class Buffer {
 public:
  Buffer(Backend be, size_t bytes) : be_(be), bytes_(bytes) {
    if (bytes == 0) return;
    if (be == Backend::kCpu) {
      host_.resize((bytes + sizeof(double) - 1) / sizeof(double));
    } else {
      CUDA_OK(cudaMalloc(&dev_, bytes));
    }
  }
  ~Buffer() {
    if (dev_) (void)cudaFree(dev_);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* data() { return bytes_ == 0 ? nullptr : (dev_ ? dev_ : static_cast<void*>(host_.data())); }
  size_t bytes() const { return bytes_; }

  /// All-ones bytes: a NaN in every element type (float32, float64, bfloat16, float16).
  void poison() { fill_bytes(0xFF); }

  template <typename T>
  void upload(const std::vector<T>& v) {
    if (v.size() * sizeof(T) > bytes_) throw std::runtime_error("upload larger than the buffer");
    if (v.empty()) return;
    if (dev_) {
      CUDA_OK(cudaMemcpy(dev_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
    } else {
      std::memcpy(host_.data(), v.data(), v.size() * sizeof(T));
    }
  }

  template <typename T>
  std::vector<T> download() const {
    std::vector<T> v(bytes_ / sizeof(T));
    if (v.empty()) return v;
    if (dev_) {
      CUDA_OK(cudaMemcpy(v.data(), dev_, v.size() * sizeof(T), cudaMemcpyDeviceToHost));
    } else {
      std::memcpy(v.data(), host_.data(), v.size() * sizeof(T));
    }
    return v;
  }

 private:
  void fill_bytes(int value) {
    if (bytes_ == 0) return;
    if (dev_) {
      CUDA_OK(cudaMemset(dev_, value, bytes_));
      CUDA_OK(cudaDeviceSynchronize());
    } else {
      std::memset(host_.data(), value, bytes_);
    }
  }

  Backend be_;
  size_t bytes_;
  std::vector<double> host_;
  void* dev_ = nullptr;
};

/// swap_memory's host_reserve: pinned host memory for kCuda, ordinary host memory for kCpu.
class HostReserve {
 public:
  HostReserve(Backend be, size_t bytes) : bytes_(bytes) {
    if (bytes == 0) return;
    if (be == Backend::kCuda) {
      CUDA_OK(cudaHostAlloc(&pinned_, bytes, cudaHostAllocDefault));
    } else {
      plain_.resize(bytes);
    }
  }
  ~HostReserve() {
    if (pinned_) (void)cudaFreeHost(pinned_);
  }
  HostReserve(const HostReserve&) = delete;
  HostReserve& operator=(const HostReserve&) = delete;

  void* data() { return bytes_ == 0 ? nullptr : (pinned_ ? pinned_ : static_cast<void*>(plain_.data())); }
  size_t bytes() const { return bytes_; }

 private:
  size_t bytes_;
  std::vector<char> plain_;
  void* pinned_ = nullptr;
};

/// A non-blocking-free (ordinary) CUDA stream owned by a test.
class StreamHolder {
 public:
  StreamHolder() { CUDA_OK(cudaStreamCreate(&s_)); }
  ~StreamHolder() { (void)cudaStreamDestroy(s_); }
  StreamHolder(const StreamHolder&) = delete;
  StreamHolder& operator=(const StreamHolder&) = delete;
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

// ------------------------------------------------------------------------------------------------
// Problems

/// One test configuration: the spec (dtype and math are set per run) and the call's options.
struct Case {
  std::string name;
  RnnSpec spec;
  int64_t T = 1, B = 1;
  bool has_len = false;
  std::vector<int32_t> len;
  bool pass_host_len = true;  ///< kCuda: also pass host_sequence_length (loop stops at max length)
  bool init_state = true;
  bool grad_outputs = true;
  bool grad_outputs_bw = true;
  bool grad_final = true;
  bool want_grad_inputs = true;
  bool want_grad_init = true;
  bool want_grad_weights = true;
  bool accumulate = false;
  uint64_t seed = 1;
  /// DropoutWrapper layers: the calls' dropout_seed (the same on both backends, so the same masks).
  uint64_t dropout_seed = 0x9E3779B97F4A7C15ull;

  /// Whether the backward stack's outputs have a buffer of their own (with stack_bidirectional both
  /// directions' are the columns of `outputs`).
  bool own_bw() const { return spec.bidirectional() && !spec.stack_bidirectional; }
  /// Columns of the outputs buffer.
  int64_t outputs_width(const Rnn& rnn) const {
    return rnn.output_width(0) + (spec.stack_bidirectional ? rnn.output_width(1) : 0);
  }

  /// The length TF uses for row b: sequence_length clamped to [0, T], or T.
  int64_t length(int64_t b) const {
    if (!has_len) return T;
    const int64_t l = len[static_cast<size_t>(b)];
    return l < 0 ? 0 : (l > T ? T : l);
  }
};

std::string describe_cell(const CellSpec& c) {
  std::ostringstream os;
  const char* kinds[] = {"rnn", "basic_lstm", "lstm", "gru", "gru_ra"};
  os << kinds[static_cast<int>(c.kind)] << "(" << c.num_units;
  if (c.activation == Activation::kRelu) os << ",relu";
  if (c.forget_bias != 1.0) os << ",fb=" << c.forget_bias;
  if (c.use_peepholes) os << ",peep";
  if (c.cell_clip) os << ",cclip=" << *c.cell_clip;
  if (c.num_proj) os << ",proj=" << c.num_proj;
  if (c.proj_clip) os << ",pclip=" << *c.proj_clip;
  if (c.residual) os << ",residual";
  if (c.input_keep_prob != 1.0) os << ",keep_in=" << c.input_keep_prob;
  if (c.output_keep_prob != 1.0) os << ",keep_out=" << c.output_keep_prob;
  if (c.state_keep_prob != 1.0) os << ",keep_state=" << c.state_keep_prob;
  if (c.variational_recurrent) os << ",variational";
  os << ")";
  return os.str();
}

std::string describe(const Case& c) {
  std::ostringstream os;
  os << c.name << ": T=" << c.T << " B=" << c.B << " D=" << c.spec.input_size
     << (c.spec.time_major ? " time_major" : " batch_major") << " fw=[";
  for (const CellSpec& s : c.spec.cells_fw) os << describe_cell(s) << " ";
  os << "]";
  if (c.spec.bidirectional()) {
    os << (c.spec.stack_bidirectional ? " stacked bw=[" : " bw=[");
    for (const CellSpec& s : c.spec.cells_bw) os << describe_cell(s) << " ";
    os << "]";
  }
  if (c.spec.parallel_iterations != 32) os << " chunk=" << c.spec.parallel_iterations;
  if (c.spec.swap_memory) os << " swap(budget=" << c.spec.activation_memory_budget << ")";
  if (c.spec.algorithm == dynrnn::RecurrentAlgorithm::kPersistent) os << " persistent";
  if (c.spec.pipeline_projections) os << " pipelined";
  if (c.has_len) {
    os << " len=[";
    for (int32_t l : c.len) os << l << " ";
    os << "]" << (c.pass_host_len ? "+host" : " device-only");
  }
  os << (c.init_state ? " init" : " no-init") << (c.grad_outputs ? "" : " no-dout")
     << (c.grad_final ? "" : " no-dfinal") << (c.accumulate ? " accumulate" : "") << " seed=" << c.seed;
  return os.str();
}

/// Host data of one problem in element type T.
template <typename T>
struct Problem {
  std::vector<T> x, init, weights, dout, dout_bw, dfinal, gw0;
};

template <typename To, typename From>
std::vector<To> cast_vec(const std::vector<From>& v) {
  return std::vector<To>(v.begin(), v.end());
}

template <typename T, typename From>
Problem<T> cast_problem(const Problem<From>& p) {
  return {cast_vec<T>(p.x),       cast_vec<T>(p.init),   cast_vec<T>(p.weights), cast_vec<T>(p.dout),
          cast_vec<T>(p.dout_bw), cast_vec<T>(p.dfinal), cast_vec<T>(p.gw0)};
}

double uniform(std::mt19937_64& rng, double lo, double hi) {
  return lo + (hi - lo) * (static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0));
}

std::vector<double> random_vec(std::mt19937_64& rng, size_t n, double scale) {
  std::vector<double> v(n);
  for (double& e : v) e = uniform(rng, -scale, scale);
  return v;
}

std::unique_ptr<Rnn> create_rnn(const Case& c, Backend be, DataType dt, MathMode math) {
  RnnSpec spec = c.spec;
  spec.dtype = dt;
  spec.math = math;
  std::unique_ptr<Rnn> rnn;
  const Status st = Rnn::create(spec, be, &rnn);
  if (!st) throw std::runtime_error("Rnn::create: " + st.to_string());
  return rnn;
}

/// Inputs, weights (kernels ~ U(+-1/sqrt(fan_in)), vectors ~ U(+-0.5)), states and upstream
/// gradients, drawn from the case's seed in float64.
Problem<double> make_problem(const Case& c) {
  const std::unique_ptr<Rnn> rnn = create_rnn(c, Backend::kCpu, DataType::kFloat64, MathMode::kDefault);
  std::mt19937_64 rng(c.seed * 0x9E3779B97F4A7C15ull + 12345);
  Problem<double> p;
  const size_t T = static_cast<size_t>(c.T), B = static_cast<size_t>(c.B);
  const size_t S = static_cast<size_t>(rnn->state_width());
  p.x = random_vec(rng, T * B * static_cast<size_t>(c.spec.input_size), 1.0);
  if (c.init_state) p.init = random_vec(rng, B * S, 0.8);
  p.weights.assign(static_cast<size_t>(rnn->param_count()), 0.0);
  for (const dynrnn::ParamInfo& info : rnn->params()) {
    const double scale = info.shape.size() == 2 ? 1.0 / std::sqrt(static_cast<double>(info.shape[0])) : 0.5;
    for (int64_t i = 0; i < info.count; ++i)
      p.weights[static_cast<size_t>(info.offset + i)] = uniform(rng, -scale, scale);
  }
  if (c.grad_outputs) p.dout = random_vec(rng, T * B * static_cast<size_t>(c.outputs_width(*rnn)), 1.0);
  if (c.own_bw() && c.grad_outputs_bw) {
    p.dout_bw = random_vec(rng, T * B * static_cast<size_t>(rnn->output_width(1)), 1.0);
  }
  if (c.grad_final) p.dfinal = random_vec(rng, B * S, 1.0);
  if (c.accumulate) p.gw0 = random_vec(rng, static_cast<size_t>(rnn->param_count()), 1.0);
  return p;
}

/// Everything a run produces, downloaded to the host.
template <typename T>
struct Outputs {
  std::vector<T> out_inf, out_bw_inf, final_inf;  // inference forward
  std::vector<T> out, out_bw, final_state;        // training forward
  std::vector<T> grad_x, grad_init, grad_w;       // backward
};

/// The buffers of one problem on one backend, and the calls that fill them.
template <typename T>
class Session {
 public:
  Session(const Case& c, Rnn& rnn, const Problem<T>& p)
      : c_(c),
        rnn_(rnn),
        p_(p),
        be_(rnn.backend()),
        x_(be_, bytes(p.x.size())),
        len_(be_, c.has_len ? c.len.size() * sizeof(int32_t) : 0),
        init_(be_, bytes(p.init.size())),
        w_(be_, bytes(p.weights.size())),
        dout_(be_, bytes(p.dout.size())),
        dout_bw_(be_, bytes(p.dout_bw.size())),
        dfinal_(be_, bytes(p.dfinal.size())),
        out_inf_(be_, bytes(c.T * c.B * c.outputs_width(rnn))),
        out_bw_inf_(be_, c.own_bw() ? bytes(c.T * c.B * rnn.output_width(1)) : 0),
        final_inf_(be_, bytes(c.B * rnn.state_width())),
        out_(be_, bytes(c.T * c.B * c.outputs_width(rnn))),
        out_bw_(be_, c.own_bw() ? bytes(c.T * c.B * rnn.output_width(1)) : 0),
        final_(be_, bytes(c.B * rnn.state_width())),
        grad_x_(be_, c.want_grad_inputs ? bytes(p.x.size()) : 0),
        grad_init_(be_, c.want_grad_init ? bytes(c.B * rnn.state_width()) : 0),
        grad_w_(be_, c.want_grad_weights ? bytes(p.weights.size()) : 0),
        ws_(be_, workspace_bytes(rnn, c)),
        reserve_(be_, reserve_bytes(rnn, c)),
        host_reserve_(be_, host_reserve_bytes(rnn, c)),
        dropout_seed_(be_, sizeof(uint64_t)) {
    set_dropout_seed(c.dropout_seed);
    x_.upload(p.x);
    if (c.has_len) len_.upload(c.len);
    init_.upload(p.init);
    w_.upload(p.weights);
    dout_.upload(p.dout);
    dout_bw_.upload(p.dout_bw);
    dfinal_.upload(p.dfinal);
  }

  /// NaN into every output and scratch buffer (grad_weights gets its starting values when accumulating).
  void poison() {
    for (Buffer* b : {&out_inf_, &out_bw_inf_, &final_inf_, &out_, &out_bw_, &final_, &grad_x_, &grad_init_, &grad_w_,
                      &ws_, &reserve_}) {
      b->poison();
    }
    if (c_.accumulate && c_.want_grad_weights) grad_w_.upload(p_.gw0);
  }

  /// The seed the calls read from backend memory when seed_in_memory is set.
  void set_dropout_seed(uint64_t seed) { dropout_seed_.upload(std::vector<uint64_t>{seed}); }
  /// The calls pass ForwardArgs::dropout_seed_at (this session's seed buffer) instead of the seed.
  bool seed_in_memory = false;

  /// Inference forward, training forward and backward, queued on `stream`.
  Status enqueue(cudaStream_t stream) {
    const bool gpu = be_ == Backend::kCuda;
    ForwardArgs f;
    f.x_shape[0] = c_.spec.time_major ? c_.T : c_.B;
    f.x_shape[1] = c_.spec.time_major ? c_.B : c_.T;
    f.x_shape[2] = c_.spec.input_size;
    f.x = x_.data();
    if (c_.has_len) {
      f.sequence_length = static_cast<const int32_t*>(len_.data());
      f.sequence_length_size = c_.B;
      if (gpu && c_.pass_host_len) f.host_sequence_length = c_.len.data();
    }
    f.initial_state = c_.init_state ? init_.data() : nullptr;
    f.weights = w_.data();
    f.outputs = out_inf_.data();
    f.outputs_bw = c_.own_bw() ? out_bw_inf_.data() : nullptr;
    f.final_state = final_inf_.data();
    f.workspace = ws_.data();
    f.workspace_bytes = ws_.bytes();
    f.dropout_seed = c_.dropout_seed;
    if (seed_in_memory) f.dropout_seed_at = static_cast<const uint64_t*>(dropout_seed_.data());
    f.training = false;  // inference first: reserve stays null
    Status st = rnn_.forward(f, stream);
    if (!st) return st;

    f.outputs = out_.data();
    f.outputs_bw = c_.own_bw() ? out_bw_.data() : nullptr;
    f.final_state = final_.data();
    f.training = true;
    f.reserve = reserve_.data();
    f.reserve_bytes = reserve_.bytes();
    f.host_reserve = host_reserve_.data();
    f.host_reserve_bytes = host_reserve_.bytes();
    st = rnn_.forward(f, stream);
    if (!st) return st;

    BackwardArgs b = BackwardArgs::of(f);
    b.grad_outputs = c_.grad_outputs ? dout_.data() : nullptr;
    b.grad_outputs_bw = c_.own_bw() && c_.grad_outputs_bw ? dout_bw_.data() : nullptr;
    b.grad_final_state = c_.grad_final ? dfinal_.data() : nullptr;
    b.grad_inputs = c_.want_grad_inputs ? grad_x_.data() : nullptr;
    b.grad_initial_state = c_.want_grad_init ? grad_init_.data() : nullptr;
    b.grad_weights = c_.want_grad_weights ? grad_w_.data() : nullptr;
    b.accumulate_grad_weights = c_.accumulate;
    return rnn_.backward(b, stream);
  }

  Outputs<T> download() const {
    Outputs<T> o;
    o.out_inf = out_inf_.download<T>();
    o.out_bw_inf = out_bw_inf_.download<T>();
    o.final_inf = final_inf_.download<T>();
    o.out = out_.download<T>();
    o.out_bw = out_bw_.download<T>();
    o.final_state = final_.download<T>();
    o.grad_x = grad_x_.download<T>();
    o.grad_init = grad_init_.download<T>();
    o.grad_w = grad_w_.download<T>();
    return o;
  }

 private:
  static size_t bytes(size_t elems) { return elems * sizeof(T); }
  static size_t bytes(int64_t elems) { return elems > 0 ? static_cast<size_t>(elems) * sizeof(T) : 0; }
  static size_t workspace_bytes(const Rnn& rnn, const Case& c) {
    size_t n = 0, m = 0;
    const Status a = rnn.get_workspace_size(c.T, c.B, true, &n);
    const Status b = rnn.get_workspace_size(c.T, c.B, false, &m);
    if (!a || !b) throw std::runtime_error("get_workspace_size failed");
    return std::max(n, m);
  }
  static size_t host_reserve_bytes(const Rnn& rnn, const Case& c) {
    size_t n = 0;
    if (!rnn.get_host_reserve_size(c.T, c.B, &n)) throw std::runtime_error("get_host_reserve_size failed");
    return n;
  }
  static size_t reserve_bytes(const Rnn& rnn, const Case& c) {
    size_t n = 0;
    if (!rnn.get_reserve_size(c.T, c.B, &n)) throw std::runtime_error("get_reserve_size failed");
    return n;
  }

  const Case& c_;
  Rnn& rnn_;
  const Problem<T>& p_;
  Backend be_;
  Buffer x_, len_, init_, w_, dout_, dout_bw_, dfinal_;
  Buffer out_inf_, out_bw_inf_, final_inf_, out_, out_bw_, final_;
  Buffer grad_x_, grad_init_, grad_w_, ws_, reserve_;
  HostReserve host_reserve_;
  Buffer dropout_seed_;
};

/// One complete run (poison, inference, training forward, backward) on a fresh handle.
template <typename T>
Outputs<T> run(const Case& c, Backend be, const Problem<T>& p, MathMode math = MathMode::kDefault,
               cudaStream_t stream = nullptr) {
  std::unique_ptr<Rnn> rnn = create_rnn(c, be, testing_support::dtype_of<T>(), math);
  Session<T> s(c, *rnn, p);
  s.poison();
  const Status st = s.enqueue(stream);
  if (!st) throw std::runtime_error("run failed: " + st.to_string());
  if (be == Backend::kCuda) CUDA_OK(cudaDeviceSynchronize());
  return s.download();
}

// ------------------------------------------------------------------------------------------------
// Checks

template <typename T>
void expect_finite(const std::vector<T>& v, const std::string& what) {
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(static_cast<double>(v[i]))) {
      if (bad++ == 0) first = i;
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " non-finite elements (first at " << first
                     << "): some element was not written";
}

template <typename T>
void expect_all_finite(const Outputs<T>& o) {
  expect_finite(o.out_inf, "outputs (inference)");
  expect_finite(o.out_bw_inf, "outputs_bw (inference)");
  expect_finite(o.final_inf, "final_state (inference)");
  expect_finite(o.out, "outputs");
  expect_finite(o.out_bw, "outputs_bw");
  expect_finite(o.final_state, "final_state");
  expect_finite(o.grad_x, "grad_inputs");
  expect_finite(o.grad_init, "grad_initial_state");
  expect_finite(o.grad_w, "grad_weights");
}

/// max |got - want| / max |want| (0 when both are all zero; infinite on a size mismatch or NaN).
template <typename T>
double rel_err(const std::vector<T>& got, const std::vector<T>& want) {
  if (got.size() != want.size()) return std::numeric_limits<double>::infinity();
  double diff = 0, norm = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::fabs(static_cast<double>(got[i]) - static_cast<double>(want[i]));
    if (!(d == d)) return std::numeric_limits<double>::infinity();
    diff = std::max(diff, d);
    norm = std::max(norm, std::fabs(static_cast<double>(want[i])));
  }
  if (diff == 0) return 0;
  return norm > 0 ? diff / norm : std::numeric_limits<double>::infinity();
}

template <typename T, typename U>
double expect_close(const Outputs<T>& got, const Outputs<U>& want, double tol) {
  double worst = 0;
  auto one = [&](const std::vector<T>& g, const std::vector<U>& w, const char* name) {
    const double e = rel_err(cast_vec<double>(g), cast_vec<double>(w));
    worst = std::max(worst, e);
    EXPECT_LE(e, tol) << name << ": relative error " << e << " (sizes " << g.size() << " vs " << w.size() << ")";
  };
  one(got.out_inf, want.out_inf, "outputs (inference)");
  one(got.out_bw_inf, want.out_bw_inf, "outputs_bw (inference)");
  one(got.final_inf, want.final_inf, "final_state (inference)");
  one(got.out, want.out, "outputs");
  one(got.out_bw, want.out_bw, "outputs_bw");
  one(got.final_state, want.final_state, "final_state");
  one(got.grad_x, want.grad_x, "grad_inputs");
  one(got.grad_init, want.grad_init, "grad_initial_state");
  one(got.grad_w, want.grad_w, "grad_weights");
  return worst;
}

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

template <typename T>
void expect_bitwise(const Outputs<T>& a, const Outputs<T>& b) {
  EXPECT_TRUE(same_bits(a.out_inf, b.out_inf)) << "outputs (inference)";
  EXPECT_TRUE(same_bits(a.out_bw_inf, b.out_bw_inf)) << "outputs_bw (inference)";
  EXPECT_TRUE(same_bits(a.final_inf, b.final_inf)) << "final_state (inference)";
  EXPECT_TRUE(same_bits(a.out, b.out)) << "outputs";
  EXPECT_TRUE(same_bits(a.out_bw, b.out_bw)) << "outputs_bw";
  EXPECT_TRUE(same_bits(a.final_state, b.final_state)) << "final_state";
  EXPECT_TRUE(same_bits(a.grad_x, b.grad_x)) << "grad_inputs";
  EXPECT_TRUE(same_bits(a.grad_init, b.grad_init)) << "grad_initial_state";
  EXPECT_TRUE(same_bits(a.grad_w, b.grad_w)) << "grad_weights";
}

/// The exact (bitwise) consequences of sequence_length masking, on any backend's results.
template <typename T>
void expect_masking(const Case& c, const Rnn& rnn, const Problem<T>& p, const Outputs<T>& o) {
  const int64_t T_ = c.T, B = c.B;
  auto out_index = [&](int64_t t, int64_t b, int64_t width) {
    return static_cast<size_t>((c.spec.time_major ? t * B + b : b * T_ + t) * width);
  };
  int64_t bad_zero = 0;
  for (int d = 0; d < (c.own_bw() ? 2 : 1); ++d) {
    const int64_t O = d == 0 ? c.outputs_width(rnn) : rnn.output_width(1);
    for (const std::vector<T>* v : d == 0 ? std::vector<const std::vector<T>*>{&o.out, &o.out_inf}
                                          : std::vector<const std::vector<T>*>{&o.out_bw, &o.out_bw_inf}) {
      if (v->size() != static_cast<size_t>(T_ * B * O)) continue;  // reported by the comparison
      for (int64_t b = 0; b < B; ++b) {
        for (int64_t t = c.length(b); t < T_; ++t) {
          for (int64_t k = 0; k < O; ++k) bad_zero += (*v)[out_index(t, b, O) + static_cast<size_t>(k)] != T(0);
        }
      }
    }
  }
  EXPECT_EQ(bad_zero, 0) << "outputs at t >= sequence_length must be exactly 0";

  const size_t state_elems = static_cast<size_t>(B * rnn.state_width());
  int64_t bad_copy = 0, bad_last = 0, bad_grad = 0;
  for (const StateLeaf& leaf : rnn.state_layout()) {
    const std::vector<CellSpec>& stack = leaf.direction == 0 ? c.spec.cells_fw : c.spec.cells_bw;
    const int top = static_cast<int>(stack.size()) - 1;
    // A residual top layer's output is its input plus h, not h; output dropout scales and masks h;
    // state dropout scales and masks the final h.
    const CellSpec& top_cell = stack[static_cast<size_t>(top)];
    const bool output_is_h = !top_cell.residual && top_cell.output_keep_prob == 1.0 && top_cell.state_keep_prob == 1.0;
    const size_t base = static_cast<size_t>(B * leaf.column_offset);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t len = c.length(b);
      for (int64_t k = 0; k < leaf.width; ++k) {
        const size_t i = base + static_cast<size_t>(b * leaf.width + k);
        if (len == 0) {  // nothing ran for this row: the state and its gradient pass straight through
          const T init = c.init_state ? p.init[i] : T(0);
          for (const std::vector<T>* f : {&o.final_state, &o.final_inf}) {
            if (f->size() == state_elems) bad_copy += (*f)[i] != init;
          }
          if (o.grad_init.size() == state_elems) bad_grad += o.grad_init[i] != (c.grad_final ? p.dfinal[i] : T(0));
        } else if (leaf.layer == top && !leaf.is_cell && output_is_h) {
          // the top layer's h is its output at the row's last step (time len-1, or 0 when reversed),
          // in its buffer or, stacked, in its direction's columns of the shared one
          const bool own = leaf.direction == 0 || c.own_bw();
          const std::vector<T>& y = own && leaf.direction == 1 ? o.out_bw : o.out;
          const int64_t W = own ? leaf.width : c.outputs_width(rnn);
          const int64_t col = own ? 0 : rnn.output_width(0);
          const int64_t t = leaf.direction == 0 ? len - 1 : 0;
          if (y.size() == static_cast<size_t>(T_ * B * W) && o.final_state.size() == state_elems) {
            bad_last += o.final_state[i] != y[out_index(t, b, W) + static_cast<size_t>(col + k)];
          }
        }
      }
    }
  }
  EXPECT_EQ(bad_copy, 0) << "final_state of rows with length 0 must equal initial_state bit for bit";
  EXPECT_EQ(bad_grad, 0) << "grad_initial_state of rows with length 0 must equal grad_final_state bit for bit";
  EXPECT_EQ(bad_last, 0) << "the top layer's final h must equal its last valid output bit for bit";
}

// ------------------------------------------------------------------------------------------------
// Configurations

CellSpec lstm_full(int64_t units, int64_t proj, double cell_clip, double proj_clip) {
  CellSpec c = CellSpec::lstm(units);
  c.use_peepholes = true;
  c.cell_clip = cell_clip;
  c.num_proj = proj;
  if (proj > 0) c.proj_clip = proj_clip;
  return c;
}

Case make_case(const std::string& name, std::vector<CellSpec> fw, std::vector<CellSpec> bw, int64_t D, int64_t T,
               int64_t B, bool time_major, uint64_t seed) {
  Case c;
  c.name = name;
  c.spec.cells_fw = std::move(fw);
  c.spec.cells_bw = std::move(bw);
  c.spec.input_size = D;
  c.spec.time_major = time_major;
  c.T = T;
  c.B = B;
  c.seed = seed;
  return c;
}

Case with_len(Case c, std::vector<int32_t> len, bool host = true) {
  c.has_len = true;
  c.len = std::move(len);
  c.pass_host_len = host;
  return c;
}

/// Hand-picked configurations that together cover every feature at least once.
std::vector<Case> coverage_cases() {
  std::vector<Case> v;
  CellSpec relu_lstm = CellSpec::lstm(29);
  relu_lstm.activation = Activation::kRelu;
  relu_lstm.num_proj = 11;
  CellSpec basic_fb = CellSpec::basic_lstm(33, 0.5);
  CellSpec basic_relu = CellSpec::basic_lstm(20);
  basic_relu.activation = Activation::kRelu;

  v.push_back(make_case("rnn_tanh", {CellSpec::basic_rnn(37)}, {}, 13, 7, 5, false, 1));
  v.push_back(with_len(make_case("rnn_relu_tm_len", {CellSpec::basic_rnn(40, Activation::kRelu)}, {}, 6, 6, 6, true, 2),
                       {0, -3, 6, 9, 2, 5}));
  v.push_back(with_len(make_case("basic_lstm_fb", {basic_fb}, {}, 9, 5, 4, false, 3), {5, 7, 1, 3}));
  v.push_back(make_case("basic_lstm_relu", {basic_relu}, {}, 4, 4, 3, true, 4));
  v.push_back(make_case("lstm_plain", {CellSpec::lstm(45)}, {}, 17, 6, 7, false, 5));
  v.push_back(with_len(make_case("lstm_all_options", {lstm_full(45, 23, 0.7, 0.3)}, {}, 10, 8, 5, false, 6),
                       {8, 3, 0, 12, -1}));
  v.push_back(make_case("lstm_relu_proj", {relu_lstm}, {}, 8, 5, 3, true, 7));
  v.push_back(make_case("lstm_peep_cclip", {[] {
                          CellSpec c = CellSpec::lstm(31);
                          c.use_peepholes = true;
                          c.cell_clip = 0.5;
                          return c;
                        }()},
                        {}, 5, 6, 4, false, 8));
  v.push_back(make_case("gru_tanh", {CellSpec::gru(50)}, {}, 12, 7, 6, false, 9));
  v.push_back(with_len(make_case("gru_relu_len", {CellSpec::gru(27, Activation::kRelu)}, {}, 7, 5, 5, true, 10),
                       {5, 0, 2, 7, -4}));
  v.push_back(make_case("gru_ra_tanh", {CellSpec::gru_reset_after(44)}, {}, 11, 7, 6, false, 26));
  {  // ResidualWrapper on inner and top layers of every kind
    auto residual = [](CellSpec c) {
      c.residual = true;
      return c;
    };
    CellSpec proj = lstm_full(9, 5, 1.5, 0.9);
    // In chunks of 2 steps: a residual layer reads its input chunk again after its steps, so the
    // layer below must not reuse that ring slot before then.
    Case stack = make_case("residual_stack",
                           {residual(CellSpec::lstm(12)), residual(CellSpec::gru(12)),
                            residual(CellSpec::gru_reset_after(12)), CellSpec::basic_rnn(7)},
                           {}, 12, 9, 6, false, 28);
    stack.spec.parallel_iterations = 2;
    v.push_back(with_len(stack, {6, 2, 0, 9, 4, 1}));
    v.push_back(
        with_len(make_case("residual_bidi_proj", {residual(proj), residual(CellSpec::basic_rnn(5, Activation::kRelu))},
                           {residual(CellSpec::gru_reset_after(5))}, 5, 7, 5, true, 29),
                 {7, 3, 0, 5, 1}));
  }
  v.push_back(with_len(make_case("gru_ra_relu_len_bidi", {CellSpec::gru_reset_after(23, Activation::kRelu)},
                                 {CellSpec::gru_reset_after(17), CellSpec::gru(9)}, 7, 5, 5, true, 27),
                       {5, 0, 2, 4, 1}));
  v.push_back(
      with_len(make_case("stack_mixed", {lstm_full(24, 15, 1.5, 0.9), CellSpec::gru(19), CellSpec::basic_rnn(33)}, {},
                         9, 6, 5, false, 11),
               {6, 2, 0, 9, 4}));
  v.push_back(
      with_len(make_case("bidi_mixed_tm", {CellSpec::lstm(21), CellSpec::gru(18)}, {basic_fb}, 11, 7, 4, true, 12),
               {7, 3, 0, 5}));
  v.push_back(make_case("bidi_no_len", {CellSpec::gru(16)}, {lstm_full(20, 9, 0.8, 0.4), CellSpec::basic_rnn(13)}, 6, 5,
                        3, false, 13));
  v.push_back(make_case("T1_B1", {CellSpec::lstm(7)}, {}, 3, 1, 1, false, 14));
  v.push_back(
      with_len(make_case("T1_len", {CellSpec::gru(9)}, {CellSpec::basic_rnn(5)}, 4, 1, 3, true, 15), {0, 1, 1}));
  v.push_back(with_len(make_case("all_len_zero", {CellSpec::lstm(12), CellSpec::basic_rnn(8)}, {}, 5, 4, 3, false, 16),
                       {0, 0, -2}));
  v.push_back(
      with_len(make_case("len_device_only", {CellSpec::gru(14)}, {}, 6, 6, 4, false, 17), {2, -1, 8, 4}, false));
  v.push_back(with_len(make_case("bidi_len_device_only", {CellSpec::lstm(10)}, {CellSpec::gru(9)}, 5, 5, 3, false, 18),
                       {5, 1, 3}, false));
  {
    Case c = make_case("no_init_no_grads", {CellSpec::basic_lstm(15)}, {CellSpec::lstm(10)}, 6, 5, 3, false, 19);
    c.init_state = false;
    c.grad_outputs = false;
    c.grad_final = false;
    c = with_len(c, {4, 0, 5});
    v.push_back(c);
  }
  {
    Case c =
        make_case("accumulate_only_dfinal", {CellSpec::gru(22), lstm_full(17, 6, 2.0, 1.0)}, {}, 9, 4, 5, true, 20);
    c.accumulate = true;
    c.grad_outputs = false;
    c.want_grad_init = false;
    v.push_back(c);
  }
  {
    Case c = make_case("bidi_only_dout_bw", {CellSpec::basic_rnn(12)}, {CellSpec::gru(11)}, 7, 6, 3, true, 21);
    c.grad_outputs = false;
    c.grad_final = false;
    c.want_grad_weights = false;
    v.push_back(c);
  }
  {  // several chunks per layer: the layers of the stack run as a wavefront on their own queues
    Case c = make_case("chunked_wavefront", {lstm_full(24, 13, 1.0, 0.6), CellSpec::gru(21), CellSpec::basic_rnn(17)},
                       {}, 7, 9, 5, false, 23);
    c.spec.parallel_iterations = 2;
    v.push_back(with_len(c, {9, 4, 0, 7, 12}));
  }
  {  // swap_memory: saved activations go to pinned host memory a chunk at a time on a copy queue
    Case c = make_case("swap_bidi_chunks", {CellSpec::lstm(20), CellSpec::gru(15)}, {basic_fb}, 6, 8, 4, true, 24);
    c.spec.parallel_iterations = 2;
    c.spec.swap_memory = true;
    v.push_back(with_len(c, {8, 5, 0, 3}));
  }
  {
    Case c = make_case("swap_step_chunks", {CellSpec::gru(19)}, {}, 5, 5, 3, false, 25);
    c.spec.parallel_iterations = 1;
    c.spec.swap_memory = true;
    v.push_back(c);
  }
  {  // DropoutWrapper at every site: inner and top layers, input, output and state, variational, under a
     // ResidualWrapper, both directions, in chunks of 3 steps, the batch sorted by length on the device
    CellSpec lstm = lstm_full(14, 9, 1.0, 0.6);
    lstm.input_keep_prob = 0.7;
    lstm.output_keep_prob = 0.8;
    lstm.state_keep_prob = 0.85;
    CellSpec gru_ra = CellSpec::gru_reset_after(9);
    gru_ra.residual = true;
    gru_ra.output_keep_prob = 0.6;
    gru_ra.variational_recurrent = true;
    CellSpec rnn = CellSpec::basic_rnn(11, Activation::kRelu);
    rnn.input_keep_prob = 0.5;
    CellSpec gru = CellSpec::gru(8);
    gru.input_keep_prob = 0.75;
    gru.output_keep_prob = 0.9;
    gru.state_keep_prob = 0.7;
    gru.variational_recurrent = true;
    Case c = make_case("dropout_stack", {lstm, gru_ra, rnn}, {gru}, 6, 9, 6, false, 30);
    c.spec.parallel_iterations = 3;
    v.push_back(with_len(c, {4, 9, 0, 7, 2, 9}));
  }
  {  // stack_bidirectional: residual layer over a concatenation of its width, dropout, chunks, swap
    CellSpec proj = lstm_full(9, 5, 1.5, 0.9);
    CellSpec gru = CellSpec::gru(9);
    gru.residual = true;  // reads 5 + 4 columns
    gru.output_keep_prob = 0.8;
    CellSpec rnn = CellSpec::basic_rnn(7, Activation::kRelu);
    rnn.state_keep_prob = 0.7;
    Case c = make_case("stack_bidi", {proj, gru, CellSpec::basic_lstm(6)},
                       {CellSpec::gru_reset_after(4), rnn, CellSpec::lstm(3)}, 6, 8, 5, true, 31);
    c.spec.stack_bidirectional = true;
    c.spec.parallel_iterations = 3;
    c.spec.swap_memory = true;
    v.push_back(with_len(c, {8, 2, 0, 5, 7}));
  }
  // Large enough for several thread blocks per stage, the column_sum over many rows and real GEMM tiles.
  v.push_back(with_len(make_case("big_lstm", {CellSpec::lstm(300)}, {}, 70, 4, 257, false, 22), [] {
    std::vector<int32_t> l(257);
    for (size_t i = 0; i < l.size(); ++i) l[i] = static_cast<int32_t>(i % 5);
    return l;
  }()));
  return v;
}

CellSpec random_cell(std::mt19937_64& rng) {
  static const int64_t units[] = {1, 3, 8, 17, 31, 33, 50};
  const int64_t h = units[rng() % 7];
  const int kind = static_cast<int>(rng() % 5);
  CellSpec c;
  switch (kind) {
    case 0: c = CellSpec::basic_rnn(h, rng() % 2 ? Activation::kRelu : Activation::kTanh); break;
    case 1:
      c = CellSpec::basic_lstm(h, rng() % 2 ? 1.0 : uniform(rng, -1.0, 2.0));
      if (rng() % 4 == 0) c.activation = Activation::kRelu;
      break;
    case 2:
      c = CellSpec::lstm(h);
      if (rng() % 4 == 0) c.activation = Activation::kRelu;
      if (rng() % 3 == 0) c.forget_bias = uniform(rng, 0.0, 2.0);
      c.use_peepholes = rng() % 2;
      if (rng() % 2) c.cell_clip = uniform(rng, 0.2, 2.0);
      if (rng() % 2) {
        c.num_proj = 1 + static_cast<int64_t>(rng() % 20);
        if (rng() % 2) c.proj_clip = uniform(rng, 0.1, 1.0);
      }
      break;
    case 3: c = CellSpec::gru(h, rng() % 3 == 0 ? Activation::kRelu : Activation::kTanh); break;
    default: c = CellSpec::gru_reset_after(h, rng() % 3 == 0 ? Activation::kRelu : Activation::kTanh); break;
  }
  return c;
}

Case random_case(uint64_t seed) {
  std::mt19937_64 rng(seed);
  static const int64_t dims[] = {1, 5, 19, 40};
  static const int64_t times[] = {1, 2, 5, 9};
  static const int64_t batches[] = {1, 3, 8, 17};
  Case c;
  c.name = "random";
  c.seed = seed;
  c.spec.input_size = dims[rng() % 4];
  c.spec.time_major = rng() % 2;
  const int layers = 1 + static_cast<int>(rng() % 3);
  for (int i = 0; i < layers; ++i) c.spec.cells_fw.push_back(random_cell(rng));
  if (rng() % 3 == 0) {
    const int bw = 1 + static_cast<int>(rng() % 2);
    for (int i = 0; i < bw; ++i) c.spec.cells_bw.push_back(random_cell(rng));
  }
  c.T = times[rng() % 4];
  c.B = batches[rng() % 4];
  if (rng() % 2) {
    c.has_len = true;
    c.pass_host_len = rng() % 4 != 0;
    const bool bidi = c.spec.bidirectional();
    for (int64_t b = 0; b < c.B; ++b) {
      const int64_t lo = bidi ? 0 : -2, hi = bidi ? c.T : c.T + 2;
      c.len.push_back(static_cast<int32_t>(lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1))));
    }
  }
  static const int chunks[] = {0, 1, 2, 3, 5, 32};
  c.spec.parallel_iterations = chunks[rng() % 6];
  c.spec.swap_memory = rng() % 3 == 0;
  c.init_state = rng() % 4 != 0;
  c.grad_outputs = rng() % 5 != 0;
  c.grad_outputs_bw = rng() % 5 != 0;
  c.grad_final = rng() % 3 != 0;
  c.accumulate = rng() % 4 == 0;
  // stack_bidirectional_dynamic_rnn for half of the bidirectional cases whose stacks have the same
  // depth (drawn last, so that every other case is the one drawn before it existed).
  if (c.spec.bidirectional() && c.spec.cells_fw.size() == c.spec.cells_bw.size()) {
    c.spec.stack_bidirectional = rng() % 2 == 0;
  }
  return c;
}

Case coverage_case(const std::string& name) {
  for (const Case& c : coverage_cases()) {
    if (c.name == name) return c;
  }
  throw std::runtime_error("no coverage case named " + name);
}

std::vector<Case> all_cases(int randoms, uint64_t seed0) {
  std::vector<Case> v = coverage_cases();
  for (int i = 0; i < randoms; ++i) v.push_back(random_case(seed0 + static_cast<uint64_t>(i)));
  return v;
}

/// The cases with RnnSpec::algorithm = kPersistent (which the CPU backend, their reference, ignores).
std::vector<Case> persistent(std::vector<Case> cases) {
  for (Case& c : cases) c.spec.algorithm = dynrnn::RecurrentAlgorithm::kPersistent;
  return cases;
}

std::vector<Case> pipelined(std::vector<Case> cases) {
  for (Case& c : cases) c.spec.pipeline_projections = true;
  return cases;
}

/// The CUDA backend in element type T against the CPU backend in T.
template <typename T>
void gpu_matches_cpu(const std::vector<Case>& cases, double tol, MathMode math) {
  for (const Case& c : cases) {
    SCOPED_TRACE(describe(c));
    try {
      const Problem<T> p = cast_problem<T>(make_problem(c));
      const Outputs<T> cpu = run<T>(c, Backend::kCpu, p);
      const Outputs<T> gpu = run<T>(c, Backend::kCuda, p, math);
      expect_all_finite(gpu);
      std::unique_ptr<Rnn> shape = create_rnn(c, Backend::kCpu, testing_support::dtype_of<T>(), MathMode::kDefault);
      expect_masking(c, *shape, p, gpu);
      expect_close(gpu, cpu, tol);
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
    }
  }
}

/// swap_memory is numerically neutral: every result bit for bit the same as without it.
template <typename T>
void check_swap_is_neutral(Backend be, const Case& with_swap) {
  SCOPED_TRACE(describe(with_swap));
  try {
    Case without = with_swap;
    without.spec.swap_memory = false;
    without.spec.activation_memory_budget = 0;
    const Problem<T> p = cast_problem<T>(make_problem(with_swap));
    expect_bitwise(run<T>(with_swap, be, p), run<T>(without, be, p));
  } catch (const std::exception& e) {
    ADD_FAILURE() << e.what();
  }
}

/// A relu BasicRNN whose inputs, kernel entries and upstream gradients are sixteenths in (0, 1)
/// (biases 0; with zero_recurrent the recurrent kernel rows 0), as in
/// tests/half_accumulation_test.cpp. Every GEMM and column sum of forward and backward then adds
/// products that are multiples of 2^-8 (2^-12 for h dz) into sums of at most 22 significant bits,
/// exact in float32 in any order and with tensor cores' alignment; the one rounding to 16 bits
/// that follows is the same on every backend (GpuHarness.HalfPrecisionSumsAreExactOnTheCpu checks
/// that on the CPU).
Problem<double> sixteenths_problem(const Case& c, bool zero_recurrent) {
  const std::unique_ptr<Rnn> rnn = create_rnn(c, Backend::kCpu, DataType::kFloat64, MathMode::kDefault);
  std::mt19937_64 rng(c.seed);
  auto sixteenths = [&](size_t n) {
    std::vector<double> v(n);
    for (double& e : v) e = static_cast<double>(1 + rng() % 15) / 16.0;
    return v;
  };
  Problem<double> p;
  p.x = sixteenths(static_cast<size_t>(c.T * c.B * c.spec.input_size));
  p.weights.assign(static_cast<size_t>(rnn->param_count()), 0.0);
  for (const dynrnn::ParamInfo& info : rnn->params()) {
    if (info.shape.size() != 2) continue;  // the bias stays 0
    const int64_t input_rows = zero_recurrent ? c.spec.input_size : info.shape[0];
    const std::vector<double> k = sixteenths(static_cast<size_t>(input_rows * info.shape[1]));
    std::copy(k.begin(), k.end(), p.weights.begin() + info.offset);
  }
  p.dout = sixteenths(static_cast<size_t>(c.T * c.B * rnn->output_width(0)));
  return p;
}

/// The problems: one GEMM over D = 4096; weight-gradient GEMMs and column sums over B = 4096 rows;
/// and 128 one-step chunks whose weight-gradient sums add up over the chunks (D = 1 and recurrent
/// rows 0, so that every h is a single product, exact in 16 bits too).
std::vector<std::pair<Case, Problem<double>>> exact_sum_problems() {
  Case wide = make_case("sums_D4096", {CellSpec::basic_rnn(16, Activation::kRelu)}, {}, 4096, 1, 3, false, 51);
  Case tall = make_case("sums_B4096", {CellSpec::basic_rnn(8, Activation::kRelu)}, {}, 8, 1, 4096, false, 52);
  Case chunks = make_case("sums_128_chunks", {CellSpec::basic_rnn(4, Activation::kRelu)}, {}, 1, 128, 8, true, 53);
  chunks.spec.parallel_iterations = 1;
  std::vector<std::pair<Case, Problem<double>>> v;
  for (Case* c : {&wide, &tall, &chunks}) {
    c->init_state = false;
    c->grad_final = false;
    v.emplace_back(*c, sixteenths_problem(*c, /*zero_recurrent=*/c == &chunks));
  }
  return v;
}

// ------------------------------------------------------------------------------------------------
// Tests that run everywhere: the harness itself on the CPU backend.

TEST(GpuHarness, CpuFloat32WithinToleranceOfFloat64) {
  // If float32 CPU is within kTolFloat32 / 4 of float64 CPU on these cases, two float32 backends that
  // round differently stay within kTolFloat32 of each other with room to spare.
  double worst = 0;
  for (const Case& c : all_cases(kRandomFloat32, kSeedFloat32)) {  // the very cases GpuRnn.MatchesCpuFloat32 runs
    SCOPED_TRACE(describe(c));
    const Problem<double> p64 = make_problem(c);
    const Problem<float> p32 = cast_problem<float>(p64);
    const Outputs<double> ref = run<double>(c, Backend::kCpu, p64);
    const Outputs<float> got = run<float>(c, Backend::kCpu, p32);
    expect_all_finite(ref);
    expect_all_finite(got);
    std::unique_ptr<Rnn> shape = create_rnn(c, Backend::kCpu, DataType::kFloat64, MathMode::kDefault);
    expect_masking(c, *shape, p64, ref);
    expect_masking(c, *shape, p32, got);
    worst = std::max(worst, expect_close(got, ref, kTolFloat32 / 4));
  }
  RecordProperty("worst_float32_vs_float64", std::to_string(worst));
  std::printf("[ harness  ] worst float32-vs-float64 relative error on the CPU: %.3g (tolerance %.3g)\n", worst,
              kTolFloat32);
}

/// relu or a clip anywhere: a derivative with a kink, where a rounding can change a gradient by a
/// whole term.
bool has_kinks(const RnnSpec& spec) {
  for (const std::vector<CellSpec>* stack : {&spec.cells_fw, &spec.cells_bw}) {
    for (const CellSpec& c : *stack) {
      if (c.activation == Activation::kRelu || c.cell_clip || (c.proj_clip && c.num_proj > 0)) return true;
    }
  }
  return false;
}

/// The CPU backend in T against float64 on the same T-rounded problem, on the cases that
/// GpuRnn.MatchesCpu<T> runs (but big_lstm, seconds on the CPU; 1.0 u when last measured). Cases
/// without kinks must stay within tol / 2: two backends that each stay as close to the exact
/// result stay within tol of each other. With relu or clips the float64 reference sits on the other
/// side of a kink now and then (a clipped LSTM's gradients reached 22 u in bfloat16), which two
/// 16-bit backends do only when one of their rare one-ulp disagreements lands within rounding
/// distance of a kink; those cases are reported, not held to tol / 2. Returns {worst without
/// kinks, worst with}.
template <typename T>
std::pair<double, double> cpu_half_against_float64(double tol) {
  double smooth = 0, kinked = 0;
  for (const Case& c : all_cases(kRandomHalf, kSeedHalf)) {
    if (c.name == "big_lstm") continue;
    SCOPED_TRACE(describe(c));
    const Problem<T> p16 = cast_problem<T>(make_problem(c));
    const Problem<double> p64 = cast_problem<double>(p16);  // the very values T holds
    const Outputs<double> ref = run<double>(c, Backend::kCpu, p64);
    const Outputs<T> got = run<T>(c, Backend::kCpu, p16);
    expect_all_finite(got);
    std::unique_ptr<Rnn> shape = create_rnn(c, Backend::kCpu, DataType::kFloat64, MathMode::kDefault);
    expect_masking(c, *shape, p16, got);
    if (has_kinks(c.spec)) {
      kinked = std::max(kinked, expect_close(got, ref, INFINITY));
    } else {
      smooth = std::max(smooth, expect_close(got, ref, tol / 2));
    }
  }
  return {smooth, kinked};
}

TEST(GpuHarness, CpuHalfPrecisionWithinToleranceOfFloat64) {
  const auto bf16 = cpu_half_against_float64<dynrnn::bfloat16>(kTolBFloat16);
  const auto fp16 = cpu_half_against_float64<dynrnn::float16>(kTolFloat16);
  std::printf(
      "[ harness  ] worst relative error on the CPU against float64, in u, without / with kinks: bfloat16 "
      "%.1f / %.1f, float16 %.1f / %.1f (tolerance %.0f u)\n",
      bf16.first / 0x1p-8, bf16.second / 0x1p-8, fp16.first / 0x1p-11, fp16.second / 0x1p-11, kTolBFloat16 / 0x1p-8);
}

template <typename T>
void expect_exactly_rounded(const Outputs<T>& got, const Outputs<double>& exact) {
  expect_bitwise(got,
                 Outputs<T>{cast_vec<T>(exact.out_inf), cast_vec<T>(exact.out_bw_inf), cast_vec<T>(exact.final_inf),
                            cast_vec<T>(exact.out), cast_vec<T>(exact.out_bw), cast_vec<T>(exact.final_state),
                            cast_vec<T>(exact.grad_x), cast_vec<T>(exact.grad_init), cast_vec<T>(exact.grad_w)});
}

TEST(GpuHarness, HalfPrecisionSumsAreExactOnTheCpu) {
  // The premise of GpuRnn.HalfPrecisionSumsAccumulateInFloat32: on its problems every result of the
  // CPU backend in T is the float64 backend's result rounded once to T.
  for (const auto& [c, p64] : exact_sum_problems()) {
    SCOPED_TRACE(describe(c));
    const Outputs<double> exact = run<double>(c, Backend::kCpu, p64);
    expect_exactly_rounded(run<dynrnn::bfloat16>(c, Backend::kCpu, cast_problem<dynrnn::bfloat16>(p64)), exact);
    expect_exactly_rounded(run<dynrnn::float16>(c, Backend::kCpu, cast_problem<dynrnn::float16>(p64)), exact);
  }
}

TEST(GpuHarness, CpuSwapMemoryIsBitwiseNeutral) {
  // The property GpuRnn.SwapMemoryIsBitwiseNeutral checks on the GPU, here on the CPU backend.
  for (const char* name : {"swap_bidi_chunks", "swap_step_chunks"}) {
    check_swap_is_neutral<float>(Backend::kCpu, coverage_case(name));
    check_swap_is_neutral<dynrnn::bfloat16>(Backend::kCpu, coverage_case(name));
  }
}

TEST(GpuHarness, NoDeviceReportsCudaError) {
  if (testing_support::gpu_available()) GTEST_SKIP() << "a CUDA device is present";
  RnnSpec spec;
  spec.cells_fw = {CellSpec::lstm(4)};
  spec.input_size = 3;
  for (DataType dt : {DataType::kFloat32, DataType::kFloat64, DataType::kBFloat16, DataType::kFloat16}) {
    spec.dtype = dt;
    SCOPED_TRACE(testing_support::dtype_name(dt));
    std::unique_ptr<Rnn> rnn;
    const Status st = Rnn::create(spec, Backend::kCuda, &rnn);
    EXPECT_EQ(st.code(), dynrnn::StatusCode::kCudaError) << st.to_string();
    EXPECT_NE(st.message().find("device"), std::string::npos) << st.to_string();
    EXPECT_EQ(rnn, nullptr);
  }
}

// ------------------------------------------------------------------------------------------------
// GPU tests

TEST(GpuRnn, MatchesCpuFloat32) {
  REQUIRE_GPU();
  gpu_matches_cpu<float>(all_cases(kRandomFloat32, kSeedFloat32), kTolFloat32, MathMode::kDefault);
}

TEST(GpuRnn, MatchesCpuFloat64) {
  REQUIRE_GPU();
  gpu_matches_cpu<double>(all_cases(20, 3000), kTolFloat64, MathMode::kDefault);
}

TEST(GpuRnn, MatchesCpuBFloat16) {
  REQUIRE_GPU();
  gpu_matches_cpu<dynrnn::bfloat16>(all_cases(kRandomHalf, kSeedHalf), kTolBFloat16, MathMode::kDefault);
}

TEST(GpuRnn, MatchesCpuFloat16) {
  REQUIRE_GPU();
  gpu_matches_cpu<dynrnn::float16>(all_cases(kRandomHalf, kSeedHalf), kTolFloat16, MathMode::kDefault);
}

// The persistent forward kernel: every coverage case and the random ones, each precision, against the
// CPU backend with the per-step path's tolerances (its GEMMs sum in another order than cuBLAS's).
TEST(GpuRnn, PersistentMatchesCpu) {
  REQUIRE_GPU();
  // Also enough rows that the block GEMMs' 4 x 4 tiles occupy every thread without splitting K,
  // with edge tiles (130 rows) and some rows ended (whole tiles skip their sums).
  std::vector<int32_t> len(130, 3);
  for (size_t b = 0; b < 8; ++b) len[b] = 1;
  const Case wide = with_len(
      make_case("persistent_wide", {CellSpec::basic_lstm(64), CellSpec::gru(40), CellSpec::gru_reset_after(36)}, {}, 16,
                3, 130, false, 77),
      len);
  gpu_matches_cpu<float>(persistent({wide}), kTolFloat32, MathMode::kDefault);
  gpu_matches_cpu<float>(persistent(all_cases(kRandomFloat32, kSeedFloat32)), kTolFloat32, MathMode::kDefault);
  gpu_matches_cpu<double>(persistent(all_cases(20, 3000)), kTolFloat64, MathMode::kDefault);
  gpu_matches_cpu<dynrnn::bfloat16>(persistent(all_cases(kRandomHalf, kSeedHalf)), kTolBFloat16, MathMode::kDefault);
  gpu_matches_cpu<dynrnn::float16>(persistent(all_cases(kRandomHalf, kSeedHalf)), kTolFloat16, MathMode::kDefault);
}

/// pipeline_projections: the next chunk's input projection on its own stream beside the steps; the
/// CPU backend runs the same GEMMs in call order (on the emulated device, streams run in an order
/// that breaks any missing fence).
TEST(GpuRnn, PipelinedProjectionsMatchCpu) {
  REQUIRE_GPU();
  gpu_matches_cpu<float>(pipelined(all_cases(kRandomFloat32, kSeedFloat32)), kTolFloat32, MathMode::kDefault);
  gpu_matches_cpu<dynrnn::bfloat16>(pipelined(all_cases(kRandomHalf, kSeedHalf)), kTolBFloat16, MathMode::kDefault);
  std::vector<Case> both = persistent(pipelined({coverage_case("chunked_wavefront"), coverage_case("stack_bidi")}));
  gpu_matches_cpu<float>(both, kTolFloat32, MathMode::kDefault);
}

TEST(GpuRnn, Tf32WithinLooseTolerance) {
  REQUIRE_GPU();
  std::vector<Case> cases = {
      make_case("tf32_lstm", {lstm_full(96, 40, 3.0, 2.0)}, {}, 64, 6, 33, false, 31),
      with_len(make_case("tf32_gru_bidi", {CellSpec::gru(80)}, {CellSpec::basic_lstm(70)}, 48, 5, 19, true, 32),
               {5, 0, 3, 4, 5, 1, 2, 5, 5, 3, 4, 0, 5, 2, 1, 5, 4, 3, 5}),
      make_case("tf32_rnn_stack", {CellSpec::basic_rnn(64), CellSpec::gru(40), CellSpec::gru_reset_after(48)}, {}, 32,
                6, 9, false, 33),
  };
  gpu_matches_cpu<float>(cases, kTolTf32, MathMode::kTF32);
}

TEST(GpuRnn, EmptyShapes) {
  REQUIRE_GPU();
  // T = 0: the final state is the initial state and its gradient passes through. B = 0: nothing at all.
  std::vector<Case> cases = {
      make_case("T0", {CellSpec::lstm(8)}, {CellSpec::gru(5)}, 4, 0, 3, false, 41),
      make_case("B0", {CellSpec::gru(8)}, {}, 4, 5, 0, true, 42),
  };
  gpu_matches_cpu<float>(cases, 0.0, MathMode::kDefault);
}

/// One handle on the default stream, then on two other streams, and a second handle: the same bits.
template <typename T>
void check_deterministic(const Case& c) {
  SCOPED_TRACE(describe(c));
  try {
    const Problem<T> p = cast_problem<T>(make_problem(c));
    StreamHolder s1, s2;
    std::unique_ptr<Rnn> rnn = create_rnn(c, Backend::kCuda, testing_support::dtype_of<T>(), MathMode::kDefault);
    Session<T> sess(c, *rnn, p);
    std::vector<Outputs<T>> results;
    // Same handle: legacy default stream, then s1, then s2 (the handle switches streams between calls).
    for (cudaStream_t s : {static_cast<cudaStream_t>(nullptr), s1.get(), s2.get()}) {
      sess.poison();
      const Status st = sess.enqueue(s);
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      CUDA_OK(cudaDeviceSynchronize());
      results.push_back(sess.download());
    }
    results.push_back(run<T>(c, Backend::kCuda, p, MathMode::kDefault, s1.get()));  // a second handle
    for (size_t i = 1; i < results.size(); ++i) {
      SCOPED_TRACE("run " + std::to_string(i) + " vs run 0");
      expect_bitwise(results[i], results[0]);
    }
    expect_all_finite(results[0]);
  } catch (const std::exception& e) {
    ADD_FAILURE() << e.what();
  }
}

TEST(GpuRnn, DeterministicAcrossRunsStreamsAndHandles) {
  REQUIRE_GPU();
  for (const char* name : {"stack_mixed", "bidi_mixed_tm", "accumulate_only_dfinal", "big_lstm"}) {
    check_deterministic<float>(coverage_case(name));
  }
  for (const char* name : {"stack_mixed", "big_lstm"}) check_deterministic<dynrnn::bfloat16>(coverage_case(name));
  for (const Case& c : persistent({coverage_case("stack_mixed"), coverage_case("bidi_mixed_tm")})) {
    check_deterministic<float>(c);
  }
}

/// Several handles at once, each on its own host thread and its own stream (the README's thread rule:
/// one handle per thread at a time, distinct handles concurrently): every result bit for bit what the
/// same handle kind gives when it runs alone.
TEST(GpuRnn, ConcurrentHandlesOnThreadsAndStreams) {
  REQUIRE_GPU();
  std::vector<Case> cases;
  for (const char* name :
       {"stack_mixed", "bidi_mixed_tm", "swap_bidi_chunks", "lstm_all_options", "chunked_wavefront", "gru_relu_len"}) {
    cases.push_back(coverage_case(name));
  }
  std::vector<Problem<float>> problems;
  std::vector<Outputs<float>> alone;
  for (const Case& c : cases) {
    problems.push_back(cast_problem<float>(make_problem(c)));
    alone.push_back(run<float>(c, Backend::kCuda, problems.back()));
  }
  for (int round = 0; round < 2; ++round) {
    std::vector<Outputs<float>> together(cases.size());
    std::vector<std::string> errors(cases.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < cases.size(); ++i) {
      threads.emplace_back([&, i] {
        try {
          StreamHolder stream;
          std::unique_ptr<Rnn> rnn = create_rnn(cases[i], Backend::kCuda, DataType::kFloat32, MathMode::kDefault);
          Session<float> s(cases[i], *rnn, problems[i]);
          for (int call = 0; call < 2; ++call) {  // the second call reuses the handle's streams and pools
            s.poison();
            const Status st = s.enqueue(stream.get());
            if (!st) throw std::runtime_error(st.to_string());
            CUDA_OK(cudaStreamSynchronize(stream.get()));
          }
          together[i] = s.download();
        } catch (const std::exception& e) {
          errors[i] = e.what();
        }
      });
    }
    for (std::thread& t : threads) t.join();
    for (size_t i = 0; i < cases.size(); ++i) {
      SCOPED_TRACE("round " + std::to_string(round) + ", " + describe(cases[i]));
      ASSERT_TRUE(errors[i].empty()) << errors[i];
      expect_bitwise(together[i], alone[i]);
    }
  }
}

/// With two or more devices: a handle made on device 0 and called (with device-0 buffers and stream)
/// while device 1 is current runs on device 0, gives the same bits as when device 0 is current, and
/// leaves device 1 current. Skips with one device (CI runs it on two emulated devices).
TEST(GpuMultiDevice, CallsWhileAnotherDeviceIsCurrent) {
  REQUIRE_GPU();
  int devices = 0;
  CUDA_OK(cudaGetDeviceCount(&devices));
  if (devices < 2) GTEST_SKIP() << "needs two CUDA devices; this machine has " << devices;
  CUDA_OK(cudaSetDevice(0));
  for (const char* name : {"bidi_mixed_tm", "swap_bidi_chunks"}) {
    const Case c = coverage_case(name);
    SCOPED_TRACE(describe(c));
    const Problem<float> p = cast_problem<float>(make_problem(c));
    const Outputs<float> want = run<float>(c, Backend::kCuda, p);
    std::unique_ptr<Rnn> rnn = create_rnn(c, Backend::kCuda, DataType::kFloat32, MathMode::kDefault);
    StreamHolder stream;
    Session<float> s(c, *rnn, p);
    s.poison();
    CUDA_OK(cudaSetDevice(1));
    const Status st = s.enqueue(stream.get());
    int current = -1;
    CUDA_OK(cudaGetDevice(&current));
    CUDA_OK(cudaSetDevice(0));
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    EXPECT_EQ(current, 1) << "the call did not restore the caller's current device";
    CUDA_OK(cudaStreamSynchronize(stream.get()));
    expect_bitwise(s.download(), want);
  }
}

/// A session's calls (Session::enqueue) captured on a stream into an instantiated CUDA graph.
struct CapturedCalls {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;

  /// Replays the calls and waits for them.
  void launch(cudaStream_t stream) const {
    CUDA_OK(cudaGraphLaunch(exec, stream));
    CUDA_OK(cudaStreamSynchronize(stream));
  }
  void destroy() {
    CUDA_OK(cudaGraphExecDestroy(exec));
    CUDA_OK(cudaGraphDestroy(graph));
  }
};

template <typename T>
CapturedCalls capture_calls(Session<T>& sess, cudaStream_t stream) {
  CapturedCalls g;
  CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  const Status st = sess.enqueue(stream);
  const cudaError_t end = cudaStreamEndCapture(stream, &g.graph);
  if (!st) throw std::runtime_error("enqueue during capture: " + st.to_string());
  CUDA_OK(end);
  CUDA_OK(cudaGraphInstantiate(&g.exec, g.graph, 0));
  return g;
}

/// The handle's very first calls captured into a CUDA graph on a non-default stream (Rnn::create
/// made every stream and event) and launched twice, then the same calls run eagerly: every result of
/// the graph bit for bit equal to the eager one.
template <typename T>
void check_graph_matches_eager(const Case& c) {
  SCOPED_TRACE(describe(c));
  try {
    const Problem<T> p = cast_problem<T>(make_problem(c));
    StreamHolder stream;
    std::unique_ptr<Rnn> rnn = create_rnn(c, Backend::kCuda, testing_support::dtype_of<T>(), MathMode::kDefault);
    Session<T> sess(c, *rnn, p);

    CapturedCalls graph = capture_calls(sess, stream.get());
    std::vector<Outputs<T>> launched;
    for (int launch = 0; launch < 2; ++launch) {
      sess.poison();
      graph.launch(stream.get());
      launched.push_back(sess.download());
    }
    graph.destroy();

    sess.poison();
    const Status st = sess.enqueue(stream.get());
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    CUDA_OK(cudaStreamSynchronize(stream.get()));
    const Outputs<T> eager = sess.download();
    expect_all_finite(eager);
    for (size_t launch = 0; launch < launched.size(); ++launch) {
      SCOPED_TRACE("graph launch " + std::to_string(launch));
      expect_bitwise(launched[launch], eager);
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << e.what();
  }
}

TEST(GpuRnn, CudaGraphMatchesEager) {
  REQUIRE_GPU();
  for (const char* name : {"stack_mixed", "bidi_mixed_tm", "len_device_only", "accumulate_only_dfinal",
                           "chunked_wavefront", "swap_bidi_chunks"}) {
    check_graph_matches_eager<float>(coverage_case(name));
  }
  for (const char* name : {"stack_mixed", "bidi_mixed_tm", "chunked_wavefront", "swap_bidi_chunks"}) {
    check_graph_matches_eager<dynrnn::bfloat16>(coverage_case(name));
  }
  for (const Case& c : persistent({coverage_case("stack_mixed"), coverage_case("chunked_wavefront")})) {
    check_graph_matches_eager<float>(c);
  }
  for (const Case& c : pipelined({coverage_case("chunked_wavefront"), coverage_case("swap_bidi_chunks")})) {
    check_graph_matches_eager<float>(c);
  }
  check_graph_matches_eager<float>(coverage_case("dropout_stack"));
}

// A graph captured with ForwardArgs::dropout_seed_at draws the masks of the seed in memory at each
// replay: each replay equals an eager run with that seed as a value.
TEST(GpuRnn, CudaGraphDrawsTheSeedInMemory) {
  REQUIRE_GPU();
  const Case c = coverage_case("dropout_stack");
  SCOPED_TRACE(describe(c));
  try {
    const Problem<float> p = cast_problem<float>(make_problem(c));
    StreamHolder stream;
    std::unique_ptr<Rnn> rnn = create_rnn(c, Backend::kCuda, dynrnn::DataType::kFloat32, MathMode::kDefault);
    Session<float> sess(c, *rnn, p);
    sess.seed_in_memory = true;
    CapturedCalls graph = capture_calls(sess, stream.get());
    std::vector<Outputs<float>> replays;
    for (uint64_t seed : {uint64_t(5), uint64_t(0xABCDEF0123456789ull)}) {
      sess.set_dropout_seed(seed);
      sess.poison();
      graph.launch(stream.get());
      replays.push_back(sess.download());
      Case eager = c;
      eager.dropout_seed = seed;
      SCOPED_TRACE("seed " + std::to_string(seed));
      expect_bitwise(replays.back(), run<float>(eager, Backend::kCuda, p));
    }
    graph.destroy();
    EXPECT_NE(replays[0].out, replays[1].out) << "a new seed must draw new masks";
  } catch (const std::exception& e) {
    ADD_FAILURE() << e.what();
  }
}

TEST(GpuRnn, SwapMemoryIsBitwiseNeutral) {
  REQUIRE_GPU();
  for (const char* name : {"swap_bidi_chunks", "swap_step_chunks"}) {
    check_swap_is_neutral<float>(Backend::kCuda, coverage_case(name));
    check_swap_is_neutral<double>(Backend::kCuda, coverage_case(name));
    check_swap_is_neutral<dynrnn::bfloat16>(Backend::kCuda, coverage_case(name));
    check_swap_is_neutral<dynrnn::float16>(Backend::kCuda, coverage_case(name));
  }
}

/// The 16-bit types' GEMMs and column sums accumulate in float32 on the GPU: on sums that float32
/// forms exactly, every result is the CPU's bit for bit (the CPU's are the exact sums rounded
/// once: GpuHarness.HalfPrecisionSumsAreExactOnTheCpu). Summing in 16 bits (a split-K reduction in
/// the output type included), or rounding a chunk's weight-gradient partial sum to 16 bits, breaks
/// that.
template <typename T>
void check_exact_sums() {
  for (const auto& [c, p64] : exact_sum_problems()) {
    SCOPED_TRACE(describe(c));
    try {
      const Problem<T> p = cast_problem<T>(p64);
      expect_bitwise(run<T>(c, Backend::kCuda, p), run<T>(c, Backend::kCpu, p));
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
    }
  }
}

TEST(GpuRnn, HalfPrecisionSumsAccumulateInFloat32) {
  REQUIRE_GPU();
  check_exact_sums<dynrnn::bfloat16>();
  check_exact_sums<dynrnn::float16>();
}

/// Device memory: the calls allocate nothing (free memory is the same before and after a training
/// forward and backward, swap included), and swap_memory saves on the device what the size queries say.
/// Trains `c` with and without swap_memory and checks, with cudaMemGetInfo, that forward and backward
/// allocate nothing and that the device memory swap_memory saves is what the size queries predict.
/// Returns the two reserve sizes (without, with swap_memory).
std::pair<size_t, size_t> expect_memory_follows_size_queries(Case c) {
  const Problem<float> p = cast_problem<float>(make_problem(c));
  size_t used[2] = {0, 0}, reserve[2] = {0, 0}, workspace[2] = {0, 0};
  for (int swap = 0; swap < 2; ++swap) {
    c.spec.swap_memory = swap == 1;
    std::unique_ptr<Rnn> rnn = create_rnn(c, Backend::kCuda, DataType::kFloat32, MathMode::kDefault);
    EXPECT_TRUE(rnn->get_reserve_size(c.T, c.B, &reserve[swap]).is_ok());
    size_t inference_ws = 0;
    EXPECT_TRUE(rnn->get_workspace_size(c.T, c.B, true, &workspace[swap]).is_ok());
    EXPECT_TRUE(rnn->get_workspace_size(c.T, c.B, false, &inference_ws).is_ok());
    workspace[swap] = std::max(workspace[swap], inference_ws);  // a Session holds the larger one
    {
      // A first call sizes the handle's own pools (streams, events).
      Session<float> warm(c, *rnn, p);
      EXPECT_TRUE(warm.enqueue(nullptr).is_ok());
      CUDA_OK(cudaDeviceSynchronize());
    }
    size_t free0 = 0, free1 = 0, free2 = 0, total = 0;
    CUDA_OK(cudaMemGetInfo(&free0, &total));
    Session<float> s(c, *rnn, p);
    CUDA_OK(cudaMemGetInfo(&free1, &total));
    EXPECT_TRUE(s.enqueue(nullptr).is_ok());
    CUDA_OK(cudaDeviceSynchronize());
    CUDA_OK(cudaMemGetInfo(&free2, &total));
    EXPECT_EQ(free1, free2) << c.name << ": forward/backward allocated device memory (swap_memory " << swap << ")";
    used[swap] = free0 - free1;
  }
  const double saved = static_cast<double>(used[0]) - static_cast<double>(used[1]);
  const double predicted =
      static_cast<double>(reserve[0] + workspace[0]) - static_cast<double>(reserve[1] + workspace[1]);
  EXPECT_NEAR(saved, predicted, 8.0 * (1 << 20)) << c.name << ": device bytes saved by swap_memory vs the size queries";
  return {reserve[0], reserve[1]};
}

TEST(GpuRnn, DeviceMemoryFollowsTheSizeQueries) {
  REQUIRE_GPU();
  Case c = make_case("memory", {CellSpec::lstm(256), CellSpec::lstm(256)}, {}, 128, 64, 64, false, 31);
  c.spec.parallel_iterations = 8;
  const auto [kept, ring] = expect_memory_follows_size_queries(c);
  // Eight chunks of 8 steps: the smallest ring keeps two of them on the device.
  EXPECT_EQ(ring * 4, kept);
  // stack_bidirectional: the concatenated outputs between its 3 layers go to the host too.
  Case stacked = make_case("memory_stacked", std::vector<CellSpec>(3, CellSpec::lstm(64)),
                           std::vector<CellSpec>(3, CellSpec::lstm(64)), 64, 64, 32, false, 32);
  stacked.spec.stack_bidirectional = true;
  stacked.spec.parallel_iterations = 8;
  const auto [stacked_kept, stacked_ring] = expect_memory_follows_size_queries(stacked);
  const size_t concat = size_t(2) * 64 * 32 * 128 * sizeof(float);  // 2 boundaries of [T, B, 2H]
  EXPECT_EQ(stacked_ring * 4, stacked_kept - concat);
}

// A few seconds of GPU work that reaches every kernel and verb: what bench/gpu_check.sh runs under
// compute-sanitizer (memcheck, racecheck, initcheck, synccheck).
TEST(GpuQuick, SanitizerSubset) {
  REQUIRE_GPU();
  std::vector<Case> f32;
  for (const char* name : {"rnn_relu_tm_len", "lstm_all_options", "gru_relu_len", "stack_mixed", "bidi_mixed_tm",
                           "T1_len", "len_device_only", "accumulate_only_dfinal", "no_init_no_grads",
                           "chunked_wavefront", "swap_bidi_chunks", "dropout_stack", "stack_bidi"}) {
    f32.push_back(coverage_case(name));
  }
  gpu_matches_cpu<float>(f32, kTolFloat32, MathMode::kDefault);
  gpu_matches_cpu<double>({coverage_case("bidi_no_len")}, kTolFloat64, MathMode::kDefault);
  gpu_matches_cpu<float>({coverage_case("basic_lstm_fb")}, kTolTf32, MathMode::kTF32);
  check_graph_matches_eager<float>(coverage_case("swap_bidi_chunks"));
  check_graph_matches_eager<float>(coverage_case("stack_bidi"));
  gpu_matches_cpu<float>(pipelined({coverage_case("chunked_wavefront"), coverage_case("swap_bidi_chunks")}),
                         kTolFloat32, MathMode::kDefault);
  gpu_matches_cpu<dynrnn::bfloat16>({coverage_case("stack_mixed")}, kTolBFloat16, MathMode::kDefault);
  gpu_matches_cpu<dynrnn::float16>({coverage_case("bidi_mixed_tm")}, kTolFloat16, MathMode::kDefault);
  check_graph_matches_eager<dynrnn::bfloat16>(coverage_case("chunked_wavefront"));
  // The persistent kernel for every cell's stage pair: LSTM with projection, GRU, RNN, BasicLSTM.
  const std::vector<Case> persistent_cases =
      persistent({coverage_case("lstm_all_options"), coverage_case("gru_relu_len"), coverage_case("stack_mixed"),
                  coverage_case("bidi_mixed_tm"), coverage_case("dropout_stack")});
  gpu_matches_cpu<float>(persistent_cases, kTolFloat32, MathMode::kDefault);
  gpu_matches_cpu<dynrnn::bfloat16>(persistent_cases, kTolBFloat16, MathMode::kDefault);
}

}  // namespace
