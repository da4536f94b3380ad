#!/usr/bin/env python3
"""
Smoke test of usher-loadgen (issue #4) against real processes: a real
usher in front of four real usher-testbackend processes, on loopback.

It checks what the benchmarks rely on: in resume mode nearly every offer
resumes and lands on its session's backend (usher's ticket affinity), full
mode never offers a session, --max-connections is exact, --resume-target
sends resumptions to a second usher that shares the ticket secret, --idle
holds what it announces, and a dead target is reported as a failure.

Runs through meson (USHER, BACKEND, LOADGEN, HARNESS_DIR in the
environment) and prints TAP via tests/integration/harness.py.
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.environ.get("HARNESS_DIR", ""))
import harness  # noqa: E402

LOADGEN = os.environ.get("LOADGEN", "")
RUN_SECONDS = 2
BACKENDS = ["app-1", "app-2", "app-3", "app-4"]


def loadgen(env, name, args, timeout=60):
    """Run usher-loadgen; return (exit status, parsed JSON or None, stdout)."""
    json_path = env.path(f"{name}.json")
    argv = [LOADGEN, "--json", json_path] + [str(a) for a in args]
    run = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=timeout)
    out = run.stdout.decode(errors="replace")
    try:
        with open(json_path) as f:
            result = json.load(f)
    except (OSError, ValueError):
        result = None
    return run.returncode, result, out


def quiet_config(env, backends):
    cfg = env.config(backends)
    cfg["log"]["access"] = "off"  # thousands of lines would only slow usher down
    return cfg


def start_usher(env, cfg):
    # An usher that cannot start is a failure of this test, not a skip.
    return env.usher(cfg)


def check_resume(tap, env, usher, version):
    target = f"127.0.0.1:{usher.port}"
    rc, r, out = loadgen(env, f"resume-{version}",
                         ["--target", target, "--tls", version, "--mode", "resume",
                          "--concurrency", 8, "--duration", f"{RUN_SECONDS}s"])
    name = f"TLS {version} resume for {RUN_SECONDS}s"
    if not tap.ok(rc == 0 and r is not None, f"{name}: runs and writes JSON", out):
        return

    tap.ok(r["errors"] == 0, f"{name}: no errors", out)
    tap.ok(r["handshakes"] > 100, f"{name}: more than 100 connections answered", out)
    tap.ok(r["resumed_pct"] >= 99.0, f"{name}: at least 99% of offers resumed", out)
    tap.ok(r["affinity_pct"] == 100.0 and r["affinity_same"] == r["resumed"],
           f"{name}: every resumption reached its session's backend", out)
    tap.ok(sorted(r["backends"]) == BACKENDS,
           f"{name}: the eight sessions were spread over all four backends", out)
    tap.ok(r["p50_us"] > 0 and r["p50_us"] <= r["p99_us"] <= r["max_us"],
           f"{name}: latency percentiles are ordered", out)


def check_full_bounded(tap, env, usher):
    rc, r, out = loadgen(env, "full-bounded",
                         ["--target", f"127.0.0.1:{usher.port}", "--tls", "1.3",
                          "--mode", "full", "--concurrency", 4, "--threads", 2,
                          "--max-connections", 200, "--duration", "30s"])
    name = "TLS 1.3 full, two threads, --max-connections 200"
    if not tap.ok(rc == 0 and r is not None, f"{name}: runs and writes JSON", out):
        return

    tap.ok(r["handshakes"] == 200 and r["errors"] == 0,
           f"{name}: exactly 200 answered, no errors", out)
    tap.ok(r["resume_attempts"] == 0 and r["resumed"] == 0,
           f"{name}: no session is ever offered", out)
    tap.ok(r["duration_s"] < 25, f"{name}: stops by itself before the duration", out)


def check_resume_target(tap, env, usher, backends):
    second = start_usher(env, quiet_config(env, backends))
    rc, r, out = loadgen(env, "resume-target",
                         ["--target", f"127.0.0.1:{usher.port}",
                          "--resume-target", f"127.0.0.1:{second.port}",
                          "--tls", "1.3", "--concurrency", 8,
                          "--duration", f"{RUN_SECONDS}s"])
    name = "TLS 1.3, full handshakes at one usher, resumptions at another"
    if not tap.ok(rc == 0 and r is not None, f"{name}: runs and writes JSON", out):
        return

    tap.ok(r["errors"] == 0 and r["resume_attempts"] > 100,
           f"{name}: more than 100 offers, no errors", out)
    tap.ok(r["resumed_pct"] >= 99.0, f"{name}: at least 99% of offers resumed", out)
    tap.ok(r["affinity_pct"] == 100.0, f"{name}: affinity holds across the two", out)


def check_idle(tap, env, usher):
    rc, r, out = loadgen(env, "idle",
                         ["--target", f"127.0.0.1:{usher.port}", "--idle", 100,
                          "--concurrency", 16, "--hold", "1s", "--duration", "20s"])
    name = "--idle 100 --hold 1s"
    if not tap.ok(rc == 0 and r is not None, f"{name}: runs and writes JSON", out):
        return

    tap.ok("established 100\n" in out, f"{name}: announces 100 established", out)
    tap.ok(r["idle_established"] == 100 and r["idle_dropped"] == 0 and r["errors"] == 0,
           f"{name}: holds all 100 without a drop", out)


def check_dead_target(tap, env):
    port = env.free_port()  # nobody listens there
    rc, r, out = loadgen(env, "dead",
                         ["--target", f"127.0.0.1:{port}", "--max-connections", 5,
                          "--concurrency", 1, "--duration", "10s"])
    tap.ok(rc == 1, "a target nobody listens on: exit status 1", out)
    tap.ok(r is not None and r["errors_by_kind"]["connect"] == 5
           and (r["first_error"] or "").startswith("connect:"),
           "a target nobody listens on: five connect errors, and why", out)


def body(tap, env):
    if not LOADGEN or not os.access(LOADGEN, os.X_OK):
        raise harness.Skip(f"LOADGEN={LOADGEN!r} is not an executable")

    harness.raise_fd_limit()
    backends = [env.backend(name) for name in BACKENDS]
    usher = start_usher(env, quiet_config(env, backends))

    for version in ("1.2", "1.3"):
        check_resume(tap, env, usher, version)
    check_full_bounded(tap, env, usher)
    check_resume_target(tap, env, usher, backends)
    check_idle(tap, env, usher)
    check_dead_target(tap, env)


harness.main(body)
