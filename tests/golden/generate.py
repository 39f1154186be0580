#!/usr/bin/env python3
"""Generate the dynrnn golden fixtures from TensorFlow's graph-mode
tf.compat.v1.nn.dynamic_rnn / bidirectional_dynamic_rnn (and
tf.contrib.rnn.stack_bidirectional_dynamic_rnn, transcribed below).

How to re-run (from the repository root, Python 3.11):

    pip install -r tests/golden/requirements.txt
    TF_USE_LEGACY_KERAS=1 python3 tests/golden/generate.py

Options: --out DIR (default tests/golden/data), --only NAME[,NAME...].
Without --only, every *.txt in the output directory is deleted first and all
cases are rewritten. The output is deterministic (fixed numpy seed per case,
oneDNN disabled, v1 graph mode with v1 control flow).

Notes
-----
* tf-keras pins `tensorflow` (same version) as a dependency, so pip installs
  both `tensorflow` and `tensorflow-cpu`; on Linux they are the same CPU code.
* TF 2.16+ routes tf.compat.v1.nn.rnn_cell.* to tf_keras' legacy cells; they
  need TF_USE_LEGACY_KERAS=1 (set below if missing).
* We call tf.compat.v1.disable_v2_behavior(): graph mode, v1 while_loop with
  TensorArrays, exactly the reference loop of spec section 1.5.
* T=0 (cases t0_*, all placeholders fully static): the FORWARD pass works
  with v1 control flow (zero iterations, outputs [B,0,H] / [0,B,H], final
  state = initial state, or zeros), but tf.gradients w.r.t. x fails at run
  time with v1 control flow: "UnimplementedError: TensorArray has size zero,
  but element shape <unknown> is not fully defined" (the gradient
  TensorArray of the input unstack has no static element shape). With
  control flow v2 (while_v2 + TensorLists, still graph mode) forward and
  gradients both work, so the t0_* cases are built with control flow v2 and
  resource variables (case flag cf2=True). Gradients there are: grad/x empty,
  grad/init = dfinal, weight gradients all zero.
* Cell kinds: basic_rnn, basic_lstm, lstm, gru (tf.compat.v1.nn.rnn_cell's
  BasicRNNCell, BasicLSTMCell, LSTMCell, GRUCell) and gru_ra:
  tf_keras.layers.GRUCell(units, activation=..., reset_after=True) (sigmoid
  recurrent activation, biases), run by the same dynamic_rnn. Its weights are
  kernel [D, 3H], recurrent_kernel [H, 3H] (gate columns z, r, h) and bias
  [2, 3H] (input row, recurrent row). Keras quirks handled here:
  - a Keras layer builds its variables lazily on its first call, i.e. inside
    the while loop, and names them by the name scope there, not the variable
    scope: left alone, they would be rnn/while/gru_cell/kernel,
    rnn/while/rnn/multi_rnn_cell/cell_1/gru_cell_1/bias (Keras numbers the
    layer names per graph), bidirectional_rnn/bw/bw/while/gru_cell_2/kernel,
    or, under control flow v2, gru_cell/kernel. The cell's build() is
    therefore wrapped to run in the name scope <variable scope>/gru_cell/,
    the variable scope being the one dynamic_rnn / MultiRNNCell call the cell
    in: the names follow the tf.compat.v1 cells' rule (rnn/gru_cell/kernel,
    rnn/multi_rnn_cell/cell_1/gru_cell/bias, bidirectional_rnn/bw/gru_cell/
    recurrent_kernel), which is what the tfname lines record. Values are not
    affected. The variables are mapped to the fixture's <dir>/<layer>/<local>
    names through the cell objects;
  - MultiRNNCell's zero_state asks every cell for zero_state(), which Keras
    cells lack: each gets one returning zeros (what dynamic_rnn's
    get_initial_state gives a lone Keras cell);
  - a Keras layer casts its inputs to its own dtype (float32 by default), so
    the cell is created with the case's dtype.
* residual=True in C(...): the cell (any kind) is wrapped in
  tf.compat.v1.nn.rnn_cell.ResidualWrapper(cell) (default residual_fn): the
  layer's output is inputs + cell output (h, m with num_proj), its state the
  cell's own; inside a MultiRNNCell the next layer gets that output, and
  dynamic_rnn masks the top output (zeros past each length) as usual. TF
  asserts the input and output shapes are compatible, so the layer's input
  width must equal its output width. The wrapper adds no variable scope:
  variable names are the bare cell's. The cell line records it as
  "residual=1" (absent: not wrapped). Quirk: the v1 wrapper calls
  cell(inputs, state, scope=None), and a Keras cell's call() rejects the
  `scope` keyword, so gru_ra cells are wrapped in KerasCellResidualWrapper, a
  ResidualWrapper whose __call__ leaves that keyword out (dynamic_rnn and
  MultiRNNCell never pass a scope); the residual math is ResidualWrapper's own.
  float64 needs nothing special (the wrapper adds tensors of the cell's dtype).
* Dropout: input_keep_prob / output_keep_prob / state_keep_prob /
  variational_recurrent in C(...) (V(...) sets variational_recurrent=True)
  wrap the cell in tf.compat.v1.nn.rnn_cell.DropoutWrapper(cell,
  input_keep_prob, output_keep_prob, state_keep_prob,
  variational_recurrent=True, input_size=<the layer's input width>,
  dtype=<the case's dtype>) (default dropout_state_filter_visitor); with
  residual=True too, the order is ResidualWrapper(DropoutWrapper(cell))
  (GNMT's order: the residual adds the undropped input). DropoutWrapper adds
  no variable scope, so variable names are the bare cell's.
  State dropout (state_keep_prob < 1): after the cell call the wrapper drops
  the NEW state's leaves that the default filter selects: every leaf except
  an LSTMStateTuple's c. So BasicLSTM / LSTM: only h (m, num_proj wide with a
  projection) is dropped, c never; BasicRNN, GRU and the Keras GRUCell
  (whose state is a single tensor when dynamic_rnn / MultiRNNCell pass one):
  h. The cell's output is not affected (only output_keep_prob drops it).
  This happens inside the cell call, i.e. before dynamic_rnn's
  sequence_length copy-through: the next step and the final state read the
  dropped h, and rows past their length keep (copy through) the state of
  their last valid step, dropped once; a row of length 0 keeps the initial
  state, undropped.
  Only variational_recurrent=True can be generated: the standard mode calls
  tf.nn.dropout at every step, whose random numbers come from TF's stateful
  per-op random kernels and cannot be made to equal dynrnn's masks, so C(...)
  rejects keep < 1 without variational_recurrent.
  With variational_recurrent=True TF draws, once in __init__, noise tensors of
  shape [1, width] (tf.random.uniform: wrapper._recurrent_input_noise,
  _recurrent_state_noise, _recurrent_output_noise; the state noise has the
  structure of cell.state_size: LSTMStateTuple(c [1, units], h [1, h width])
  for the LSTMs, one [1, units] tensor for BasicRNN, GRU and the Keras
  GRUCell) and at every step computes mask = floor(keep + noise),
  value / keep * mask, in the case's dtype. Right after constructing the
  wrapper this generator REPLACES the input and output noise, and with
  state_keep_prob < 1 the state noise's h leaf, with tf.constant([1, width])
  holding dynrnn's uniform numbers (include/dynrnn/dropout_mask.h,
  reimplemented below; Random123's Philox known-answer vectors are asserted
  first): u_j = (word 0 of Philox4x32-10(counter = (j, 0, 0, stream),
  key = (low, high) 32 bits of the case's dropout_seed) >> 8) * 2^-24, with
  stream = 4 * layer + 2 * direction (fw 0, bw 1) + site (0 the cell's input,
  1 its output) and, for the state site (the new state's h),
  stream = 0x80000000 | (2 * layer + direction). An LSTM's c noise is
  replaced by zeros, which the default filter never reads (checked: the
  constant feeds nothing fetched; were it read, c would be zeroed). With
  state_keep_prob = 1 the state noise is left alone (TF never reads it).
  Quirk: the wrapper turns a Python float keep probability into a tensor with
  tf.convert_to_tensor (float32) and keeps its static value,
  float(np.float32(keep)), whatever the dtype: 0.7 becomes 0.699999988079071
  in the mask and in the scale, float64 cases included. C(...) therefore
  stores, and the cell line records, float32(keep), the value TF computes
  with (the generator asserts the wrapper holds exactly that): a float64
  computation given the recorded value reproduces TF, one given 0.7 differs
  by ~1e-8 relative.
  Checks: before any dropout case a self-test runs a BasicRNN and a BasicLSTM
  with injected noise (input, output, and state keep 1 or 0.65, the LSTM's c
  noise zeros) and compares TF with a numpy recomputation (h dropped for the
  next step and the final state, c not; and sees other noise change the
  outputs); every dropout case asserts that no random op feeds anything it
  fetches, that every injected noise constant with keep < 1 does, that no
  LSTM c state noise does, that each such mask keeps and drops at least one
  column, and that the masks are the same from the keep as written and from
  float32(keep).
  The cell line records input_keep_prob=..., output_keep_prob=...,
  state_keep_prob=... (%.17g, when below 1) and variational_recurrent=1 (when
  set); absent means 1, 1, 1, 0.
  The header records "dropout_seed <decimal uint64>" when nonzero (case(...,
  dropout_seed=...)). A gru_ra cell is wrapped in KerasCellDropoutWrapper (the
  v1 wrapper passes the `scope` keyword, as for KerasCellResidualWrapper); a
  ResidualWrapper around it is a plain one (the DropoutWrapper takes the
  keyword).
* stack=True in case(...) (cases stack_bidi_*): tf.contrib.rnn's
  stack_bidirectional_dynamic_rnn(cells_fw, cells_bw, x, initial_states_fw,
  initial_states_bw, ...), transcribed from TF 1.x
  tensorflow/contrib/rnn/python/ops/rnn.py (contrib is gone from TF 2) around
  TF's own tf.compat.v1.nn.bidirectional_dynamic_rnn: layer l of both
  directions is one bidirectional_dynamic_rnn (single cells, no MultiRNNCell)
  over layer l-1's concat([out_fw, out_bw], 2), so layer l > 0 has input width
  O_fw(l-1) + O_bw(l-1) (kernel rows; a DropoutWrapper's input_size; a
  residual layer needs output width == that). Variables are named
  stack_bidirectional_rnn/cell_<l>/bidirectional_rnn/<fw|bw>/<cell scope>/
  <local> (checked exactly, stack_tf_name). The header has
  "stack_bidirectional 1" (absent: 0) and bidirectional 1, layers_fw ==
  layers_bw. out/fw and out/bw are the two column blocks of TF's concatenated
  output (fw first), dout/fw and dout/bw the upstream gradient of that concat
  split the same way (their concat is fed as the gradient); state leaves are
  per layer as in the bidirectional cases (TF returns tuple(states_fw),
  tuple(states_bw); initial states go in as initial_states_fw[l] /
  initial_states_bw[l]). Dropout noise of layer l, direction d: the same
  streams as for a MultiRNNCell stack's layer l (dropout_stream(direction,
  l, site)).

File format (one file per case, see tests/golden/fixture.h for the loader):
    # comment line
    <key> <value>                      header (name, dtype, T, B, D, ...)
    cell <fw|bw> <layer> key=value ... one per layer
    tfname <fixture name> <TF variable name without :0>
    tensor <name> <ndim> <d0> ... <dn-1>
    <all values, one line, row-major; float32 %.9g, float64 %.17g, ints %d>
"""

