"""
What usher's DPDK tests (issue #5) add to the integration harness: usher
on a net_tap port, backends and clients on the kernel side of that tap.

    kernel: clients, backends                usher (DPDK engine)
    10.77.0.1/24 on ushtapN  <-- net_tap -->  10.77.0.2, its own TCP/IP

usher creates the tap interface itself (EAL --vdev=net_tap0,iface=NAME);
the test waits for it, gives the kernel side 10.77.0.1/24 and brings it
up. Only that interface and its /24 are touched, and it disappears with
usher, so nothing leaves the machine. Backends (usher-testbackend) listen
on 10.77.0.1; real kernel clients (openssl s_client, Python ssl) connect
to 10.77.0.2.

A test is a body(tap, net) handed to main(); net is a TapNet. Without
root or /dev/net/tun, or without the ip tool, the test is skipped with
the reason (exit 77 when run by hand).
"""

import fcntl
import os
import select
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import harness  # noqa: E402  (the integration harness, one folder over)

KERNEL_IP = "10.77.0.1"
USHER_IP = "10.77.0.2"
PREFIX = 24
LISTEN_PORT = 8443

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


# ---------------------------------------------------------------------------
# can this machine run the test at all?


def _check_tap_possible():
    if os.geteuid() != 0:
        raise harness.Skip("needs root: DPDK's net_tap creates a tap interface")
    if not os.path.exists("/dev/net/tun"):
        raise harness.Skip("/dev/net/tun is missing: no tap interfaces here")
    if shutil.which("ip") is None:
        raise harness.Skip("the ip tool (iproute2) is not installed")

    # Create and drop a throwaway tap: the same call net_tap makes.
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR)
    except OSError as e:
        raise harness.Skip(f"cannot open /dev/net/tun: {e.strerror}")
    try:
        ifr = struct.pack("16sH22x", b"ushprobe%d", IFF_TAP | IFF_NO_PI)
        fcntl.ioctl(fd, TUNSETIFF, ifr)
    except OSError as e:
        raise harness.Skip(f"cannot create a tap interface (TUNSETIFF: {e.strerror})")
    finally:
        os.close(fd)


