#!/usr/bin/env python3
"""
Reload with SIGHUP.

  - Under load: a thread makes 200 sequential TLS connections while usher
    gets SIGHUP five times, once with a config that adds a server to the
    pool. No connection fails, and the new server then takes clients.
  - A broken config: usher logs the problem with file:line on stderr and
    keeps serving with the config it had.
  - A connection established before a reload keeps working after it.
"""

import copy
import re
import signal

import harness

LOAD_CONNECTIONS = 200
RELOAD_AT = (20, 50, 80, 110, 140)  # connections done; spreads the five HUPs
POOL_CHANGE = 2  # which reload adds app-3


def reload_under_load(tap, env, usher, cfg2, cfg3):
    load = harness.Load(lambda: harness.one_request(usher.port), count=LOAD_CONNECTIONS)
    load.start()
    try:
        for i, mark in enumerate(RELOAD_AT):
            harness.wait_until(lambda: load.attempts >= mark or not load.is_alive(), 60,
                               f"{mark} connections of the load")
            usher.reload(cfg3 if i >= POOL_CHANGE else cfg2)
        load.join(timeout=100)
    finally:
        load.stop()

    tap.ok(load.done == LOAD_CONNECTIONS and not load.failures,
           f"{LOAD_CONNECTIONS} connections during 5 reloads: none failed "
           f"({load.done} served, {len(load.failures)} failed)",
           "\n".join(load.failures[:8]))
    tap.ok(usher.alive(), "usher is still running after 5 reloads")

    with tap.case("after the reload that added app-3, app-3 takes clients"):
        served = [harness.one_request(usher.port) for _ in range(9)]
        assert "app-3" in served, f"9 clients went to {served}"


def broken_config(tap, usher, cfg3):
    good = harness.to_yaml(cfg3)
    assert "balance: round_robin" in good
    broken = good.replace("balance: round_robin", "balance: round_robbin", 1)
    line = broken.splitlines().index("    balance: round_robbin") + 1
    before = len(usher.stderr())
    usher.reload(text=broken)

    where = re.compile(re.escape(usher.cfg_path) + f":{line}\\b")
    with tap.case(f"a broken config is reported on stderr as {usher.name}.yaml:{line}"):
        try:
            harness.wait_until(lambda: where.search(usher.stderr()[before:]), 10,
                               "the config error on stderr")
        except AssertionError:
            raise AssertionError("stderr since the reload:\n" + usher.stderr()[before:][-800:])

    tap.ok(usher.alive(), "usher survives the broken config")
    with tap.case("usher keeps serving with the old config (app-3 still in the pool)"):
        served = [harness.one_request(usher.port) for _ in range(9)]
        assert "app-3" in served, f"9 clients went to {served}"

    usher.write_config(cfg3)  # leave a good file behind for later reloads


def established_connection(tap, usher):
    with tap.case("a connection established before a reload keeps working after it"):
        with harness.tls_connect(usher.port) as s:
            first = harness.exchange(s)
            before = len(usher.stderr())
            usher.signal(signal.SIGHUP)
            settled = _wait_reload_logged(usher, before)
            for _ in range(5):
                harness.one_request(usher.port)
            second = harness.exchange(s)
            assert second == first, f"answered by {first}, then by {second}"
        if not settled:
            tap.diag("usher logged no 'reloaded' line within 5s of SIGHUP")


def _wait_reload_logged(usher, offset):
    try:
        harness.wait_until(lambda: "reloaded" in usher.stderr()[offset:].lower(), 5,
                           "a reload log line")
        return True
    except AssertionError:
        return False


def body(tap, env):
    backends = [env.backend(n) for n in ("app-1", "app-2", "app-3")]
    cfg2 = env.config(backends[:2], workers=2)
    cfg3 = copy.deepcopy(cfg2)
    cfg3["pools"][0]["servers"].append(harness.server_entry(backends[2]))
    usher = env.usher(cfg2)

    harness.one_request(usher.port)
    reload_under_load(tap, env, usher, cfg2, cfg3)
    broken_config(tap, usher, cfg3)
    established_connection(tap, usher)
    tap.ok(usher.alive(), "usher is still running at the end")


harness.main(body)
