#!/usr/bin/env python3
"""PyTorch nn.LSTM / nn.GRU / nn.RNN on the dynrnn-bench shapes, written with dynrnn-bench's CSV columns.

Three variants per shape, precision and mode (performance.md §3.1 item 2):
  torch-eager   padded [T, B, I] input, no packing (every row runs T steps; no masking)
  torch-packed  pack_padded_sequence(enforce_sorted=False) -> RNN -> pad_packed_sequence; the packing
                and unpacking time is inside the measurement (the note says so)
  torch-graph   the eager call (and, for training, its backward) captured once in a torch.cuda.CUDAGraph
                and replayed; capture + instantiate time goes in the note

PyTorch runs cuDNN underneath, so these rows measure framework overhead and PyTorch's algorithm choice.
nn.GRU is the reset-after GRU, dynrnn-bench's cell gru_ra (Keras GRUCell(reset_after=True), dynrnn's
kGRUResetAfter) that G1 runs; TF's GRUCell (gru, shape G2) has no PyTorch module. Multi-layer
bidirectional stacks concatenate directions between layers (cuDNN's model): A3 is
nn.LSTM(bidirectional=True, num_layers=4), the same model as dynrnn-bench's A3, which runs TF's
stack_bidirectional_dynamic_rnn (--stack-bidirectional: layer l > 0 reads both directions, 2H inputs).
The script compares no values (its weights are PyTorch's own), so every row is NotVerified. FLOP columns use the same
formulas as dynrnn-bench (layer l > 0 of a bidirectional stack reads 2H inputs, as its stacked shapes;
useful row-steps = sum of lengths), so TF/s is comparable across files; the roofline columns are left empty.

bf16 and fp16 run the module and its data in that dtype (PyTorch hands them to cuDNN when
torch.backends.cudnn accepts the dtype, else to its own RNN kernels; the note says which).

Lengths follow the same rules as dynrnn-bench (uniform U[T/4, T], skewed 90% U[T/10, T/5] / 10% U[T/2, T],
one row of length T) but not the same draws; the sum_len column records the actual ones.

Without torch or without a CUDA device the script says so and exits 0.
"""

import argparse
import datetime
import os
import random
import subprocess
import sys
import time

# Must match bench/report.cpp csv_columns().
# torch dtype of each precision (tf32 is float32 with TF32 allowed).
DTYPES = {"fp32": "float32", "tf32": "float32", "bf16": "bfloat16", "fp16": "float16"}

COLUMNS = [
    "shape_id", "source", "cell", "T", "B", "I", "H", "layers", "directions", "lengths", "t_loop", "sum_len",
    "precision", "mode", "impl", "variant", "device", "timer", "status", "iters", "median_ms", "p10_ms", "p90_ms",
    "per_step_us", "per_crit_step_us", "flops_full", "tflops_full", "tflops_rec", "pct_roofline", "floor_ms",
    "bound_compute_ms", "bound_memory_ms", "bound_dependency_ms", "binding", "model_bytes", "peak_mem_bytes",
    "workspace_bytes", "reserve_bytes", "verify", "verify_ref", "fwd_err", "grad_err", "note", "command",
]

