#!/usr/bin/env python3
"""
Backends that fail, each case on its own usher:

  - one server refuses (nothing listens on its port): connections are
    retried on the other server, every client is served, the retry counted;
  - the backend resets the connection (--reset-after): the client sees its
    connection end, usher keeps running and serves the next client;
  - the backend stalls (--stall): the idle timeout closes the client;
  - every server is down: the client's connection is closed and the
    metrics count each such connection.
"""

import ssl

import harness

CLIENTS = 4
IDLE_S = 2.0
LONG_HEALTH = {"interval": "1h", "timeout": "1s", "fall": 3, "rise": 2}


class Dead:
    """A server entry where nothing listens."""

    def __init__(self, env, name):
        self.name = name
        self.port = env.free_port()


def python_client(version):
    return lambda port: harness.one_request(port, version)


def s_client(version):
    def run(port):
        r = harness.s_client(port, version)
        if r.backend is None:
            raise AssertionError(r.describe())
        return r.backend
    return run


REFUSED_CLIENTS = {
    "openssl s_client, TLS 1.3": s_client("1.3"),
    "openssl s_client, TLS 1.2": s_client("1.2"),
    "Python ssl, TLS 1.3": python_client("1.3"),
    "Python ssl, TLS 1.2": python_client("1.2"),
}


def refused_case(tap, env, live, kind, client):
    """A fresh usher per client kind: usher stops picking a server that failed."""
    dead = Dead(env, "dead-1")
    usher = env.usher(env.config([dead, live], health_check=LONG_HEALTH))

    served = []
    with tap.case(f"one server refuses ({kind}): all {CLIENTS} clients are served "
                  "by the other"):
        for _ in range(CLIENTS):
            try:
                served.append(client(usher.port))
            except (OSError, AssertionError) as e:
                served.append(f"failed: {e}")
        assert set(served) == {"live-1"}, "served by:\n" + "\n".join(served)

    with tap.case(f"one server refuses ({kind}): the refused connection was retried"):
        m = usher.metrics()
        retries = m.sum("usher_upstream_retries_total")
        failures = m.sum("usher_upstream_connect_failures_total")
        assert retries >= 1, (f"usher_upstream_retries_total={retries:g} "
                              f"usher_upstream_connect_failures_total={failures:g}")


def reset_case(tap, env):
    resetter = env.backend("reset-1", args=["--reset-after", "30"])
    usher = env.usher(env.config([resetter]), name="reset")

    with tap.case("backend resets: the client sees its connection end"):
        with harness.tls_connect(usher.port) as s:
            ended = False
            for _ in range(10):
                try:
                    s.sendall(b"ping\n")
                    if harness.read_line(s) == "":
                        ended = True
                        break
                except (OSError, ssl.SSLError):
                    ended = True
                    break
            assert ended, "10 lines went through a backend that resets after 30 bytes"

    tap.ok(usher.alive(), "backend resets: usher is still running", usher.stderr()[-500:])
    with tap.case("backend resets: the next client completes a handshake and an exchange"):
        assert harness.one_request(usher.port) == "reset-1"


def stall_case(tap, env):
    staller = env.backend("stall-1", args=["--stall"])
    usher = env.usher(env.config([staller], timeouts={"idle": "2s"}), name="stall")

    with tap.case("backend stalls: the idle timeout closes the client"):
        with harness.tls_connect(usher.port) as s:
            s.sendall(b"anyone there?\n")
            took = harness.wait_closed(s, 10 + IDLE_S)
        assert took >= IDLE_S / 2, f"closed after {took:.2f}s, before the idle timeout"
        tap.diag(f"stalled connection closed after {took:.2f}s")
    tap.ok(usher.alive(), "backend stalls: usher is still running")


def all_down_case(tap, env):
    dead = [Dead(env, "dead-a"), Dead(env, "dead-b")]
    usher = env.usher(env.config(dead, health_check=LONG_HEALTH), name="down")

    def counted():
        m = usher.metrics()
        return (m.sum("usher_connections_closed_total", reason="no_server") +
                m.sum("usher_connections_closed_total", reason="upstream_failed"))

    clients = 3
    for i in range(clients):
        with tap.case(f"all servers down: client {i + 1}'s connection is closed"):
            try:
                s = harness.tls_connect(usher.port)
            except (OSError, ssl.SSLError) as e:
                tap.diag(f"client {i + 1}: handshake ended: {e}")
                continue
            with s:
                try:
                    s.sendall(b"hello\n")
                except (OSError, ssl.SSLError):
                    continue
                answer = ""
                try:
                    answer = harness.read_line(s)
                except (OSError, ssl.SSLError):
                    pass
                assert answer == "", f"got an answer with no server up: {answer!r}"
                harness.wait_closed(s, 10)

    with tap.case(f"all servers down: metrics count the {clients} connections"):
        try:
            harness.wait_until(lambda: counted() == clients, 5, "the close counters")
        except AssertionError:
            m = usher.metrics()
            raise AssertionError(f"closed for no_server + upstream_failed: {counted():g}, "
                                 f"expected {clients}\n"
                                 + m.grep("usher_connections_closed_total"))
    tap.ok(usher.alive(), "all servers down: usher is still running")


def body(tap, env):
    live = env.backend("live-1")
    for kind, client in REFUSED_CLIENTS.items():
        refused_case(tap, env, live, kind, client)
    reset_case(tap, env)
    stall_case(tap, env)
    all_down_case(tap, env)


harness.main(body)
