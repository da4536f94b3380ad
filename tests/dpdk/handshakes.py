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
- A reload that adds a listener port opens it on every worker's stack; a
  reload that drops it closes it again.
- SIGTERM stops usher with status 0, and its tap interface goes away.
- Before all that: a listener bound off the DPDK port, or an IPv6
  server, makes usher refuse to start, saying why.
"""

import copy
import os
import socket
import subprocess

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


def refuses(net, name, cfg, why):
    """usher exits non-zero before touching DPDK, and says why on stderr."""
    path = net.env.path(f"{name}.yaml")
    with open(path, "w") as f:
        f.write(harness.to_yaml(cfg))
    run = subprocess.run([harness.USHER, "-c", path], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=30)
    assert run.returncode != 0, f"usher started with {name}: {run.stderr[-400:]}"
    assert why in run.stderr, f"no '{why}' in usher's stderr: {run.stderr[-400:]}"


def check_refusals(tap, net):
    backend = tapnet.TapBackend(net.env, "app-1", 9001, [])
    cfg = net.config([backend], workers=1)

    with tap.case("a listener bound to 127.0.0.1 is refused: not on the DPDK port"):
        bad = copy.deepcopy(cfg)
        bad["listeners"][0]["bind"] = "127.0.0.1:8443"
        refuses(net, "bad-bind", bad, "is not on the DPDK port")

    with tap.case("an IPv6 upstream server is refused: the stack is IPv4 only"):
        bad = copy.deepcopy(cfg)
        bad["pools"][0]["servers"][0]["address"] = "[::1]:9001"
        refuses(net, "bad-server", bad, "is not IPv4")


def refused(port):
    try:
        with socket.create_connection((tapnet.USHER_IP, port), timeout=3):
            return False
    except ConnectionRefusedError:
        return True


def check_reload(tap, usher):
    cfg = copy.deepcopy(usher.cfg)
    extra = copy.deepcopy(cfg["listeners"][0])
    extra["name"] = "tls2"
    extra["bind"] = f"{tapnet.USHER_IP}:8444"
    cfg["listeners"].append(extra)

    with tap.case("reload: a new listener on port 8444 serves clients"):
        assert refused(8444), "port 8444 accepted before the reload"
        usher.reload(cfg)
        harness.wait_until(lambda: not refused(8444), 15, "port 8444 to accept")
        for _ in range(4):  # both workers' stacks, whichever queue a flow gets
            r = tapnet.s_client("1.3", port=8444)
            assert r.backend is not None, f"no answer on 8444; {r.describe()}"

    with tap.case("reload: dropping that listener closes port 8444 again"):
        cfg["listeners"].pop()
        usher.reload(cfg)
        harness.wait_until(lambda: refused(8444), 15, "port 8444 to refuse")
        assert tapnet.s_client("1.3").backend is not None, "port 8443 stopped serving"


def body(tap, net):
    check_refusals(tap, net)
    usher = net.start(workers=2)

    with tap.case("ICMP echo to 10.77.0.2 is answered by the userspace stack"):
        rtts = [tapnet.ping() for _ in range(3)]
        assert any(r is not None for r in rtts), "no echo reply to three requests"

    for version in ("1.2", "1.3"):
        check_version(tap, net, version)

    check_metrics(tap, usher)
    check_reload(tap, usher)
    tap.ok(usher.alive(), "usher is still running")

    status = usher.stop()
    tap.ok(status == 0, "SIGTERM: usher exits with status 0", f"exit status {status}")
    tap.ok(not os.path.exists(f"/sys/class/net/{IFACE}"),
           f"the tap interface {IFACE} is gone with usher")


tapnet.main(body, IFACE)
