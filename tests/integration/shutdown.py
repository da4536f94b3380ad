#!/usr/bin/env python3
"""
Graceful shutdown.

  - SIGTERM with a connection established: new connections are refused,
    the established one still finishes its exchange, and usher exits with
    status 0 within timeouts.shutdown.
  - SIGINT: the same.
  - shutdown: 1s and a connection that never finishes: usher exits 0 after
    about a second, having closed that connection.
"""

import signal
import socket
import time

import harness

SHUTDOWN_S = 10.0
EXIT_GRACE = 5.0  # on top of timeouts.shutdown, for a slow machine


def refused(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def drain_case(tap, env, backend, sig, label):
    usher = env.usher(env.config([backend], workers=2), name=f"drain-{label}")
    s = harness.tls_connect(usher.port)
    try:
        first = harness.exchange(s)
        sent_at = time.monotonic()
        usher.signal(sig)

        with tap.case(f"{label}: new connections are refused"):
            harness.wait_until(lambda: refused(usher.port), 5,
                               "the listener to refuse connections")

        with tap.case(f"{label}: the established connection finishes its exchange"):
            second = harness.exchange(s)
            assert second == first, f"answered by {first}, then by {second}"
            try:
                s.unwrap()
            except OSError:
                pass
    finally:
        s.close()

    rc = usher.wait(SHUTDOWN_S + EXIT_GRACE)
    took = time.monotonic() - sent_at
    tap.ok(rc == 0 and took <= SHUTDOWN_S + EXIT_GRACE,
           f"{label}: usher exits with status 0 within timeouts.shutdown",
           f"exit status {rc} after {took:.1f}s (None: still running)\n"
           + harness.tail(usher.err_path))


def deadline_case(tap, env, backend):
    usher = env.usher(env.config([backend], timeouts={"shutdown": "1s"}), name="deadline")
    s = harness.tls_connect(usher.port)
    try:
        harness.exchange(s)
        sent_at = time.monotonic()
        usher.signal(signal.SIGTERM)
        rc = usher.wait(1 + 9)
        took = time.monotonic() - sent_at
        tap.ok(rc == 0 and took >= 0.5,
               "shutdown: 1s with a connection that never finishes: exit 0 after ~1s",
               f"exit status {rc} after {took:.1f}s (None: still running)\n"
               + harness.tail(usher.err_path))
        tap.diag(f"exited {took:.2f}s after SIGTERM")

        with tap.case("that connection was closed"):
            harness.wait_closed(s, 5)
    finally:
        s.close()


def body(tap, env):
    backend = env.backend("app-1")
    drain_case(tap, env, backend, signal.SIGTERM, "SIGTERM")
    drain_case(tap, env, backend, signal.SIGINT, "SIGINT")
    deadline_case(tap, env, backend)


harness.main(body)
