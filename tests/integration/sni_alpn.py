#!/usr/bin/env python3
"""
SNI and ALPN on a listener with two certificates, a.test (listed first,
so the default) and b.test, and alpn [h2, http/1.1]:

  - -servername b.test gets the b.test certificate, a.test gets a.test;
  - an unknown name gets the default (a.test);
  - a client that checks the chain against b.test's certificate alone
    accepts the handshake for b.test;
  - ALPN: h2 is selected when offered (alone or first), http/1.1 when only
    it is offered, none when the client offers none.
"""

import harness

SUBJECT_CN = r"^subject=.*\bCN\s*=\s*([^,\s/]+)"
ALPN = r"^(ALPN protocol: \S+|No ALPN negotiated)"


def sni_checks(tap, usher, version):
    cases = [("b.test", "b.test"), ("a.test", "a.test"), ("unknown.test", "a.test")]
    for name, want in cases:
        r = harness.s_client(usher.port, version, servername=name)
        cn = r.field(SUBJECT_CN)
        tap.ok(cn == want and r.backend == "app-1",
               f"TLS {version}: -servername {name} gets the {want} certificate and is relayed",
               f"certificate CN={cn} backend={r.backend}; {r.describe()}")


def verified_b(tap, env, usher):
    cert_b, _ = env.cert("b.test")
    with tap.case("a verifying client trusting only b.test's certificate accepts b.test"):
        ctx = harness.client_context("1.3", cafile=cert_b)
        with harness.tls_connect(usher.port, server_hostname="b.test", ctx=ctx) as s:
            subject = dict(x[0] for x in s.getpeercert()["subject"])
            assert subject.get("commonName") == "b.test", f"subject {subject}"
            assert "b.test" in [v for k, v in s.getpeercert().get("subjectAltName", ())
                                if k == "DNS"]
            harness.exchange(s)


def alpn_checks(tap, usher, version):
    cases = [("h2", "ALPN protocol: h2"),
             ("h2,http/1.1", "ALPN protocol: h2"),
             ("http/1.1", "ALPN protocol: http/1.1"),
             (None, "No ALPN negotiated")]
    for offer, want in cases:
        r = harness.s_client(usher.port, version, alpn=offer)
        got = r.field(ALPN)
        tap.ok(got == want and r.backend == "app-1",
               f"TLS {version}: offering {offer or 'no ALPN'} gives '{want}'",
               f"got {got!r} backend={r.backend}; {r.describe()}")


def body(tap, env):
    backend = env.backend("app-1")
    cert_a, key_a = env.cert("a.test")
    cert_b, key_b = env.cert("b.test")
    cfg = env.config([backend], alpn=["h2", "http/1.1"])
    cfg["listeners"][0]["certificates"] = [{"cert": cert_a, "key": key_a},
                                           {"cert": cert_b, "key": key_b}]
    usher = env.usher(cfg)

    for version in ("1.3", "1.2"):
        sni_checks(tap, usher, version)
    verified_b(tap, env, usher)
    for version in ("1.3", "1.2"):
        alpn_checks(tap, usher, version)

    tap.ok(usher.alive(), "usher is still running")


harness.main(body)
