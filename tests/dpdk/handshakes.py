#!/usr/bin/env python3
"""
usher's DPDK engine end to end, over net_tap: two workers, each with its
own queue pair and userspace TCP/IP stack, two backends on the kernel side
of the tap.

- ICMP echo to usher's address is answered (the stack's own ICMP).
- TLS 1.2 and TLS 1.3 full handshakes with openssl s_client are served by
  both backends (round robin), and each session resumes, Reused, on the
  backend its full handshake got (ticket affinity); under TLS 1.3 the
  client always offers the newest ticket.
- Both workers accepted client connections: the tap spread the flows and
  each worker's stack answered its own, and reached the backends (which
  needs ARP answers that only one worker received, passed to the other).
- The usher_dpdk_* metric families report both workers.
- SIGTERM stops usher with status 0, and its tap interface goes away.
"""

import os

import tapnet
from tapnet import harness

IFACE = "ushtap1"
SESSIONS = 4
RESUMPTIONS = 4


def resume_chain(net, version, index, first, pinned):
    problems = []
    current = first
    for n in range(RESUMPTIONS):
        renewed = net.env.path(f"s{version}-{index}-{n + 1}.pem")
        if version == "1.3":
            r = tapnet.s_client(version, sess_in=current, sess_out=renewed)
            current = renewed if os.path.exists(renewed) else current
        else:
            r = tapnet.s_client(version, sess_in=current)
        if not r.reused:
            problems.append(f"resumption {n + 1}: not reused; {r.describe()}")
        if r.backend != pinned:
            problems.append(f"resumption {n + 1}: served by {r.backend}, pinned to {pinned}")
    return problems


def check_version(tap, net, version):
    starts = []
    with tap.case(f"TLS {version}: {SESSIONS} full handshakes over the DPDK port are served"):
        for i in range(SESSIONS):
            path = net.env.path(f"s{version}-{i}-0.pem")
            r = tapnet.s_client(version, sess_out=path)
            assert r.backend is not None, f"session {i}: no answer; {r.describe()}"
            assert r.new and not r.reused, f"session {i}: not a full handshake; {r.describe()}"
            starts.append((i, path, r.backend))

    tap.ok(sorted({b for _, _, b in starts}) == ["app-1", "app-2"],
           f"TLS {version}: the full handshakes reached both backends",
           f"backends: {[b for _, _, b in starts]}")

    for i, path, pinned in starts:
        problems = resume_chain(net, version, i, path, pinned)
        tap.ok(not problems,
               f"TLS {version}: session {i}: {RESUMPTIONS} resumptions Reused on {pinned}",
               "\n".join(problems))


def check_metrics(tap, usher):
    m = usher.metrics()
    for family in ("usher_dpdk_drops_total", "usher_dpdk_retransmits_total",
                   "usher_dpdk_tcp_connections", "usher_dpdk_port_rx_packets_total"):
        tap.ok(m.has(family), f"metrics: {family} is reported")
    for worker in (0, 1):
        rx = m.sum("usher_dpdk_rx_packets_total", worker=worker)
        tx = m.sum("usher_dpdk_tx_packets_total", worker=worker)
        tap.ok(rx > 0 and tx > 0, f"metrics: worker {worker} received and sent frames",
               f"rx {rx}, tx {tx}")
        accepted = m.sum("usher_connections_accepted_total", worker=worker)
        tap.ok(accepted > 0, f"worker {worker} accepted client connections over its queue",
               m.grep("usher_connections_accepted_total"))


def body(tap, net):
    usher = net.start(workers=2)

    with tap.case("ICMP echo to 10.77.0.2 is answered by the userspace stack"):
        rtts = [tapnet.ping() for _ in range(3)]
        assert any(r is not None for r in rtts), "no echo reply to three requests"

    for version in ("1.2", "1.3"):
        check_version(tap, net, version)

    check_metrics(tap, usher)
    tap.ok(usher.alive(), "usher is still running")

    status = usher.stop()
    tap.ok(status == 0, "SIGTERM: usher exits with status 0", f"exit status {status}")
    tap.ok(not os.path.exists(f"/sys/class/net/{IFACE}"),
           f"the tap interface {IFACE} is gone with usher")


tapnet.main(body, IFACE)
