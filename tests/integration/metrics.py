#!/usr/bin/env python3
"""
GET /metrics counts exactly what the test caused. With two workers the
test makes a known number of full and resumed handshakes over TLS 1.2 and
TLS 1.3 (different numbers per cell, so a swapped label shows), checks on
the client side that each was what it meant to be, and then expects
usher_handshakes_total{version,kind}, summed over workers, to match each
cell exactly. Connection counters agree with the connections made, and
ticket counters are present.
"""

import harness

PLAN = {  # version: (full, resumed)
    "1.2": (3, 5),
    "1.3": (2, 4),
}


def make_handshakes(env, port, version, full, resumed):
    """Returns what the client saw: {'full': n, 'resumed': n} and problems."""
    seen = {"full": 0, "resumed": 0}
    problems = []
    sessions = []
    for i in range(full):
        path = env.path(f"m{version}-{i}-0.pem")
        r = harness.s_client(port, version, sess_out=path)
        seen["resumed" if r.reused else "full"] += 1
        if r.backend is None or r.reused:
            problems.append(f"full {i}: {r.describe()}")
        sessions.append(path)

    for n in range(resumed):
        i = n % full
        current = sessions[i]
        renewed = env.path(f"m{version}-{i}-{n + 1}.pem")
        r = harness.s_client(port, version, sess_in=current,
                             sess_out=renewed if version == "1.3" else None)
        if version == "1.3":
            sessions[i] = renewed
        seen["resumed" if r.reused else "full"] += 1
        if r.backend is None or not r.reused:
            problems.append(f"resumption {n}: {r.describe()}")
    return seen, problems


def body(tap, env):
    backends = [env.backend("app-1"), env.backend("app-2")]
    usher = env.usher(env.config(backends, workers=2))
    open_now = lambda: usher.metrics().sum("usher_connections_open")  # noqa: E731
    harness.wait_until(lambda: open_now() == 0, 10, "the readiness probes to close")

    before = usher.metrics()
    with tap.case("before any client, every handshake counter is zero"):
        assert before.has("usher_handshakes_total"), \
            "no usher_handshakes_total in:\n" + "\n".join(before.names())
        assert before.sum("usher_handshakes_total") == 0, before.grep("usher_handshakes")

    seen = {}
    for version, (full, resumed) in PLAN.items():
        seen[version], problems = make_handshakes(env, usher.port, version, full, resumed)
        tap.ok(not problems,
               f"TLS {version}: the client saw {full} full and {resumed} resumed handshakes",
               "\n".join(problems))

    harness.wait_until(lambda: open_now() == 0, 10, "every test connection to close")
    m = usher.metrics()

    for version in PLAN:
        for kind in ("full", "resumed"):
            got = m.sum("usher_handshakes_total", version=version, kind=kind)
            want = seen[version][kind]
            tap.ok(got == want,
                   f'usher_handshakes_total{{version="{version}",kind="{kind}"}} sums to {want}',
                   f"metrics say {got:g}\n" + m.grep("usher_handshakes_total"))

    workers = {l.get("worker") for n, l, _ in m.samples if n == "usher_handshakes_total"}
    tap.ok(workers == {"0", "1"}, "usher_handshakes_total has a series per worker",
           f"worker labels: {sorted(w or '' for w in workers)}")

    made = sum(f + r for f, r in PLAN.values())
    with tap.case(f"usher_connections_accepted_total = {made} clients + "
                  f"{usher.probes} readiness probes"):
        accepted = m.sum("usher_connections_accepted_total")
        assert accepted == made + usher.probes, \
            f"accepted {accepted:g}\n" + m.grep("usher_connections_accepted_total")

    with tap.case("usher_connections_closed_total accounts for every accepted connection"):
        closed = m.sum("usher_connections_closed_total")
        accepted = m.sum("usher_connections_accepted_total")
        assert closed == accepted, \
            f"closed {closed:g}, accepted {accepted:g}\n" + m.grep("usher_connections_closed")

    with tap.case("byte counters moved in both directions"):
        assert m.sum("usher_bytes_total", direction="in") > 0, m.grep("usher_bytes_total")
        assert m.sum("usher_bytes_total", direction="out") > 0, m.grep("usher_bytes_total")

    with tap.case("ticket counters are present"):
        tickets = [n for n in m.names() if n.startswith("usher_ticket")]
        assert tickets, "no usher_ticket* metric among:\n" + "\n".join(m.names())
        tap.diag("ticket metrics: " + ", ".join(tickets))

    tap.ok(usher.alive(), "usher is still running")


harness.main(body)