def _check_subnet_free(iface):
    out = subprocess.run(["ip", "-o", "-4", "addr", "show", "to", f"10.77.0.0/{PREFIX}"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    taken = out.stdout.strip()
    if taken:
        raise AssertionError(
            f"10.77.0.0/{PREFIX} is already on an interface (another DPDK test running?):"
            f"\n{taken}")
    if os.path.exists(f"/sys/class/net/{iface}"):
        raise AssertionError(f"interface {iface} already exists")


# ---------------------------------------------------------------------------
# processes on the tap


class TapBackend(harness.Backend):
    """usher-testbackend on the kernel side of the tap."""

    @property
    def address(self):
        return f"{KERNEL_IP}:{self.port}"


class TapUsher(harness.Usher):
    """usher on a net_tap port; start() also sets the kernel side up."""

    def __init__(self, env, cfg, name, iface, faults=None):
        super().__init__(env, cfg, name)
        self.iface = iface
        self.faults = faults

    def start(self):
        _check_subnet_free(self.iface)
        saved = os.environ.pop("USHER_DPDK_FAULTS", None)
        if self.faults:
            os.environ["USHER_DPDK_FAULTS"] = self.faults
        try:
            super().start()
        finally:
            os.environ.pop("USHER_DPDK_FAULTS", None)
            if saved is not None:
                os.environ["USHER_DPDK_FAULTS"] = saved

    def wait_ready(self):
        """The tap appears once EAL has probed net_tap; then address it."""
        def tap_exists():
            self._check_alive()
            return os.path.exists(f"/sys/class/net/{self.iface}")

        harness.wait_until(tap_exists, harness.START_TIMEOUT,
                           f"{self.name} to create tap interface {self.iface}")
        _ip("addr", "add", f"{KERNEL_IP}/{PREFIX}", "dev", self.iface)
        _ip("link", "set", self.iface, "up")

        def accepts():
            self._check_alive()
            try:
                with socket.create_connection((USHER_IP, LISTEN_PORT), timeout=1):
                    pass
            except OSError:
                return False
            self.probes += 1
            return True

        harness.wait_until(accepts, harness.START_TIMEOUT,
                           f"{self.name} to accept on {USHER_IP}:{LISTEN_PORT}")
        harness.wait_until(lambda: self._accepts(self.stats_port, False),
                           harness.START_TIMEOUT, f"{self.name}'s stats port")

    def _check_alive(self):
        if self.proc.poll() is not None:
            raise AssertionError(
                f"{self.name} exited with status {self.proc.returncode} while starting:\n"
                + harness.tail(self.err_path, 25))

    def stop(self, timeout=20):
        """SIGTERM; the exit status, or None if it did not exit in time."""
        self.signal(15)
        return self.wait(timeout)


def _ip(*args):
    run = subprocess.run(["ip"] + list(args), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    if run.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)} failed: {run.stdout.strip()}")


# ---------------------------------------------------------------------------
# one test's network: usher, its tap, backends


class TapNet:
    def __init__(self, env, iface):
        self.env = env
        self.iface = iface
        self.usher = None
        self.backends = []

    def config(self, backends, workers=2):
        """A full config: the integration one, moved onto the DPDK port."""
        # Frequent health checks: the backends start after usher.
        health = {"interval": "300ms", "timeout": "250ms", "rise": 1, "fall": 3}
        cfg = self.env.config(backends, workers=workers, health_check=health)
        cfg["engine"] = "dpdk"
        cfg["listeners"][0]["bind"] = f"{USHER_IP}:{LISTEN_PORT}"
        for server, b in zip(cfg["pools"][0]["servers"], backends):
            server["address"] = f"{KERNEL_IP}:{b.port}"
        cfg["dpdk"] = {
            # --no-shconf: no files under /var/run/dpdk, so runs never collide.
            "eal_args": ["-l", "0", "--no-huge", "--no-pci", "--no-shconf", "--no-telemetry",
                         "-m", "256", f"--vdev=net_tap0,iface={self.iface}"],
            "port": 0,
            "address": f"{USHER_IP}/{PREFIX}",
        }
        return cfg

    def start(self, names=("app-1", "app-2"), workers=2, faults=None, extra=()):
        """
        usher first (it creates the tap), then the backends on the kernel
        side, then wait until usher's health checks see them up. extra:
        servers the test runs itself (with .name and .port), already
        listening on KERNEL_IP.
        """
        ports = [9001 + i for i in range(len(names))]
        placeholders = [TapBackend(self.env, n, p, []) for n, p in zip(names, ports)]
        servers = placeholders + list(extra)
        self.usher = TapUsher(self.env, self.config(servers, workers),
                              f"usher-{self.iface}", self.iface, faults)
        self.env.ushers.append(self.usher)
        self.usher.start()

        for b in placeholders:
            b.start()
            self.env.backends.append(b)
        self.backends = servers
        harness.wait_until(self._all_up, 30, "usher to see every backend up")
        return self.usher

    def _all_up(self):
        m = self.usher.metrics()
        return m.sum("usher_server_up") == len(self.backends)


def main(body, iface):
    """harness.main, with the tap checks first and a TapNet for the body."""
    def wrapped(tap, env):
        _check_tap_possible()
        body(tap, TapNet(env, iface))

    harness.main(wrapped)


# ---------------------------------------------------------------------------
# clients on the kernel side


def s_client(version, sess_in=None, sess_out=None, timeout=harness.CLIENT_TIMEOUT,
             port=LISTEN_PORT):
    """
    harness.s_client, aimed at usher's DPDK address: the line it sends is
    answered by a backend, whose name comes back as r.backend. The harness
    writes -connect 127.0.0.1:PORT; s_client takes the last -connect given,
    which is ours.
    """
    return harness.s_client(port, version, sess_in=sess_in, sess_out=sess_out,
                            timeout=timeout, extra=["-connect", f"{USHER_IP}:{port}"])


def tls_connect(ctx, session=None, timeout=harness.CLIENT_TIMEOUT):
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.settimeout(timeout)
    try:
        raw.connect((USHER_IP, LISTEN_PORT))
        return ctx.wrap_socket(raw, server_hostname="localhost", session=session)
    except BaseException:
        raw.close()
        raise


def make_lines(total, line_len=1000):
    """Distinct lines of printable bytes adding up to at least total bytes."""
    lines = []
    size = 0
    while size < total:
        head = f"{len(lines):07d}-{uuid.uuid4().hex}-"
        body = (os.urandom(line_len).hex())[:line_len - len(head)]
        line = head + body
        lines.append(line)
        size += len(line) + 1
    return lines


def transfer(ctx, total=1 << 20, timeout=60.0):
    """
    Send total bytes of lines through usher and read every answer back,
    writing and reading at once (neither side may stall the other). Returns
    (backend, bytes_sent, bytes_received); raises AssertionError on the
    first byte that differs from what the backend must have answered.
    """
    lines = make_lines(total)
    payload = "".join(line + "\n" for line in lines).encode()
    sock = tls_connect(ctx)
    try:
        received = _pump(sock, payload, timeout, lambda data: _expected_len(data, lines))
        backend = received.split(b" ", 1)[0].decode(errors="replace")
        expected = "".join(f"{backend} {line}\n" for line in lines).encode()
        if received != expected:
            at = next((i for i, (a, b) in enumerate(zip(received, expected)) if a != b),
                      min(len(received), len(expected)))
            raise AssertionError(
                f"answer differs at byte {at} of {len(expected)} (got {len(received)} bytes): "
                f"got {received[at:at + 40]!r}, expected {expected[at:at + 40]!r}")
        try:
            sock.unwrap()
        except (OSError, ssl.SSLError):
            pass
        return backend, len(payload), len(received)
    finally:
        sock.close()


def _expected_len(data, lines):
    """Bytes the whole answer has, once the first answer names the backend."""
    space = data.find(b" ")
    if space < 0:
        return None
    return sum(len(line) + 1 for line in lines) + (space + 1) * len(lines)


def _pump(sock, payload, timeout, total_of):
    sock.setblocking(False)
    deadline = time.monotonic() + timeout
    sent = 0
    got = bytearray()
    want = None
    while want is None or len(got) < want:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(
                f"transfer stalled: sent {sent} of {len(payload)} bytes, "
                f"received {len(got)} of {want if want is not None else '?'}")
        wr = [sock] if sent < len(payload) else []
        if not sock.pending():
            select.select([sock], wr, [], min(left, 1.0))
        if sent < len(payload):
            try:
                sent += sock.send(payload[sent:sent + 65536])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                pass
        try:
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError(f"usher closed after {len(got)} bytes of the answer")
            got += chunk
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        if want is None:
            want = total_of(bytes(got[:200]))
    sock.setblocking(True)
    return bytes(got)


# ---------------------------------------------------------------------------
# ICMP echo, without the ping tool


def _checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def ping(host=USHER_IP, timeout=2.0):
    """One ICMP echo request; the round trip in seconds, or None."""
    ident = os.getpid() & 0xFFFF
    seq = int(time.monotonic() * 1000) & 0xFFFF
    payload = b"usher-dpdk-" + uuid.uuid4().hex.encode()
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, seq) + payload

    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
        start = time.monotonic()
        s.sendto(packet, (host, 0))
        deadline = start + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([s], [], [], left)[0]:
                return None
            data, addr = s.recvfrom(2048)
            ihl = (data[0] & 0x0F) * 4
            icmp = data[ihl:]
            if addr[0] != host or len(icmp) < 8:
                continue
            kind, _, _, rid, rseq = struct.unpack("!BBHHH", icmp[:8])
            if kind == 0 and rid == ident and rseq == seq and icmp[8:] == payload:
                if _checksum(icmp) != 0:
                    raise AssertionError("echo reply with a bad ICMP checksum")
                return time.monotonic() - start


def wait_no_connections(usher, timeout=10.0):
    """Every client connection usher had is closed (usher_connections_open)."""
    harness.wait_until(lambda: usher.metrics().sum("usher_connections_open") == 0, timeout,
                       "usher_connections_open to fall to 0")


def abrupt_exchange(how):
    """One line through usher, then the client leaves without close_notify."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.settimeout(harness.CLIENT_TIMEOUT)
    if how == "reset":
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.connect((USHER_IP, LISTEN_PORT))
    s = harness.client_context("1.3").wrap_socket(raw, server_hostname="localhost")
    try:
        return harness.exchange(s)
    finally:
        if how == "half-close":
            # Drops the TLS layer: a bare FIN, then wait for usher's end.
            s.shutdown(socket.SHUT_WR)
            harness.wait_closed(s, harness.CLIENT_TIMEOUT)
        s.close()

