// The library in bfloat16 and float16 on Backend::kCpu against the float64 reference.
//
// Every problem is rounded to the 16-bit type first (inputs, weights, initial state, upstream
// gradients) and the reference gets the same rounded values, so a difference measures only the
// library's arithmetic: GEMMs that accumulate in float32 and round their result once, cell math in
// float between a load and a store, stored intermediates (projections, pre-activations, h and its
// gradient) rounded to 16 bits, the LSTM cell state and the weight-gradient sums kept in float32.
//
// Checked here:
//  * tolerances per precision (see "Tolerances" below) on every output, final state and gradient:
//    smooth random problems (tanh/sigmoid only), random problems with relu and clips (a few whose
//    gradients cross a kink within rounding distance excused, and counted), and hand-built problems
//    that cover every cell kind and option, stacks, bidirectional, both layouts, sequence lengths
//    0, negative and > T, chunked schedules, swap_memory and recompute;
//  * exactly: outputs and input gradients past each row's length are 0; the final state of a row is
//    bit for bit the 16-bit state after its last step (the final state of the same problem cut
//    to that length), the initial state for length 0; the top layer's final h is its last valid
//    output; a length-0 row's initial-state gradient is its final-state gradient;
//  * swap_memory on and off, and two runs, give the same bits;
//  * the LSTM cell state does not round to 16 bits between steps (LstmCellStateAccumulatesInFloat32;
//    the GEMMs' and sums' float32 accumulation: tests/half_accumulation_test.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "dtype_support.h"
#include "library_adapter.h"
#include "random_problem.h"

namespace {

using testing_support::LibraryOptions;
using testing_support::LibraryRun;
using testing_support::rounded;
using testing_support::same_bits;
using testing_support::unit_roundoff;

// ------------------------------------------------------------------------------------------------
// Tolerances
//
// A result group (outputs, final state, input gradients, initial-state gradients, weight
// gradients) passes when every tensor in it has
//     ||got - want||_2 / max(||want||_2, kFloorFraction * rms * sqrt(n))  <=  C * u * sqrt(T + L)
// u: the unit roundoff of the storage type (bfloat16 2^-8, float16 2^-11); T + L: the length of the
// longest path through the time steps and layers (L = layers of the taller direction), along which
// roundings accumulate; they are independent, so their sum grows like the square root of the path
// (the measured worst cases grow no faster). rms: the root mean square of the inputs x (forward
// groups) or of the upstream gradients (gradient groups), or of the group itself where that is
// larger. With it, a tensor whose true value nearly cancels (a GRU output u h + (1 - u) c near 0,
// the bias gradient of a one-unit layer summed over a few rows) or vanishes along a long sequence
// is judged on the scale of the values that formed it, not on its tiny sum.
//
// C was set at two to three times the worst case over 3000 smooth random problems per type:
// outputs and final states reached 1.4 u sqrt(T + L), input and initial-state gradients 1.9,
// weight gradients 4.1 (sums over T * B rows of products of two rounded factors, which often nearly
// cancel). With relu and clips the forward stays as close; gradients that a kink within rounding
// distance moves can reach the tolerance, and past it are excused (below). The sweeps below run
// 300 problems per type.
// What these tolerances catch and what they cannot (one extra 16-bit rounding inside a cell is
// within them, by design) was checked by breaking the library on purpose; see the report of the
// change that added this file.
constexpr double kForwardC = 3;      // outputs, final states
constexpr double kStateGradC = 4;    // grad_inputs, grad_initial_state
constexpr double kWeightGradC = 10;  // grad_weights
constexpr double kFloorFraction = 0.5;
// relu and clip_by_value are discontinuous in their derivative: when a pre-activation lies within
// rounding distance of the kink, the library's rounded value may fall on the other side and a
// gradient changes by a whole term. A problem whose gradients are off tolerance is excused when the
// reference's kink pattern changes under relative perturbations of every input, weight and initial
// state by +-kKinkPerturbation * u (four random sign patterns); the sweeps bound how many may be.
// (The errors that crossed a kink in 3000 problems per type were within 16 u and 32 u perturbations;
// 64 u leaves room, and only problems already off tolerance are ever tested for it.)
constexpr double kKinkPerturbation = 64;

int layers(const ref::Problem& p) {
  return static_cast<int>(std::max(p.fw.size(), p.bw.size()));
}

template <typename T>
double tolerance(double c, const ref::Problem& p) {
  return c * unit_roundoff<T>() * std::sqrt(static_cast<double>(p.T + layers(p)));
}

double sum_squares(const std::vector<double>& v) {
  double s = 0;
  for (double e : v) s += e * e;
  return s;
}

struct Tensor {
  std::string name;
  const std::vector<double>* got;
  const std::vector<double>* want;
};

/// The errors of one group against its tolerance: the worst error / tolerance, and a line per
/// tensor over it.
struct GroupCheck {
  double worst = 0;
  std::vector<std::string> failures;

