#!/usr/bin/env python3
"""
Failover of a pinned session. A session is pinned to backend X; X is
killed (SIGKILL). New clients are still served, by the other backend Y.
The pinned client resumes (Reused) and lands on Y, and the ticket it gets
back names Y: when X is back (same name, same port) and usher sees it up
again, resuming with that renewed ticket stays on Y. Done for TLS 1.3 and
TLS 1.2.

Under TLS 1.3 the client resumes right after the kill: usher can hand it
a new ticket once it knows where the connection went. Under TLS 1.2 the
only ticket is written during the handshake, before usher could learn
from a failed connect that X is gone, so there the client resumes once
usher's health check has marked X down.

TLS 1.3 uses openssl s_client, always offering the newest ticket. TLS 1.2
uses Python's ssl: s_client's -sess_out is written from OpenSSL's
new-session callback, which OpenSSL does not call for a resumed TLS 1.2
handshake, so s_client cannot save a ticket renewed on resumption.
"""

import os

import harness

NEW_CLIENTS = 4  # round robin would give X some of them if X were still used


class SClientChain:
    """TLS 1.3 with openssl s_client: -sess_in the newest, -sess_out a new file."""

    def __init__(self, env, usher, version):
        self.env = env
        self.usher = usher
        self.version = version
        self.n = 0
        self.current = None

    def connect(self):
        """Full handshake first, then resumptions. Returns (reused, backend, note)."""
        path = self.env.path(f"fo-{self.version}-{self.n}.pem")
        self.n += 1
        r = harness.s_client(self.usher.port, self.version, sess_in=self.current,
                             sess_out=path)
        note = r.describe()
        if os.path.exists(path):
            self.current = path
        else:
            note = "no new ticket came back; " + note
        return r.reused, r.backend, note


class PythonChain:
    """TLS 1.2 with Python's ssl, carrying the session forward."""

    def __init__(self, env, usher, version):
        self.usher = usher
        self.ctx = harness.client_context(version)
        self.session = None

    def connect(self):
        try:
            reused, backend, self.session = harness.session_request(
                self.usher.port, self.ctx, self.session)
        except (OSError, AssertionError) as e:
            return False, None, f"{type(e).__name__}: {e}"
        return reused, backend, ""


def server_up(usher, name):
    """True or False from usher_server_up, None if usher does not report it."""
    m = usher.metrics()
    if not any(n == "usher_server_up" and l.get("server") == name for n, l, _ in m.samples):
        return None
    return m.sum("usher_server_up", server=name) == 1


def wait_health(tap, usher, tag, name, up):
    word = "up" if up else "down"
    with tap.case(f"{tag}: usher's health check sees {name} {word}"):
        harness.wait_until(lambda: server_up(usher, name) is up, 30,
                           f'usher_server_up{{server="{name}"}} to read {int(up)}')


def kill_pinned(tap, usher, backends, version, chain):
    """A full handshake pins the chain to X; X is killed. Returns (X, Y)."""
    tag = f"TLS {version}"
    reused, backend, note = chain.connect()
    if not tap.ok(backend in backends and not reused, f"{tag}: full handshake served", note):
        return None, None
    x = backends[backend]
    y = [b for n, b in backends.items() if n != x.name][0]
    tap.diag(f"{tag}: session pinned to {x.name}; killing it")
    x.kill()

    served = [harness.s_client(usher.port, version) for _ in range(NEW_CLIENTS)]
    tap.ok(all(s.backend == y.name for s in served),
           f"{tag}: with {x.name} killed, new clients are served by {y.name}",
           "; ".join(f"{s.backend}: {s.describe()}" for s in served if s.backend != y.name))
    if version == "1.2":
        wait_health(tap, usher, tag, x.name, up=False)
    return x, y


def round_for(tap, env, usher, backends, version, chain):
    tag = f"TLS {version}"
    x, y = kill_pinned(tap, usher, backends, version, chain)
    if x is None:
        return

    reused, backend, note = chain.connect()
    tap.ok(reused and backend == y.name,
           f"{tag}: the pinned session resumes (Reused) on {y.name}",
           f"reused={reused} backend={backend}; {note}")

    backends[x.name] = env.backend(x.name, port=x.port)
    wait_health(tap, usher, tag, x.name, up=True)

    problems = []
    for n in range(3):
        reused, backend, note = chain.connect()
        if not reused or backend != y.name:
            problems.append(f"try {n + 1}: reused={reused} backend={backend}; {note}")
    tap.ok(not problems,
           f"{tag}: with {x.name} back, the renewed ticket keeps the client on {y.name}",
           "\n".join(problems))


def body(tap, env):
    backends = {n: env.backend(n) for n in ("app-1", "app-2")}
    usher = env.usher(env.config(list(backends.values()), workers=2,
                                 timeouts={"connect": "2s"}))

    round_for(tap, env, usher, backends, "1.3", SClientChain(env, usher, "1.3"))
    round_for(tap, env, usher, backends, "1.2", PythonChain(env, usher, "1.2"))

    tap.ok(usher.alive(), "usher is still running")


harness.main(body)
