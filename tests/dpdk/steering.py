#!/usr/bin/env python3
"""
An upstream that speaks after a long silence still reaches the worker
that opened the connection.

On net_tap the kernel picks the RX queue of a flow from the queue usher
last sent that flow on, and forgets it after about 3 s of silence from
usher; then it hashes the flow, which for an upstream connection is the
other worker's queue half of the time. That worker's stack does not know
the connection and would reset it. usher opens upstream connections from
a slice of ephemeral ports per worker and passes a segment to the worker
owning its port. This test needs a backend that answers 5 s after the
request, so the kernel has forgotten the flow when the answer comes: a
small Python server in this process (the regular testbackend answers at
once). Each round opens 8 connections at once; a round in which no
segment had to be passed on is repeated (the hash decides), up to three.
"""

import socket
import threading
import time
import uuid

import tapnet
from tapnet import harness

IFACE = "ushtap4"
DELAY = 5.0
PER_ROUND = 8
ROUNDS = 3
IP_FREEBIND = 15


class SlowServer(threading.Thread):
    """Answers 'slow <line>' to each line, DELAY seconds after it came."""

    name = "slow"
    port = 9009

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # The address appears only once usher has made the tap.
        self.sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
        self.sock.bind((tapnet.KERNEL_IP, self.port))
        self.sock.listen(64)

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    @staticmethod
    def serve(conn):
        with conn:
            data = b""
            while True:
                try:
                    chunk = conn.recv(4096)
                except OSError:
                    return
                if not chunk:
                    return
                data += chunk
                while b"\n" in data:
                    line, data = data.split(b"\n", 1)
                    time.sleep(DELAY)
                    conn.sendall(b"slow " + line + b"\n")


def slow_request(results, errors):
    line = f"late-{uuid.uuid4().hex[:12]}"
    try:
        with tapnet.tls_connect(harness.client_context("1.3"), timeout=DELAY + 10) as s:
            s.sendall((line + "\n").encode())
            answer = harness.read_line(s, timeout=DELAY + 10)
        if answer != f"slow {line}":
            errors.append(f"sent {line!r}, got {answer!r}")
        else:
            results.append(answer)
    except Exception as e:  # noqa: BLE001 - every failure is reported
        errors.append(f"{type(e).__name__}: {e}")


def one_round(tap, usher, n):
    results, errors = [], []
    threads = [threading.Thread(target=slow_request, args=(results, errors))
               for _ in range(PER_ROUND)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=DELAY + 30)
    tap.ok(not errors and len(results) == PER_ROUND,
           f"round {n}: {PER_ROUND} answers that came {DELAY:g} s late all arrived",
           "\n".join(errors) or f"{len(results)} of {PER_ROUND}")
    return usher.metrics().sum("usher_dpdk_steered_total")


def body(tap, net):
    slow = SlowServer()
    slow.start()
    usher = net.start(names=(), workers=2, extra=[slow])

    steered = 0
    for n in range(1, ROUNDS + 1):
        steered = one_round(tap, usher, n)
        if steered > 0:
            break

    tap.ok(steered > 0, "segments of upstream flows the tap sent to the other queue were "
           "passed to the worker owning them", f"usher_dpdk_steered_total {steered:.0f}")
    with tap.case("every connection is closed once the clients are gone"):
        tapnet.wait_no_connections(usher)
    tap.ok(usher.alive(), "usher is still running")
    status = usher.stop()
    tap.ok(status == 0, "SIGTERM: usher exits with status 0", f"exit status {status}")


tapnet.main(body, IFACE)