import argparse
import glob
import os
import re
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

tf.compat.v1.disable_v2_behavior()
tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)

rnn_cell = tf.compat.v1.nn.rnn_cell

HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------------------
# Case description helpers
# ---------------------------------------------------------------------------

def C(kind, units, activation="tanh", forget_bias=None, use_peepholes=False,
      cell_clip=None, num_proj=None, proj_clip=None, residual=False,
      input_keep_prob=1.0, output_keep_prob=1.0, variational_recurrent=False, state_keep_prob=1.0):
    """A cell spec. residual=True wraps the cell in ResidualWrapper; keep
    probabilities below 1 (variational_recurrent=True only) in DropoutWrapper."""
    assert kind in ("basic_rnn", "basic_lstm", "lstm", "gru", "gru_ra")
    if forget_bias is None and kind in ("basic_lstm", "lstm"):
        forget_bias = 1.0
    for what, k in (("input_keep_prob", input_keep_prob), ("output_keep_prob", output_keep_prob),
                    ("state_keep_prob", state_keep_prob)):
        if not 0.0 < k <= 1.0:
            raise ValueError("%s=%r: must be in (0, 1]" % (what, k))
    # What TF keeps of a Python float keep probability (see the module docstring).
    # keep_args[site]: site 0 input, 1 output, 2 state.
    keep_args = (float(input_keep_prob), float(output_keep_prob), float(state_keep_prob))
    input_keep_prob, output_keep_prob, state_keep_prob = (float(np.float32(k)) for k in keep_args)
    if min(input_keep_prob, output_keep_prob, state_keep_prob) < 1.0 and not variational_recurrent:
        raise ValueError(
            "DropoutWrapper with keep < 1 needs variational_recurrent=True here: the standard mode draws "
            "fresh masks at every step from TF's stateful random kernels (tf.nn.dropout), which cannot be "
            "made to equal dynrnn's Philox masks, so such a fixture cannot be generated")
    return dict(kind=kind, units=units, activation=activation,
                forget_bias=forget_bias, use_peepholes=use_peepholes,
                cell_clip=cell_clip, num_proj=num_proj, proj_clip=proj_clip,
                residual=bool(residual), input_keep_prob=input_keep_prob,
                output_keep_prob=output_keep_prob, state_keep_prob=state_keep_prob, keep_args=keep_args,
                variational_recurrent=bool(variational_recurrent))


def case(name, fw, T=5, B=3, D=4, bw=None, time_major=False, seq_len=None,
         init=False, dtype="float32", cf2=False, dropout_seed=0, stack=False):
    """stack=True: stack_bidirectional_dynamic_rnn(fw, bw) (layer-wise bidirectional) instead of
    bidirectional_dynamic_rnn(MultiRNNCell(fw), MultiRNNCell(bw)); needs len(fw) == len(bw)."""
    if isinstance(fw, dict):
        fw = [fw]
    if isinstance(bw, dict):
        bw = [bw]
    if seq_len is not None:
        assert len(seq_len) == B, name
    assert 0 <= dropout_seed < 2 ** 64, name
    if stack:
        assert bw is not None and len(fw) == len(bw) >= 1, name
        assert not cf2, name
    return dict(name=name, fw=fw, bw=bw, T=T, B=B, D=D, time_major=time_major,
                seq_len=seq_len, init=init, dtype=dtype, cf2=cf2,
                dropout_seed=int(dropout_seed), stack=bool(stack))


def V(kind, units, input_keep_prob=1.0, output_keep_prob=1.0, state_keep_prob=1.0, **kw):
    """C(...) with variational_recurrent=True (the only generatable dropout mode)."""
    return C(kind, units, input_keep_prob=input_keep_prob, output_keep_prob=output_keep_prob,
             state_keep_prob=state_keep_prob, variational_recurrent=True, **kw)


LSTM_ALL = dict(use_peepholes=True, cell_clip=0.3, num_proj=3, proj_clip=0.1,
                forget_bias=2.5)

