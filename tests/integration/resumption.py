#!/usr/bin/env python3
"""
Resumption keeps a client on its backend (ticket affinity), over TLS 1.2
and TLS 1.3, with two workers.

For each version several sessions start with a full handshake; round robin
must hand them to both backends, so the check below proves affinity and
not luck. Each session is then resumed 20 times: every resumption must be
"Reused" and land on the backend its full handshake got. Under TLS 1.3 the
client always offers the newest ticket (-sess_out to a new file, -sess_in
the previous one), the way browsers use tickets once; under TLS 1.2 it
offers the same session each time.
"""

import harness

INITIAL_SESSIONS = 6  # per-worker round robin cannot give one backend all six
RESUMPTIONS = 20


def resume_chain(env, port, version, index, first_file, pinned):
    """Resume RESUMPTIONS times; return a list of problems (empty if none)."""
    problems = []
    current = first_file
    for n in range(RESUMPTIONS):
        if version == "1.3":
            renewed = env.path(f"s{version}-{index}-{n + 1}.pem")
            r = harness.s_client(port, version, sess_in=current, sess_out=renewed)
            current = renewed
        else:
            r = harness.s_client(port, version, sess_in=current)
        if not r.reused:
            problems.append(f"resumption {n + 1}: not reused; {r.describe()}")
        if r.backend != pinned:
            problems.append(f"resumption {n + 1}: served by {r.backend}, pinned to {pinned}")
        if len(problems) >= 4:
            problems.append("(stopped this chain after 4 problems)")
            break
    return problems


def check_version(tap, env, usher, version):
    starts = []
    with tap.case(f"TLS {version}: {INITIAL_SESSIONS} full handshakes are served"):
        for i in range(INITIAL_SESSIONS):
            path = env.path(f"s{version}-{i}-0.pem")
            r = harness.s_client(usher.port, version, sess_out=path)
            assert r.backend is not None, f"session {i}: no answer; {r.describe()}"
            assert r.new and not r.reused, f"session {i}: expected a full handshake; {r.describe()}"
            starts.append((i, path, r.backend))

    backends = sorted({b for _, _, b in starts})
    tap.ok(backends == ["app-1", "app-2"],
           f"TLS {version}: round robin sent the initial sessions to both backends",
           f"initial backends: {[b for _, _, b in starts]}")

    for i, path, pinned in starts:
        problems = resume_chain(env, usher.port, version, i, path, pinned)
        tap.ok(not problems,
               f"TLS {version}: session {i}: {RESUMPTIONS} resumptions all Reused on {pinned}",
               "\n".join(problems))


def body(tap, env):
    backends = [env.backend("app-1"), env.backend("app-2")]
    usher = env.usher(env.config(backends, workers=2))

    for version in ("1.2", "1.3"):
        check_version(tap, env, usher, version)

    tap.ok(usher.alive(), "usher is still running")


harness.main(body)
