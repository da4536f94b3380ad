#!/usr/bin/env python3
"""
PROXY protocol towards the backend. One usher with two listeners, one
sending PROXY v1 and one v2, in front of a backend started with
--proxy-protocol, which answers "whoami" with what the header told it:

    proxy <src-ip>:<port> sni=<sni> alpn=<alpn> version=<ver>

The source address must be the client's real one (its ephemeral port),
and v2's TLVs must carry the SNI (localhost), the ALPN protocol chosen
(h2) and the TLS version the client negotiated.
"""

import copy
import re

import harness

WHOAMI = re.compile(r"proxy (\S+):(\d+) sni=(\S*) alpn=(\S*) version=(\S*)")


def whoami(port, version):
    with harness.tls_connect(port, version, alpn=["h2", "http/1.1"]) as s:
        src_ip, src_port = s.getsockname()
        chosen = s.selected_alpn_protocol()
        s.sendall(b"whoami\n")
        answer = harness.read_line(s)
    m = WHOAMI.search(answer)
    if not m:
        raise AssertionError(f"whoami answered {answer!r}")
    return (src_ip, src_port, chosen), m.groups()


def check(tap, usher, listener, version):
    tag = f"PROXY {listener} over TLS {version}"
    port = usher.listener_port(listener)
    try:
        (ip, sport, chosen), (pip, pport, sni, alpn, ver) = whoami(port, version)
    except (AssertionError, OSError) as e:
        tap.ok(False, f"{tag}: the backend answers whoami", str(e))
        return

    tap.ok(pip == ip and int(pport) == sport,
           f"{tag}: the backend sees the client's address {ip}:{sport}",
           f"backend saw {pip}:{pport}")
    if listener != "v2":
        return

    tap.ok(sni == "localhost", f"{tag}: sni=localhost", f"sni={sni!r}")
    tap.ok(chosen == "h2" and alpn == "h2", f"{tag}: alpn=h2",
           f"client negotiated {chosen!r}, header says alpn={alpn!r}")
    want = "TLSv1.3" if version == "1.3" else "TLSv1.2"
    tap.ok(ver == want, f"{tag}: version={want}", f"version={ver!r}")


def body(tap, env):
    backend = env.backend("app-pp", args=["--proxy-protocol"])
    cfg = env.config([backend], alpn=["h2", "http/1.1"], proxy_protocol="v1", listener="v1")
    second = copy.deepcopy(cfg["listeners"][0])
    second.update(name="v2", proxy_protocol="v2", bind=f"127.0.0.1:{env.free_port()}")
    cfg["listeners"].append(second)
    usher = env.usher(cfg)

    for listener in ("v1", "v2"):
        for version in ("1.3", "1.2"):
            check(tap, usher, listener, version)

    tap.ok(usher.alive(), "usher is still running")


harness.main(body)