CASES = [
    # --- basic_rnn ---------------------------------------------------------
    case("basic_rnn_tanh", C("basic_rnn", 6)),
    case("basic_rnn_relu_init", C("basic_rnn", 6, activation="relu"), init=True),
    case("basic_rnn_seqlen_mixed_init", C("basic_rnn", 5), seq_len=[5, 2, 3], init=True),
    case("basic_rnn_time_major", C("basic_rnn", 7), T=4, B=2, D=3, time_major=True),
    # --- basic_lstm --------------------------------------------------------
    case("basic_lstm_default", C("basic_lstm", 6)),
    case("basic_lstm_fb0_init", C("basic_lstm", 5, forget_bias=0.0), init=True),
    case("basic_lstm_fb2p5_seqlen", C("basic_lstm", 4, forget_bias=2.5), B=4, seq_len=[1, 5, 3, 4]),
    case("basic_lstm_relu_init", C("basic_lstm", 5, activation="relu"), init=True),
    # --- lstm --------------------------------------------------------------
    case("lstm_plain", C("lstm", 6)),
    case("lstm_peepholes_init", C("lstm", 5, use_peepholes=True), init=True),
    case("lstm_cell_clip", C("lstm", 6, cell_clip=0.3), T=6),
    case("lstm_cell_clip0_init", C("lstm", 4, cell_clip=0.0), init=True),
    case("lstm_proj", C("lstm", 7, num_proj=3), init=True),
    case("lstm_proj_clip", C("lstm", 7, num_proj=4, proj_clip=0.15)),
    case("lstm_fb0", C("lstm", 5, forget_bias=0.0)),
    case("lstm_fb2p5_init", C("lstm", 5, forget_bias=2.5), init=True),
    case("lstm_all_seqlen_init", C("lstm", 7, **LSTM_ALL), B=4, seq_len=[5, 2, 4, 1], init=True),
    case("lstm_all_time_major_seqlen", C("lstm", 6, **LSTM_ALL), T=6, B=3, D=5, time_major=True,
         seq_len=[6, 3, 4]),
    case("lstm_relu", C("lstm", 6, activation="relu")),
    case("lstm_relu_peep_clip_init", C("lstm", 5, activation="relu", use_peepholes=True, cell_clip=0.3),
         init=True),
    case("lstm_relu_proj_seqlen", C("lstm", 6, activation="relu", num_proj=4, proj_clip=0.1),
         seq_len=[4, 5, 2]),
    # --- gru ---------------------------------------------------------------
    case("gru_tanh", C("gru", 6)),
    case("gru_relu_init", C("gru", 5, activation="relu"), init=True),
    case("gru_seqlen_init", C("gru", 6), B=4, seq_len=[3, 5, 1, 4], init=True),
    case("gru_time_major_init", C("gru", 5), T=6, B=2, D=3, time_major=True, init=True),
    # --- sequence_length edge cases (unidirectional) -----------------------
    case("seqlen_all_T_lstm", C("lstm", 5, use_peepholes=True), seq_len=[5, 5, 5], init=True),
    case("seqlen_with_zero_gru_init", C("gru", 5), B=4, seq_len=[3, 0, 5, 2], init=True),
    case("seqlen_with_zero_lstm_noinit", C("lstm", 4, num_proj=3), B=3, seq_len=[0, 4, 2]),
    case("seqlen_all_zero_lstm_init", C("lstm", 5, use_peepholes=True, cell_clip=0.3), seq_len=[0, 0, 0],
         init=True),
    case("seqlen_all_zero_basic_rnn_noinit", C("basic_rnn", 4), seq_len=[0, 0, 0]),
    case("seqlen_negative_lstm_init", C("lstm", 5, use_peepholes=True), B=4, seq_len=[-1, 3, 0, 5],
         init=True),
    case("seqlen_negative_gru_time_major", C("gru", 4), B=3, seq_len=[2, -3, 4], time_major=True,
         init=True),
    case("seqlen_gt_T_gru", C("gru", 5), seq_len=[7, 2, 9], init=True),
    case("seqlen_gt_T_basic_lstm", C("basic_lstm", 4), T=4, B=2, seq_len=[100, 3]),
    case("seqlen_max_lt_T_lstm", C("lstm", 5), T=7, B=3, seq_len=[2, 1, 3], init=True),
    # --- small / large shapes ---------------------------------------------
    case("t1_lstm_init", C("lstm", 5, use_peepholes=True), T=1, init=True),
    case("t1_gru_seqlen", C("gru", 4), T=1, B=3, seq_len=[1, 0, 1]),
    case("b1_gru_init", C("gru", 6), B=1, init=True),
    case("b1_lstm_proj_seqlen", C("lstm", 6, num_proj=2), T=6, B=1, seq_len=[4]),
    case("t1_b1_basic_rnn", C("basic_rnn", 3), T=1, B=1, D=2, seq_len=[1]),
    case("big_lstm_proj", C("lstm", 33, use_peepholes=True, num_proj=17), T=3, B=2, D=37, init=True),
    case("big_gru_seqlen", C("gru", 33), T=3, B=2, D=37, seq_len=[3, 2]),
    # --- MultiRNNCell stacks (unidirectional) ------------------------------
    case("stack_lstm_lstm", [C("lstm", 5), C("lstm", 4)]),
    case("stack_lstmproj_gru_rnn_seqlen_init",
         [C("lstm", 7, num_proj=3, proj_clip=0.1, use_peepholes=True), C("gru", 5), C("basic_rnn", 4)],
         B=4, seq_len=[5, 3, 0, 2], init=True),
    case("stack_basic_lstm_gru_time_major", [C("basic_lstm", 5), C("gru", 6)], time_major=True),
    case("stack_relu_mixed_init", [C("basic_rnn", 4, activation="relu"), C("lstm", 5, activation="relu"),
                                   C("gru", 3, activation="relu")], T=4, init=True),
    case("stack_gru_gru_seqlen_time_major_init", [C("gru", 4), C("gru", 6)], time_major=True,
         seq_len=[4, 5, 1], init=True),
    # --- bidirectional -----------------------------------------------------
    case("bidi_lstm", C("lstm", 5), bw=C("lstm", 5)),
    case("bidi_gru_seqlen_init", C("gru", 5), bw=C("gru", 4), B=4, seq_len=[5, 2, 4, 3], init=True),
    case("bidi_time_major_seqlen", C("lstm", 6, use_peepholes=True, num_proj=3), bw=C("gru", 5),
         time_major=True, seq_len=[3, 5, 1]),
    case("bidi_diff_cells_init", C("basic_rnn", 4), bw=C("lstm", 6, **LSTM_ALL), init=True),
    case("bidi_stacks_seqlen_zero_init", [C("lstm", 5, num_proj=3), C("gru", 4)], bw=C("basic_lstm", 4),
         B=4, seq_len=[5, 0, 3, 2], init=True),
    case("bidi_stacks_time_major_seqlen_all_T", C("gru", 5),
         bw=[C("basic_rnn", 3), C("lstm", 4, cell_clip=0.3), C("gru", 5)], time_major=True,
         seq_len=[5, 5, 5]),
    case("bidi_seqlen_all_zero_init", C("lstm", 4), bw=C("gru", 3), seq_len=[0, 0, 0], init=True),
    case("bidi_t1_b1", C("basic_lstm", 3), bw=C("basic_rnn", 3), T=1, B=1, D=2),
    # --- float64 -----------------------------------------------------------
    case("f64_lstm_all_seqlen_init", C("lstm", 6, **LSTM_ALL), B=4, seq_len=[5, 3, 0, 4], init=True,
         dtype="float64"),
    case("f64_gru_time_major", C("gru", 5), time_major=True, dtype="float64"),
    case("f64_stack_mixed_init", [C("basic_lstm", 4), C("gru", 5), C("basic_rnn", 3, activation="relu")],
         init=True, dtype="float64"),
    case("f64_bidi_seqlen", [C("lstm", 5, use_peepholes=True), C("lstm", 4)], bw=C("gru", 4),
         seq_len=[4, 5, 2], dtype="float64"),
    # --- T = 0 (static batch) ----------------------------------------------
    # (built with control flow v2, see the module docstring)
    case("t0_lstm_init", C("lstm", 4, num_proj=3), T=0, B=2, D=3, init=True, cf2=True),
    case("t0_gru_noinit_time_major", C("gru", 4), T=0, B=2, D=3, time_major=True, cf2=True),
    # --- gru_ra: tf_keras GRUCell(reset_after=True) ---------------------------
    case("gru_ra_tanh", C("gru_ra", 6)),
    case("gru_ra_relu_init", C("gru_ra", 5, activation="relu"), init=True),
    case("gru_ra_seqlen_edges_init", C("gru_ra", 5), B=5, seq_len=[3, 0, -2, 9, 5], init=True),
    case("gru_ra_time_major_seqlen", C("gru_ra", 4), T=6, B=3, D=3, time_major=True, seq_len=[6, 2, 4]),
    case("gru_ra_t1_seqlen", C("gru_ra", 4), T=1, B=3, seq_len=[1, 0, 1], init=True),
    case("gru_ra_b1_init", C("gru_ra", 6), B=1, init=True),
    case("big_gru_ra_seqlen_init", C("gru_ra", 33), T=3, B=2, D=37, seq_len=[3, 2], init=True),
    case("stack_lstmproj_gru_ra_rnn_seqlen_init",
         [C("lstm", 7, num_proj=3, proj_clip=0.1, use_peepholes=True), C("gru_ra", 5), C("basic_rnn", 4)],
         B=4, seq_len=[5, 3, 0, 2], init=True),
    case("stack_gru_ra_gru_time_major", [C("gru_ra", 4), C("gru", 6)], time_major=True),
    case("stack_gru_ra_relu_gru_ra_seqlen", [C("gru_ra", 5, activation="relu"), C("gru_ra", 3)], T=4,
         seq_len=[4, 1, 3]),
    case("bidi_gru_ra_gru_seqlen_init", C("gru_ra", 5), bw=C("gru", 4), B=4, seq_len=[5, 2, 4, 0], init=True),
    case("bidi_gru_ra_stacks_time_major_seqlen", [C("gru_ra", 4), C("lstm", 5, num_proj=3)],
         bw=[C("gru", 3), C("gru_ra", 4, activation="relu")], time_major=True, seq_len=[5, 5, 1]),
    case("f64_gru_ra_seqlen_init", C("gru_ra", 5), seq_len=[5, 0, 3], init=True, dtype="float64"),
    case("f64_bidi_stack_gru_ra", [C("basic_lstm", 4), C("gru_ra", 5)], bw=C("gru_ra", 3), seq_len=[4, 5, 2],
         dtype="float64"),
    case("t0_gru_ra_init", C("gru_ra", 4), T=0, B=2, D=3, init=True, cf2=True),
    # --- residual: ResidualWrapper(cell), output = inputs + cell output ----
    case("residual_basic_rnn", C("basic_rnn", 4, residual=True)),
    case("residual_lstm_proj_init", C("lstm", 6, num_proj=4, use_peepholes=True, residual=True), init=True),
    case("residual_gru_seqlen_edges_init", C("gru", 4, residual=True), B=5, seq_len=[3, 0, 9, 5, 1], init=True),
    case("residual_stack_lstm_gru_rnn_time_major_init",
         [C("lstm", 5), C("gru", 5, residual=True), C("basic_rnn", 5, activation="relu", residual=True)],
         time_major=True, init=True),
    case("residual_stack_top_seqlen", [C("gru_ra", 3), C("lstm", 5, num_proj=3, residual=True)], B=4, D=3,
         seq_len=[5, 2, 0, -1]),
    case("residual_gru_ra_seqlen_init", C("gru_ra", 4, residual=True), B=4, seq_len=[4, 1, 5, 0], init=True),
    case("residual_bidi_stacks_seqlen_init",
         [C("gru", 4, residual=True), C("basic_lstm", 4, residual=True)],
         bw=[C("basic_rnn", 3), C("gru_ra", 3, activation="relu", residual=True)], B=4,
         seq_len=[5, 3, 0, 4], init=True),
    case("f64_residual_stack_seqlen_init", [C("lstm", 4, num_proj=4, residual=True), C("gru", 4, residual=True)],
         B=3, seq_len=[5, 0, 3], init=True, dtype="float64"),
    # --- dropout: DropoutWrapper(variational_recurrent=True), dynrnn's masks injected as TF's noise ---
    case("dropout_lstm_in_out_init", V("lstm", 6, input_keep_prob=0.7, output_keep_prob=0.6), init=True,
         dropout_seed=12345),
    case("dropout_basic_rnn_relu_out", V("basic_rnn", 6, activation="relu", output_keep_prob=0.5), T=4,
         dropout_seed=7),
    case("dropout_gru_seqlen_edges_init", V("gru", 5, input_keep_prob=0.8, output_keep_prob=0.75), B=4,
         seq_len=[3, 0, 5, 2], init=True, dropout_seed=0x12345678D),
    case("dropout_gru_ra_input_seqlen", V("gru_ra", 5, input_keep_prob=0.6), D=6, seq_len=[5, 2, 4],
         dropout_seed=0x500000000),
    case("dropout_stack_mixed_residual_time_major_init",
         [V("lstm", 5, output_keep_prob=0.7), V("gru", 5, input_keep_prob=0.8, output_keep_prob=0.6, residual=True),
          C("basic_rnn", 4), V("gru_ra", 4, input_keep_prob=0.75)],
         time_major=True, init=True, dropout_seed=0xDEADBEEFCAFEF011),
    case("dropout_bidi_stacks_seqlen",
         [V("gru", 4, input_keep_prob=0.7, output_keep_prob=0.8), V("lstm", 5, output_keep_prob=0.75)],
         bw=[V("basic_lstm", 4, input_keep_prob=0.7, output_keep_prob=0.8),
             V("gru_ra", 4, output_keep_prob=0.6, residual=True)],
         B=4, seq_len=[5, 2, 0, 4], dropout_seed=2025),
    case("dropout_lstm_all_seqlen_init", V("lstm", 7, input_keep_prob=0.75, output_keep_prob=0.5, **LSTM_ALL), B=4,
         D=6, seq_len=[5, 2, 4, 1], init=True, dropout_seed=0xFFFFFFFF0000002A),
    case("dropout_f64_stack_seqlen_init",
         [V("lstm", 5, use_peepholes=True, input_keep_prob=0.7, output_keep_prob=0.8),
          V("gru_ra", 4, input_keep_prob=0.6), C("gru", 4, residual=True)],
         B=3, seq_len=[5, 0, 3], init=True, dtype="float64", dropout_seed=31339),
    # --- state dropout: DropoutWrapper(state_keep_prob < 1), the new state's h (never c) dropped ---
    case("dropout_state_basic_rnn_tanh", V("basic_rnn", 6, state_keep_prob=0.6), T=6, dropout_seed=99),
    case("dropout_state_lstm_all_in_out_seqlen_init",
         V("lstm", 7, input_keep_prob=0.8, output_keep_prob=0.7, state_keep_prob=0.5, **LSTM_ALL), B=4, D=5,
         seq_len=[5, 0, 3, 2], init=True, dropout_seed=0xC0FFEE0123456789),
    case("dropout_state_gru_seqlen", V("gru", 5, state_keep_prob=0.7), B=4, seq_len=[4, 5, 1, 3],
         dropout_seed=4242),
    case("dropout_state_gru_ra_init", V("gru_ra", 6, state_keep_prob=0.65, input_keep_prob=0.8), D=5,
         init=True, dropout_seed=0x100000007),
    case("dropout_state_bidi_stacks_residual_seqlen",
         [V("lstm", 5, use_peepholes=True, state_keep_prob=0.7),
          V("gru", 5, output_keep_prob=0.8, state_keep_prob=0.6, residual=True)],
         bw=[V("gru_ra", 4, input_keep_prob=0.75, state_keep_prob=0.7), V("basic_lstm", 4, state_keep_prob=0.6)],
         B=4, seq_len=[5, 2, 0, 4], init=True, dropout_seed=777),
    case("dropout_state_f64_stack_seqlen_init",
         [V("basic_lstm", 4, input_keep_prob=0.8, state_keep_prob=0.7), V("gru_ra", 4, state_keep_prob=0.6),
          V("basic_rnn", 3, activation="relu", output_keep_prob=0.7, state_keep_prob=0.75)],
         B=3, seq_len=[5, 0, 3], init=True, dtype="float64", dropout_seed=0xABCDF2),
    # --- stack_bidirectional_dynamic_rnn: layer l is one bidirectional_dynamic_rnn over layer l-1's
    # concat([out_fw, out_bw], 2) (stack=True, see the module docstring) ---
    case("stack_bidi_lstm_seqlen_init", [C("lstm", 5), C("lstm", 4)], bw=[C("lstm", 4), C("lstm", 5)], B=4,
         seq_len=[5, 0, 3, 2], init=True, stack=True),
    case("stack_bidi_mixed_3_layers",
         [C("lstm", 5, num_proj=3, use_peepholes=True, cell_clip=0.3), C("basic_rnn", 4, activation="relu"),
          C("gru_ra", 4)],
         bw=[C("gru", 4), C("basic_lstm", 5), C("lstm", 3)], stack=True),
    case("stack_bidi_time_major_seqlen_init", [C("gru", 4), C("basic_lstm", 3)],
         bw=[C("basic_lstm", 5), C("gru_ra", 4)], time_major=True, seq_len=[3, 5, 1], init=True, stack=True),
    case("stack_bidi_residual_seqlen_init", [C("lstm", 3), C("gru", 6, residual=True)],
         bw=[C("basic_rnn", 3), C("gru_ra", 6, residual=True)], B=4, seq_len=[5, 2, 0, 4], init=True,
         stack=True),
    case("stack_bidi_dropout_seqlen_init",
         [V("lstm", 5, use_peepholes=True, input_keep_prob=0.7, output_keep_prob=0.8, state_keep_prob=0.7),
          V("gru", 4, input_keep_prob=0.75, output_keep_prob=0.6, state_keep_prob=0.65)],
         bw=[V("gru_ra", 4, input_keep_prob=0.8, output_keep_prob=0.7, state_keep_prob=0.6),
             V("basic_lstm", 4, input_keep_prob=0.7, output_keep_prob=0.75, state_keep_prob=0.7)],
         B=4, seq_len=[5, 2, 0, 4], init=True, dropout_seed=0x5EED0001, stack=True),
    case("stack_bidi_f64_gru_ra_seqlen_init", [C("gru", 4), C("gru_ra", 5)], bw=[C("gru_ra", 3), C("gru", 4)],
         seq_len=[4, 5, 0], init=True, dtype="float64", stack=True),
    case("stack_bidi_seqlen_all_zero_init", [C("lstm", 4), C("gru", 3)], bw=[C("gru", 3), C("basic_rnn", 4)],
         seq_len=[0, 0, 0], init=True, stack=True),
    case("stack_bidi_t1_b1", [C("basic_lstm", 3), C("gru", 2)], bw=[C("basic_rnn", 3), C("lstm", 4, num_proj=2)],
         T=1, B=1, D=2, stack=True),
    case("stack_bidi_one_layer_b1_seqlen_init", C("lstm", 4, num_proj=2), bw=C("gru_ra", 3), B=1, seq_len=[3],
         init=True, stack=True),
]


