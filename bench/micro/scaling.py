#!/usr/bin/env python3
"""Thread-scaling ratios of usher's microbenchmarks.

Reads the JSON that bench_micro writes (--benchmark_format=json or
--benchmark_out=FILE) and prints, for every scaling/ family, how many
times the handshakes per second grow from 1 thread to each higher thread
count, then how the per-thread shards compare with the shared SSL_CTX.

    scaling.py results/micro.json
    bench_micro --benchmark_filter=^scaling/ --benchmark_format=json | scaling.py

With --check, exits 1 when usher's layout (shards_libctx: an SSL_CTX,
shard and OpenSSL library context per thread) misses the target (1.9x
from 1 to 2 threads). Figures are from one run on whatever machine ran
it: read them as ratios, not as absolute rates.
"""

import argparse
import json
import re
import statistics
import sys

TARGET = 1.9
USHER_LAYOUT = "shards_libctx"
UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
SUFFIXES = re.compile(r"/(real_time|manual_time|threads:\d+|repeats:\d+)")


def family_of(bench):
    """'scaling/tls12/shards/repeats:3/real_time/threads:2' -> 'scaling/tls12/shards'."""
    return SUFFIXES.sub("", bench.get("run_name", bench["name"]))


class Rate:
    """Handshakes per second of one family at one thread count."""

    def __init__(self, runs):
        rates = [b["items_per_second"] for b in runs]
        self.runs = len(rates)
        self.median = statistics.median(rates)
        # Load elsewhere only ever takes throughput away, so the best run
        # is the closest to what the machine can do when left alone.
        self.best = max(rates)
        self.cpu_ns = statistics.median(b["cpu_time"] * UNIT_NS[b.get("time_unit", "ns")]
                                        for b in runs)


def throughputs(benchmarks):
    """{(family, threads): Rate} of the scaling runs, repetitions folded.

    Aggregates that Google Benchmark computed are skipped in favour of the
    raw runs.
    """
    runs = {}
    for b in benchmarks:
        if b.get("run_type", "iteration") != "iteration" or b.get("error_occurred"):
            continue
        if not b["name"].startswith("scaling/") or "items_per_second" not in b:
            continue
        runs.setdefault((family_of(b), b["threads"]), []).append(b)
    return {key: Rate(group) for key, group in runs.items()}


def ratio_lines(rates):
    """Ratio lines, and whether every family of usher's layout met the target.

    The ratio of record is best over best; the median ratio shows how much
    the machine moved under the run. "CPU per run" is the thread CPU that
    one handshake (both sides) costs: unlike throughput it does not drop
    when another process takes the CPU, and it grows when the threads
    fight over cache lines or spin on locks.
    """
    lines = []
    met = True
    for family in sorted({f for f, _ in rates}):
        base = rates.get((family, 1))
        if base is None:
            lines.append(f"{family}: no 1-thread run")
            continue
        control = family.endswith("/control/spin")
        unit = "runs/s" if control else "handshakes/s"
        for threads in sorted(t for f, t in rates if f == family and t > 1):
            r = rates[(family, threads)]
            ratio = r.best / base.best
            line = (f"{family} 1->{threads} threads: {ratio:.2f}x best of {r.runs} "
                    f"({base.best:,.0f} -> {r.best:,.0f} {unit}), "
                    f"{r.median / base.median:.2f}x median, "
                    f"CPU per run {100 * (r.cpu_ns / base.cpu_ns - 1):+.1f}%")
            if control:
                line += "; the machine's headroom (no OpenSSL)"
            if family.endswith("/" + USHER_LAYOUT) and threads == 2:
                ok = ratio >= TARGET
                met = met and ok
                line += f"; target {TARGET}x {'met' if ok else 'MISSED'}"
            lines.append(line)
    return lines, met


def versus_lines(rates):
    """Each per-thread layout against the others at each thread count, best runs."""
    pairs = [("shards", "shared_ctx"), ("shards_libctx", "shared_ctx"),
             ("shards_libctx", "shards")]
    lines = []
    for (family, threads), rate in sorted(rates.items()):
        version, _, layout = family.rpartition("/")
        for mine, other in pairs:
            base = rates.get((f"{version}/{other}", threads))
            if layout == mine and base:
                lines.append(f"{family} vs {other} at {threads} thread(s): "
                             f"{rate.best / base.best:.2f}x")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="?", default="-",
                        help="bench_micro JSON output (default: stdin)")
    parser.add_argument("--check", action="store_true",
                        help=f"exit 1 when {USHER_LAYOUT} scales less than {TARGET}x "
                             "from 1 to 2 threads")
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
