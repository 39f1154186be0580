#include "bench/problem.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <sstream>

#include "bench/precision_types.h"

namespace bench {

dynrnn::RnnSpec make_spec(const Shape& s, dynrnn::DataType dtype, dynrnn::MathMode math) {
  dynrnn::RnnSpec spec;
  dynrnn::CellSpec cell;
  switch (s.cell) {
    case Cell::kLstm:
      cell = dynrnn::CellSpec::lstm(s.H);
      cell.forget_bias = kForgetBias;
      break;
    case Cell::kGru: cell = dynrnn::CellSpec::gru(s.H); break;
    case Cell::kGruResetAfter: cell = dynrnn::CellSpec::gru_reset_after(s.H); break;
    case Cell::kRnnTanh: cell = dynrnn::CellSpec::basic_rnn(s.H, dynrnn::Activation::kTanh); break;
    case Cell::kRnnRelu: cell = dynrnn::CellSpec::basic_rnn(s.H, dynrnn::Activation::kRelu); break;
  }
  cell.input_keep_prob = cell.output_keep_prob = cell.state_keep_prob = s.dropout_keep;
  spec.cells_fw.assign(static_cast<size_t>(s.layers), cell);
  if (s.bidirectional) spec.cells_bw.assign(static_cast<size_t>(s.layers), cell);
  spec.stack_bidirectional = s.stacked();
  spec.input_size = s.I;
  spec.dtype = dtype;
  spec.time_major = true;
  spec.math = math;
  if (s.activation_budget > 0 || s.swap_memory) {
    // M1 (or --swap): saved activations beyond the device budget move to the host (TF's swap_memory).
    spec.swap_memory = true;
    spec.activation_memory_budget = static_cast<size_t>(s.activation_budget);
  }
  spec.recompute = s.recompute;
  if (s.parallel_iterations > 0) spec.parallel_iterations = s.parallel_iterations;
  return spec;
}

namespace {

void fill_uniform(std::vector<double>& v, size_t n, double a, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> d(-a, a);
  v.resize(n);
  for (double& x : v) x = d(rng);
}

}  // namespace

Problem make_problem(const Shape& s, int num_sets, uint64_t seed) {
  Problem p;
  p.shape = s;
  p.lengths = make_lengths(s, seed);
  p.has_lengths = s.lengths != Lengths::kFixed;
  p.t_loop = loop_steps(p.lengths, s.T);

  std::unique_ptr<dynrnn::Rnn> rnn;
  const dynrnn::Status st = dynrnn::Rnn::create(make_spec(s, dynrnn::DataType::kFloat64, dynrnn::MathMode::kDefault),
                                                dynrnn::Backend::kCpu, &rnn);
  if (!st) throw BenchError("dynrnn::Rnn::create (weight table): " + st.to_string());
  p.params = rnn->params();
  p.state = rnn->state_layout();
  p.param_count = rnn->param_count();
  p.state_width = rnn->state_width();

  std::mt19937_64 rng(seed);
  p.weights.assign(static_cast<size_t>(p.param_count), 0.0);
  for (const dynrnn::ParamInfo& info : p.params) {
    std::vector<double> v;
    // Kernels are 2-D; so is the reset-after GRU's bias [2, 3H] (input row, recurrent row).
    const bool is_bias =
        info.local_name == "bias" ||
        (info.local_name.size() > 5 && info.local_name.compare(info.local_name.size() - 5, 5, "/bias") == 0);
    if (info.shape.size() == 2 && !is_bias) {
      // glorot_uniform, TF's default kernel initializer (Keras' recurrent_kernel is orthogonal by
      // default; glorot gives it the same scale).
      const double a = std::sqrt(6.0 / static_cast<double>(info.shape[0] + info.shape[1]));
      fill_uniform(v, static_cast<size_t>(info.count), a, rng);
    } else {
      // TF initializes biases with zeros (GRU gates with ones); small random values make the
      // bias mapping of the baselines visible to verification (for the reset-after GRU, both rows:
      // cuDNN's b_W and b_R).
      fill_uniform(v, static_cast<size_t>(info.count), 0.1, rng);
    }
    std::copy(v.begin(), v.end(), p.weights.begin() + info.offset);
  }
  p.sets.resize(static_cast<size_t>(std::max(1, num_sets)));
  for (InputSet& set : p.sets) {
    fill_uniform(set.x, static_cast<size_t>(p.x_elems()), 1.0, rng);
    fill_uniform(set.dy_fw, static_cast<size_t>(p.y_elems()), 1.0, rng);
    if (s.bidirectional) fill_uniform(set.dy_bw, static_cast<size_t>(p.y_elems()), 1.0, rng);
  }
  return p;
}

Problem rounded_problem(const Problem& p, Precision prec) {
  if (!is_16bit(prec)) throw BenchError(std::string("rounded_problem: ") + precision_name(prec) + " is not 16-bit");
  Problem r = p;
  with_storage_type(prec, [&](auto tag) {
    using T = typename decltype(tag)::type;
    // Through float, exactly as Arena::upload_as converts (double -> float -> T), so that the
    // uploads of the rounded values are exact and every implementation sees the same bits.
    auto round = [](std::vector<double>& v) {
      for (double& x : v) x = static_cast<double>(static_cast<float>(T(static_cast<float>(x))));
    };
    round(r.weights);
    for (InputSet& set : r.sets) {
      round(set.x);
      round(set.dy_fw);
      round(set.dy_bw);
    }
  });
  return r;
}

std::vector<double> join_directions(const Problem& p, const std::vector<double>& fw, const std::vector<double>& bw) {
  const int64_t rows = p.shape.T * p.shape.B, H = p.shape.H;
  const int D = p.directions();
  if (static_cast<int64_t>(fw.size()) != rows * H || (D == 2 && static_cast<int64_t>(bw.size()) != rows * H)) {
    throw BenchError("join_directions: a direction's tensor is not [T, B, H]");
  }
  std::vector<double> y(static_cast<size_t>(rows * D * H));
  for (int64_t r = 0; r < rows; ++r) {
    std::copy(fw.begin() + r * H, fw.begin() + (r + 1) * H, y.begin() + r * D * H);
    if (D == 2) std::copy(bw.begin() + r * H, bw.begin() + (r + 1) * H, y.begin() + r * D * H + H);
  }
  return y;
}

void split_directions(const Problem& p, const std::vector<double>& y, std::vector<double>* fw,
                      std::vector<double>* bw) {
  const int64_t rows = p.shape.T * p.shape.B, H = p.shape.H;
  const int D = p.directions();
  if (static_cast<int64_t>(y.size()) != rows * D * H)
    throw BenchError("split_directions: the tensor is not [T, B, D*H]");
  fw->resize(static_cast<size_t>(rows * H));
  if (D == 2) bw->resize(static_cast<size_t>(rows * H));
  for (int64_t r = 0; r < rows; ++r) {
    std::copy(y.begin() + r * D * H, y.begin() + r * D * H + H, fw->begin() + r * H);
    if (D == 2) std::copy(y.begin() + r * D * H + H, y.begin() + (r + 1) * D * H, bw->begin() + r * H);
  }
}

double rel_error(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return std::numeric_limits<double>::infinity();
    const double d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
  }
  if (den == 0) return num == 0 ? 0 : std::numeric_limits<double>::infinity();
  return std::sqrt(num / den);
}