# ---------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------

def is_lstm(spec):
    return spec["kind"] in ("basic_lstm", "lstm")


def h_width(spec):
    if spec["kind"] == "lstm" and spec["num_proj"] is not None:
        return spec["num_proj"]
    return spec["units"]


def make_keras_gru_ra(spec, act, dtype):
    cell = tf_keras.layers.GRUCell(spec["units"], activation=act, recurrent_activation="sigmoid",
                                   use_bias=True, reset_after=True, dtype=dtype)
    units = spec["units"]
    # For MultiRNNCell.zero_state (see the module docstring).
    cell.zero_state = lambda batch_size, dt: tf.zeros([batch_size, units], dtype=dt)
    # Variable names by the calling variable scope (see the module docstring).
    keras_build = cell.build

    def build(input_shape):
        scope = tf.compat.v1.get_variable_scope().name
        with tf.name_scope((scope + "/" if scope else "") + "gru_cell/"):
            keras_build(input_shape)

    cell.build = build
    return cell


def make_cell(spec, dtype):
    act = {"tanh": tf.math.tanh, "relu": tf.nn.relu}[spec["activation"]]
    k = spec["kind"]
    if k == "gru_ra":
        return make_keras_gru_ra(spec, act, dtype)
    if k == "basic_rnn":
        return rnn_cell.BasicRNNCell(spec["units"], activation=act)
    if k == "basic_lstm":
        return rnn_cell.BasicLSTMCell(spec["units"], forget_bias=spec["forget_bias"],
                                      state_is_tuple=True, activation=act)
    if k == "lstm":
        return rnn_cell.LSTMCell(spec["units"], use_peepholes=spec["use_peepholes"],
                                 cell_clip=spec["cell_clip"], num_proj=spec["num_proj"],
                                 proj_clip=spec["proj_clip"], forget_bias=spec["forget_bias"],
                                 state_is_tuple=True, activation=act)
    if k == "gru":
        return rnn_cell.GRUCell(spec["units"], activation=act)
    raise ValueError(k)


class KerasCellResidualWrapper(rnn_cell.ResidualWrapper):
    """ResidualWrapper around a Keras cell (gru_ra), see the module docstring."""

    def __call__(self, inputs, state, scope=None):
        assert scope is None, scope  # dynamic_rnn and MultiRNNCell call cells without one
        return self._call_wrapped_cell(inputs, state, cell_call_fn=self.cell.__call__)


class KerasCellDropoutWrapper(rnn_cell.DropoutWrapper):
    """DropoutWrapper around a Keras cell (gru_ra): same quirk as KerasCellResidualWrapper."""

    def __call__(self, inputs, state, scope=None):
        assert scope is None, scope  # dynamic_rnn, MultiRNNCell and ResidualWrapper pass none
        return self._call_wrapped_cell(inputs, state, cell_call_fn=self.cell.__call__)


