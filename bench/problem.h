// bench/problem.h — the host-side data of one benchmark problem (weights in TF layout, several
// input sets, upstream gradients, lengths) and the comparison of results against a reference.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/shapes.h"
#include "bench/types.h"
#include "dynrnn/rnn.h"

namespace bench {

/// forget_bias of the LSTM layers: 0, so that TF's LSTMCell and cuDNN's LSTM are the same
/// function with the plain weight mapping (the mapping still adds forget_bias to cuDNN's f bias).
constexpr double kForgetBias = 0.0;

/// The dynrnn spec of a shape: time-major, kLSTM / kGRU / kGRUResetAfter / kBasicRNN cells; a
/// bidirectional shape is two independent stacks (TF bidirectional_dynamic_rnn) or, when
/// Shape::stacked(), stack_bidirectional_dynamic_rnn (RnnSpec::stack_bidirectional); shapes with an
/// activation budget (M1) use swap_memory with that device budget.
dynrnn::RnnSpec make_spec(const Shape& s, dynrnn::DataType dtype, dynrnn::MathMode math);

/// Upstream gradients are held per direction in every form; a stacked shape's runners pass them to
/// dynrnn joined in one [T, B, 2H] buffer (join_directions), as its outputs come back (HostResult
/// keeps them split, so every implementation is compared tensor by tensor).
struct InputSet {
  std::vector<double> x;      ///< [T, B, I]
  std::vector<double> dy_fw;  ///< [T, B, H]
  std::vector<double> dy_bw;  ///< [T, B, H] (bidirectional only)
};

struct Problem {
  Shape shape;
  std::vector<int32_t> lengths;           ///< [B]
  bool has_lengths = false;               ///< false: no sequence_length (TF runs every row T steps, no masking)
  int64_t t_loop = 0;                     ///< max(lengths)
  std::vector<dynrnn::ParamInfo> params;  ///< the TF weight table (dynrnn's params())
  std::vector<dynrnn::StateLeaf> state;   ///< the flat state layout
  int64_t param_count = 0, state_width = 0;
  std::vector<double> weights;  ///< [param_count] TF layout
  std::vector<InputSet> sets;   ///< rotated between timed runs; sets[0] is the verified one

  int directions() const { return shape.bidirectional ? 2 : 1; }
  /// stack_bidirectional: layer l > 0 reads 2H inputs; the outputs (and their gradients) are one
  /// [T, B, 2H] buffer, forward first.
  bool stacked() const { return shape.stacked(); }
  int64_t x_elems() const { return shape.T * shape.B * shape.I; }
  int64_t y_elems() const { return shape.T * shape.B * shape.H; }
  int64_t state_elems() const { return shape.B * state_width; }
};

/// Builds the problem (glorot-uniform kernels, small random biases, x and dy in U[-1, 1]).
/// Throws BenchError if dynrnn rejects the spec.
Problem make_problem(const Shape& s, int num_sets, uint64_t seed);

/// `p` with its weights, input sets and upstream gradients rounded to the storage type of `prec`
/// (bf16 or fp16; held as the doubles they round to, so every later conversion to that type is
/// exact). The rows of a 16-bit precision run on this copy and are verified against the float64
/// reference of this copy: the implementation is judged on what it computes from the 16-bit data it
/// was given, not on the rounding of that data, which no implementation can undo.
Problem rounded_problem(const Problem& p, Precision prec);

/// Per-direction [T, B, H] tensors -> one [T, B, D*H] tensor, direction d in columns [d*H, (d+1)*H):
/// the layout of a stacked shape's outputs and output gradients (and of cuDNN's y, dy). `bw` is
/// ignored for a unidirectional problem.
std::vector<double> join_directions(const Problem& p, const std::vector<double>& fw, const std::vector<double>& bw);
/// The inverse: [T, B, D*H] -> [T, B, H] per direction (`bw` is left alone when unidirectional).
void split_directions(const Problem& p, const std::vector<double>& y, std::vector<double>* fw, std::vector<double>* bw);

/// ||a - b|| / ||b|| (0 when both are zero; infinite when sizes differ or NaN appears).
double rel_error(const std::vector<double>& a, const std::vector<double>& b);

struct Verdict {
  std::string status = "NotVerified";  ///< Passed / Failed / NotVerified
  double fwd_err = -1;                 ///< max relative error over the forward tensors (-1: not compared)
  double grad_err = -1;                ///< max relative error over the gradients (-1: not compared)
  std::string detail;                  ///< which tensor failed, or why nothing was compared
};

/// Unit roundoff u = 2^-t of the arithmetic a precision stores or multiplies in (t significant
/// bits: fp64 53, fp32 24, tf32 11, fp16 11, bf16 8).
double unit_roundoff(Precision p);

/// Tolerances (relative, per tensor) for comparing a `p` run of a `cell` stack with a float64
/// reference (the gradient tolerance of a 16-bit ReLU cell allows for its kink; see problem.cpp).
double forward_tolerance(Precision p);
double gradient_tolerance(Precision p, Cell cell);

/// Compares every tensor that both results have; grads only when `grads`.
Verdict compare_results(const HostResult& got, const HostResult& ref, Precision p, Cell cell, bool grads);

}  // namespace bench
