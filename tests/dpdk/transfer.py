#!/usr/bin/env python3
"""
Bulk data through usher's DPDK engine over net_tap, byte for byte.

A Python ssl client on the kernel side sends 1 MiB of distinct lines to
10.77.0.2 while reading at the same time; the backend answers every line
with "<name> <line>", so 1 MiB comes back. Every byte of the answer must
be what the backend wrote. Done once under TLS 1.3, once under TLS 1.2,
then four transfers at once over two workers. Clients that leave without
close_notify (FIN, RST, or a half-close that waits for usher to finish)
must not leave connections open.
"""

import threading

import tapnet
from tapnet import harness

IFACE = "ushtap2"
MIB = 1 << 20
PARALLEL = 4


def one(tap, version):
    with tap.case(f"TLS {version}: 1 MiB each way through the DPDK port, byte-exact"):
        backend, sent, got = tapnet.transfer(harness.client_context(version), MIB)
        assert sent >= MIB and got >= MIB, f"sent {sent}, received {got}"
        tap.diag(f"TLS {version}: {sent} bytes to {backend}, {got} bytes back")


def parallel(tap, version):
    results, errors = [], []

    def run():
        try:
            results.append(tapnet.transfer(harness.client_context(version), MIB, timeout=120))
        except Exception as e:  # noqa: BLE001 - every failure is reported
            errors.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=run) for _ in range(PARALLEL)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)

    tap.ok(not errors and len(results) == PARALLEL,
           f"TLS {version}: {PARALLEL} transfers of 1 MiB at once, all byte-exact",
           "\n".join(errors) or f"{len(results)} of {PARALLEL} finished")


def abrupt(tap, usher):
    for how in ("close", "reset", "half-close"):
        with tap.case(f"clients that {how} without close_notify leave no connection open"):
            for _ in range(6):
                assert tapnet.abrupt_exchange(how) is not None
            tapnet.wait_no_connections(usher)


def body(tap, net):
    usher = net.start(workers=2)

    one(tap, "1.3")
    one(tap, "1.2")
    parallel(tap, "1.3")
    abrupt(tap, usher)

    m = usher.metrics()
    tap.diag("retransmits: " + m.grep("usher_dpdk_retransmits_total").replace("\n", ", "))
    tap.ok(usher.alive(), "usher is still running")
    status = usher.stop()
    tap.ok(status == 0, "SIGTERM: usher exits with status 0", f"exit status {status}")


tapnet.main(body, IFACE)