def residual_wrapper(spec, cell):
    if spec["kind"] == "gru_ra" and not has_dropout_wrapper(spec):
        return KerasCellResidualWrapper(cell)
    # Around a DropoutWrapper (a v1 wrapper that takes the `scope` keyword) the plain one works.
    return rnn_cell.ResidualWrapper(cell)


# ---------------------------------------------------------------------------
# Dropout masks: include/dynrnn/dropout_mask.h's contract
# ---------------------------------------------------------------------------

M32 = 0xFFFFFFFF


def philox4x32_10(counter, key):
    """Random123's Philox4x32-10: counter (4 words), key (2 words) -> 4 words."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for r in range(10):
        if r:
            k0 = (k0 + 0x9E3779B9) & M32
            k1 = (k1 + 0xBB67AE85) & M32
        p0 = 0xD2511F53 * c0
        p1 = 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & M32, (p0 >> 32) ^ c3 ^ k1, p0 & M32
    return (c0, c1, c2, c3)


# Random123's known-answer vectors (kat_vectors, philox4x32 10): counter, key -> output.
PHILOX_KAT = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
    ((0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff), (0xffffffff, 0xffffffff),
     (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
    ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
     (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1)),
]


def check_philox():
    for counter, key, want in PHILOX_KAT:
        got = philox4x32_10(counter, key)
        if got != want:
            raise RuntimeError("Philox4x32-10 known-answer test failed: %s %s -> %s, want %s" % (
                ["%08x" % w for w in counter], ["%08x" % w for w in key], ["%08x" % w for w in got],
                ["%08x" % w for w in want]))


SITE_INPUT, SITE_OUTPUT, SITE_STATE = 0, 1, 2
SITE_NAMES = ("input", "output", "state")


def dropout_stream(direction, layer, site):
    """direction 0 fw / 1 bw; site 0 the cell's input, 1 its output: 4 * layer + 2 * direction + site;
    site 2 its new state's h: 0x80000000 | (2 * layer + direction)."""
    if site == SITE_STATE:
        return (0x80000000 | (2 * layer + direction)) & M32
    assert site in (SITE_INPUT, SITE_OUTPUT), site
    return (4 * layer + 2 * direction + site) & M32


def uniform(seed, stream, step, row, col):
    """dynrnn's u in [0, 1), a multiple of 2^-24 (exact in float32 and float64)."""
    w = philox4x32_10((col & M32, row & M32, step & M32, stream), (seed & M32, (seed >> 32) & M32))
    return (w[0] >> 8) * 2.0 ** -24


def variational_noise(seed, direction, layer, site, width):
    """The [1, width] noise of a variational_recurrent site: counter (j, 0, 0, stream)."""
    st = dropout_stream(direction, layer, site)
    return np.array([[uniform(seed, st, 0, 0, j) for j in range(width)]], dtype=np.float64)


def mask_of(keep, noise, np_dtype):
    """floor(keep + u) as TF computes it: keep converted to the noise's dtype."""
    return np.floor(np_dtype(keep) + noise.astype(np_dtype))


def has_dropout_wrapper(spec):
    return (spec["input_keep_prob"] < 1.0 or spec["output_keep_prob"] < 1.0 or spec["state_keep_prob"] < 1.0
            or spec["variational_recurrent"])


def dropout_wrapper(spec, cell, in_width, dtype, np_dtype, seed, direction, layer, injected, unused, tag):
    """DropoutWrapper(cell) whose input / output / state noise is dynrnn's (see the module docstring).
    Appends (tag, constant, keep, mask) of every replaced noise to injected, (tag, constant) of the
    LSTMStateTuple c noise (replaced by zeros; the default state filter never drops c) to unused."""
    cls = KerasCellDropoutWrapper if spec["kind"] == "gru_ra" else rnn_cell.DropoutWrapper
    assert spec["variational_recurrent"]  # C(...) rejects the rest
    w = cls(cell, input_keep_prob=spec["keep_args"][SITE_INPUT], output_keep_prob=spec["keep_args"][SITE_OUTPUT],
            state_keep_prob=spec["keep_args"][SITE_STATE], variational_recurrent=True, input_size=in_width,
            dtype=dtype)
    # TF keeps float32(keep) as a Python float, whatever the dtype; that is what the cell line records.
    for attr, want in (("_input_keep_prob", spec["input_keep_prob"]), ("_output_keep_prob", spec["output_keep_prob"]),
                       ("_state_keep_prob", spec["state_keep_prob"])):
        got = getattr(w, attr)
        if not isinstance(got, float) or got != want:
            raise RuntimeError("%s: DropoutWrapper.%s is %r, expected %r" % (tag, attr, got, want))
    d = "fw" if direction == 0 else "bw"

    def dynrnn_noise(site, width, keep):
        noise = variational_noise(seed, direction, layer, site, width)
        # floor(keep + u) must not depend on TF's rounding of keep to float32 (see the module docstring).
        if not np.array_equal(mask_of(keep, noise, np_dtype), mask_of(spec["keep_args"][site], noise, np.float64)):
            raise RuntimeError("%s site %d: float32(keep) and keep give different masks" % (tag, site))
        const = tf.constant(noise.astype(np_dtype), dtype=dtype, name="dynrnn_noise_%s_%d_%d" % (d, layer, site))
        if keep < 1.0:
            injected.append(("%s/%d/%s" % (d, layer, SITE_NAMES[site]), const, keep, mask_of(keep, noise, np_dtype)))
        return const

    def check_noise(tf_noise, attr, width):
        if not isinstance(tf_noise, tf.Tensor) or tf_noise.shape.as_list() != [1, width]:
            raise RuntimeError("%s: DropoutWrapper.%s is %r, expected a [1, %d] tensor" % (tag, attr, tf_noise, width))

    for site, attr, width, keep in ((SITE_INPUT, "_recurrent_input_noise", in_width, spec["input_keep_prob"]),
                                    (SITE_OUTPUT, "_recurrent_output_noise", h_width(spec), spec["output_keep_prob"])):
        tf_noise = getattr(w, attr)
        if keep < 1.0:
            check_noise(tf_noise, attr, width)
        if tf_noise is None:
            continue
        setattr(w, attr, dynrnn_noise(site, width, keep))
    # The state noise: TF draws one [1, width] tensor per leaf of cell.state_size, an LSTMStateTuple
    # (c, h) for the LSTMs, a single tensor (h) for BasicRNN, GRU and the Keras GRUCell. Replaced only
    # when state_keep_prob < 1 (with keep 1 TF never reads it): h by dynrnn's draws, an LSTM's c by
    # zeros that must not feed anything (checked by check_dropout_graph).
    keep = spec["state_keep_prob"]
    if keep < 1.0:
        attr = "_recurrent_state_noise"
        tf_noise = getattr(w, attr)
        if is_lstm(spec):
            if not isinstance(tf_noise, rnn_cell.LSTMStateTuple):
                raise RuntimeError("%s: DropoutWrapper.%s is %r, expected an LSTMStateTuple" % (tag, attr, tf_noise))
            check_noise(tf_noise.c, attr + ".c", spec["units"])
            check_noise(tf_noise.h, attr + ".h", h_width(spec))
            c_const = tf.constant(np.zeros([1, spec["units"]], dtype=np_dtype), dtype=dtype,
                                  name="dynrnn_unused_noise_%s_%d_c" % (d, layer))
            unused.append(("%s/%d/state.c" % (d, layer), c_const))
            setattr(w, attr, rnn_cell.LSTMStateTuple(c_const, dynrnn_noise(SITE_STATE, h_width(spec), keep)))
        else:
            check_noise(tf_noise, attr, h_width(spec))
            setattr(w, attr, dynrnn_noise(SITE_STATE, h_width(spec), keep))
    return w


def make_layer_cells(specs, d, dtype, keras_cells, in_widths, seed=0, np_dtype=None, injected=None, unused=None):
    """The (wrapped) cells of direction d, layer by layer; layer l's input has width in_widths[l]. Appends
    (d, layer, cell) of Keras cells to keras_cells, (tag, noise constant, keep, mask) of injected dropout
    noise to injected, (tag, constant) of noise that must stay unused (an LSTM's c state noise) to unused."""
    cells = [make_cell(s, dtype) for s in specs]
    for layer, (s, cell) in enumerate(zip(specs, cells)):
        if s["kind"] == "gru_ra":
            keras_cells.append((d, layer, cell))
    direction = 0 if d == "fw" else 1
    wrapped = []
    for layer, (s, cell) in enumerate(zip(specs, cells)):
        if has_dropout_wrapper(s):
            cell = dropout_wrapper(s, cell, in_widths[layer], dtype, np_dtype, seed, direction, layer, injected,
                                   unused, "%s/%d" % (d, layer))
        if s["residual"]:
            cell = residual_wrapper(s, cell)
        wrapped.append(cell)
    return wrapped


def make_stack(specs, d, dtype, keras_cells, D=None, seed=0, np_dtype=None, injected=None, unused=None):
    """The cell (or MultiRNNCell) of direction d (see make_layer_cells)."""
    in_widths = [D] + [h_width(s) for s in specs[:-1]]
    cells = make_layer_cells(specs, d, dtype, keras_cells, in_widths, seed, np_dtype, injected, unused)
    if len(cells) == 1:
        return cells[0]
    return rnn_cell.MultiRNNCell(cells, state_is_tuple=True)


