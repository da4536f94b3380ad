#!/usr/bin/env python3
"""
Clients that misbehave, with timeouts handshake: 1s and idle: 2s:

  - garbage instead of a ClientHello (an HTTP request, random bytes):
    closed, and counted as a failed handshake rather than a timeout, which
    shows usher did not just wait for the clock;
  - a client that connects and sends nothing: closed by the handshake
    timeout, not before;
  - a client that stops half-way through its ClientHello: closed;
  - a relayed connection that goes silent: closed by the idle timeout.

Normal clients are served all along, on a thread. Afterwards usher's
descriptor count is back to its baseline and usher is still running.
"""

import os
import socket
import ssl
import time

import harness

HANDSHAKE_S = 1.0
IDLE_S = 2.0
CLOSE_BOUND = 10.0  # generous; only stops a broken usher from hanging us


def raw_connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=harness.CLIENT_TIMEOUT)


def client_hello():
    """The bytes of a real TLS 1.3 ClientHello, from Python's OpenSSL."""
    ctx = harness.client_context("1.3")
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def closes(usher):
    m = usher.metrics()
    return {r: m.sum("usher_connections_closed_total", reason=r)
            for r in ("handshake_failed", "handshake_timeout", "idle_timeout")}


def delta(before, after):
    return {k: after[k] - before[k] for k in before}


def garbage_cases(tap, usher):
    payloads = {
        "an HTTP request": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "random bytes": os.urandom(512),
    }
    before = closes(usher)
    for what, data in payloads.items():
        with tap.case(f"garbage ({what}) instead of a ClientHello: closed"):
            with raw_connect(usher.port) as s:
                s.sendall(data)
                harness.wait_closed(s, CLOSE_BOUND)

    def counted():
        d = delta(before, closes(usher))
        return d if d["handshake_failed"] >= len(payloads) else None

    with tap.case("garbage is counted as failed handshakes, not timeouts"):
        try:
            d = harness.wait_until(counted, 5, "the close counters")
        except AssertionError:
            raise AssertionError(f"close counters moved by {delta(before, closes(usher))}")
        assert d["handshake_timeout"] == 0, f"close counters moved by {d}"


def silent_case(tap, usher):
    with tap.case("a client that sends nothing is closed by the handshake timeout"):
        with raw_connect(usher.port) as s:
            took = harness.wait_closed(s, CLOSE_BOUND)
        assert took >= HANDSHAKE_S / 2, f"closed after {took:.2f}s, before the timeout"
        tap.diag(f"silent client closed after {took:.2f}s")


def half_hello_case(tap, usher):
    hello = client_hello()
    with tap.case(f"a client that stops mid-ClientHello ({len(hello) // 2} of "
                  f"{len(hello)} bytes) is closed"):
        with raw_connect(usher.port) as s:
            s.sendall(hello[: len(hello) // 2])
            took = harness.wait_closed(s, CLOSE_BOUND)
        tap.diag(f"half-hello client closed after {took:.2f}s")


def silent_relay_case(tap, usher):
    with tap.case("a relayed connection that goes silent is closed by the idle timeout"):
        with harness.tls_connect(usher.port, "1.3") as s:
            harness.exchange(s)
            took = harness.wait_closed(s, CLOSE_BOUND + IDLE_S)
        assert took >= IDLE_S / 2, f"closed after {took:.2f}s, before the idle timeout"
        tap.diag(f"silent relay closed after {took:.2f}s")


def body(tap, env):
    backends = [env.backend("app-1"), env.backend("app-2")]
    cfg = env.config(backends, workers=2,
                     timeouts={"handshake": "1s", "idle": "2s"},
                     health_check={"interval": "1h", "timeout": "1s", "fall": 3, "rise": 2})
    usher = env.usher(cfg)

    harness.one_request(usher.port)
    harness.one_request(usher.port)
    baseline = usher.stable_fd_count()
    tap.diag(f"usher descriptors at baseline: {baseline}")

    def polite():
        name = harness.one_request(usher.port, "1.3")
        time.sleep(0.05)
        return name

    load = harness.Load(polite)
    load.start()
    try:
        garbage_cases(tap, usher)
        silent_case(tap, usher)
        half_hello_case(tap, usher)
        silent_relay_case(tap, usher)
    finally:
        load.stop()

    tap.ok(load.done >= 5 and not load.failures,
           f"normal clients were served throughout ({load.done} served, "
           f"{len(load.failures)} failed)",
           "\n".join(load.failures[:5]))

    with tap.case("usher's descriptor count returns to its baseline"):
        try:
            harness.wait_until(lambda: usher.fd_count() <= baseline, 15, "the fd count")
        except AssertionError:
            raise AssertionError(f"baseline {baseline}, now {usher.fd_count()}: "
                                 + harness.fd_listing(usher.pid))

    tap.ok(usher.alive(), "usher is still running")
    with tap.case("a new client is served afterwards"):
        harness.one_request(usher.port)


harness.main(body)
