#!/usr/bin/env python3
"""
Failover of a pinned session. A session is pinned to backend X; X is
killed (SIGKILL). New clients are still served, by the other backend Y.
The pinned client resumes (Reused) and lands on Y, and the ticket it gets
back names Y: once X is back (same name, same port), resuming with that
renewed ticket stays on Y. Done for TLS 1.3 and TLS 1.2.
"""

import os

import harness

NEW_CLIENTS = 4  # round robin would give X some of them if X were still used


def round_for(tap, env, usher, backends, version):
    tag = f"TLS {version}"
    first = env.path(f"fo-{version}-0.pem")
    r = harness.s_client(usher.port, version, sess_out=first)
    if not tap.ok(r.backend in backends and not r.reused,
                  f"{tag}: full handshake served", r.describe()):
        return
    x = backends[r.backend]
    y = [b for n, b in backends.items() if n != x.name][0]
    tap.diag(f"{tag}: session pinned to {x.name}; killing it")
    x.kill()

    served = [harness.s_client(usher.port, version) for _ in range(NEW_CLIENTS)]
    tap.ok(all(s.backend == y.name for s in served),
           f"{tag}: with {x.name} killed, new clients are served by {y.name}",
           "; ".join(f"{s.backend}: {s.describe()}" for s in served if s.backend != y.name))

    renewed = env.path(f"fo-{version}-1.pem")
    r = harness.s_client(usher.port, version, sess_in=first, sess_out=renewed)
    tap.ok(r.reused and r.backend == y.name,
           f"{tag}: the pinned session resumes (Reused) on {y.name}",
           f"reused={r.reused} backend={r.backend}; {r.describe()}")
    if not os.path.exists(renewed):
        tap.diag(f"{tag}: usher sent no new ticket on that resumption")

    backends[x.name] = env.backend(x.name, port=x.port)
    tap.diag(f"{tag}: {x.name} is back on port {x.port}")

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
    tap.ok(not problems,
           f"{tag}: with {x.name} back, the renewed ticket keeps the client on {y.name}",
           "\n".join(problems))


def body(tap, env):
    backends = {n: env.backend(n) for n in ("app-1", "app-2")}
    usher = env.usher(env.config(list(backends.values()), workers=2,
                                 timeouts={"connect": "2s"}))

    for version in ("1.3", "1.2"):
        round_for(tap, env, usher, backends, version)

    tap.ok(usher.alive(), "usher is still running")


harness.main(body)