  void merge(const GroupCheck& g) {
    worst = std::max(worst, g.worst);
    failures.insert(failures.end(), g.failures.begin(), g.failures.end());
  }
  void report(const std::string& ctx) const {
    for (const std::string& f : failures) ADD_FAILURE() << f << " — " << ctx;
  }
};

GroupCheck check_group(const std::string& group, const std::vector<Tensor>& tensors, double floor_rms, double tol) {
  double ss = 0, n = 0;
  for (const Tensor& t : tensors) {
    ss += sum_squares(*t.want);
    n += static_cast<double>(t.want->size());
  }
  const double rms = std::max(n > 0 ? std::sqrt(ss / n) : 0.0, floor_rms);
  GroupCheck g;
  for (const Tensor& t : tensors) {
    if (t.got->size() != t.want->size()) {
      g.failures.push_back(group + " " + t.name + ": " + std::to_string(t.got->size()) + " values, expected " +
                           std::to_string(t.want->size()));
      continue;
    }
    double diff = 0;
    for (size_t i = 0; i < t.want->size(); ++i) {
      const double d = (*t.got)[i] - (*t.want)[i];
      diff += d * d;
    }
    const double scale = std::max({std::sqrt(sum_squares(*t.want)),
                                   kFloorFraction * rms * std::sqrt(static_cast<double>(t.want->size())), 1e-30});
    double e = std::sqrt(diff) / scale;
    if (!(e == e)) e = INFINITY;  // a NaN anywhere
    if (e > tol) {
      g.failures.push_back(group + " " + t.name + ": relative error " + std::to_string(e) + " > tolerance " +
                           std::to_string(tol));
    }
    g.worst = std::max(g.worst, e / tol);
  }
  return g;
}

std::vector<Tensor> named_tensors(const std::string& prefix, const ref::Named& got, const ref::Named& want) {
  std::vector<Tensor> v;
  for (const auto& [name, values] : want) {
    auto it = got.find(name);
    if (it == got.end()) {
      ADD_FAILURE() << "the library's results lack " << prefix << name;
      continue;
    }
    v.push_back({prefix + name, &it->second, &values});
  }
  return v;
}

std::vector<Tensor> weight_tensors(const ref::Gradients& got, const ref::Gradients& want) {
  std::vector<Tensor> v;
  for (int d = 0; d < 2; ++d) {
    const std::vector<ref::Params>& w = d == 0 ? want.dw_fw : want.dw_bw;
    const std::vector<ref::Params>& g = d == 0 ? got.dw_fw : got.dw_bw;
    if (g.size() != w.size()) {
      ADD_FAILURE() << "the library's weight gradients have " << g.size() << " layers, expected " << w.size();
      continue;
    }
    for (size_t l = 0; l < w.size(); ++l) {
      const std::string prefix = std::string(d == 0 ? "fw/" : "bw/") + std::to_string(l) + "/";
      for (Tensor& t : named_tensors(prefix, g[l], w[l])) v.push_back(t);
    }
  }
  return v;
}

double rms(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::sqrt(sum_squares(v) / static_cast<double>(v.size()));
}

double upstream_rms(const ref::Upstream& u) {
  double ss = sum_squares(u.dout_fw) + sum_squares(u.dout_bw), n = double(u.dout_fw.size() + u.dout_bw.size());
  for (const auto& kv : u.dfinal) ss += sum_squares(kv.second), n += double(kv.second.size());
  return n > 0 ? std::sqrt(ss / n) : 0.0;
}

// ------------------------------------------------------------------------------------------------
// Kink proximity

std::vector<double> perturbed(std::vector<double> v, double eps, std::mt19937_64& rng) {
  for (double& e : v) e *= (rng() & 1) ? 1 + eps : 1 - eps;
  return v;
}

/// True when some relu or clip of the reference's forward changes side under relative
/// perturbations of every input, weight and initial state by +-eps (four random sign patterns).
bool near_a_kink(const ref::Problem& p, double eps) {
  std::vector<int8_t> base;
  ref::forward_with_pattern(p, &base);
  if (base.empty()) return false;  // no relu, no clip
  std::mt19937_64 rng(0x4B494E4B);
  for (int k = 0; k < 4; ++k) {
    ref::Problem q = p;
    q.x = perturbed(q.x, eps, rng);
    for (std::vector<ref::Params>* stack : {&q.w_fw, &q.w_bw}) {
      for (ref::Params& layer : *stack) {
        for (auto& kv : layer) kv.second = perturbed(kv.second, eps, rng);
      }
    }
    for (auto& kv : q.init) kv.second = perturbed(kv.second, eps, rng);
    std::vector<int8_t> pattern;
    ref::forward_with_pattern(q, &pattern);
    if (pattern != base) return true;
  }
  return false;
}

// ------------------------------------------------------------------------------------------------
// Exact consequences of sequence_length

int effective_length(const ref::Problem& p, int b) {
  return p.has_seq_len ? std::min(std::max(p.seq_len[static_cast<size_t>(b)], 0), p.T) : p.T;
}

size_t row_of(const ref::Problem& p, int t, int b) {
  return static_cast<size_t>(p.time_major ? t * p.B + b : b * p.T + t);
}

/// The first `len` steps of p (lengths capped at len): a row of length exactly len ends in the same
/// state as in p.
ref::Problem cut_to(const ref::Problem& p, int len) {
  ref::Problem q = p;
  q.T = len;
  q.x.clear();
  const int D = p.D;
  for (int i = 0; i < (p.time_major ? len * p.B : p.B * len); ++i) {
    const int t = p.time_major ? i / p.B : i % len, b = p.time_major ? i % p.B : i / len;
    const size_t at = row_of(p, t, b) * static_cast<size_t>(D);
    q.x.insert(q.x.end(), p.x.begin() + static_cast<std::ptrdiff_t>(at),
               p.x.begin() + static_cast<std::ptrdiff_t>(at + D));
  }
  for (int& l : q.seq_len) l = std::min(l, len);
  return q;
}

/// Outputs at t >= length are 0; the final state of each row is the state after its last step
/// (bit for bit the final state of the problem cut to that length, or the initial state when it
/// is 0); the top layers' final h is the last valid output; grad_inputs at t >= length are 0, and
/// a length-0 row's initial-state gradient is its final-state gradient.
template <typename T>
void expect_exact_masking(const ref::Problem& p, const ref::Upstream* up, const LibraryRun& got,
                          const std::string& ctx) {
  const int T_ = p.T, B = p.B;
  const int dirs = p.bw.empty() ? 1 : 2;
  int64_t nonzero = 0, bad_grad = 0;
  for (int d = 0; d < dirs; ++d) {
    const std::vector<double>& out = d == 0 ? got.forward.out_fw : got.forward.out_bw;
    const int O = ref::output_width(d == 0 ? p.fw.back() : p.bw.back());
    if (out.size() != static_cast<size_t>(T_) * B * O) continue;  // reported by the comparison
    for (int b = 0; b < B; ++b) {
      for (int t = effective_length(p, b); t < T_; ++t) {
        for (int k = 0; k < O; ++k) nonzero += out[row_of(p, t, b) * O + k] != 0.0;
      }
    }
  }
  EXPECT_EQ(nonzero, 0) << "outputs at t >= sequence_length must be exactly 0 — " << ctx;
  if (up && got.gradients.dx.size() == p.x.size()) {
    for (int b = 0; b < B; ++b) {
      for (int t = effective_length(p, b); t < T_; ++t) {
        for (int k = 0; k < p.D; ++k) bad_grad += got.gradients.dx[row_of(p, t, b) * p.D + k] != 0.0;
      }
    }
    EXPECT_EQ(bad_grad, 0) << "grad_inputs at t >= sequence_length must be exactly 0 — " << ctx;
  }

  // Each distinct length below T: the problem cut to it, run (inference) in T.
  std::set<int> cuts;
  for (int b = 0; b < B; ++b) cuts.insert(effective_length(p, b));
  int64_t bad_state = 0, bad_dinit = 0;
  std::string first_state, first_dinit;
  for (int len : cuts) {
    if (len == T_ && len > 0) continue;
    LibraryRun cut;
    if (len > 0) {
      LibraryOptions inference;
      inference.inference = true;
      cut = testing_support::run_library<T>(cut_to(p, len), nullptr, inference);
    }
    for (const auto& [leaf, values] : got.forward.final_state) {
      const size_t w = values.size() / static_cast<size_t>(B);
      const std::vector<double>* other = nullptr;
      if (len > 0) {
        auto it = cut.forward.final_state.find(leaf);
        if (it == cut.forward.final_state.end() || it->second.size() != values.size()) {
          ADD_FAILURE() << "the cut problem lacks " << leaf << " — " << ctx;
          continue;
        }
        other = &it->second;
      }
      for (int b = 0; b < B; ++b) {
        if (effective_length(p, b) != len) continue;
        for (size_t k = 0; k < w; ++k) {
          const size_t i = static_cast<size_t>(b) * w + k;
          const double want = other ? (*other)[i] : (p.has_initial_state ? p.init.at(leaf)[i] : 0.0);
          if (!same_bits(values[i], want) && bad_state++ == 0) {
            first_state = leaf + " row " + std::to_string(b) + " (length " + std::to_string(len) +
                          "): " + std::to_string(values[i]) + " vs " + std::to_string(want);
          }
          if (len > 0 || !up || !got.gradients.dinit.count(leaf)) continue;
          auto f = up->dfinal.find(leaf);
          const double dfinal = f == up->dfinal.end() ? 0.0 : f->second[i];
          if (got.gradients.dinit.at(leaf)[i] != dfinal && bad_dinit++ == 0)
            first_dinit = leaf + " row " + std::to_string(b);
        }
      }
    }
  }
  EXPECT_EQ(bad_state, 0) << "final state not bit for bit the state at the row's length, first " << first_state << " — "
                          << ctx;
  EXPECT_EQ(bad_dinit, 0) << "grad_initial_state of a length-0 row is not its grad_final_state, first " << first_dinit
                          << " — " << ctx;

  // The top layer's final h is its output at the row's last step (time len - 1; time 0 for the
  // backward direction, whose outputs are reversed back).
  int64_t bad_last = 0;
  for (int d = 0; d < dirs; ++d) {
    const std::vector<ref::Cell>& stack = d == 0 ? p.fw : p.bw;
    if (stack.back().residual) continue;                 // ResidualWrapper: the output is the layer's input + h
    if (stack.back().output_keep_prob != 1.0) continue;  // DropoutWrapper: the output is h / keep * mask
    if (stack.back().state_keep_prob != 1.0) continue;   // DropoutWrapper: the final h is h / keep * mask
    const std::string leaf = std::string(d == 0 ? "fw/" : "bw/") + std::to_string(stack.size() - 1) + "/h";
    const std::vector<double>& out = d == 0 ? got.forward.out_fw : got.forward.out_bw;
    auto it = got.forward.final_state.find(leaf);
    const int O = ref::output_width(stack.back());
    if (it == got.forward.final_state.end() || out.size() != static_cast<size_t>(T_) * B * O) continue;
    for (int b = 0; b < B; ++b) {
      const int len = effective_length(p, b);
      if (len == 0) continue;
      const size_t at = row_of(p, d == 0 ? len - 1 : 0, b) * O;
      for (int k = 0; k < O; ++k) bad_last += !same_bits(it->second[static_cast<size_t>(b) * O + k], out[at + k]);
    }
  }
  EXPECT_EQ(bad_last, 0) << "the top layer's final h is not its last valid output bit for bit — " << ctx;
}

// ------------------------------------------------------------------------------------------------
// One problem

struct Outcome {
  double worst = 0;      ///< worst error / tolerance over the groups that count
  bool excused = false;  ///< gradients off tolerance, with a relu or clip kink within rounding distance
};

/// Runs p (rounded to T) forward and backward in T and compares with the reference on the same
/// rounded values. Gradients off tolerance are excused (not failed) when a kink is near.
template <typename T>
Outcome check_problem(const ref::Problem& p0, const ref::Upstream& u0, const LibraryOptions& opt) {
  const ref::Problem p = rounded<T>(p0);
  const ref::Upstream up = rounded<T>(u0);
  const std::string ctx = testing_support::describe(p) +
                          " parallel_iterations=" + std::to_string(opt.parallel_iterations) +
                          (opt.swap_memory ? " swap_memory" : "") + (opt.recompute ? " recompute" : "");
  const LibraryRun got = testing_support::run_library<T>(p, &up, opt);
  const ref::Forward want = ref::forward(p);
  const ref::Gradients want_g = ref::backward(p, up);

  GroupCheck forward;
  const double tf = tolerance<T>(kForwardC, p), xrms = rms(p.x);
  forward.merge(check_group(
      "outputs", {{"fw", &got.forward.out_fw, &want.out_fw}, {"bw", &got.forward.out_bw, &want.out_bw}}, xrms, tf));
  forward.merge(check_group("final_state", named_tensors("", got.forward.final_state, want.final_state), xrms, tf));
  forward.report(ctx);

  GroupCheck backward;
  const double ts = tolerance<T>(kStateGradC, p), tw = tolerance<T>(kWeightGradC, p), urms = upstream_rms(up);
  backward.merge(check_group("grad_inputs", {{"dx", &got.gradients.dx, &want_g.dx}}, urms, ts));
  backward.merge(check_group("grad_initial_state", named_tensors("", got.gradients.dinit, want_g.dinit), urms, ts));
  backward.merge(check_group("grad_weights", weight_tensors(got.gradients, want_g), urms, tw));

  expect_exact_masking<T>(p, &up, got, ctx);
  Outcome o;
  o.worst = forward.worst;
  if (!backward.failures.empty() && near_a_kink(p, kKinkPerturbation * unit_roundoff<T>())) {
    o.excused = true;
    return o;
  }
  backward.report(ctx);
  o.worst = std::max(o.worst, backward.worst);
  return o;
}

LibraryOptions random_schedule(std::mt19937_64& rng) {
  LibraryOptions lib;
  lib.parallel_iterations = 1 + static_cast<int>(rng() % 5);  // chunks of 1..5 steps, or all in one
  if (rng() % 4 == 0) lib.parallel_iterations = 32;
  lib.swap_memory = rng() % 3 == 0;
  lib.recompute = rng() % 3 == 0;
  return lib;
}

template <typename T>
class HalfPrecision : public ::testing::Test {};
using HalfTypes = ::testing::Types<dynrnn::bfloat16, dynrnn::float16>;
TYPED_TEST_SUITE(HalfPrecision, HalfTypes, testing_support::DtypeNames);

/// A random sweep; returns how many problems had their gradients excused (off tolerance near a kink).
template <typename T>
int sweep(uint64_t seed, int cases, bool kinks) {
  std::mt19937_64 rng(seed);
  testing_support::ProblemOptions opt;
  opt.max_time = 12;
  opt.allow_relu = kinks;
  opt.allow_clip = kinks;
  double worst = 0;
  int excused = 0;
  for (int i = 0; i < cases; ++i) {
    const ref::Problem p = testing_support::random_problem(rng, opt);
    const ref::Upstream u = testing_support::random_upstream(p, rng);
    SCOPED_TRACE("configuration " + std::to_string(i));
    const Outcome o = check_problem<T>(p, u, random_schedule(rng));
    worst = std::max(worst, o.worst);
    excused += o.excused;
    if (::testing::Test::HasFailure()) break;
  }
  std::printf("[ %-8s ] worst error %.2f of the tolerance over %d problems (gradients of %d excused: near a kink)\n",
              testing_support::dtype_name(testing_support::dtype_of<T>()), worst, cases, excused);
  return excused;
}

TYPED_TEST(HalfPrecision, SmoothRandomConfigurations) {
  EXPECT_EQ(sweep<TypeParam>(0x5160, 300, /*kinks=*/false), 0);
}

TYPED_TEST(HalfPrecision, RandomConfigurationsWithReluAndClips) {
  // A kink crossing is rare (a few problems in a thousand); a broken relu or clip gradient would
  // put most of the problems here off tolerance and exceed this bound.
  EXPECT_LE(sweep<TypeParam>(0x5161, 300, /*kinks=*/true), 300 / 20);
}

// ------------------------------------------------------------------------------------------------
// Hand-built problems: every cell kind and option, at least once each.

ref::Cell cell(ref::CellKind kind, int units, bool relu = false) {
  ref::Cell c;
  c.kind = kind;
  c.units = units;
  c.relu = relu;
  return c;
}

ref::Cell lstm(int units, bool peepholes, double cell_clip, int num_proj, double proj_clip, double forget_bias = 1.0) {
  ref::Cell c = cell(ref::CellKind::LSTM, units);
  c.peepholes = peepholes;
  c.has_cell_clip = cell_clip > 0;
  c.cell_clip = cell_clip;
  c.num_proj = num_proj;
  c.has_proj_clip = proj_clip > 0;
  c.proj_clip = proj_clip;
  c.forget_bias = forget_bias;
  return c;
}

struct Coverage {
  std::string name;
  ref::Problem p;
  LibraryOptions opt;
};

Coverage make(const std::string& name, std::vector<ref::Cell> fw, std::vector<ref::Cell> bw, int D, int T, int B,
              bool time_major, std::vector<int> lengths, bool init, uint64_t seed, LibraryOptions opt = {}) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  Coverage c{name, {}, opt};
  ref::Problem& p = c.p;
  p.T = T, p.B = B, p.D = D, p.time_major = time_major;
  p.fw = std::move(fw);
  p.bw = std::move(bw);
  for (int i = 0; i < T * B * D; ++i) p.x.push_back(u(rng));
  p.has_seq_len = !lengths.empty();
  p.seq_len = std::move(lengths);
  for (int d = 0; d < (p.bw.empty() ? 1 : 2); ++d) {
    const std::vector<ref::Cell>& stack = d == 0 ? p.fw : p.bw;
    for (size_t l = 0; l < stack.size(); ++l) {
      (d == 0 ? p.w_fw : p.w_bw)
          .push_back(ref::random_params(stack[l], ref::layer_input_width(stack, static_cast<int>(l), D), rng, 0.7));
      if (!init) continue;
      for (const std::string& leaf : ref::leaves(stack[l])) {
        std::vector<double>& v = p.init[(d == 0 ? "fw/" : "bw/") + std::to_string(l) + "/" + leaf];
        for (int i = 0; i < B * ref::state_width(stack[l], leaf.c_str()); ++i) v.push_back(0.8 * u(rng));
      }
    }
  }
  p.has_initial_state = init;
  return c;
}

