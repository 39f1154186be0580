#!/usr/bin/env python3
"""Compares two dynrnn-bench CSV files row by row (as haste's benchmarks/report.py does).

Rows are matched on (shape_id, precision, mode, impl, variant); for each matched pair the speed-up is
median_ms(old) / median_ms(new). Prints one line per pair and, per implementation, the mean, median,
min and max speed-up. Use it to compare two commits on the same card, or two implementations in one file
with --a-impl/--b-impl (e.g. --a-impl cudnn:STANDARD --b-impl dynrnn on the same CSV twice).

Usage: python3 bench/compare_csv.py old.csv new.csv
       python3 bench/compare_csv.py run.csv run.csv --a-impl naive --b-impl dynrnn
"""

import argparse
import csv
import statistics
import sys


def label(r):
    return r["impl"] + (":" + r["variant"] if r.get("variant") else "")


def load(path, impl):
    out = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if r.get("status") != "ok":
                continue
            try:
                ms = float(r["median_ms"])
            except (KeyError, ValueError):
                continue
            if impl and label(r) != impl and r["impl"] != impl:
                continue
            key = (r["shape_id"], r["precision"], r["mode"]) + (() if impl else (label(r),))
            out[key] = (ms, r)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", help="baseline CSV")
    ap.add_argument("b", help="CSV to compare")
    ap.add_argument("--a-impl", default="", help="only this implementation label from A (impl or impl:variant)")
    ap.add_argument("--b-impl", default="", help="only this implementation label from B")
    args = ap.parse_args()
    if bool(args.a_impl) != bool(args.b_impl):
        print("compare_csv: give both --a-impl and --b-impl, or neither", file=sys.stderr)
        return 2
    a, b = load(args.a, args.a_impl), load(args.b, args.b_impl)
    keys = sorted(set(a) & set(b))
    if not keys:
        print("compare_csv: no matching ok rows")
        return 0
    per_impl = {}
    print("%-12s %-5s %-9s %-26s %11s %11s %8s" % ("shape", "prec", "mode", "impl", "A_ms", "B_ms", "speedup"))
    for k in keys:
        (ms_a, ra), (ms_b, rb) = a[k], b[k]
        sp = ms_a / ms_b if ms_b > 0 else float("inf")
        impl = label(rb) if not args.b_impl else "%s vs %s" % (args.b_impl, args.a_impl)
        per_impl.setdefault(impl, []).append(sp)
        print("%-12s %-5s %-9s %-26s %11.4f %11.4f %7.2fx" % (k[0], k[1], k[2], impl, ms_a, ms_b, sp))
    print()
    print("%-26s %5s %8s %8s %8s %8s" % ("impl", "n", "mean", "median", "min", "max"))
    for impl, v in sorted(per_impl.items()):
        print("%-26s %5d %7.2fx %7.2fx %7.2fx %7.2fx" % (impl, len(v), statistics.mean(v), statistics.median(v),
                                                        min(v), max(v)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
