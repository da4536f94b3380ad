#!/usr/bin/env python3
"""
Many idle TLS connections at once. The clients run non-blocking
handshakes from one selector; every one must complete, usher must report
them all open and stay up, and a new client must still be served. Then
they all close and usher's descriptor count returns to its baseline.

Issue #3 asks for 10,000. The count comes from USHER_IDLE_CLIENTS and
defaults to 2000 so CI stays fast; set USHER_IDLE_CLIENTS=10000 to run
the full figure (usher then needs two descriptors per client, so the hard
RLIMIT_NOFILE must allow that: the test skips, saying so, if it does not).
"""

import errno
import os
import selectors
import socket
import ssl
import time

import harness

CLIENTS = int(os.environ.get("USHER_IDLE_CLIENTS", "2000"))
WORKERS = 2
IN_FLIGHT = 256  # handshakes started but not finished, at most
OPEN_DEADLINE = 90.0
SAMPLE_EVERY = max(1, CLIENTS // 20)  # relay a line on these


class Opener:
    """Non-blocking connect + TLS handshake for many sockets at once."""

    def __init__(self, port, count):
        self.port = port
        self.count = count
        self.ctx = harness.client_context("1.3")
        self.sel = selectors.DefaultSelector()
        self.started = 0
        self.pending = 0
        self.ready = []
        self.failed = []

    def run(self, timeout):
        deadline = time.monotonic() + timeout
        while self.started < self.count or self.pending:
            if time.monotonic() > deadline:
                break
            while self.started < self.count and self.pending < IN_FLIGHT:
                self._start_one()
            for key, _ in self.sel.select(timeout=1.0):
                key.data(key.fileobj)
        self._drop_pending()
        return self.ready

    def _start_one(self):
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setblocking(False)
        err = raw.connect_ex(("127.0.0.1", self.port))
        self.started += 1
        self.pending += 1
        if err not in (0, errno.EINPROGRESS):
            self._fail(raw, OSError(err, os.strerror(err)), registered=False)
            return
        self.sel.register(raw, selectors.EVENT_WRITE, self._on_connected)

    def _on_connected(self, raw):
        self.sel.unregister(raw)
        err = raw.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._fail(raw, OSError(err, os.strerror(err)), registered=False)
            return
        tls = self.ctx.wrap_socket(raw, server_hostname="localhost",
                                   do_handshake_on_connect=False)
        self.sel.register(tls, selectors.EVENT_WRITE, self._on_handshake)

    def _on_handshake(self, tls):
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            self.sel.modify(tls, selectors.EVENT_READ, self._on_handshake)
            return
        except ssl.SSLWantWriteError:
            self.sel.modify(tls, selectors.EVENT_WRITE, self._on_handshake)
            return
        except (OSError, ssl.SSLError) as e:
            self._fail(tls, e, registered=True)
            return
        self.sel.unregister(tls)
        self.pending -= 1
        self.ready.append(tls)

    def _fail(self, sock, error, registered):
        if registered:
            self.sel.unregister(sock)
        sock.close()
        self.pending -= 1
        self.failed.append(f"{type(error).__name__}: {error}")

    def _drop_pending(self):
        for key in list(self.sel.get_map().values()):
            self._fail(key.fileobj, TimeoutError("handshake unfinished at the deadline"),
                       registered=True)
        self.sel.close()


def why_closed(usher):
    """usher's own account of closed and rejected connections, for a failure."""
    m = usher.metrics()
    lines = [f"{n}{l} {v:g}" for n, l, v in m.samples if v and n in (
        "usher_connections_closed_total", "usher_connections_rejected_total",
        "usher_handshake_failures_total", "usher_upstream_connect_failures_total")]
    return "usher's counters: " + ("; ".join(lines) or "all zero")


def body(tap, env):
    limit = harness.raise_fd_limit()
    need = 2 * CLIENTS + 500
    if limit < need:
        raise harness.Skip(f"{CLIENTS} clients need RLIMIT_NOFILE >= {need} for usher; "
                           f"the hard limit is {limit}")

    # max_connections is split evenly between workers and the kernel does
    # not spread connections evenly, so let each worker take them all.
    backend = env.backend("app-1")
    usher = env.usher(env.config([backend], workers=WORKERS,
                                 limits={"max_connections": WORKERS * (CLIENTS + 100)},
                                 timeouts={"handshake": "60s", "idle": "300s"}))
    harness.one_request(usher.port)
    baseline = usher.stable_fd_count()
    tap.diag(f"usher descriptors at baseline: {baseline}; opening {CLIENTS} clients")

    opener = Opener(usher.port, CLIENTS)
    clients = opener.run(OPEN_DEADLINE)
    try:
        tap.ok(len(clients) == CLIENTS,
               f"all {CLIENTS} idle TLS connections complete their handshakes",
               f"{len(clients)} completed, {len(opener.failed)} failed; first failures:\n"
               + "\n".join(opener.failed[:5]) + "\n" + why_closed(usher))
        tap.ok(usher.alive(), f"usher is up with {len(clients)} idle connections")

        with tap.case(f"usher reports {len(clients)} connections open"):
            try:
                harness.wait_until(lambda: usher.metrics().sum("usher_connections_open")
                                   == len(clients), 20, "the open-connections gauge")
            except AssertionError:
                raise AssertionError(usher.metrics().grep("usher_connections_open"))
        tap.diag(f"usher descriptors with {len(clients)} clients: {usher.fd_count()}")

        with tap.case(f"every {SAMPLE_EVERY}th idle connection still relays"):
            for s in clients[::SAMPLE_EVERY]:
                s.setblocking(True)
                harness.exchange(s)

        with tap.case("a new client is served meanwhile"):
            r = harness.s_client(usher.port, "1.3")
            assert r.backend == "app-1", r.describe()
    finally:
        for s in clients:
            s.close()

    with tap.case("after they close, usher's descriptor count returns to its baseline"):
        try:
            harness.wait_until(lambda: usher.fd_count() <= baseline, 30, "the fd count")
        except AssertionError:
            raise AssertionError(f"baseline {baseline}, now {usher.fd_count()}: "
                                 + harness.fd_listing(usher.pid))

    with tap.case("usher reports no connection open"):
        harness.wait_until(lambda: usher.metrics().sum("usher_connections_open") == 0, 10,
                           "the open-connections gauge to reach 0")
    tap.ok(usher.alive(), "usher is still running")


harness.main(body)
