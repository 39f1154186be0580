// Independent float64 reference of tf.compat.v1.nn.dynamic_rnn and
// bidirectional_dynamic_rnn (forward and backward), written directly from
// shared/spec/tf-dynamic-rnn.md (sections 1.5, 1.6, 1.9, 2.1-2.5, 3.1-3.2).
//
// It is deliberately naive: every step does concat([x, h]) @ kernel + bias
// exactly as TF does, masking is explicit per-row where()-selects, and the
// backward pass is the literal masked BPTT of spec 3.1 with the per-cell
// formulas of spec 3.2. Nothing here is optimized; it is the test oracle.
// CellKind::GRUResetAfter (Keras' GRUCell, reset_after=True) is written from
// the Keras cell's equations, quoted at its forward step in reference.cpp.
// Cell::residual (ResidualWrapper) is written from the wrapper's definition:
// output = inputs + cell_output, state = the cell's new state.
// Cell::input_keep_prob / output_keep_prob / state_keep_prob /
// variational_recurrent (DropoutWrapper, inside the ResidualWrapper when both
// are set) are written from the wrappers' definitions: the cell reads
// x / keep_in * mask_in, the layer outputs out_c / keep_out * mask_out (+ the
// undropped x if residual); the new state's h (never an LSTM's c, as TF's
// default dropout_state_filter_visitor) is h / keep_state * mask_state before
// dynamic_rnn's copy-through (the output is the undropped h; the initial state
// is never dropped). The masks follow the contract of
// include/dynrnn/dropout_mask.h, reimplemented here independently (Philox4x32-10
// from Random123's description, checked against its known-answer vectors);
// backward is the masked BPTT with the gradients multiplied by mask / keep.
// Problem::stack_bidirectional (tf.contrib.rnn.stack_bidirectional_dynamic_rnn)
// is written from that function's definition: layer l is one
// bidirectional_dynamic_rnn(fw[l], bw[l]) over layer l-1's concatenated masked
// outputs; backward is each layer's bidirectional masked BPTT, top layer first,
// with layer l's input gradient split into layer l-1's fw and bw output blocks.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace ref {

// GRUResetAfter: tf.keras.layers.GRUCell(units, reset_after=True, activation=...)
// (recurrent_activation sigmoid, use_bias True) run by dynamic_rnn.
enum class CellKind { BasicRNN, BasicLSTM, LSTM, GRU, GRUResetAfter };

struct Cell {
  CellKind kind = CellKind::LSTM;
  int units = 0;
  bool relu = false;           // activation: relu instead of tanh
  double forget_bias = 1.0;    // BasicLSTM / LSTM only
  bool peepholes = false;      // LSTM only
  bool has_cell_clip = false;  // LSTM only
  double cell_clip = 0;
  int num_proj = 0;            // LSTM only; 0 = None
  bool has_proj_clip = false;  // LSTM only; ignored without num_proj (as TF)
  double proj_clip = 0;
  // tf.compat.v1.nn.rnn_cell.ResidualWrapper(cell) (default residual_fn), any kind:
  // the layer's output is input + cell output (the new h); its state is the
  // cell's own. Needs input width == output_width (TF asserts equal shapes).
  bool residual = false;
  // tf.compat.v1.nn.rnn_cell.DropoutWrapper(cell, input_keep_prob,
  // output_keep_prob, variational_recurrent), inside the ResidualWrapper when
  // both are set (ResidualWrapper(DropoutWrapper(cell))). 1.0 = no dropout.
  // Masks: include/dynrnn/dropout_mask.h's contract, reimplemented here.
  double input_keep_prob = 1.0;
  double output_keep_prob = 1.0;
  // DropoutWrapper's state_keep_prob: the new state's h (never an LSTM's c) times
  // mask / keep before dynamic_rnn's copy-through; the output is undropped.
  double state_keep_prob = 1.0;
  bool variational_recurrent = false;
};

// TF local variable names: "kernel", "bias", "w_f_diag", "w_i_diag", "w_o_diag",
// "projection/kernel", "gates/kernel", "gates/bias", "candidate/kernel",
// "candidate/bias", "recurrent_kernel" (row-major, TF shapes). GRUResetAfter
// (Keras): "kernel" [D, 3H], "recurrent_kernel" [H, 3H] (gate columns z, r, h)
// and "bias" [2, 3H] (row 0 input bias, row 1 recurrent bias).
using Params = std::map<std::string, std::vector<double>>;
// State leaves keyed "fw/0/c", "fw/0/h", "bw/1/h", each [B, width] row-major.
using Named = std::map<std::string, std::vector<double>>;