def stack_in_widths(fw, bw, D):
    """Input widths of the layers of stack_bidirectional_dynamic_rnn: D, then the previous layer's
    concat width O_fw(l-1) + O_bw(l-1) (the same for both directions)."""
    return [D] + [h_width(f) + h_width(b) for f, b in zip(fw[:-1], bw[:-1])]


def stack_bidirectional_dynamic_rnn(cells_fw, cells_bw, inputs, initial_states_fw=None, initial_states_bw=None,
                                    dtype=None, sequence_length=None, parallel_iterations=None,
                                    time_major=False, scope=None, swap_memory=False):
    """tf.contrib.rnn.stack_bidirectional_dynamic_rnn, transcribed from TF 1.x
    tensorflow/contrib/rnn/python/ops/rnn.py (contrib is gone from TF 2); the bidirectional layers are
    TF's own tf.compat.v1.nn.bidirectional_dynamic_rnn. Returns (concatenated top output,
    tuple(states_fw), tuple(states_bw))."""
    if not cells_fw:
        raise ValueError("Must specify at least one fw cell for BidirectionalRNN.")
    if not cells_bw:
        raise ValueError("Must specify at least one bw cell for BidirectionalRNN.")
    if len(cells_fw) != len(cells_bw):
        raise ValueError("Forward and Backward cells must have the same depth.")
    states_fw = []
    states_bw = []
    prev_layer = inputs
    with tf.compat.v1.variable_scope(scope or "stack_bidirectional_rnn"):
        for i, (cell_fw, cell_bw) in enumerate(zip(cells_fw, cells_bw)):
            initial_state_fw = None
            initial_state_bw = None
            if initial_states_fw:
                initial_state_fw = initial_states_fw[i]
            if initial_states_bw:
                initial_state_bw = initial_states_bw[i]
            with tf.compat.v1.variable_scope("cell_%d" % i):
                outputs, (state_fw, state_bw) = tf.compat.v1.nn.bidirectional_dynamic_rnn(
                    cell_fw, cell_bw, prev_layer, initial_state_fw=initial_state_fw,
                    initial_state_bw=initial_state_bw, sequence_length=sequence_length,
                    parallel_iterations=parallel_iterations, dtype=dtype, swap_memory=swap_memory,
                    time_major=time_major)
                # Concat the outputs to create the new input.
                prev_layer = tf.concat(outputs, 2)
            states_fw.append(state_fw)
            states_bw.append(state_bw)
    return prev_layer, tuple(states_fw), tuple(states_bw)


RANDOM_OP_TYPES = ("RandomUniform", "RandomUniformInt", "RandomStandardNormal", "TruncatedNormal",
                   "StatelessRandomUniformV2", "StatelessRandomUniform")


def ancestor_ops(tensors):
    """Every op any of tensors depends on (inputs and control inputs, through v1 loops' back edges)."""
    seen = set()
    stack = [t.op for t in tensors]
    while stack:
        op = stack.pop()
        if op in seen:
            continue
        seen.add(op)
        stack.extend(i.op for i in op.inputs)
        stack.extend(op.control_inputs)
    return seen


def check_dropout_graph(name, fetched, injected, unused=()):
    """No random op feeds the fetched tensors; every injected noise with keep < 1 does; no noise in
    unused (an LSTM's c state noise: the default dropout_state_filter_visitor never drops c) does."""
    anc = ancestor_ops(fetched)
    for tag, const in unused:
        if const.op in anc:
            raise RuntimeError("%s: the noise %s (%s) feeds the fetched tensors" % (name, tag, const.op.name))
    rnd = sorted(op.name for op in anc if op.type in RANDOM_OP_TYPES or "Random" in op.type)
    if rnd:
        raise RuntimeError("%s: random ops feed the fetched tensors: %s" % (name, rnd))
    for tag, const, keep, mask in injected:
        if const.op not in anc:
            raise RuntimeError("%s: the injected noise %s (%s) is not used" % (name, tag, const.op.name))
        if mask.size >= 2 and (mask.min() != 0 or mask.max() != 1):
            raise RuntimeError("%s: mask %s = %s drops all or nothing; choose another dropout_seed" % (
                name, tag, mask.ravel().tolist()))


def fmt_num(v):
    return "%g" % v if float(v) != int(v) else "%d" % int(v)


def cell_line(d, layer, s):
    parts = ["cell", d, str(layer), "kind=" + s["kind"], "units=%d" % s["units"],
             "activation=" + s["activation"]]
    if is_lstm(s):
        parts.append("forget_bias=" + fmt_num(s["forget_bias"]))
    if s["kind"] == "lstm":
        parts.append("use_peepholes=%d" % int(bool(s["use_peepholes"])))
        if s["cell_clip"] is not None:
            parts.append("cell_clip=" + fmt_num(s["cell_clip"]))
        if s["num_proj"] is not None:
            parts.append("num_proj=%d" % s["num_proj"])
        if s["proj_clip"] is not None:
            parts.append("proj_clip=" + fmt_num(s["proj_clip"]))
    if s["residual"]:
        parts.append("residual=1")
    if s["input_keep_prob"] != 1.0:
        parts.append("input_keep_prob=%.17g" % s["input_keep_prob"])
    if s["output_keep_prob"] != 1.0:
        parts.append("output_keep_prob=%.17g" % s["output_keep_prob"])
    if s["state_keep_prob"] != 1.0:
        parts.append("state_keep_prob=%.17g" % s["state_keep_prob"])
    if s["variational_recurrent"]:
        parts.append("variational_recurrent=1")
    return " ".join(parts)


CELL_SCOPE_RE = re.compile(r"(?:^|/)(basic_rnn_cell|basic_lstm_cell|lstm_cell|gru_cell)/(.+)$")
SCOPE_KIND = {"basic_rnn_cell": "basic_rnn", "basic_lstm_cell": "basic_lstm", "lstm_cell": "lstm",
              "gru_cell": "gru"}
EXPECTED_WEIGHTS = {
    "basic_rnn": ["kernel", "bias"],
    "basic_lstm": ["kernel", "bias"],
    "gru": ["gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias"],
    "gru_ra": ["kernel", "recurrent_kernel", "bias"],
}
# A Keras GRUCell's variable, built by make_keras_gru_ra: <variable scope>/gru_cell/<local>.
KERAS_GRU_RE = re.compile(r"(?:^|/)gru_cell/(kernel|recurrent_kernel|bias)$")


def keras_weight_names(keras_cells):
    """TF variable name (without :0) -> fixture name d/l/<local> for the Keras cells, by identity."""
    out = {}
    for d, layer, cell in keras_cells:
        for local, v in (("kernel", cell.kernel), ("recurrent_kernel", cell.recurrent_kernel), ("bias", cell.bias)):
            name = v.name.split(":")[0]
            m = KERAS_GRU_RE.search(name)
            if not m or m.group(1) != local:
                raise RuntimeError("unexpected Keras variable name %s for %s" % (name, local))
            out[name] = "%s/%d/%s" % (d, layer, local)
    return out


# The variable scope a cell kind names its variables in (gru_ra: by make_keras_gru_ra).
KIND_SCOPE = {"basic_rnn": "basic_rnn_cell", "basic_lstm": "basic_lstm_cell", "lstm": "lstm_cell", "gru": "gru_cell",
              "gru_ra": "gru_cell"}


def stack_tf_name(d, layer, spec, local):
    """The TF variable name of weight `local` of layer `layer`, direction d, of a stack=True case:
    stack_bidirectional_dynamic_rnn's scopes stack_bidirectional_rnn/cell_<l>/, then
    bidirectional_dynamic_rnn's bidirectional_rnn/<fw|bw>/, then the (single, unwrapped) cell's own."""
    return "stack_bidirectional_rnn/cell_%d/bidirectional_rnn/%s/%s/%s" % (layer, d, KIND_SCOPE[spec["kind"]], local)


def expected_weights(spec):
    if spec["kind"] != "lstm":
        return EXPECTED_WEIGHTS[spec["kind"]]
    w = ["kernel", "bias"]
    if spec["use_peepholes"]:
        w += ["w_f_diag", "w_i_diag", "w_o_diag"]
    if spec["num_proj"] is not None:
        w += ["projection/kernel"]
    return w


def fixture_weight_name(var_name, c, keras_names):
    """TF variable name -> fixture name d/l/<suffix>."""
    name = var_name.split(":")[0]
    if name in keras_names:
        return keras_names[name], name
    d = "bw" if "bidirectional_rnn/bw/" in name else "fw"
    m = re.search(r"/cell_(\d+)/", name)
    layer = int(m.group(1)) if m else 0
    m2 = CELL_SCOPE_RE.search(name)
    if not m2:
        raise RuntimeError("unexpected variable name %s" % name)
    spec = (c["bw"] if d == "bw" else c["fw"])[layer]
    if SCOPE_KIND[m2.group(1)] != spec["kind"]:
        raise RuntimeError("variable %s does not match cell kind %s" % (name, spec["kind"]))
    return "%s/%d/%s" % (d, layer, m2.group(2)), name


def state_leaves(d, specs):
    """[(fixture leaf suffix 'd/l/c', width)] in nest.flatten order."""
    out = []
    for l, s in enumerate(specs):
        if is_lstm(s):
            out.append(("%s/%d/c" % (d, l), s["units"]))
        out.append(("%s/%d/h" % (d, l), h_width(s)))
    return out


def pack_state(specs, leaves):
    """Flat list of tensors -> nested state for a plain cell or MultiRNNCell."""
    it = iter(leaves)
    states = []
    for s in specs:
        if is_lstm(s):
            c = next(it)
            h = next(it)
            states.append(rnn_cell.LSTMStateTuple(c, h))
        else:
            states.append(next(it))
    return states[0] if len(specs) == 1 else tuple(states)