# performance.md §3.2 core set (the same table as bench/shapes.cpp core_shapes()).
# id, source, cell, T, B, I, H, layers, bidirectional, lengths. A bidirectional module is always
# PyTorch's (and cuDNN's) stack, layer l > 0 reading both directions: dynrnn-bench's bidirectional
# core shape A3 is that model too (stack_bidirectional).
CORE = [
    ("A1", "fastrnns / Appleyard", "lstm", 100, 64, 512, 512, 1, False, "fixed"),
    ("A2", "Appleyard blog", "lstm", 100, 64, 512, 512, 4, False, "fixed"),
    ("A3", "A2 bidirectional, stacked (cuDNN / PyTorch bidirectional stack)", "lstm", 100, 64, 512, 512, 4, True,
     "fixed"),
    ("D1", "DeepBench training LSTM", "lstm", 25, 16, 1024, 1024, 1, False, "fixed"),
    ("D2", "DeepBench training LSTM", "lstm", 25, 32, 1024, 1024, 1, False, "fixed"),
    ("D3", "DeepBench training LSTM", "lstm", 25, 64, 1024, 1024, 1, False, "fixed"),
    ("D4", "DeepBench training LSTM", "lstm", 25, 128, 1024, 1024, 1, False, "fixed"),
    ("D5", "DeepBench", "lstm", 25, 64, 2048, 2048, 1, False, "fixed"),
    ("D6", "DeepBench", "lstm", 25, 128, 4096, 4096, 1, False, "fixed"),
    ("D7", "DeepBench", "lstm", 150, 32, 256, 256, 1, False, "fixed"),
    ("G1", "DeepBench GRU (reset-after form: cuDNN, PyTorch, Keras)", "gru_ra", 375, 32, 1536, 1536, 1, False, "fixed"),
    ("S1", "SMALL_H PR", "lstm", 2560, 3, 368, 40, 4, False, "fixed"),
    ("S2", "SMALL_H PR", "lstm", 1314, 20, 344, 32, 3, False, "fixed"),
    ("H1-B1", "haste grid", "lstm", 50, 1, 128, 512, 1, False, "fixed"),
    ("H1-B32", "haste grid", "lstm", 50, 32, 128, 512, 1, False, "fixed"),
    ("H1-B128", "haste grid", "lstm", 50, 128, 128, 512, 1, False, "fixed"),
    ("V1", "variable length U[50,200]", "lstm", 200, 64, 512, 512, 2, False, "uniform"),
    ("V2", "variable length, skewed (90% <= 100)", "lstm", 500, 64, 256, 1024, 1, False, "skewed"),
    ("M1", "swap / long sequence", "lstm", 5000, 32, 1024, 1024, 4, False, "fixed"),
]
GATES = {"lstm": 4, "gru": 3, "gru_ra": 3, "rnn_tanh": 1, "rnn_relu": 1}