std::vector<Coverage> coverage() {
  using K = ref::CellKind;
  LibraryOptions chunked, swapped, regen;
  chunked.parallel_iterations = 2;
  swapped.parallel_iterations = 2;
  swapped.swap_memory = true;
  regen.parallel_iterations = 3;
  regen.recompute = true;
  ref::Cell basic_fb0 = cell(K::BasicLSTM, 5), basic_fb25 = cell(K::BasicLSTM, 4),
            basic_relu = cell(K::BasicLSTM, 3, true);
  basic_fb0.forget_bias = 0;
  basic_fb25.forget_bias = 2.5;
  std::vector<Coverage> v;
  v.push_back(make("rnn_tanh", {cell(K::BasicRNN, 7)}, {}, 5, 9, 4, false, {}, true, 1));
  v.push_back(make("rnn_relu_time_major", {cell(K::BasicRNN, 6, true)}, {}, 4, 8, 5, true, {8, 0, 11, -1, 3}, true, 2));
  v.push_back(make("basic_lstm", {cell(K::BasicLSTM, 6)}, {}, 5, 10, 3, false, {10, 4, 0}, false, 3));
  v.push_back(make("basic_lstm_fb0_fb25_relu", {basic_fb0, basic_fb25, basic_relu}, {}, 4, 7, 3, true, {}, true, 4));
  v.push_back(make("lstm_peepholes", {lstm(5, true, 0, 0, 0)}, {}, 3, 9, 3, false, {9, 12, 2}, true, 5));
  v.push_back(make("lstm_cell_clip", {lstm(6, false, 0.4, 0, 0, 0.5)}, {}, 4, 8, 3, true, {}, true, 6, chunked));
  v.push_back(make("lstm_num_proj", {lstm(6, false, 0, 3, 0)}, {}, 5, 8, 4, false, {8, 5, 0, 1}, true, 7));
  v.push_back(make("lstm_all_options", {lstm(5, true, 0.6, 4, 0.3)}, {}, 4, 9, 3, false, {9, 3, 0}, true, 8, swapped));
  v.push_back(make("gru_tanh", {cell(K::GRU, 6)}, {}, 5, 10, 4, false, {}, true, 9));
  v.push_back(make("gru_relu", {cell(K::GRU, 5, true)}, {}, 4, 7, 3, true, {7, 0, 9}, true, 10, regen));
  v.push_back(make("stack_mixed", {lstm(5, true, 0.8, 3, 0.5), cell(K::GRU, 4), cell(K::BasicRNN, 5)}, {}, 4, 8, 4,
                   false, {8, 2, 0, 10}, true, 11, chunked));
  v.push_back(make("bidirectional", {cell(K::LSTM, 5), cell(K::GRU, 4)}, {basic_fb25}, 5, 8, 4, true, {8, 3, 0, 5},
                   true, 12, swapped));
  v.push_back(make("bidirectional_recompute", {cell(K::GRU, 4)}, {lstm(4, true, 0, 3, 0), cell(K::BasicRNN, 3)}, 3, 7,
                   3, false, {}, false, 13, regen));
  v.push_back(make("gru_reset_after", {cell(K::GRUResetAfter, 6), cell(K::GRUResetAfter, 4, true)}, {}, 5, 8, 4, true,
                   {8, 0, 3, 6}, true, 15));
  v.push_back(make("gru_reset_after_bidi_recompute", {cell(K::GRUResetAfter, 5)}, {cell(K::GRUResetAfter, 4)}, 4, 7, 3,
                   false, {7, 2, 5}, true, 16, regen));
  v.push_back(make("all_lengths_zero", {cell(K::BasicLSTM, 4), cell(K::BasicRNN, 3)}, {}, 3, 5, 3, false, {0, 0, -2},
                   true, 14));
  return v;
}