def per_layer(specs, state):
    """A plain cell's or MultiRNNCell's state -> [state of layer 0, ...]."""
    return [state] if len(specs) == 1 else list(state)


def flatten_state(specs, state):
    out = []
    for s, st in zip(specs, per_layer(specs, state)):
        if is_lstm(s):
            out += [st.c, st.h]
        else:
            out.append(st)
    return out


def run_case(c):
    np_dtype = np.float32 if c["dtype"] == "float32" else np.float64
    tf_dtype = tf.float32 if c["dtype"] == "float32" else tf.float64
    seed = 1000 + sum((i + 1) * ord(ch) for i, ch in enumerate(c["name"])) % 100000
    rng = np.random.RandomState(seed)
    T, B, D = c["T"], c["B"], c["D"]
    tm = c["time_major"]
    dirs = [("fw", c["fw"])] + ([("bw", c["bw"])] if c["bw"] else [])
    bidi = c["bw"] is not None
    stacked = c["stack"]

    def U(shape, lo, hi):
        return rng.uniform(lo, hi, size=shape).astype(np_dtype)

    x_shape = [T, B, D] if tm else [B, T, D]
    x_val = U(x_shape, -1.0, 1.0)
    init_vals = {}
    if c["init"]:
        for d, specs in dirs:
            for leaf, w in state_leaves(d, specs):
                init_vals[leaf] = U([B, w], -0.8, 0.8)

    if c["cf2"]:
        tf.compat.v1.enable_control_flow_v2()
        tf.compat.v1.enable_resource_variables()
    else:
        tf.compat.v1.disable_control_flow_v2()
        tf.compat.v1.disable_resource_variables()
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf_dtype, x_shape, name="x")
        seq = None
        if c["seq_len"] is not None:
            seq = tf.constant(np.array(c["seq_len"], dtype=np.int32), name="seq_len")
        init_ph = {}
        init_states = {}
        for d, specs in dirs:
            if c["init"]:
                leaves = []
                for leaf, w in state_leaves(d, specs):
                    ph = tf.compat.v1.placeholder(tf_dtype, [B, w], name="init_" + leaf.replace("/", "_"))
                    init_ph[leaf] = ph
                    leaves.append(ph)
                if stacked:
                    # initial_states_fw / _bw: one state per layer.
                    init_states[d] = per_layer(specs, pack_state(specs, leaves))
                else:
                    init_states[d] = pack_state(specs, leaves)
            else:
                init_states[d] = None
        keras_cells = []  # (dir, layer, cell) of the gru_ra cells
        injected = []  # (tag, constant, keep, mask) of the dropout noise
        unused = []  # (tag, constant) of noise that must not be used (LSTM c state noise)
        dropout = any(has_dropout_wrapper(s) for _, specs in dirs for s in specs)
        if dropout:
            assert not c["cf2"], c["name"]
        stack_args = dict(D=D, seed=c["dropout_seed"], np_dtype=np_dtype, injected=injected, unused=unused)
        if stacked:
            in_widths = stack_in_widths(c["fw"], c["bw"], D)
            layer_args = dict(seed=c["dropout_seed"], np_dtype=np_dtype, injected=injected, unused=unused)
            out_cat, st_fw, st_bw = stack_bidirectional_dynamic_rnn(
                make_layer_cells(c["fw"], "fw", tf_dtype, keras_cells, in_widths, **layer_args),
                make_layer_cells(c["bw"], "bw", tf_dtype, keras_cells, in_widths, **layer_args),
                x, initial_states_fw=init_states["fw"], initial_states_bw=init_states["bw"],
                dtype=tf_dtype, sequence_length=seq, time_major=tm)
            o_fw = h_width(c["fw"][-1])
            assert out_cat.shape.as_list() == (x_shape[:2] + [o_fw + h_width(c["bw"][-1])]), c["name"]
            # out/fw, out/bw: the two column blocks of the concatenated output.
            outs = {"fw": out_cat[:, :, :o_fw], "bw": out_cat[:, :, o_fw:]}
            # tuple(states_fw): one state per layer, a 1-tuple too.
            assert len(st_fw) == len(c["fw"]) and len(st_bw) == len(c["bw"]), c["name"]
            finals = {"fw": st_fw if len(c["fw"]) > 1 else st_fw[0], "bw": st_bw if len(c["bw"]) > 1 else st_bw[0]}
        elif bidi:
            (out_fw, out_bw), (st_fw, st_bw) = tf.compat.v1.nn.bidirectional_dynamic_rnn(
                make_stack(c["fw"], "fw", tf_dtype, keras_cells, **stack_args),
                make_stack(c["bw"], "bw", tf_dtype, keras_cells, **stack_args),
                x, sequence_length=seq,
                initial_state_fw=init_states["fw"], initial_state_bw=init_states["bw"],
                dtype=tf_dtype, time_major=tm)
            outs = {"fw": out_fw, "bw": out_bw}
            finals = {"fw": st_fw, "bw": st_bw}
        else:
            out_fw, st_fw = tf.compat.v1.nn.dynamic_rnn(
                make_stack(c["fw"], "fw", tf_dtype, keras_cells, **stack_args), x, sequence_length=seq,
                initial_state=init_states["fw"],
                dtype=tf_dtype, time_major=tm)
            outs = {"fw": out_fw}
            finals = {"fw": st_fw}

        final_leaves = []  # (fixture suffix, tensor)
        for d, specs in dirs:
            names = [n for n, _ in state_leaves(d, specs)]
            final_leaves += list(zip(names, flatten_state(specs, finals[d])))

        # Trainable variables -> fixture names.
        tvars = tf.compat.v1.trainable_variables()
        keras_names = keras_weight_names(keras_cells)
        wnames = []
        tfnames = []
        for v in tvars:
            fname, tname = fixture_weight_name(v.name, c, keras_names)
            wnames.append(fname)
            tfnames.append(tname)
        expect = sorted("%s/%d/%s" % (d, l, w) for d, specs in dirs for l, s in enumerate(specs)
                        for w in expected_weights(s))
        if sorted(wnames) != expect:
            raise RuntimeError("%s: variables %s, expected %s" % (c["name"], sorted(wnames), expect))
        if stacked:
            # The names the library gives its parameters (stack_tf_name).
            for fname, tname in zip(wnames, tfnames):
                d, l, local = fname.split("/", 2)
                want = stack_tf_name(d, int(l), dict(dirs)[d][int(l)], local)
                if tname != want:
                    raise RuntimeError("%s: TF variable %s for %s, expected %s" % (c["name"], tname, fname, want))
        w_vals = [U(v.shape.as_list(), -0.6, 0.6) for v in tvars]

        # Loss = upstream gradients dotted with outputs and final states.
        dout_vals = {}
        loss = tf.constant(0.0, dtype=tf_dtype)
        for d, _ in dirs:
            shp = outs[d].shape.as_list()
            assert None not in shp, (c["name"], shp)
            dout_vals[d] = U(shp, -1.0, 1.0)
            if not stacked:
                loss = loss + tf.reduce_sum(outs[d] * tf.constant(dout_vals[d]))
        if stacked:
            # The upstream gradient of the concatenated output: concat(dout/fw, dout/bw).
            loss = loss + tf.reduce_sum(out_cat * tf.constant(np.concatenate([dout_vals["fw"], dout_vals["bw"]],
                                                                               axis=2)))
        dfinal_vals = {}
        for leaf, t in final_leaves:
            shp = t.shape.as_list()
            assert None not in shp, (c["name"], leaf, shp)
            dfinal_vals[leaf] = U(shp, -1.0, 1.0)
            loss = loss + tf.reduce_sum(t * tf.constant(dfinal_vals[leaf]))

        init_order = [leaf for d, specs in dirs for leaf, _ in state_leaves(d, specs)] if c["init"] else []
        wrt = [x] + [init_ph[k] for k in init_order] + list(tvars)
        grads = tf.gradients(loss, wrt)
        grads = [gr if gr is not None else tf.zeros_like(w) for gr, w in zip(grads, wrt)]
        if dropout:
            check_dropout_graph(c["name"], [outs[d] for d, _ in dirs] + [t for _, t in final_leaves] + grads,
                                injected, unused)
            if not injected:
                raise RuntimeError("%s: dropout wrappers but no keep probability below 1" % c["name"])

        with tf.compat.v1.Session(graph=g, config=tf.compat.v1.ConfigProto(
                intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)) as sess:
            for v, val in zip(tvars, w_vals):
                v.load(val, sess)
            feed = {x: x_val}
            for k, ph in init_ph.items():
                feed[ph] = init_vals[k]
            fetch = {
                "out": {d: outs[d] for d, _ in dirs},
                "final": {leaf: t for leaf, t in final_leaves},
                "grads": grads,
            }
            res = sess.run(fetch, feed_dict=feed)

    # ---- assemble fixture ------------------------------------------------
    tensors = []  # (name, array, is_int)
    tensors.append(("x", x_val, False))
    if c["seq_len"] is not None:
        tensors.append(("seq_len", np.array(c["seq_len"], dtype=np.int64), True))
    for wn, val in zip(wnames, w_vals):
        tensors.append((wn, val, False))
    for k in init_order:
        tensors.append(("init/" + k, init_vals[k], False))
    for d, _ in dirs:
        tensors.append(("out/" + d, res["out"][d], False))
    for leaf, _ in final_leaves:
        tensors.append(("final/" + leaf, res["final"][leaf], False))
    for d, _ in dirs:
        tensors.append(("dout/" + d, dout_vals[d], False))
    for leaf, _ in final_leaves:
        tensors.append(("dfinal/" + leaf, dfinal_vals[leaf], False))
    gvals = res["grads"]
    tensors.append(("grad/x", gvals[0], False))
    for i, k in enumerate(init_order):
        tensors.append(("grad/init/" + k, gvals[1 + i], False))
    for i, wn in enumerate(wnames):
        tensors.append(("grad/" + wn, gvals[1 + len(init_order) + i], False))

    lines = ["# dynrnn golden fixture v1 (generated by tests/golden/generate.py, tensorflow-cpu %s)"
             % tf.__version__,
             "name " + c["name"],
             "dtype " + c["dtype"],
             "T %d" % T, "B %d" % B, "D %d" % D,
             "time_major %d" % int(tm),
             "bidirectional %d" % int(bidi)]
    if stacked:
        lines.append("stack_bidirectional 1")
    lines += ["has_seq_len %d" % int(c["seq_len"] is not None),
              "has_initial_state %d" % int(c["init"]),
              "layers_fw %d" % len(c["fw"]),
              "layers_bw %d" % (len(c["bw"]) if bidi else 0)]
    if c["dropout_seed"]:
        lines.append("dropout_seed %d" % c["dropout_seed"])
    for d, specs in dirs:
        for l, s in enumerate(specs):
            lines.append(cell_line(d, l, s))
    for wn, tn in zip(wnames, tfnames):
        lines.append("tfname %s %s" % (wn, tn))
    lines += tensor_lines(c["name"], c["dtype"], np_dtype, tensors)
    return "\n".join(lines) + "\n"