double unit_roundoff(Precision p) {
  switch (p) {
    case Precision::kFp64: return 0x1p-53;
    case Precision::kFp32: return 0x1p-24;
    case Precision::kTf32:
    case Precision::kFp16: return 0x1p-11;
    case Precision::kBf16: return 0x1p-8;
  }
  return 0;
}

// 16-bit rows are compared with the float64 reference of the same rounded data (rounded_problem),
// so what is left is the rounding of what the implementation stores in 16 bits between its float32
// operations: at most the projected inputs, gate activations, h (and c) every step, dz, the carried
// dh (and dc), and partial dW/db sums. dynrnn keeps the LSTM cell state and the dW/db sums in
// float32 (README, Precision); the naive baseline rounds every op's result and sums dW step by step,
// as TF's while loop does in that dtype. Each store is a relative error of at most u, and the
// norm-wise error of a tensor is a small multiple of u that does not grow with H (float32
// accumulation) and grows slowly with T (the cells are contractive; a sum rounded every step grows
// like sqrt(T) u). One multiple of u therefore serves both formats. Measured on the CPU path (LSTM,
// GRU, tanh RNN; stacks, bidirectional, masking; T up to 200, H up to 256): forward errors <= 1.4u,
// gradient errors <= 4.5u (the naive baseline; dynrnn <= 1.1u). 16u and 48u leave room for the
// GPU's accumulation order and for T in the thousands (about 20u expected for the naive baseline's
// dW at T = 5000), while a mapping, gate-order or masking bug (an O(1) error) still fails.
//
// ReLU cells are different in backward: relu' jumps at 0, so a pre-activation within rounding
// distance of 0 (a 16-bit store of its operands moves it by about u |x W|) can take the other branch
// and pass, or stop, a whole dy component. Such flips occur with probability proportional to u per
// unit and each costs an O(1) component, so the norm-wise gradient error grows like sqrt(u), not u
// (measured, same sweep: up to 2.2 sqrt(u), i.e. 99u for fp16, from one or two flips in 4096
// units). The ReLU gradient tolerance adds 4 sqrt(u) for it, for tf32 too: it rounds GEMM operands to
// the same u as fp16, so its ReLU gradients are exposed to the same effect.
constexpr double kForwardUnits16 = 16, kGradientUnits16 = 48, kReluKinkRootUnits16 = 4;

