#!/usr/bin/env python3
"""Charts from dynrnn-bench CSV files (and bench/pytorch_compare.py CSVs, which share the columns).

For every (precision, mode, device) found, writes to --out-dir:
  speedup_<device>_<precision>_<mode>.png   speed-up of every implementation over --baseline, per shape
  roofline_<device>_<precision>_<mode>.png  left: percent of the performance.md §2.5 floor per shape and
                                            implementation, labelled with the binding bound; right: achieved
                                            TFLOP/s against modelled arithmetic intensity (FLOPs / modelled
                                            bytes), one point per row
Only rows with status "ok" are drawn; rows that failed verification are drawn hatched.

Usage: python3 bench/plot.py results/h100.csv [results/pytorch_h100.csv ...] --out-dir plots/
Without matplotlib the script says so and exits 0.
"""

import argparse
import collections
import csv
import math
import os
import sys


def label(row):
    return row["impl"] + (":" + row["variant"] if row.get("variant") else "")


def num(v):
    try:
        x = float(v)
        return x if math.isfinite(x) else None
    except (TypeError, ValueError):
        return None


def load(paths):
    rows = []
    for p in paths:
        with open(p, newline="") as f:
            for r in csv.DictReader(f):
                if r.get("status") == "ok" and num(r.get("median_ms")):
                    r["_file"] = os.path.basename(p)
                    rows.append(r)
    return rows


def pick_baseline(rows, wanted):
    labels = {label(r) for r in rows}
    if wanted in labels:
        return wanted
    for fallback in ("cudnn:STANDARD", "naive", "dynrnn"):
        if fallback in labels:
            return fallback
    return sorted(labels)[0] if labels else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv", nargs="+", help="dynrnn-bench / pytorch_compare CSV files")
    ap.add_argument("--out-dir", default="plots")
    ap.add_argument("--baseline", default="cudnn:STANDARD",
                    help="implementation label the speed-ups are relative to (impl or impl:variant; "
                         "default cudnn:STANDARD, else naive)")
    args = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot.py: matplotlib is not installed; no charts written (exit 0)")
        return 0

    rows = load(args.csv)
    if not rows:
        print("plot.py: no rows with status ok in %s" % ", ".join(args.csv))
        return 0
    os.makedirs(args.out_dir, exist_ok=True)
    groups = collections.defaultdict(list)
    for r in rows:
        groups[(r["device"], r["precision"], r["mode"])].append(r)

    written = []
    for (device, prec, mode), grp in sorted(groups.items()):
        shapes = []
        for r in grp:
            if r["shape_id"] not in shapes:
                shapes.append(r["shape_id"])
        impls = sorted({label(r) for r in grp})
        by = {(r["shape_id"], label(r)): r for r in grp}
        tag = "%s_%s_%s" % (device, prec, mode)
        width = 0.8 / max(1, len(impls))
        xs = range(len(shapes))

        # Speed-up over the baseline.
        base = pick_baseline(grp, args.baseline)
        fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(shapes) + 2), 4.5))
        for k, impl in enumerate(impls):
            vals, hatch = [], []
            for s in shapes:
                r, b = by.get((s, impl)), by.get((s, base))
                ok = r is not None and b is not None
                vals.append(num(b["median_ms"]) / num(r["median_ms"]) if ok else 0.0)
                hatch.append(ok and r.get("verify") == "Failed")
            bars = ax.bar([x + k * width for x in xs], vals, width, label=impl)
            for bar, h in zip(bars, hatch):
                if h:
                    bar.set_hatch("//")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks([x + width * (len(impls) - 1) / 2 for x in xs])
        ax.set_xticklabels(shapes, rotation=45, ha="right")
        ax.set_ylabel("speed-up over %s (x)" % base)
        ax.set_title("%s %s %s: time(%s) / time(impl)" % (device, prec, mode, base))
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = os.path.join(args.out_dir, "speedup_%s.png" % tag)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)

        # Roofline view.
        fig, (left, right) = plt.subplots(1, 2, figsize=(max(10, 0.9 * len(shapes) + 6), 4.8))
        any_roof = False
        for k, impl in enumerate(impls):
            vals, names = [], []
            for s in shapes:
                r = by.get((s, impl))
                v = num(r.get("pct_roofline")) if r else None
                vals.append(100.0 * v if v else 0.0)
                names.append(r.get("binding", "") if r and v else "")
                any_roof = any_roof or bool(v)
            bars = left.bar([x + k * width for x in xs], vals, width, label=impl)
            for bar, n in zip(bars, names):
                if n:
                    left.annotate(n[:3], (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                                  va="bottom", fontsize=6, rotation=90)
        left.set_xticks([x + width * (len(impls) - 1) / 2 for x in xs])
        left.set_xticklabels(shapes, rotation=45, ha="right")
        left.set_ylabel("% of the §2.5 floor (t_floor / t_measured)")
        left.set_title("%s %s %s: percent of roofline" % (device, prec, mode))
        if any_roof:
            left.legend(fontsize=8)
        else:
            left.set_ylim(0, 100)
            left.text(0.5, 0.5, "no %roofline in these rows\n(the floor is computed for GPU rows only)",
                      transform=left.transAxes, ha="center", va="center")
        for impl in impls:
            pts = [(num(r["flops_full"]) / num(r["model_bytes"]), num(r["tflops_full"]))
                   for r in grp if label(r) == impl and num(r.get("model_bytes")) and num(r.get("flops_full"))
                   and num(r.get("tflops_full"))]
            if pts:
                right.scatter([p[0] for p in pts], [p[1] for p in pts], label=impl, s=18)
        right.set_xscale("log")
        right.set_yscale("log")
        right.set_xlabel("modelled arithmetic intensity (FLOP / byte)")
        right.set_ylabel("achieved TFLOP/s (incl. input GEMMs)")
        right.set_title("achieved rate vs intensity")
        right.grid(True, which="both", linewidth=0.3)
        if right.get_legend_handles_labels()[0]:
            right.legend(fontsize=8)
        fig.tight_layout()
        path = os.path.join(args.out_dir, "roofline_%s.png" % tag)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)

    for p in written:
        print("wrote %s" % p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
