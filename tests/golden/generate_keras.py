#!/usr/bin/env python3
"""Generate dynrnn's Keras-layer fixtures: tf.keras.layers.LSTM, GRU (reset_after False and True),
SimpleRNN and stacks of Bidirectional(..., merge_mode="concat"), run in TF2 eager mode with
tf.GradientTape, as a TF2 user runs them. tests/keras_layers_test.cpp converts the Keras weights
with dynrnn::keras_to_tf, runs dynrnn, converts the weight gradients back with tf_to_keras and
compares everything with these files.

How to re-run (from the repository root, Python 3.11, the same pins as generate.py):

    pip install -r tests/golden/requirements.txt
    TF_USE_LEGACY_KERAS=1 python3 tests/golden/generate_keras.py

Options: --out DIR (default tests/golden/data/keras), --only NAME[,NAME...]. Without --only, every
*.txt in the output directory is deleted first and all cases are rewritten. The output is
deterministic (fixed numpy seed per case, one thread, oneDNN disabled, Keras' name counters reset
per case).

The files live in their own directory: the dynamic_rnn suites read every *.txt of
tests/golden/data (golden::list_fixtures does not recurse) and must not see these.

Semantics (each asserted by this script on every case it writes)
----------------------------------------------------------------
* TF_USE_LEGACY_KERAS=1: tf.keras is tf_keras 2.18 (asserted).
* Layers are batch-major ([B, T, D]), return_sequences=True and return_state=True; the cell
  options are the defaults (recurrent_activation="sigmoid", use_bias=True, no dropout).
* Lengths: a right-padded mask, mask[b, t] = t < len[b], passed as the layers' `mask` argument
  (what Masking / Embedding(mask_zero=True) would propagate). At masked steps Keras carries the state
  through, as dynamic_rnn's sequence_length does. The outputs there are
  - 0 with zero_output_for_mask=True (a kwarg of Keras' RNN base layer), as in dynamic_rnn: the
    unidirectional cases set it, and Bidirectional forces it on both of its layers when they return
    sequences (asserted);
  - without it (tf_keras' default for a plain LSTM / GRU / SimpleRNN): the previous step's output
    repeated, i.e. row b's output at t >= len[b] is its output at len[b] - 1, and 0 for len 0.
    Asserted here on every masked unidirectional case (same weights, zero_output_for_mask=False);
    the valid outputs and the final states do not depend on it.
* Bidirectional: the backward layer is a copy of the layer with go_backwards=True. It reverses the
  whole (padded) sequence and its mask, so a row's padding comes first: masked steps carry the
  initial state through with zero outputs, then the valid steps run from len-1 down to 0, and the
  wrapper reverses the outputs back. That equals dynamic_rnn's ReverseSequence of the first len[b]
  steps of each row: asserted per Bidirectional layer against a go_backwards=False copy of the
  backward layer (same weights) run on tf.reverse_sequence(x, len) with the same right-padded mask
  and its outputs reversed back by tf.reverse_sequence.
  Stacked Bidirectional layers (return_sequences=True) read the concatenated outputs below (forward
  columns first, merge_mode="concat"): tf.contrib.rnn.stack_bidirectional_dynamic_rnn, dynrnn's
  RnnSpec::stack_bidirectional.
* return_sequences=False (with zero_output_for_mask at its default, False), checked on every case
  with the same weights: the output is the top layer's final h (Bidirectional: both directions',
  forward first), except that an empty row (length 0) gives 0 where its final state is the initial
  state. The fixtures hold return_sequences=True outputs and the final states.
* Initial states: layer(x, initial_state=[h, c]) (LSTM), [h] (GRU, SimpleRNN);
  Bidirectional(...)(x, initial_state=[forward states..., backward states...]). return_state gives
  the final states in the same order (LSTM h before c). The fixture names state leaves as dynrnn's
  state layout does ("fw/0/c", "fw/0/h", "bw/1/h"; c is an LSTM's cell state), so the order of the
  Keras lists does not matter to the reader.
* Gradients: tf.GradientTape of loss = sum(out * dout) + sum over final states of
  sum(final * dfinal), w.r.t. x, the initial states (tape.watch) and every trainable Keras weight
  (layer.trainable_weights: kernel, recurrent_kernel, bias of each layer and direction). dout is
  random everywhere: the outputs at masked steps are the constant 0, so its values there do not
  matter.

File format: text format v1 (tests/golden/fixture.h; written like generate.py's files, whose
helpers C(...), cell_line(...) and state_leaves(...) this script imports) with these differences:
    format keras                          marks a Keras fixture
    keras_layer <LSTM|GRU|SimpleRNN|Bidirectional>
    zero_output_for_mask 1                the layers' setting (always 1 here)
    cell <fw|bw> <layer> kind=... units=... activation=... [forget_bias=0 use_peepholes=0]
        keras_layer=<LSTM|GRU|SimpleRNN> [reset_after=0|1] recurrent_activation=sigmoid
        the first attributes: the equivalent dynamic_rnn cell, as generate.py writes it (LSTM:
        LSTMCell with forget_bias 0, GRU(reset_after=False): GRUCell, GRU(reset_after=True): gru_ra,
        SimpleRNN: BasicRNNCell); the keras_* ones: the Keras layer. A Bidirectional case has fw
        and bw lines per layer (Keras copies the layer's configuration to both directions) and
        "stack_bidirectional 1" (layers_fw == layers_bw = the number of Bidirectional layers).
    tfname <dir>/<layer>/<kernel|recurrent_kernel|bias> <Keras variable name>
    tensors: x [B, T, D]; seq_len [B] (has_seq_len 1); <dir>/<layer>/kernel, recurrent_kernel, bias
        (Keras shapes: LSTM [D, 4H], [H, 4H], [4H]; GRU [D, 3H], [H, 3H], [3H] or [2, 3H] with
        reset_after; SimpleRNN [D, H], [H, H], [H]); init/<leaf> [B, width] (has_initial_state 1);
        out/fw [B, T, H] (the layer's output) and, for Bidirectional, out/bw [B, T, H]: the forward
        and backward column blocks of the top layer's concatenated output (as generate.py's
        stack_bidirectional fixtures split it); final/<leaf>; dout/fw (dout/bw): the upstream
        gradient of the output, split the same way; dfinal/<leaf>; grad/x; grad/init/<leaf>;
        grad/<dir>/<layer>/<kernel|recurrent_kernel|bias>.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

# generate.py switches TF to v1 graph mode when imported; these cases run eagerly, as TF2 code does.
import generate as golden  # noqa: E402

tf.compat.v1.enable_v2_behavior()
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

keras = tf.keras


# ---------------------------------------------------------------------------
# Case description
# ---------------------------------------------------------------------------

def K(layer, units, activation="tanh", reset_after=None):
    """One Keras recurrent layer: "LSTM", "GRU" (reset_after True or False) or "SimpleRNN"."""
    assert layer in ("LSTM", "GRU", "SimpleRNN"), layer
    assert (reset_after is not None) == (layer == "GRU"), (layer, reset_after)
    kind = {"LSTM": "lstm", "SimpleRNN": "basic_rnn"}.get(layer) or ("gru_ra" if reset_after else "gru")
    # The equivalent dynamic_rnn cell: LSTM is an LSTMCell without a forget-bias constant.
    spec = golden.C(kind, units, activation=activation, forget_bias=0.0 if layer == "LSTM" else None)
    return dict(layer=layer, units=units, activation=activation, reset_after=reset_after, spec=spec)


def kcase(name, layers, bidirectional=False, T=5, B=3, D=4, seq_len=None, init=False, dtype="float32"):
    if isinstance(layers, dict):
        layers = [layers]
    assert bidirectional or len(layers) == 1, name
    if seq_len is not None:
        assert len(seq_len) == B and all(0 <= n <= T for n in seq_len), name
    return dict(name=name, layers=layers, bidirectional=bidirectional, T=T, B=B, D=D, seq_len=seq_len,
                init=init, dtype=dtype)


CASES = [
    kcase("keras_lstm_tanh_seqlen_init", K("LSTM", 5), B=4, D=3, seq_len=[5, 0, 3, 2], init=True),
    kcase("keras_lstm_relu", K("LSTM", 6, activation="relu")),
    kcase("keras_gru_seqlen", K("GRU", 5, reset_after=False), B=4, seq_len=[3, 5, 0, 1]),
    kcase("keras_gru_reset_after_init", K("GRU", 5, reset_after=True), init=True),
    kcase("keras_simple_rnn_relu_seqlen", K("SimpleRNN", 6, activation="relu"), B=4, seq_len=[2, 5, 4, 0]),
    kcase("keras_bidi_stack_lstm_gru_ra_seqlen_init", [K("LSTM", 4), K("GRU", 3, reset_after=True)],
          bidirectional=True, T=6, B=4, D=3, seq_len=[6, 2, 0, 4], init=True),
    kcase("keras_f64_bidi_gru_seqlen", K("GRU", 4, reset_after=False), bidirectional=True, B=3,
          seq_len=[5, 0, 3], dtype="float64"),
]


# ---------------------------------------------------------------------------
# Building and running
# ---------------------------------------------------------------------------

def make_layer(k, dtype, zero_output_for_mask=True, go_backwards=False, return_sequences=True):
    common = dict(return_sequences=return_sequences, return_state=True, zero_output_for_mask=zero_output_for_mask,
                  go_backwards=go_backwards, dtype=dtype, activation=k["activation"])
    if k["layer"] == "LSTM":
        return keras.layers.LSTM(k["units"], **common)
    if k["layer"] == "GRU":
        return keras.layers.GRU(k["units"], reset_after=k["reset_after"], **common)
    return keras.layers.SimpleRNN(k["units"], **common)


def keras_state_names(d, layer, k):
    """The fixture leaf names of a Keras layer's state list, in Keras' order: [h, c] for an LSTM."""
    if k["layer"] == "LSTM":
        return ["%s/%d/h" % (d, layer), "%s/%d/c" % (d, layer)]
    return ["%s/%d/h" % (d, layer)]


def cell_line(d, layer, k):
    """generate.py's cell line of the equivalent dynamic_rnn cell plus the Keras layer's attributes."""
    line = golden.cell_line(d, layer, k["spec"]) + " keras_layer=" + k["layer"]
    if k["layer"] == "GRU":
        line += " reset_after=%d" % int(k["reset_after"])
    return line + " recurrent_activation=sigmoid"


def check_close(what, got, want, tol):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    err = np.abs(got - want).max() if got.size else 0.0
    if got.shape != want.shape or not err <= tol:
        raise RuntimeError("%s: differs by %s (shapes %s, %s)" % (what, err, got.shape, want.shape))


def run_case(c):
    np_dtype = np.float32 if c["dtype"] == "float32" else np.float64
    # generate.py's per-case seed, so that a case's values depend on its name only.
    seed = 1000 + sum((i + 1) * ord(ch) for i, ch in enumerate(c["name"])) % 100000
    rng = np.random.RandomState(seed)
    keras.backend.clear_session()  # layer (and variable) names restart for every case
    keras.utils.set_random_seed(seed)  # the initializers' values are overwritten below anyway
    T, B, D = c["T"], c["B"], c["D"]
    bidi = c["bidirectional"]
    dirs = ["fw", "bw"] if bidi else ["fw"]
    layers = c["layers"]
    tol = 2e-6 if c["dtype"] == "float32" else 1e-13

    def U(shape, lo, hi):
        return rng.uniform(lo, hi, size=shape).astype(np_dtype)

    x_val = U([B, T, D], -1.0, 1.0)
    lens = c["seq_len"]
    mask = None if lens is None else tf.constant(np.arange(T)[None, :] < np.array(lens)[:, None])
    # State leaves in dynrnn's order (c before h), per direction and layer.
    leaves = [name for d in dirs for name, _ in golden.state_leaves(d, [k["spec"] for k in layers])]
    widths = dict((name, w) for d in dirs for name, w in golden.state_leaves(d, [k["spec"] for k in layers]))
    init_vals = dict((leaf, U([B, widths[leaf]], -0.8, 0.8)) for leaf in leaves) if c["init"] else {}

    # The layers; keras_layers[(d, l)] is the Keras layer that runs direction d of layer l.
    if bidi:
        model = [keras.layers.Bidirectional(make_layer(k, c["dtype"]), merge_mode="concat", dtype=c["dtype"])
                 for k in layers]
    else:
        model = [make_layer(layers[0], c["dtype"])]

    def run(inits):
        """The stack on x with the initial states `inits` ({leaf: tensor}); returns (out, {leaf: final})."""
        h = x
        finals = {}
        for l, layer in enumerate(model):
            names = [n for d in dirs for n in keras_state_names(d, l, layers[l])]
            kw = {}
            if mask is not None:
                kw["mask"] = mask
            if inits:
                kw["initial_state"] = [inits[n] for n in names]
            res = layer(h, **kw)
            h = res[0]
            assert len(res) == 1 + len(names), (c["name"], len(res))
            finals.update(zip(names, res[1:]))
        return h, finals

    x = tf.constant(x_val)
    inits = dict((n, tf.constant(v)) for n, v in init_vals.items())
    run(inits)  # builds the layers

    # The Keras weights, per direction and layer, in the fixture's order.
    keras_layers = {}
    for l, layer in enumerate(model):
        if bidi:
            keras_layers[("fw", l)], keras_layers[("bw", l)] = layer.forward_layer, layer.backward_layer
            assert layer.forward_layer.zero_output_for_mask and layer.backward_layer.zero_output_for_mask
            assert not layer.forward_layer.go_backwards and layer.backward_layer.go_backwards
        else:
            keras_layers[("fw", l)] = layer
            assert layer.zero_output_for_mask
    wnames, wvars = [], []
    for d in dirs:
        for l in range(len(layers)):
            cell = keras_layers[(d, l)].cell
            for local, v in (("kernel", cell.kernel), ("recurrent_kernel", cell.recurrent_kernel),
                             ("bias", cell.bias)):
                wnames.append("%s/%d/%s" % (d, l, local))
                wvars.append(v)
    trainable = [w for layer in model for w in layer.trainable_weights]
    if sorted(id(v) for v in trainable) != sorted(id(v) for v in wvars):
        raise RuntimeError("%s: trainable weights %s, expected %s" % (
            c["name"], [v.name for v in trainable], [v.name for v in wvars]))
    w_vals = [U(v.shape.as_list(), -0.6, 0.6) for v in wvars]
    for v, val in zip(wvars, w_vals):
        assert v.dtype == tf.as_dtype(np_dtype), (c["name"], v.name, v.dtype)
        v.assign(val)

    # Forward + gradients.
    out_w = sum(layers[-1]["units"] for _ in dirs)
    dout_val = U([B, T, out_w], -1.0, 1.0)
    dfinal_vals = dict((leaf, U([B, widths[leaf]], -1.0, 1.0)) for leaf in leaves)
    with tf.GradientTape() as tape:
        tape.watch(x)
        for t in inits.values():
            tape.watch(t)
        out, finals = run(inits)
        loss = tf.reduce_sum(out * dout_val)
        for leaf in leaves:
            loss += tf.reduce_sum(finals[leaf] * dfinal_vals[leaf])
    init_order = leaves if c["init"] else []
    wrt = [x] + [inits[n] for n in init_order] + wvars
    grads = tape.gradient(loss, wrt)
    grads = [np.zeros(w.shape, np_dtype) if gr is None else gr.numpy() for gr, w in zip(grads, wrt)]
    assert out.shape == (B, T, out_w), (c["name"], out.shape)
    assert out.dtype == tf.as_dtype(np_dtype), (c["name"], out.dtype)

    check_semantics(c, model, keras_layers, layers, x, mask, inits, out, finals, tol)

    # ---- assemble the fixture (generate.py's format) ----------------------
    tensors = [("x", x_val, False)]
    if lens is not None:
        tensors.append(("seq_len", np.array(lens, dtype=np.int64), True))
    tensors += [(n, v, False) for n, v in zip(wnames, w_vals)]
    tensors += [("init/" + n, init_vals[n], False) for n in init_order]
    # out/fw, out/bw (dout/...): the column blocks of the (concatenated) output, as generate.py's
    # stack_bidirectional fixtures hold them.
    o_fw = layers[-1]["units"]
    tensors.append(("out/fw", out.numpy()[:, :, :o_fw], False))
    if bidi:
        tensors.append(("out/bw", out.numpy()[:, :, o_fw:], False))
    tensors += [("final/" + n, finals[n].numpy(), False) for n in leaves]
    tensors.append(("dout/fw", dout_val[:, :, :o_fw], False))
    if bidi:
        tensors.append(("dout/bw", dout_val[:, :, o_fw:], False))
    tensors += [("dfinal/" + n, dfinal_vals[n], False) for n in leaves]
    tensors.append(("grad/x", grads[0], False))
    tensors += [("grad/init/" + n, grads[1 + i], False) for i, n in enumerate(init_order)]
    tensors += [("grad/" + n, grads[1 + len(init_order) + i], False) for i, n in enumerate(wnames)]

    top = "Bidirectional" if bidi else layers[0]["layer"]
    lines = ["# dynrnn golden fixture v1 (Keras layers; generated by tests/golden/generate_keras.py, "
             "tensorflow-cpu %s, tf-keras %s, eager mode)" % (tf.__version__, tf_keras.__version__),
             "# " + describe(c),
             "name " + c["name"],
             "format keras",
             "keras_layer " + top,
             "dtype " + c["dtype"],
             "T %d" % T, "B %d" % B, "D %d" % D,
             "time_major 0",
             "bidirectional %d" % int(bidi)]
    if bidi:
        lines.append("stack_bidirectional 1")
    lines += ["has_seq_len %d" % int(lens is not None),
              "has_initial_state %d" % int(c["init"]),
              "layers_fw %d" % len(layers),
              "layers_bw %d" % (len(layers) if bidi else 0),
              "zero_output_for_mask 1"]
    for d in dirs:
        for l, k in enumerate(layers):
            lines.append(cell_line(d, l, k))
    for n, v in zip(wnames, wvars):
        lines.append("tfname %s %s" % (n, v.name.split(":")[0]))
    lines += golden.tensor_lines(c["name"], c["dtype"], np_dtype, tensors)
    return "\n".join(lines) + "\n"


def describe(c):
    def one(k):
        args = ["%d" % k["units"]]
        if k["activation"] != "tanh":
            args.append("activation=%r" % k["activation"])
        if k["layer"] == "GRU":
            args.append("reset_after=%s" % k["reset_after"])
        return "%s(%s)" % (k["layer"], ", ".join(args))

    body = [("Bidirectional(%s)" % one(k)) if c["bidirectional"] else one(k) for k in c["layers"]]
    extra = []
    if c["seq_len"] is not None:
        extra.append("mask from lengths %s" % c["seq_len"])
    if c["init"]:
        extra.append("initial states")
    return " -> ".join(body) + ("; " + ", ".join(extra) if extra else "")


def check_last_output(c, model, layers, x, mask, inits, finals):
    """return_sequences=False (zero_output_for_mask at its default, False): the top layer's output is its
    final h, both directions' concatenated for Bidirectional (the backward layer's last step is the
    row's first), except for an empty row (length 0), whose output is 0 while its final state is the
    initial state."""
    top = len(layers) - 1
    k = layers[top]
    h = x
    kws = []
    for l in range(len(layers)):
        kw = {}
        if mask is not None:
            kw["mask"] = mask
        if inits:
            names = keras_state_names("fw", l, layers[l]) + (keras_state_names("bw", l, layers[l])
                                                             if c["bidirectional"] else [])
            kw["initial_state"] = [inits[n] for n in names]
        kws.append(kw)
    for l in range(top):
        h = model[l](h, **kws[l])[0]
    last = make_layer(k, c["dtype"], zero_output_for_mask=False, return_sequences=False)
    if c["bidirectional"]:
        last = keras.layers.Bidirectional(last, merge_mode="concat", dtype=c["dtype"])
    last(h, **kws[top])
    last.set_weights(model[top].get_weights())
    got = last(h, **kws[top])[0].numpy()
    dirs = ["fw", "bw"] if c["bidirectional"] else ["fw"]
    want = np.concatenate([finals["%s/%d/h" % (d, top)].numpy() for d in dirs], axis=1)
    for b, n in enumerate(c["seq_len"] or [c["T"]] * c["B"]):
        check_close("%s: return_sequences=False output, row %d" % (c["name"], b), got[b],
                    want[b] if n > 0 else np.zeros_like(want[b]), 0.0)
    print("  return_sequences=False: the final h (0 for an empty row) (checked)")


def check_semantics(c, model, keras_layers, layers, x, mask, inits, out, finals, tol):
    """The Keras semantics of the module docstring, on this case's weights and inputs."""
    check_last_output(c, model, layers, x, mask, inits, finals)
    lens = c["seq_len"]
    if lens is None:
        return
    lens_t = tf.constant(np.array(lens, dtype=np.int32))
    if not c["bidirectional"]:
        # zero_output_for_mask: zeros at masked steps; without it, the last valid output repeated.
        k = layers[0]
        o = out.numpy()
        for b, n in enumerate(lens):
            if np.any(o[b, n:] != 0):
                raise RuntimeError("%s: nonzero outputs at masked steps of row %d" % (c["name"], b))
        plain = make_layer(k, c["dtype"], zero_output_for_mask=False)
        kw = dict(mask=mask)
        if inits:
            kw["initial_state"] = [inits[n] for n in keras_state_names("fw", 0, k)]
        plain(x, **kw)
        plain.set_weights(model[0].get_weights())
        res = plain(x, **kw)
        p = res[0].numpy()
        for b, n in enumerate(lens):
            check_close("%s: valid outputs without zero_output_for_mask, row %d" % (c["name"], b), p[b, :n],
                        o[b, :n], 0.0)
            repeated = np.broadcast_to(o[b, n - 1] if n > 0 else np.zeros_like(o[b, 0]), p[b, n:].shape)
            check_close("%s: masked outputs without zero_output_for_mask, row %d" % (c["name"], b), p[b, n:],
                        repeated, 0.0)
        for name, f in zip(keras_state_names("fw", 0, k), res[1:]):
            check_close("%s: final %s without zero_output_for_mask" % (c["name"], name), f, finals[name], 0.0)
        print("  zero_output_for_mask=False: the last valid output repeated at masked steps (checked)")
        return
    # go_backwards on a right-padded mask == ReverseSequence of the first len steps of each row.
    h = x
    for l, bi in enumerate(model):
        k = layers[l]
        kw = dict(mask=mask)
        if inits:
            kw["initial_state"] = [inits[n] for n in keras_state_names("fw", l, k) + keras_state_names("bw", l, k)]
        res = bi(h, **kw)
        o_fw = k["units"]
        bw_out = res[0][:, :, o_fw:]
        bw_final = res[1 + len(res[1:]) // 2:]
        fwd = make_layer(k, c["dtype"], zero_output_for_mask=True, go_backwards=False)
        kw2 = dict(mask=mask)
        if inits:
            kw2["initial_state"] = [inits[n] for n in keras_state_names("bw", l, k)]
        rev = tf.reverse_sequence(h, lens_t, seq_axis=1, batch_axis=0)
        fwd(rev, **kw2)
        fwd.set_weights(keras_layers[("bw", l)].get_weights())
        r = fwd(rev, **kw2)
        check_close("%s layer %d: backward outputs vs ReverseSequence" % (c["name"], l),
                    tf.reverse_sequence(r[0], lens_t, seq_axis=1, batch_axis=0), bw_out, tol)
        for name, a, b in zip(keras_state_names("bw", l, k), r[1:], bw_final):
            check_close("%s layer %d: backward final %s vs ReverseSequence" % (c["name"], l, name), a, b, tol)
            check_close("%s layer %d: backward final %s" % (c["name"], l, name), b, finals[name], 0.0)
        o = res[0].numpy()
        for b, n in enumerate(lens):
            if np.any(o[b, n:] != 0):
                raise RuntimeError("%s layer %d: nonzero outputs at masked steps of row %d" % (c["name"], l, b))
        h = res[0]
    check_close("%s: stack output" % c["name"], h, out, 0.0)
    print("  go_backwards with the mask == ReverseSequence of the first len steps (checked)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(HERE, "data", "keras"))
    ap.add_argument("--only", default=None, help="comma-separated case names")
    args = ap.parse_args()
    if not keras.__name__.startswith("tf_keras"):
        sys.exit("tf.keras is %s, not tf_keras: set TF_USE_LEGACY_KERAS=1" % keras.__name__)
    if not tf.executing_eagerly():
        sys.exit("not in eager mode")
    assert all(c["name"].startswith("keras_") for c in CASES)
    def described_run(c):
        print("%s: %s" % (c["name"], describe(c)), flush=True)
        return run_case(c)

    golden.write_cases(golden.selected_cases(CASES, args.only, args.out), args.out, described_run)


if __name__ == "__main__":
    main()