double forward_tolerance(Precision p) {
  switch (p) {
    case Precision::kFp64: return 1e-10;
    case Precision::kTf32: return 1e-2;
    case Precision::kFp32: return 1e-4;
    case Precision::kBf16:
    case Precision::kFp16: break;
  }
  return kForwardUnits16 * unit_roundoff(p);
}

double gradient_tolerance(Precision p, Cell cell) {
  const double u = unit_roundoff(p);
  const double kink = cell == Cell::kRnnRelu ? kReluKinkRootUnits16 * std::sqrt(u) : 0.0;
  switch (p) {
    case Precision::kFp64: return 1e-8;
    case Precision::kTf32: return 3e-2 + kink;
    case Precision::kFp32: return 1e-3;
    case Precision::kBf16:
    case Precision::kFp16: break;
  }
  return kGradientUnits16 * u + kink;
}

Verdict compare_results(const HostResult& got, const HostResult& ref, Precision p, Cell cell, bool grads) {
  Verdict v;
  struct Item {
    const char* name;
    const std::vector<double>* a;
    const std::vector<double>* b;
    bool grad;
  };
  const Item items[] = {
      {"outputs", &got.out_fw, &ref.out_fw, false},
      {"outputs_bw", &got.out_bw, &ref.out_bw, false},
      {"final_state", &got.final_state, &ref.final_state, false},
      {"grad_inputs", &got.dx, &ref.dx, true},
      {"grad_initial_state", &got.dinit, &ref.dinit, true},
      {"grad_weights", &got.dw, &ref.dw, true},
  };
  bool failed = false;
  int compared = 0;
  std::ostringstream why;
  for (const Item& it : items) {
    if (it.grad && (!grads || !got.has_grads || !ref.has_grads)) continue;
    if (it.b->empty() && it.a->empty()) continue;
    const double e = rel_error(*it.a, *it.b);
    ++compared;
    double& slot = it.grad ? v.grad_err : v.fwd_err;
    slot = std::max(slot, e);
    const double tol = it.grad ? gradient_tolerance(p, cell) : forward_tolerance(p);
    if (!(e <= tol)) {
      if (failed) why << "; ";
      why << it.name << " rel err " << e << " > " << tol;
      failed = true;
    }
  }
  if (compared == 0) {
    v.status = "NotVerified";
    v.detail = "nothing to compare";
  } else {
    v.status = failed ? "Failed" : "Passed";
    v.detail = why.str();
  }
  return v;
}

}  // namespace bench
