#!/usr/bin/env python3
"""Thread-scaling ratios of usher's microbenchmarks.

Reads the JSON that bench_micro writes (--benchmark_format=json or
--benchmark_out=FILE) and prints, for every scaling/ family, how many
times the handshakes per second grow from 1 thread to each higher thread
count, then how the per-thread shards compare with the shared SSL_CTX.

    scaling.py results/micro.json
    bench_micro --benchmark_filter=^scaling/ --benchmark_format=json | scaling.py

With --check, exits 1 when a shards family misses the target (1.9x from
1 to 2 threads). Figures are from one run on whatever machine ran it:
read them as ratios, not as absolute rates.
"""

import argparse
import json
import re
import statistics
import sys

TARGET = 1.9
SUFFIXES = re.compile(r"/(real_time|manual_time|threads:\d+|repeats:\d+)")


def family_of(bench):
    """'scaling/tls12/shards/repeats:3/real_time/threads:2' -> 'scaling/tls12/shards'."""
    return SUFFIXES.sub("", bench.get("run_name", bench["name"]))


def throughputs(benchmarks):
    """{(family, threads): handshakes per second} of the scaling runs.

    Repetitions are folded into their median; aggregates that Google
    Benchmark already computed are ignored in favour of the raw runs.
    """
    runs = {}
    for b in benchmarks:
        if b.get("run_type", "iteration") != "iteration" or b.get("error_occurred"):
            continue
        if not b["name"].startswith("scaling/") or "items_per_second" not in b:
            continue
        runs.setdefault((family_of(b), b["threads"]), []).append(b["items_per_second"])
    return {key: statistics.median(values) for key, values in runs.items()}


def ratio_lines(rates):
    """Ratio lines, and whether every shards family met the target."""
    lines = []
    met = True
    for family in sorted({f for f, _ in rates}):
        base = rates.get((family, 1))
        if not base:
            lines.append(f"{family}: no 1-thread run")
            continue
        for threads in sorted(t for f, t in rates if f == family and t > 1):
            ratio = rates[(family, threads)] / base
            unit = "runs/s" if family.endswith("/control/spin") else "handshakes/s"
            line = (f"{family} 1->{threads} threads: {ratio:.2f}x "
                    f"({base:,.0f} -> {rates[(family, threads)]:,.0f} {unit})")
            if family.endswith("/control/spin"):
                line += ", the machine's headroom (no OpenSSL)"
            if family.endswith("/shards") and threads == 2:
                ok = ratio >= TARGET
                met = met and ok
                line += f", target {TARGET}x {'met' if ok else 'MISSED'}"
            lines.append(line)
    return lines, met


def versus_lines(rates):
    """Shards against the shared SSL_CTX at each thread count."""
    lines = []
    for (family, threads), rate in sorted(rates.items()):
        if not family.endswith("/shards"):
            continue
        shared = rates.get((family[: -len("shards")] + "shared_ctx", threads))
        if shared:
            lines.append(f"{family} vs shared_ctx at {threads} thread(s): "
                         f"{rate / shared:.2f}x")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="?", default="-",
                        help="bench_micro JSON output (default: stdin)")
    parser.add_argument("--check", action="store_true",
                        help=f"exit 1 when shards scale less than {TARGET}x from 1 to 2 threads")
    args = parser.parse_args()

    if args.json == "-":
        data = json.load(sys.stdin)
    else:
        with open(args.json, encoding="utf-8") as f:
            data = json.load(f)

    rates = throughputs(data.get("benchmarks", []))
    if not rates:
        print("no scaling/ results in the input", file=sys.stderr)
        return 1

    lines, met = ratio_lines(rates)
    for line in lines + versus_lines(rates):
        print(line)
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