def make_lengths(T, B, kind, seed):
    rng = random.Random(seed)
    if kind == "fixed":
        return [T] * B
    if kind == "uniform":
        lens = [rng.randint(max(1, T // 4), T) for _ in range(B)]
    else:
        n_long = max(1, (B + 9) // 10)
        lens = [rng.randint(max(1, T // 2), T) if b < n_long else rng.randint(max(1, T // 10), max(1, T // 5))
                for b in range(B)]
        rng.shuffle(lens)
    lens[rng.randrange(B)] = T
    return lens


def flops(cell, I, H, layers, dirs, lengths, mode):
    """Useful FLOPs in dynrnn-bench's two conventions. PyTorch's bidirectional stack feeds layer l > 0
    both directions (dirs * H inputs), as dynrnn-bench counts its stacked shapes (A3)."""
    G = GATES[cell]
    n = float(sum(lengths))
    full = rec = 0.0
    for _ in range(dirs):
        for layer in range(layers):
            i_l = I if layer == 0 else dirs * H
            full += 2 * G * H * (i_l + H) * n
            rec += 2 * G * H * H * n
    mult = {"inference": 1, "forward": 1, "backward": 2, "training": 3}[mode]
    return mult * full, mult * rec


def percentile(sorted_v, q):
    if not sorted_v:
        return float("nan")
    pos = q * (len(sorted_v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_v) - 1)
    return sorted_v[lo] + (sorted_v[hi] - sorted_v[lo]) * (pos - lo)


def fmt(v):
    if v is None:
        return ""
    if isinstance(v, float):
        if v != v:
            return ""
        return "%.9g" % v
    s = str(v)
    if any(c in s for c in ',"\n'):
        s = '"' + s.replace('"', '""').replace("\n", " ") + '"'
    return s


def git_commit():
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        return subprocess.check_output(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=here,
                                       stderr=subprocess.DEVNULL, text=True).strip()
    except Exception:
        return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="", help="comma-separated shape ids (default: all of the core set)")
    ap.add_argument("--precision", default="fp32", help="fp32,tf32,bf16,fp16 (fp64 is written as unsupported rows)")
    ap.add_argument("--mode", default="inference,training", help="inference,forward,backward,training")
    ap.add_argument("--variants", default="torch-eager,torch-packed,torch-graph")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--csv", default="pytorch.csv", help="output CSV (dynrnn-bench's columns)")
    args = ap.parse_args()

    try:
        import torch
    except ImportError:
        print("pytorch_compare: torch is not installed; nothing to compare (exit 0)")
        return 0
    if not torch.cuda.is_available():
        print("pytorch_compare: no CUDA device; PyTorch GPU numbers need a GPU (exit 0)")
        return 0

    wanted = [s for s in args.shapes.split(",") if s]
    shapes = [s for s in CORE if not wanted or s[0].lower() in [w.lower() for w in wanted]]
    if wanted and len(shapes) != len(wanted):
        known = ",".join(s[0] for s in CORE)
        print("pytorch_compare: unknown shape id in %s (known: %s)" % (args.shapes, known), file=sys.stderr)
        return 2
    precisions = [p for p in args.precision.split(",") if p]
    modes = [m for m in args.mode.split(",") if m]
    variants = [v for v in args.variants.split(",") if v]

    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(dev)
    print("# device   %s" % props.name)
    print("# torch    %s, CUDA %s, cuDNN %s" % (torch.__version__, torch.version.cuda,
                                                 torch.backends.cudnn.version()))
    print("# date_utc %s, commit %s" % (datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"), git_commit()))
    out = open(args.csv, "w")
    out.write(",".join(COLUMNS) + "\n")
    print("%-8s %-6s %-9s %-13s %10s %22s %9s" % ("shape", "prec", "mode", "variant", "median_ms", "p10..p90_ms",
                                                  "TF/s"))

    def write(row):
        out.write(",".join(fmt(row.get(c, "")) for c in COLUMNS) + "\n")
        out.flush()

    for (sid, source, cell, T, B, I, H, L, bi, lkind) in shapes:
        dirs = 2 if bi else 1
        lengths = make_lengths(T, B, lkind, args.seed)
        for prec in precisions:
            for mode in modes:
                for variant in variants:
                    row = dict(shape_id=sid, source=source, cell=cell, T=T, B=B, I=I, H=H, layers=L,
                               directions=dirs, lengths=lkind, t_loop=max(lengths), sum_len=sum(lengths),
                               precision=prec, mode=mode, impl="pytorch", variant=variant, device="gpu",
                               timer="cuda-events", status="ok", verify="NotVerified",
                               command="python3 bench/pytorch_compare.py --shapes %s --precision %s --mode %s "
                                       "--variants %s" % (sid, prec, mode, variant))
                    if prec not in DTYPES:
                        row.update(status="unsupported", note="%s: not supported yet" % prec)
                        write(row)
                        continue
                    try:
                        run_one(torch, dev, row, cell, T, B, I, H, L, bi, lengths, prec, mode, variant,
                                args.warmup, args.iters)
                    except Exception as e:  # one failing row must not stop the sweep
                        row.update(status="error", note=("%s: %s" % (type(e).__name__, e))[:300])
                        torch.cuda.synchronize()
                    if row["status"] == "ok":
                        full, rec = flops(cell, I, H, L, dirs, lengths, mode)
                        sec = row["median_ms"] * 1e-3
                        row.update(flops_full=full, tflops_full=full / sec / 1e12, tflops_rec=rec / sec / 1e12,
                                   per_step_us=row["median_ms"] * 1e3 / (max(lengths) * L))
                        print("%-8s %-6s %-9s %-13s %10.4f %10.4f..%-10.4f %9.3f" % (
                            sid, prec, mode, variant, row["median_ms"], row["p10_ms"], row["p90_ms"],
                            row["tflops_full"]))
                    else:
                        print("%-8s %-6s %-9s %-13s %s %s" % (sid, prec, mode, variant, row["status"],
                                                              row.get("note", "")))
                    write(row)
    out.close()
    print("wrote %s" % args.csv)
    return 0


def run_one(torch, dev, row, cell, T, B, I, H, L, bi, lengths, prec, mode, variant, warmup, iters):
    torch.backends.cudnn.allow_tf32 = prec == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"
    torch.manual_seed(0)
    if cell == "lstm":
        net = torch.nn.LSTM(I, H, num_layers=L, bidirectional=bi)
    elif cell == "gru_ra":  # nn.GRU is the reset-after GRU
        net = torch.nn.GRU(I, H, num_layers=L, bidirectional=bi)
    elif cell == "gru":
        raise ValueError("TF's GRUCell (reset before the candidate matmul) has no PyTorch module; use gru_ra")
    else:
        net = torch.nn.RNN(I, H, num_layers=L, bidirectional=bi, nonlinearity=cell.split("_")[1])
    dtype = getattr(torch, DTYPES[prec])
    net = net.to(dev, dtype)
    training = mode != "inference"
    net.train(training)
    dirs = 2 if bi else 1
    notes = ["PyTorch (cuDNN-style stacks%s)" % ("; nn.GRU = gru_ra, the reset-after GRU" if cell == "gru_ra" else "")]
    if bi and L > 1:
        notes.append("nn.%s(bidirectional=True, num_layers=%d): layers above the first read both directions, "
                     "dynrnn-bench's stacked model (stack_bidirectional_dynamic_rnn)" % (type(net).__name__, L))

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    xs = [torch.empty(T, B, I, device=dev, dtype=dtype).uniform_(-1, 1) for _ in range(3)]
    dys = [torch.empty(T, B, dirs * H, device=dev, dtype=dtype).uniform_(-1, 1) for _ in range(3)]
    if prec in ("bf16", "fp16"):
        cudnn = torch.backends.cudnn.is_acceptable(xs[0])
        notes.append("%s: %s" % (prec, "cuDNN" if cudnn else "not a cuDNN dtype here: PyTorch's own RNN kernels"))
    lens_cpu = torch.tensor(lengths, dtype=torch.int64)

    def forward(x):
        if variant == "torch-packed":
            packed = torch.nn.utils.rnn.pack_padded_sequence(x, lens_cpu, enforce_sorted=False)
            y, _ = net(packed)
            y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, total_length=T)
            return y
        y, _ = net(x)
        return y

    def step(i):
        x = xs[i % len(xs)]
        if mode == "inference":
            with torch.no_grad():
                forward(x)
        elif mode == "forward":
            forward(x)
        else:
            for p in net.parameters():
                p.grad = None
            y = forward(x.requires_grad_(True))  # dx too, as the other rows compute it
            y.backward(dys[i % len(dys)])

    if mode == "backward":
        notes.append("backward = forward + backward minus the forward median (autograd keeps no reusable reserve)")

    if variant == "torch-graph":
        static_x = xs[0].clone()
        static_dy = dys[0].clone()

        def graph_body():
            if mode == "inference":
                with torch.no_grad():
                    forward(static_x)
            elif mode == "forward":
                forward(static_x)
            else:
                y = forward(static_x.requires_grad_(True))
                y.backward(static_dy)

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                for p in net.parameters():
                    p.grad = None
                graph_body()
        torch.cuda.current_stream().wait_stream(side)
        for p in net.parameters():
            p.grad = None
        graph = torch.cuda.CUDAGraph()
        t0 = time.perf_counter()
        with torch.cuda.graph(graph):
            graph_body()
        torch.cuda.synchronize()
        notes.append("graph capture + instantiate %.1f ms" % ((time.perf_counter() - t0) * 1e3))

        def run(i):
            static_x.copy_(xs[i % len(xs)])
            if training:
                static_dy.copy_(dys[i % len(dys)])
            graph.replay()
    else:
        run = step
    if variant == "torch-packed":
        notes.append("pack/unpack time included")
    if variant == "torch-eager" and any(l != T for l in lengths):
        notes.append("no masking: every row runs T steps")

    def timed(fn):
        for i in range(warmup):
            fn(i)
        torch.cuda.synchronize()
        ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(iters)]
        for i in range(iters):
            ev[i][0].record()
            fn(i)
            ev[i][1].record()
        torch.cuda.synchronize()
        return sorted(a.elapsed_time(b) for a, b in ev)

    ms = timed(run)
    if mode == "backward":
        # Forward-only time of the same variant, subtracted from forward + backward.
        def fwd_only(i):
            forward(xs[i % len(xs)])

        fwd_median = percentile(timed(fwd_only), 0.5)
        ms = sorted(max(v - fwd_median, 0.0) for v in ms)
    row.update(iters=iters, median_ms=percentile(ms, 0.5), p10_ms=percentile(ms, 0.1), p90_ms=percentile(ms, 0.9),
               peak_mem_bytes=float(torch.cuda.max_memory_allocated() - base), note="; ".join(notes))


if __name__ == "__main__":
    sys.exit(main())