TYPED_TEST(HalfPrecision, EveryCellKindAndOption) {
  std::mt19937_64 rng(0xC0FE);
  for (const Coverage& c : coverage()) {
    SCOPED_TRACE(c.name);
    const ref::Upstream u = testing_support::random_upstream(c.p, rng);
    // Hand-picked, so their gradients must count: none may sit at a kink.
    EXPECT_FALSE(check_problem<TypeParam>(c.p, u, c.opt).excused) << "gradients off tolerance near a kink";
  }
}

// The LSTM cell state is a float32 running sum (README, Precision): a BasicLSTM whose forget gate
// is 1 in float32 (forget_bias 20) and whose input adds i * g = tanh(2u) / 2, just under u, to
// c = 1 every step. Rounded to 16 bits every step (spacing 2u above 1) c would never move; kept in
// float32 it reaches about 1 + 256 u after 256 steps (2 in bfloat16, 1.125 in float16): 128 u and
// 227 u away in relative terms, 2.7 and 4.7 times the forward tolerance 3 u sqrt(257) = 48 u.
TYPED_TEST(HalfPrecision, LstmCellStateAccumulatesInFloat32) {
  const double u = unit_roundoff<TypeParam>();
  ref::Cell c = cell(ref::CellKind::BasicLSTM, 2);
  c.forget_bias = 20;
  Coverage k = make("lstm_small_increments", {c}, {}, 1, 256, 2, false, {}, true, 15);
  for (double& x : k.p.x) x = 0;
  for (double& w : k.p.w_fw[0].at("kernel")) w = 0;
  k.p.w_fw[0].at("bias") = {0, 0, 2 * u, 2 * u, 0, 0, 0, 0};  // gate columns i, j, f, o: i = 1/2
  k.p.init.at("fw/0/c") = std::vector<double>(4, 1.0);
  k.p.init.at("fw/0/h") = std::vector<double>(4, 0.0);
  std::mt19937_64 rng(16);
  EXPECT_FALSE(check_problem<TypeParam>(k.p, testing_support::random_upstream(k.p, rng), {}).excused);
}

