// host/model.h — a validated RnnSpec turned into per-layer facts: widths, weight offsets, state columns.
#pragma once

#include <string>
#include <vector>

#include "dynrnn/rnn.h"

namespace dynrnn {

/// Absent parameter offset.
constexpr int64_t kNoParam = -1;

struct LayerModel {
  int direction = 0;
  int layer = 0;  ///< place in the orchestrated stack of its direction
  /// Place in the caller's stack (names the dropout streams): layer, except in a block of a
  /// stack_bidirectional model, whose one layer per direction is layer 0 of the block.
  int stack_layer = 0;
  CellSpec cell;
  int64_t in_width = 0;    ///< Din: spec.input_size for layer 0, else the width of the layer below
  int64_t units = 0;       ///< H
  int64_t out_width = 0;   ///< width of h (and of the output): num_proj or H
  int64_t gate_width = 0;  ///< columns of the main kernel: H (RNN), 4H (LSTM), 2H (GRU gates), 3H (reset-after GRU)
  bool is_lstm = false;
  bool is_gru = false;       ///< kGRU (TF's GRUCell: two stages per step)
  bool reset_after = false;  ///< kGRUResetAfter (one stage per step; bias is [2, 3H])
  bool project = false;
  bool peepholes = false;
  bool residual = false;  ///< ResidualWrapper: the layer's output is its input plus h
  /// DropoutWrapper's keep probabilities as TF holds them: rounded to float32 (its __init__ makes a
  /// float32 constant of a Python float), float64 cells too; dropout happens where they are below 1.
  double input_keep = 1.0, output_keep = 1.0, state_keep = 1.0;
  bool input_dropout = false;
  bool output_dropout = false;
  bool state_dropout = false;

  /// Whether the layer's output is its state h; if not (ResidualWrapper, output or state dropout),
  /// the layer keeps its own output chunk for the layer above.
  bool output_is_h() const { return !residual && !output_dropout && !state_dropout; }
  int64_t state_col_c = -1;  ///< column offset of c in the flat state (LSTM)
  int64_t state_col_h = 0;   ///< column offset of h
  // Weight offsets (elements) in the flat weight buffer. "kernel" is the main kernel:
  // RNN/LSTM `kernel` [Din + Hs, gate_width]; GRU `gates/kernel` [Din + H, 2H]; reset-after GRU
  // `kernel` [Din, 3H] directly followed by `recurrent_kernel` [H, 3H], and `bias` [2, 3H].
  int64_t kernel = kNoParam, bias = kNoParam;
  int64_t peephole = kNoParam;     ///< w_f_diag, then w_i_diag and w_o_diag right after it (3H contiguous)
  int64_t projection = kNoParam;   ///< [H, P]
  int64_t cand_kernel = kNoParam;  ///< GRU candidate/kernel [Din + H, H]
  int64_t cand_bias = kNoParam;    ///< GRU candidate/bias [H]
  int64_t param_begin = 0;         ///< the layer's parameters are elements [param_begin, param_end)
  int64_t param_end = 0;
};

struct Model {
  RnnSpec spec;
  std::vector<LayerModel> dirs[2];  ///< dirs[1] empty when unidirectional
  std::vector<ParamInfo> params;
  std::vector<StateLeaf> state;
  int64_t state_width = 0;
  int64_t param_count = 0;
  size_t elem_bytes = 4;
  /// The LSTM cell state c (and its gradient) is kept in compute_t<T> between steps: for the 16-bit
  /// types a float c, so that the recurrence c = f c + i g does not round to 16 bits every step.
  /// c buffers are this many T elements per value.
  int64_t c_elems = 1;

  int num_directions() const { return spec.bidirectional() ? 2 : 1; }
};

/// Validates the spec (every rule names the field and its value) and fills the model.
Status build_model(const RnnSpec& spec, Model* model);

/// What a call of the model runs one after another, each through one orchestrator: the model itself,
/// or for stack_bidirectional one block per layer, a one-layer bidirectional model whose layers keep
/// the caller's weight offsets, state columns and dropout streams (its spec's input_size is the
/// layer's input width). Block l reads layer l - 1's concatenated outputs.
std::vector<Model> call_blocks(const Model& model);

}  // namespace dynrnn
