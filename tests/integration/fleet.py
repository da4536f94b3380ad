#!/usr/bin/env python3
"""
A fleet: two usher instances, A and B, on different ports with the same
ticket secret and the same listener and pool names. A session made at A
resumes at B (Reused) and lands on the backend A chose; the reverse too.
Several sessions per version so that both backends are among the pinned
ones: the check holds for each, not by luck.
"""

import harness

SESSIONS = 4


def cross(tap, env, version, origin, other):
    pinned = []
    with tap.case(f"TLS {version}: {SESSIONS} full handshakes at {origin.name}"):
        for i in range(SESSIONS):
            path = env.path(f"{origin.name}-{version}-{i}.pem")
            r = harness.s_client(origin.port, version, sess_out=path)
            assert r.backend is not None, f"session {i}: no answer; {r.describe()}"
            assert not r.reused, f"session {i}: unexpectedly resumed; {r.describe()}"
            pinned.append((i, path, r.backend))

    tap.ok(sorted({b for _, _, b in pinned}) == ["app-1", "app-2"],
           f"TLS {version}: sessions from {origin.name} went to both backends",
           f"backends: {[b for _, _, b in pinned]}")

    for i, path, backend in pinned:
        renewed = env.path(f"{origin.name}-{version}-{i}-at-{other.name}.pem")
        r = harness.s_client(other.port, version, sess_in=path, sess_out=renewed)
        tap.ok(r.reused and r.backend == backend,
               f"TLS {version}: session {i} from {origin.name} resumes at {other.name} "
               f"on {backend}",
               f"reused={r.reused} backend={r.backend}; {r.describe()}")


def body(tap, env):
    backends = [env.backend("app-1"), env.backend("app-2")]
    a = env.usher(env.config(backends, workers=2), name="A")
    b = env.usher(env.config(backends, workers=2), name="B")
    assert a.port != b.port

    for version in ("1.2", "1.3"):
        cross(tap, env, version, a, b)
    cross(tap, env, "1.3", b, a)

    tap.ok(a.alive() and b.alive(), "both usher instances are still running")


harness.main(body)