// ------------------------------------------------------------------------------------------------
// Bitwise: swap_memory is numerically neutral, and the same call gives the same bits.

TYPED_TEST(HalfPrecision, SwapMemoryAndRepeatsAreBitwiseNeutral) {
  for (const Coverage& c : coverage()) {
    if (c.p.T < 4) continue;
    SCOPED_TRACE(c.name);
    std::mt19937_64 rng(7);
    const ref::Problem p = rounded<TypeParam>(c.p);
    const ref::Upstream u = rounded<TypeParam>(testing_support::random_upstream(p, rng));
    LibraryOptions plain = c.opt, swapped = c.opt;
    plain.swap_memory = false;
    swapped.swap_memory = true;
    swapped.parallel_iterations = 1;  // a two-step ring: most steps go to host memory and back
    LibraryOptions plain_1 = swapped;
    plain_1.swap_memory = false;
    const LibraryRun a = testing_support::run_library<TypeParam>(p, &u, plain);
    testing_support::expect_bit_equal(a, testing_support::run_library<TypeParam>(p, &u, plain), "a second run");
    testing_support::expect_bit_equal(testing_support::run_library<TypeParam>(p, &u, plain_1),
                                      testing_support::run_library<TypeParam>(p, &u, swapped), "swap_memory on vs off");
  }
}

}  // namespace
