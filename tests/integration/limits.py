#!/usr/bin/env python3
"""
limits.max_connections: 4 with one worker. Four idle TLS connections are
held; a fifth is closed at once (well before the 30s handshake timeout
could do it) and usher_connections_rejected_total counts it. The four
still work, and once one of them closes a new client gets in.
"""

import ssl

import harness

LIMIT = 4
AT_ONCE = 5.0  # seconds; the handshake timeout is 30s


def open_count(usher):
    return usher.metrics().sum("usher_connections_open")


def body(tap, env):
    backend = env.backend("app-1")
    usher = env.usher(env.config([backend], workers=1, limits={"max_connections": LIMIT},
                                 timeouts={"handshake": "30s"}))
    harness.wait_until(lambda: open_count(usher) == 0, 10,
                       "the readiness probes to be closed")

    held = []
    try:
        with tap.case(f"{LIMIT} TLS connections are accepted and relay"):
            for _ in range(LIMIT):
                s = harness.tls_connect(usher.port)
                held.append(s)
                harness.exchange(s)

        with tap.case(f"connection {LIMIT + 1} is closed at once"):
            try:
                extra = harness.tls_connect(usher.port, timeout=AT_ONCE)
            except (ConnectionError, ssl.SSLError) as e:
                tap.diag(f"connection {LIMIT + 1}: {type(e).__name__}: {e}")
            except OSError as e:
                raise AssertionError(f"not closed within {AT_ONCE:g}s: {e}")
            else:
                with extra:
                    # TLS 1.3 can finish the client's side of the handshake
                    # before the server's close arrives; then the first read
                    # must see the end.
                    harness.wait_closed(extra, AT_ONCE)

        with tap.case("usher_connections_rejected_total counts it"):
            try:
                harness.wait_until(
                    lambda: usher.metrics().sum("usher_connections_rejected_total") == 1,
                    5, "the rejected counter to read 1")
            except AssertionError:
                raise AssertionError(usher.metrics().grep("usher_connections_rejected_total"))

        with tap.case(f"the {LIMIT} held connections still relay"):
            for s in held:
                harness.exchange(s)

        with tap.case("after one closes, a new client is served"):
            s = held.pop()
            s.unwrap()
            s.close()
            harness.wait_until(lambda: open_count(usher) == LIMIT - 1, 5,
                               f"usher to count {LIMIT - 1} open connections")
            assert harness.one_request(usher.port) == "app-1"
    finally:
        for s in held:
            s.close()

    tap.ok(usher.alive(), "usher is still running")


harness.main(body)