struct Problem {
  int T = 0, B = 0, D = 0;
  bool time_major = false;
  std::vector<Cell> fw, bw;  // MultiRNNCell stacks, bottom layer first; bw empty => unidirectional
  // tf.contrib.rnn.stack_bidirectional_dynamic_rnn(fw, bw, ...) instead of
  // bidirectional_dynamic_rnn(MultiRNNCell(fw), MultiRNNCell(bw)): layer l of
  // both directions is one bidirectional_dynamic_rnn over layer l-1's
  // concat([out_fw, out_bw], axis=2). Needs fw.size() == bw.size() >= 1.
  // Forward::out_fw / out_bw are the top layer's two column blocks of TF's
  // concatenated output (Upstream::dout_fw / dout_bw their gradients).
  bool stack_bidirectional = false;
  std::vector<double> x;  // [B,T,D] or [T,B,D]
  bool has_seq_len = false;
  std::vector<int> seq_len;  // [B]
  bool has_initial_state = false;
  Named init;  // all leaves when has_initial_state, else zeros (ignored)
  std::vector<Params> w_fw, w_bw;
  uint64_t dropout_seed = 0;  // the call's DropoutWrapper masks
};

struct Forward {
  std::vector<double> out_fw, out_bw;  // user layout; out_bw empty when unidirectional
  Named final_state;
};
struct Upstream {
  std::vector<double> dout_fw, dout_bw;  // user layout; empty vector = zero
  Named dfinal;                          // missing key = zero
};
struct Gradients {
  std::vector<double> dx;  // user layout
  Named dinit;             // every initial-state leaf (also when has_initial_state is false)
  std::vector<Params> dw_fw, dw_bw;
};

// "" if valid; else a message. Bidirectional: seq_len < 0 or > T is rejected
// like ReverseSequence does.
std::string check(const Problem&);
// Both throw std::invalid_argument with check()'s message on an invalid problem.
Forward forward(const Problem&);
Gradients backward(const Problem&, const Upstream&);

// ---- DropoutWrapper masks (include/dynrnn/dropout_mask.h's contract) ----
// Philox4x32-10 (Random123): counter[4], key (key0, key1) -> 4 words.
std::array<uint32_t, 4> philox4x32_10(const std::array<uint32_t, 4>& counter, uint32_t key0, uint32_t key1);
// The uniform number in [0, 1) (a multiple of 2^-24) of one mask element: Philox of counter
// (col, row, step, stream), or (col, 0, 0, stream) when variational, and key (low, high) 32 bits of
// seed; word 0 >> 8 times 2^-24. site 0: the cell's input, 1: its output, both with stream
// 4 * layer + 2 * direction + site; site 2: the new state's h (state_keep_prob), stream
// 0x80000000 | (2 * layer + direction). direction 0: fw, 1: bw; step: the loop iteration (the
// step-th cell call, the backward direction's too); row: the caller's batch row. Streams modulo 2^32.
double dropout_uniform(uint64_t seed, int direction, int layer, int site, bool variational, int64_t step, int64_t row,
                       int64_t col);
// floor(keep + dropout_uniform(...)) in double: 1 keeps, 0 drops.
double dropout_mask(uint64_t seed, int direction, int layer, int site, bool variational, int64_t step, int64_t row,
                    int64_t col, double keep);

// ---- helpers ----
int state_width(const Cell&, const char* leaf);  // "c" or "h"; 0 for a leaf the cell lacks
std::vector<std::string> leaves(const Cell&);    // {"c","h"} for LSTM kinds, {"h"} otherwise
int output_width(const Cell&);                   // num_proj if > 0 (LSTM) else units
// Parameter names and TF shapes of a cell whose input has width input_width.
std::map<std::string, std::vector<int>> param_shapes(const Cell&, int input_width);
// TF shapes, uniform(-scale, scale) for every parameter including biases.
// Deterministic for a given engine state (does not use std distributions).
Params random_params(const Cell&, int input_width, std::mt19937_64&, double scale);
// Input width of layer `layer` of a stack whose bottom input has width D.
int layer_input_width(const std::vector<Cell>& stack, int layer, int D);
// Input width of layer `layer` of direction `direction` (0: fw, 1: bw) of the problem: the stack's
// layer_input_width(stack, layer, p.D) for independent stacks; with stack_bidirectional, p.D for
// layer 0 and output_width(p.fw[layer - 1]) + output_width(p.bw[layer - 1]) above (both directions).
// Throws std::out_of_range for a direction or layer the problem lacks.
int layer_input_width(const Problem& p, int direction, int layer);

// Forward pass that additionally records, for every relu activation and every
// clip evaluated anywhere (all rows, all executed steps), which side of its
// kink the value lies on. Two problems with equal patterns lie in the same
// smooth piece; finite-difference tests use this to skip kink crossings.
// Encoding: 0/1 = relu input <= 0 / > 0; 2/3 = clip inactive / active.
Forward forward_with_pattern(const Problem&, std::vector<int8_t>* pattern);

}  // namespace ref
