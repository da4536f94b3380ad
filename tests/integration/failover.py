#!/usr/bin/env python3
"""
Failover of a pinned session. A session is pinned to backend X; X is
killed (SIGKILL). New clients are still served, by the other backend Y.
The pinned client resumes (Reused) and lands on Y, and the ticket it gets
back names Y: once X is back (same name, same port) and usher's health
check has seen it up again, resuming with that renewed ticket stays on Y.
Done for TLS 1.3 and TLS 1.2.
"""

import os

import harness

NEW_CLIENTS = 4  # round robin would give X some of them if X were still used


def server_up(usher, name):
    return usher.metrics().sum("usher_server_up", server=name) == 1


def pin_and_kill(tap, usher, backends, version, first):
    """A full handshake pins a session to X; X is killed. Returns (X, Y)."""
    tag = f"TLS {version}"
    r = harness.s_client(usher.port, version, sess_out=first)
    if not tap.ok(r.backend in backends and not r.reused,
                  f"{tag}: full handshake served", r.describe()):
        return None, None
    x = backends[r.backend]
    y = [b for n, b in backends.items() if n != x.name][0]
    tap.diag(f"{tag}: session pinned to {x.name}; killing it")
    x.kill()

    served = [harness.s_client(usher.port, version) for _ in range(NEW_CLIENTS)]
    tap.ok(all(s.backend == y.name for s in served),
           f"{tag}: with {x.name} killed, new clients are served by {y.name}",
           "; ".join(f"{s.backend}: {s.describe()}" for s in served if s.backend != y.name))
    return x, y


def bring_back(tap, env, usher, backends, x, version):
    backends[x.name] = env.backend(x.name, port=x.port)
    with tap.case(f"TLS {version}: {x.name} is back, and usher's health check sees it up"):
        harness.wait_until(lambda: server_up(usher, x.name), 30,
                           f"usher_server_up{{server=\"{x.name}\"}} to read 1")


def resume_renewed(env, usher, version, renewed, y):
    """Resume three times from the renewed ticket; returns problems."""
    problems = []
    current = renewed
    for n in range(3):
        nxt = env.path(f"fo-{version}-{n + 2}.pem")
        r = harness.s_client(usher.port, version, sess_in=current,
                             sess_out=nxt if version == "1.3" else None)
        if version == "1.3":
            current = nxt
        if not r.reused or r.backend != y.name:
            problems.append(f"try {n + 1}: reused={r.reused} backend={r.backend}; "
                            + r.describe())
    return problems


def round_for(tap, env, usher, backends, version):
    tag = f"TLS {version}"
    first = env.path(f"fo-{version}-0.pem")
    x, y = pin_and_kill(tap, usher, backends, version, first)
    if x is None:
        return

    renewed = env.path(f"fo-{version}-1.pem")
    r = harness.s_client(usher.port, version, sess_in=first, sess_out=renewed)
    tap.ok(r.reused and r.backend == y.name,
           f"{tag}: the pinned session resumes (Reused) on {y.name}",
           f"reused={r.reused} backend={r.backend}; {r.describe()}")

    bring_back(tap, env, usher, backends, x, version)

    name = f"{tag}: with {x.name} back, the renewed ticket keeps the client on {y.name}"
    if not os.path.exists(renewed):
        tap.ok(False, name, f"usher issued no new ticket on the resumed handshake, "
                            f"so no ticket names {y.name}")
        return
    problems = resume_renewed(env, usher, version, renewed, y)
    tap.ok(not problems, name, "\n".join(problems))


def body(tap, env):
    backends = {n: env.backend(n) for n in ("app-1", "app-2")}
    usher = env.usher(env.config(list(backends.values()), workers=2,
                                 timeouts={"connect": "2s"}))

    for version in ("1.3", "1.2"):
        round_for(tap, env, usher, backends, version)

    tap.ok(usher.alive(), "usher is still running")


harness.main(body)
