#!/usr/bin/env python3
"""
usher's DPDK engine over a bad link: the test-only fault injector
(USHER_DPDK_FAULTS) drops 5%, duplicates 5% and delays 5% of the frames
in each direction of each worker (delays of up to 2 ms reorder them). The
userspace stack must hide all of it:

- ICMP echo still gets an answer (a few tries: either way may lose it);
- full and resumed handshakes, TLS 1.2 and 1.3, stay on their backend;
- 1 MiB each way arrives byte-exact, twice at once;
- and the injector really did drop, duplicate and delay frames, and the
  stack really did retransmit, or the test proved nothing.
"""

import os
import threading

import tapnet
from tapnet import harness

IFACE = "ushtap3"
MIB = 1 << 20
FAULTS = "seed=7,drop=50000,dup=50000,delay=50000,delay_max_us=2000"


def check_ping(tap):
    with tap.case("ICMP echo is answered through the faulty link"):
        for _ in range(10):
            if tapnet.ping(timeout=1.0) is not None:
                return
        raise AssertionError("no echo reply to ten requests")


def check_resumption(tap, net, version):
    with tap.case(f"TLS {version}: full, then 3 resumed handshakes on the same backend"):
        first = net.env.path(f"f{version}-0.pem")
        r = tapnet.s_client(version, sess_out=first, timeout=30)
        assert r.backend is not None and r.new, f"full handshake: {r.describe()}"
        current = first
        for n in range(3):
            renewed = net.env.path(f"f{version}-{n + 1}.pem")
            if version == "1.3":
                again = tapnet.s_client(version, sess_in=current, sess_out=renewed, timeout=30)
                current = renewed if os.path.exists(renewed) else current
            else:
                again = tapnet.s_client(version, sess_in=current, timeout=30)
            assert again.reused, f"resumption {n + 1}: not reused; {again.describe()}"
            assert again.backend == r.backend, \
                f"resumption {n + 1}: served by {again.backend}, pinned to {r.backend}"


def check_transfers(tap):
    results, errors = [], []

    def run(version):
        try:
            results.append(tapnet.transfer(harness.client_context(version), MIB, timeout=150))
        except Exception as e:  # noqa: BLE001 - every failure is reported
            errors.append(f"TLS {version}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=run, args=(v,)) for v in ("1.3", "1.2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=200)

    tap.ok(not errors and len(results) == 2,
           "1 MiB each way, TLS 1.3 and TLS 1.2 at once, byte-exact through the faults",
           "\n".join(errors) or f"{len(results)} of 2 finished")


def check_faults_happened(tap, usher):
    m = usher.metrics()
    for direction in ("rx", "tx"):
        for fault in ("dropped", "duplicated", "delayed"):
            n = m.sum("usher_dpdk_faults_total", direction=direction, fault=fault)
            tap.ok(n > 0, f"the injector {fault} {direction} frames", f"count {n}")
    rtx = m.sum("usher_dpdk_retransmits_total")
    tap.ok(rtx > 0, "the userspace stack retransmitted lost segments", f"retransmits {rtx}")
    tap.diag(f"faults: {m.grep('usher_dpdk_faults_total')}")
    tap.diag(f"retransmits: {rtx:.0f}")


def body(tap, net):
    usher = net.start(workers=2, faults=FAULTS)
    tap.ok("USHER_DPDK_FAULTS is set" in usher.stderr(),
           "usher warns at start that the fault injector is on")

    check_ping(tap)
    for version in ("1.3", "1.2"):
        check_resumption(tap, net, version)
    check_transfers(tap)
    check_faults_happened(tap, usher)

    tap.ok(usher.alive(), "usher is still running")
    status = usher.stop()
    tap.ok(status == 0, "SIGTERM: usher exits with status 0", f"exit status {status}")


tapnet.main(body, IFACE)
