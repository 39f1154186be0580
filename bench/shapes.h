// bench/shapes.h — the named shape sets of performance.md §3.2 (core, extended), the small CPU
// shapes derived from the core set, and the sequence-length generators.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bench {

/// kGru: TF's GRUCell (reset gate applied before the candidate matmul; cuDNN cannot run it).
/// kGruResetAfter ("gru_ra"): Keras' GRUCell(reset_after=True), dynrnn's kGRUResetAfter, the GRU of
/// cuDNN and PyTorch (the same function: all three implementations run and verify it).
enum class Cell { kLstm, kGru, kGruResetAfter, kRnnTanh, kRnnRelu };
enum class Lengths { kFixed, kUniform, kSkewed };

const char* cell_name(Cell c);
bool parse_cell(const std::string& s, Cell* c);
const char* lengths_name(Lengths l);
bool parse_lengths(const std::string& s, Lengths* l);
/// Gates per cell: LSTM 4, GRU 3 (TF: 2 gate columns + 1 candidate; reset-after: z, r, h, one
/// recurrent GEMM of 3H columns per step as cuDNN's), vanilla 1.
int cell_gates(Cell c);

struct Shape {
  std::string id;      ///< "A1", "D3", "H1-B32", "A1-cpu", "adhoc", ...
  std::string source;  ///< where the shape comes from (performance.md §3.2 "source" column)
  Cell cell = Cell::kLstm;
  int64_t T = 0, B = 0, I = 0, H = 0;
  int layers = 1;
  bool bidirectional = false;
  /// With bidirectional: tf.contrib.rnn.stack_bidirectional_dynamic_rnn (RnnSpec::stack_bidirectional):
  /// layer l > 0 reads layer l - 1's outputs of both directions concatenated, [.., 2H], as cuDNN's
  /// bidirectional stack and PyTorch's nn.LSTM(bidirectional=True, num_layers=L) do, and the call's
  /// outputs are the top layer's two directions in one [T, B, 2H] buffer. false: TF's
  /// bidirectional_dynamic_rnn, two independent stacks over the same input.
  bool stack_bidirectional = false;
  Lengths lengths = Lengths::kFixed;
  /// M1: performance.md's imposed activation budget (bytes): dynrnn runs with swap_memory and this
  /// device budget (RnnSpec::activation_memory_budget); cuDNN and naive have no such knob.
  int64_t activation_budget = 0;
  /// dynrnn knobs from the command line (--swap, --budget-mib, --recompute, --parallel-iterations).
  bool swap_memory = false;
  bool recompute = false;
  int parallel_iterations = 0;  ///< 0: default
  /// --dropout: every dynrnn layer in a DropoutWrapper with this input, output and state keep
  /// probability (1: none). Only dynrnn runs such a shape (cuDNN and naive have no DropoutWrapper).
  double dropout_keep = 1.0;

  /// A bidirectional stack whose layers read both directions of the layer below (stack_bidirectional).
  bool stacked() const { return bidirectional && stack_bidirectional; }
};

/// performance.md §3.2 core set (A1..M1).
std::vector<Shape> core_shapes();
/// performance.md §3.2 extended set: the full DeepBench training list, the haste N x H x C grid
/// (T = 50), and inference shapes with B in {1, 2, 4} derived from the core set.
std::vector<Shape> extended_shapes();
/// Small shapes (T=20, B=4, I=H=32 unless the core shape has I != H) derived from the core set,
/// for the CPU path: fast enough for the dynrnn CPU backend in float32 and float64.
std::vector<Shape> cpu_shapes();

/// Sequence lengths for a shape, deterministic in `seed`. fixed: all T. uniform: U[T/4, T].
/// skewed: 90 % U[T/10, T/5], 10 % U[T/2, T]. uniform and skewed always contain one row of length T.
std::vector<int32_t> make_lengths(const Shape& s, uint64_t seed);
/// max(lengths), the number of loop iterations TF's dynamic_rnn runs.
int64_t loop_steps(const std::vector<int32_t>& lengths, int64_t T);
/// Sum of the lengths (the useful row-steps).
int64_t sum_lengths(const std::vector<int32_t>& lengths);

/// Command-line flags that reproduce one shape as an ad-hoc run.
std::string shape_flags(const Shape& s);

}  // namespace bench
