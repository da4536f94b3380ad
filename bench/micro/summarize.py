#!/usr/bin/env python3
"""A short Markdown summary of one bench_micro JSON result file.

    summarize.py results/micro.json [results/stack.json]

Three tables: ticketcache and OpenSSL primitives (time per operation),
handshakes (the server's CPU per handshake) and thread scaling
(handshakes per second), then the scaling ratios from scaling.py. With
bench_stack's JSON (bench/stack), a fourth: cycles per packet through
the userspace TCP/IP stack.
"""

import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scaling  # noqa: E402

UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def time_ns(b):
    return b["real_time"] * UNIT_NS[b.get("time_unit", "ns")]


def fmt_ns(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.1f} ns"


def short(name):
    return name.replace("/manual_time", "").replace("/real_time", "")


def runs(data):
    return [b for b in data.get("benchmarks", [])
            if b.get("run_type", "iteration") == "iteration"]


def header(ctx):
    print("## usher microbenchmarks")
    print()
    print(f"- {ctx.get('date', '?')} on {ctx.get('host_name', '?')}, "
          f"{ctx.get('num_cpus', '?')} CPUs, load average "
          f"{', '.join(f'{x:.2f}' for x in ctx.get('load_avg', []))}")
    print(f"- {ctx.get('openssl', 'OpenSSL ?')}; CPU-clock read overhead "
          f"{ctx.get('clock_overhead_ns', '?')} ns, subtracted per interval")
    print("- one run on a shared machine: compare rows with each other, "
          "not with other machines")
    print()


def table_primitives(bs):
    rows = [b for b in bs if b["name"].startswith(("tkc/", "openssl/"))]
    if not rows:
        return
    print("### ticketcache and OpenSSL primitives")
    print()
    print("| benchmark | time/op |")
    print("|---|---:|")
    for b in rows:
        note = " (server CPU)" if "/manual_time" in b["name"] else ""
        print(f"| {short(b['name'])} | {error_or(b, fmt_ns(time_ns(b)) + note)} |")
    print()


def table_handshakes(bs):
    rows = [b for b in bs if b["name"].startswith("handshake/")]
    if not rows:
        return
    print("### Handshakes in memory, server side")
    print()
    print("| benchmark | server µs/handshake | server µs SSL_new+shutdown+free |")
    print("|---|---:|---:|")
    for b in rows:
        hs = b.get("server_us_per_handshake")
        conn = b.get("server_conn_us")
        cells = (f"{hs:.1f} | {conn:.1f}" if hs is not None and conn is not None
                 else "- | -")
        print(f"| {short(b['name'])} | {error_or(b, cells)} |")
    print()


def table_scaling(data, bs):
    groups = {}
    for b in bs:
        if b["name"].startswith("scaling/") and not b.get("error_occurred"):
            groups.setdefault((scaling.family_of(b), b["threads"]), []).append(b)
    failed = [b for b in bs if b["name"].startswith("scaling/") and b.get("error_occurred")]
    if not groups and not failed:
        return
    print("### Thread scaling, resumed handshakes (real time, client included)")
    print()
    print("| benchmark | threads | runs | per second, best | median "
          "| server µs/handshake |")
    print("|---|---:|---:|---:|---:|---:|")
    for (family, threads), group in sorted(groups.items()):
        rates = [b.get("items_per_second", 0.0) for b in group]
        hs = [b["server_us_per_handshake"] for b in group if "server_us_per_handshake" in b]
        hs_cell = f"{statistics.median(hs):.1f}" if hs else "-"
        print(f"| {family} | {threads} | {len(group)} | {max(rates):,.0f} "
              f"| {statistics.median(rates):,.0f} | {hs_cell} |")
    for b in failed:
        print(f"| {short(b['name'])} | {b['threads']} | - | {error_or(b, '')} | - | - |")
    print()

    rates = scaling.throughputs(data.get("benchmarks", []))
    lines, _ = scaling.ratio_lines(rates)
    for line in lines + scaling.versus_lines(rates):
        print(f"- {line}")
    print()


def table_stack(stack):
    rows = [b for b in runs(stack) if b["name"].startswith("stack/")]
    if not rows:
        return
    mhz = stack.get("context", {}).get("tsc_mhz", "?")
    print("### The userspace TCP/IP stack, per packet (bench/stack)")
    print()
    print(f"TSC cycles per ust_input (tx_send_16k: per frame ust_send produced), "
          f"TSC at {float(mhz):,.0f} MHz; Mpps is what one core would reach doing "
          "nothing else.")
    print()
    print("| benchmark | cycles/packet | ns/packet | Mpps |")
    print("|---|---:|---:|---:|")
    for b in rows:
        cells = (f"{b.get('cycles_per_packet', 0):,.0f} | "
                 f"{time_ns(b) / b.get('frames_per_send', 1):.0f} | {b.get('Mpps', 0):.2f}")
        print(f"| {short(b['name'])} | {error_or(b, cells)} |")
    print()


def error_or(b, text):
    if b.get("error_occurred"):
        return f"FAILED: {b.get('error_message', '?')}"
    return text


def main():
    if len(sys.argv) not in (2, 3):
        print("usage: summarize.py MICRO_JSON [STACK_JSON]", file=sys.stderr)
        return 2

    with open(sys.argv[1], encoding="utf-8") as f:
        data = json.load(f)

    bs = runs(data)
    header(data.get("context", {}))
    table_primitives(bs)
    table_handshakes(bs)
    table_scaling(data, bs)
    if len(sys.argv) == 3:
        with open(sys.argv[2], encoding="utf-8") as f:
            table_stack(json.load(f))
    return 0


if __name__ == "__main__":
    sys.exit(main())