def tensor_lines(case_name, dtype, np_dtype, tensors):
    """The fixture lines of (name, array, is_int) tensors: "tensor <name> <ndim> <dims...>", then the
    values (integers, or floats with the digits that round-trip dtype)."""
    ffmt = "%.9g" if dtype == "float32" else "%.17g"
    lines = []
    for name, arr, is_int in tensors:
        arr = np.asarray(arr)
        if arr.dtype.kind == "f":
            assert arr.dtype == np_dtype, (case_name, name, arr.dtype)
        lines.append("tensor %s %d%s" % (name, arr.ndim, "".join(" %d" % s for s in arr.shape)))
        lines.append(" ".join(("%d" if is_int else ffmt) % v for v in arr.ravel().tolist()))
    return lines


def dropout_self_test():
    """TF's DropoutWrapper uses the injected noise as the module docstring says: a single-layer BasicRNN
    (tanh) and a BasicLSTM under DropoutWrapper(variational_recurrent=True) with dynrnn's noise equal a
    numpy recomputation of x / keep_in * mask_in -> the cell -> out = h / keep_out * mask_out, new state
    h / keep_state * mask_state (an LSTM's c undropped: its state noise is zeros, which would zero c if
    it were used), which the next step and the final state read; and other noise changes the outputs."""
    check_philox()
    for kind in ("basic_rnn", "basic_lstm"):
        for keep_state in (1.0, 0.65):
            dropout_self_test_case(kind, keep_state)


def dropout_self_test_case(kind, keep_state):
    T, B, D, H = 3, 2, 5, 6
    keep_in, keep_out = 0.6, 0.7
    lstm = kind == "basic_lstm"
    G = 4 * H if lstm else H
    seed = 0x1234567890ABCDEF
    rng = np.random.RandomState(4242)
    x_val = rng.uniform(-1, 1, size=(B, T, D)).astype(np.float32)
    k_val = rng.uniform(-0.6, 0.6, size=(D + H, G)).astype(np.float32)
    b_val = rng.uniform(-0.6, 0.6, size=(G,)).astype(np.float32)
    tf.compat.v1.disable_control_flow_v2()
    tf.compat.v1.disable_resource_variables()

    def run(noise_fn):
        g = tf.Graph()
        with g.as_default():
            x = tf.constant(x_val)
            inner = rnn_cell.BasicLSTMCell(H, state_is_tuple=True) if lstm else rnn_cell.BasicRNNCell(H)
            cell = rnn_cell.DropoutWrapper(inner, input_keep_prob=keep_in, output_keep_prob=keep_out,
                                           state_keep_prob=keep_state, variational_recurrent=True,
                                           input_size=D, dtype=tf.float32)
            assert cell._recurrent_input_noise.shape.as_list() == [1, D]
            assert cell._recurrent_output_noise.shape.as_list() == [1, H]
            cell._recurrent_input_noise = tf.constant(noise_fn(SITE_INPUT, D).astype(np.float32))
            cell._recurrent_output_noise = tf.constant(noise_fn(SITE_OUTPUT, H).astype(np.float32))
            state_noise = tf.constant(noise_fn(SITE_STATE, H).astype(np.float32))
            if lstm:
                assert isinstance(cell._recurrent_state_noise, rnn_cell.LSTMStateTuple)
                assert [n.shape.as_list() for n in cell._recurrent_state_noise] == [[1, H], [1, H]]
                cell._recurrent_state_noise = rnn_cell.LSTMStateTuple(tf.zeros([1, H]), state_noise)
            else:
                assert cell._recurrent_state_noise.shape.as_list() == [1, H]
                cell._recurrent_state_noise = state_noise
            out, st = tf.compat.v1.nn.dynamic_rnn(cell, x, dtype=tf.float32)
            if not lstm:
                st = rnn_cell.LSTMStateTuple(tf.zeros_like(st), st)
            names = sorted(v.name for v in tf.compat.v1.trainable_variables())
            assert names == ["rnn/%s_cell/bias:0" % kind, "rnn/%s_cell/kernel:0" % kind], names
            with tf.compat.v1.Session(graph=g) as sess:
                for v in tf.compat.v1.trainable_variables():
                    v.load(k_val if "kernel" in v.name else b_val, sess)
                return sess.run([out, st])

    def ours(site, width):
        return variational_noise(seed, 0, 0, site, width)

    out, (st_c, st_h) = run(ours)
    masks = [mask_of(k, ours(site, H if site else D), np.float32)[0].astype(np.float64)
             for site, k in ((SITE_INPUT, keep_in), (SITE_OUTPUT, keep_out), (SITE_STATE, keep_state))]
    m_in, m_out, m_state = masks
    assert 0 < m_in.sum() < D and 0 < m_out.sum() < H, (m_in, m_out)
    assert keep_state == 1.0 or 0 < m_state.sum() < H, m_state

    def sigmoid(v):
        return 1.0 / (1.0 + np.exp(-v))

    h = np.zeros((B, H))
    c = np.zeros((B, H))
    want = np.zeros((B, T, H))
    for t in range(T):
        xd = x_val[:, t, :].astype(np.float64) / float(np.float32(keep_in)) * m_in
        z = np.concatenate([xd, h], axis=1) @ k_val + b_val
        if lstm:
            i, j, f, o = np.split(z, 4, axis=1)
            c = c * sigmoid(f + 1.0) + sigmoid(i) * np.tanh(j)
            h = np.tanh(c) * sigmoid(o)
        else:
            h = np.tanh(z)
        want[:, t, :] = h / float(np.float32(keep_out)) * m_out
        if keep_state < 1.0:
            h = h / float(np.float32(keep_state)) * m_state
    err = max(np.abs(out - want).max(), np.abs(st_h - h).max(), np.abs(st_c - c).max() if lstm else 0.0)
    what = "dropout self-test (%s, state_keep_prob %g)" % (kind, keep_state)
    if not err < 1e-5:
        raise RuntimeError("%s: TF differs from numpy by %g\nTF %s\nnumpy %s" % (what, err, out, want))
    out2, _ = run(lambda site, width: 1.0 - 2.0 ** -24 - ours(site, width))
    if np.abs(out2 - out).max() < 1e-3:
        raise RuntimeError("%s: other noise leaves TF's outputs unchanged" % what)
    print("%s passed (TF vs numpy %.2g)" % (what, err), flush=True)


def selected_cases(all_cases, only, out):
    """The cases to write into out: those named in `only` (comma-separated), or all of them once the
    old fixture files there are removed."""
    names = [c["name"] for c in all_cases]
    assert len(names) == len(set(names)), "duplicate case names"
    os.makedirs(out, exist_ok=True)
    if not only:
        for f in glob.glob(os.path.join(out, "*.txt")):
            os.remove(f)
        return all_cases
    want = set(only.split(","))
    unknown = want - set(names)
    if unknown:
        sys.exit("unknown cases: %s" % sorted(unknown))
    return [c for c in all_cases if c["name"] in want]


def write_cases(cases, out, run):
    """Writes run(case), a fixture's text, to out/<name>.txt for each case."""
    for c in cases:
        text = run(c)
        with open(os.path.join(out, c["name"] + ".txt"), "w") as f:
            f.write(text)
        print("wrote %s" % c["name"], flush=True)
    print("%d cases" % len(cases))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(HERE, "data"))
    ap.add_argument("--only", default=None, help="comma-separated case names")
    args = ap.parse_args()
    cases = selected_cases(CASES, args.only, args.out)
    check_philox()
    if any(has_dropout_wrapper(s) for c in cases for s in c["fw"] + (c["bw"] or [])):
        dropout_self_test()
    write_cases(cases, args.out, run_case)


if __name__ == "__main__":
    main()
