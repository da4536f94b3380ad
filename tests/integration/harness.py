"""
Shared harness for usher's integration tests (issue #3).

Every test runs real processes on loopback: the usher executable, the
usher-testbackend executable and the openssl command line client. Nothing
is mocked. A test program is a function body(tap, env) handed to main():

    import harness

    def body(tap, env):
        app1 = env.backend("app-1")
        usher = env.usher(env.config([app1]))
        with tap.case("a client is served"):
            assert harness.s_client(usher.port, "1.3").backend == "app-1"

    harness.main(body)

main() prints TAP, and stops every process the test started (process
groups, SIGKILL) however the body ends: normal return, failed assertion,
unexpected exception, or SIGTERM from meson's timeout.

Paths come from the environment: USHER and BACKEND (set by meson.build).
USHER_IT_KEEP=1 keeps the temporary directory (configs, logs) for a look
after the run.
"""

import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

USHER = os.environ.get("USHER", "")
BACKEND = os.environ.get("BACKEND", "")

# Bounded waits: generous, because the machine is shared and slow at times.
# They only bound how long a broken usher can keep a test waiting.
START_TIMEOUT = 15.0
CLIENT_TIMEOUT = 10.0

# Every child process of this test, so cleanup can find them all.
_children = []
_children_lock = threading.Lock()

# Names of every backend started, so an answer can be found in s_client's
# output even when it does not start a line (see s_client()).
_backend_names = set()


class Skip(Exception):
    """Something this test needs is missing: skip, with the reason."""


# ---------------------------------------------------------------------------
# TAP output


class Tap:
    """Numbered ok / not ok lines, diagnostics as '#' lines, plan at the end."""

    def __init__(self):
        self.count = 0
        self.failed = 0
        self.lock = threading.Lock()
        self.on_failure = []  # callables returning extra diagnostic text

    def ok(self, passed, name, diag=None):
        with self.lock:
            self.count += 1
            word = "ok" if passed else "not ok"
            print(f"{word} {self.count} - {name}", flush=True)
            if not passed:
                self.failed += 1
                self._print_diag(diag)
                for extra in self.on_failure:
                    self._print_diag(extra())
        return passed

    def diag(self, text):
        with self.lock:
            self._print_diag(text)

    def case(self, name):
        """A context manager: ok if the block finishes, not ok if it raises."""
        return _Case(self, name)

    def plan(self):
        print(f"1..{self.count}", flush=True)

    @staticmethod
    def _print_diag(text):
        if not text:
            return
        for line in str(text).rstrip("\n").splitlines():
            print(f"# {line}", flush=True)


class _Case:
    def __init__(self, tap, name):
        self.tap = tap
        self.name = name
        self.passed = False

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is None:
            self.passed = self.tap.ok(True, self.name)
            return False

        if issubclass(kind, (KeyboardInterrupt, SystemExit)):
            self.tap.ok(False, self.name, "interrupted")
            return False

        if issubclass(kind, AssertionError):
            diag = str(exc) or "assertion failed at " + _where(tb)
        else:
            diag = "".join(traceback.format_exception(kind, exc, tb))
        self.tap.ok(False, self.name, diag)
        return True  # reported; the test goes on with its next case


def _where(tb):
    frame = traceback.extract_tb(tb)[-1]
    return f"{os.path.basename(frame.filename)}:{frame.lineno}: {frame.line}"


def main(body):
    """Run body(tap, env); print the plan; exit 0 only if every case passed."""
    tap = Tap()
    signal.signal(signal.SIGTERM, _exit_on_signal)

    try:
        _check_prerequisites()
    except Skip as why:
        _skip(str(why))

    env = Env()
    tap.on_failure.append(env.log_tails)
    try:
        body(tap, env)
    except Skip as why:
        if tap.count == 0:
            env.cleanup()
            _skip(str(why))
        tap.ok(False, "test ran to the end", f"skipped half-way: {why}")
    except SystemExit:
        tap.ok(False, "test ran to the end", "stopped by a signal")
    except BaseException:
        tap.ok(False, "test ran to the end", traceback.format_exc())
    finally:
        env.cleanup()

    if tap.count == 0:
        tap.ok(False, "the test made at least one check")
    tap.plan()
    sys.exit(1 if tap.failed else 0)


def _exit_on_signal(signum, frame):
    # Meson's timeout sends SIGTERM; unwind so every finally block runs.
    raise SystemExit(128 + signum)


def _skip(reason):
    """
    Skip the whole program. Under meson's TAP protocol a skip is the plan
    "1..0 # SKIP" with exit status 0 (meson counts 77 as an error there);
    run by hand, the program exits 77 as the GNU convention says.
    """
    print(f"1..0 # SKIP {reason}", flush=True)
    print(f"skipped: {reason}", file=sys.stderr, flush=True)
    sys.exit(0 if "MESON_TEST_ITERATION" in os.environ else 77)


def _check_prerequisites():
    for var, path in (("USHER", USHER), ("BACKEND", BACKEND)):
        if not path:
            raise Skip(f"{var} is not set (run through meson test)")
        if not os.access(path, os.X_OK):
            raise Skip(f"{var}={path} is not an executable (not built yet?)")
    if shutil.which("openssl") is None:
        raise Skip("the openssl command line tool is not installed")
    if not os.path.isdir("/proc/self/fd"):
        raise Skip("/proc is not mounted (needed to count descriptors)")


# ---------------------------------------------------------------------------
# waiting


def wait_until(predicate, timeout, what, interval=0.05):
    """Poll predicate until it returns something true; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------
# processes


def spawn(argv, stdout, stderr, stdin=subprocess.DEVNULL):
    """Start a child in its own process group, so cleanup can kill it all."""
    proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr,
                            start_new_session=True)
    with _children_lock:
        _children.append(proc)
    return proc


def kill_group(proc, sig=signal.SIGKILL):
    """Signal a child's whole process group (it leads its own group)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def stop_all_children():
    with _children_lock:
        procs = list(_children)
    for proc in procs:
        kill_group(proc)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def fd_count(pid):
    """Open descriptors of a process, from /proc/PID/fd."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_listing(pid, limit=40):
    """What a process's descriptors point at, for a failure message."""
    out = []
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return "(gone)"
    for fd in sorted(fds, key=int):
        try:
            out.append(f"{fd}->{os.readlink(f'/proc/{pid}/fd/{fd}')}")
        except OSError:
            pass
    more = f" ... and {len(out) - limit} more" if len(out) > limit else ""
    return " ".join(out[:limit]) + more


def raise_fd_limit():
    """Raise the soft RLIMIT_NOFILE to the hard one; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return new


def tail(path, lines=15):
    try:
        with open(path, "r", errors="replace") as f:
            text = f.read()
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def read_text(path):
    try:
        with open(path, "r", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


# ---------------------------------------------------------------------------
# the environment of one test: temp dir, certificates, secret, processes


class Env:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="usher-it-")
        os.chmod(self.dir, 0o700)
        self.ports_given = set()
        self.certs = {}
        self._secret = None
        self.ushers = []
        self.backends = []

    # --- files

    def path(self, name):
        return os.path.join(self.dir, name)

    def cert(self, name="localhost", sans=None):
        """A self-signed ECDSA P-256 certificate and its key (mode 0600)."""
        if name in self.certs:
            return self.certs[name]

        sans = sans or [name]
        cert = self.path(f"{name}.crt")
        key = self.path(f"{name}.key")
        alt = ",".join(f"DNS:{s}" for s in sans)
        if name == "localhost":
            alt += ",IP:127.0.0.1"
        run = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
             f"/CN={name}", "-addext", f"subjectAltName={alt}", "-keyout", key,
             "-out", cert],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        if run.returncode != 0:
            raise Skip("openssl req cannot make a test certificate: " +
                       run.stdout.decode(errors="replace")[-300:])
        os.chmod(key, 0o600)
        self.certs[name] = (cert, key)
        return self.certs[name]

    def secret(self):
        """The ticket secret: 48 random bytes, mode 0600."""
        if self._secret is None:
            self._secret = self.path("ticket.secret")
            fd = os.open(self._secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(48))
        return self._secret

    # --- ports

    def free_port(self):
        """An ephemeral port nobody listens on now (and not handed out before)."""
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in self.ports_given:
                self.ports_given.add(port)
                return port
        raise AssertionError("no free port found")

    # --- processes

    def backend(self, name, port=None, args=()):
        b = Backend(self, name, port or self.free_port(), list(args))
        b.start()
        self.backends.append(b)
        return b

    def usher(self, cfg, name=None, start=True):
        u = Usher(self, cfg, name or f"usher{len(self.ushers) + 1}")
        self.ushers.append(u)
        if start:
            u.start()
        return u

    # --- configuration

    def config(self, backends, workers=1, pool="app", listener="tls",
               timeouts=None, limits=None, health_check=None,
               proxy_protocol=None, alpn=None, protocols=None,
               stats=True, tickets=None):
        """A complete config dict: one listener, one pool, every section."""
        cert, key = self.cert("localhost")
        lst = {
            "name": listener,
            "bind": f"127.0.0.1:{self.free_port()}",
            "certificates": [{"cert": cert, "key": key}],
            "protocols": protocols or ["tls1.2", "tls1.3"],
            "pool": pool,
        }
        if alpn is not None:
            lst["alpn"] = alpn
        if proxy_protocol is not None:
            lst["proxy_protocol"] = proxy_protocol

        pl = {"name": pool, "balance": "round_robin",
              "servers": [server_entry(b) for b in backends]}
        if health_check is not None:
            pl["health_check"] = health_check

        cfg = {
            "workers": workers,
            "pools": [pl],
            "listeners": [lst],
            "tickets": {"secret_file": self.secret(), "rotation_interval": "1h",
                        "lifetime": "12h", "affinity": True},
            "timeouts": {"handshake": "10s", "idle": "60s", "connect": "3s",
                         "shutdown": "10s"},
            "limits": {"max_connections": 10000},
            "log": {"level": "info", "access": "stdout", "format": "text"},
        }
        if tickets:
            cfg["tickets"].update(tickets)
        if timeouts:
            cfg["timeouts"].update(timeouts)
        if limits:
            cfg["limits"].update(limits)
        if stats:
            cfg["stats"] = {"bind": f"127.0.0.1:{self.free_port()}"}
        return cfg

    # --- teardown

    def log_tails(self):
        out = []
        for u in self.ushers:
            text = tail(u.err_path, 12)
            if text:
                out.append(f"--- {u.name} stderr (last lines):\n{text}")
            if u.proc is not None and u.proc.poll() is not None:
                out.append(f"--- {u.name} has exited with status {u.proc.returncode}")
        return "\n".join(out)

    def cleanup(self):
        stop_all_children()
        if os.environ.get("USHER_IT_KEEP"):
            print(f"# kept {self.dir}", flush=True)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def server_entry(backend, weight=None):
    entry = {"name": backend.name, "address": f"127.0.0.1:{backend.port}"}
    if weight is not None:
        entry["weight"] = weight
    return entry


class Backend:
    """usher-testbackend: answers '<name> <line>' for every line it reads."""

    def __init__(self, env, name, port, args):
        self.env = env
        self.name = name
        self.port = port
        self.args = args
        self.proc = None
        self.log_path = env.path(f"backend-{name}.log")

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        argv = [BACKEND, "--listen", self.address, "--name", self.name] + self.args
        _backend_names.add(self.name)
        log = open(self.log_path, "ab")
        try:
            self.proc = spawn(argv, stdout=log, stderr=log)
        finally:
            log.close()

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"backend {self.name} exited with status {self.proc.returncode}:\n"
                    + tail(self.log_path))
            return "listening" in read_text(self.log_path)

        wait_until(ready, START_TIMEOUT, f"backend {self.name} to print 'listening'")

    def kill(self, sig=signal.SIGKILL):
        kill_group(self.proc, sig)
        self.proc.wait(timeout=10)


class Usher:
    def __init__(self, env, cfg, name):
        self.env = env
        self.cfg = cfg
        self.name = name
        self.cfg_path = env.path(f"{name}.yaml")
        self.out_path = env.path(f"{name}.stdout")
        self.err_path = env.path(f"{name}.stderr")
        self.proc = None
        self.probes = 0  # readiness connections that reached usher
        self.write_config(cfg)

    # --- config

    def write_config(self, cfg=None, text=None):
        """Write cfg (a dict) or raw text as the config file."""
        if cfg is not None:
            self.cfg = cfg
            text = to_yaml(cfg)
        tmp = self.cfg_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.cfg_path)

    @property
    def port(self):
        return self.listener_port(0)

    def listener_port(self, which):
        lst = self.cfg["listeners"]
        if isinstance(which, str):
            lst = [l for l in lst if l["name"] == which]
            which = 0
        return int(lst[which]["bind"].rsplit(":", 1)[1])

    @property
    def stats_port(self):
        return int(self.cfg["stats"]["bind"].rsplit(":", 1)[1])

    # --- process

    @property
    def pid(self):
        return self.proc.pid

    def start(self):
        out = open(self.out_path, "ab")
        err = open(self.err_path, "ab")
        try:
            self.proc = spawn([USHER, "-c", self.cfg_path], stdout=out, stderr=err)
        finally:
            out.close()
            err.close()
        self.wait_ready()

    def wait_ready(self):
        ports = [self.listener_port(i) for i in range(len(self.cfg["listeners"]))]
        for port in ports:
            wait_until(lambda: self._accepts(port, True), START_TIMEOUT,
                       f"{self.name} to accept on port {port}")
        if "stats" in self.cfg:
            wait_until(lambda: self._accepts(self.stats_port, False), START_TIMEOUT,
                       f"{self.name} to accept on its stats port {self.stats_port}")

    def _accepts(self, port, is_listener):
        if self.proc.poll() is not None:
            raise AssertionError(
                f"{self.name} exited with status {self.proc.returncode} while starting:\n"
                + tail(self.err_path))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
        except OSError:
            return False
        if is_listener:
            self.probes += 1  # a connection usher will accept and count
        return True

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self, cfg=None, text=None):
        if cfg is not None or text is not None:
            self.write_config(cfg, text)
        self.signal(signal.SIGHUP)

    def wait(self, timeout):
        """The exit status, or None if still running after timeout."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def fd_count(self):
        return fd_count(self.pid)

    def stable_fd_count(self, settle=0.3, timeout=10.0):
        """The fd count once it stops moving (health checks open sockets)."""
        samples = []

        def steady():
            samples.append(self.fd_count())
            return len(samples) >= 3 and len(set(samples[-3:])) == 1

        wait_until(steady, timeout, f"{self.name}'s descriptor count to settle",
                   interval=settle / 3)
        return samples[-1]

    def stderr(self):
        return read_text(self.err_path)

    def metrics(self):
        return fetch_metrics(self.stats_port)


# ---------------------------------------------------------------------------
# YAML writer (the standard library has none): block style, quoted strings


_PLAIN = re.compile(r"^[A-Za-z0-9_./@][A-Za-z0-9_./:@-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"}


def _scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS and not text.endswith(":"):
        return text
    return json.dumps(text)


def to_yaml(obj, indent=0):
    pad = " " * indent
    lines = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(value, (dict, list)) and value:
                lines.append(f"{pad}{key}:")
                lines.append(to_yaml(value, indent + 2))
            elif isinstance(value, (dict, list)):
                lines.append(f"{pad}{key}: {'{}' if isinstance(value, dict) else '[]'}")
            else:
                lines.append(f"{pad}{key}: {_scalar(value)}")
    else:
        for item in obj:
            if isinstance(item, dict) and item:
                inner = to_yaml(item, indent + 2).splitlines()
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines.extend(inner[1:])
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    return "\n".join(lines) + ("\n" if indent == 0 else "")


# ---------------------------------------------------------------------------
# openssl s_client


class SClient(tuple):
    """(reused, backend) plus .output, .returncode and .new."""

    def __new__(cls, reused, backend, output, returncode):
        self = super().__new__(cls, (reused, backend))
        self.output = output
        self.returncode = returncode
        self.new = "\nNew, TLS" in output
        return self

    reused = property(lambda self: self[0])
    backend = property(lambda self: self[1])

    def field(self, regex):
        m = re.search(regex, self.output, re.M)
        return m.group(1) if m else None

    def describe(self):
        keep = [l for l in self.output.splitlines()
                if re.match(r"^(New|Reused),|^subject=|^ALPN|^No ALPN|^Verif|"
                            r"^CONNECTED|.*error|.*errno|^\S+ hello-", l)]
        return f"s_client exit {self.returncode}; " + " | ".join(keep[:12])


def s_client(port, version, sess_in=None, sess_out=None, line=None,
             servername="localhost", alpn=None, timeout=CLIENT_TIMEOUT, extra=()):
    """
    Run openssl s_client against 127.0.0.1:port with TLS version "1.2" or
    "1.3". Writes line (a unique one by default) on stdin, reads stdout
    until the backend's answer "<name> <line>" appears or timeout passes,
    then closes stdin. Returns SClient: (reused, backend) where backend is
    None if no answer came.
    """
    line = line or f"hello-{uuid.uuid4().hex[:12]}"
    argv = _line_buffered() + [
        "openssl", "s_client", "-connect", f"127.0.0.1:{port}",
        "-servername", servername, "-tls1_3" if version == "1.3" else "-tls1_2"]
    if sess_in:
        argv += ["-sess_in", sess_in]
    if sess_out:
        argv += ["-sess_out", sess_out]
    if alpn:
        argv += ["-alpn", alpn]
    argv += list(extra)

    proc = spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                 stderr=subprocess.STDOUT)
    answer = _answer_regex(line)
    try:
        try:
            proc.stdin.write((line + "\n").encode())
            proc.stdin.flush()
        except BrokenPipeError:
            pass
        output = _read_until(proc.stdout, answer, timeout)
        m = answer.search(output)
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
        output += _read_rest(proc, 5.0)
    finally:
        kill_group(proc)  # a no-op once it has exited
        proc.wait(timeout=10)
        for pipe in (proc.stdin, proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass
    return SClient(bool(re.search(r"^Reused, TLS", output, re.M)),
                   m.group(1) if m else None, output, proc.returncode)


def _line_buffered():
    """
    s_client prints what it receives with write(2) but its own reports
    (handshake summary, "Post-Handshake New Session Ticket arrived") through
    stdio, which a pipe makes fully buffered, so the two interleave at any
    byte. Line buffering keeps each report line whole.
    """
    stdbuf = shutil.which("stdbuf")
    return [stdbuf, "-oL"] if stdbuf else []


def _answer_regex(line):
    """The backend's answer to line; the name may follow a report mid-line."""
    if _backend_names:
        names = "|".join(re.escape(n) for n in sorted(_backend_names, key=len, reverse=True))
        return re.compile(r"(" + names + r") " + re.escape(line) + r"\r?$", re.M)
    return re.compile(r"^(\S+) " + re.escape(line) + r"\r?$", re.M)


def _readable(fd, timeout):
    """poll(), not select(): test processes hold descriptors past 1024."""
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(max(0, int(timeout * 1000))))


def _read_until(stream, regex, timeout):
    fd = stream.fileno()
    data = b""
    deadline = time.monotonic() + timeout
    while not regex.search(data.decode(errors="replace")):
        left = deadline - time.monotonic()
        if left <= 0 or not _readable(fd, left):
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


def _read_rest(proc, timeout):
    """Whatever the client prints until it exits; killed after timeout."""
    fd = proc.stdout.fileno()
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _readable(fd, deadline - time.monotonic()):
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    if proc.poll() is None:
        kill_group(proc)
    proc.wait(timeout=10)
    proc.stdout.close()
    return data.decode(errors="replace")


# ---------------------------------------------------------------------------
# python ssl client, for bulk and slow cases


def client_context(version="1.3", alpn=None, cafile=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls = ssl.TLSVersion.TLSv1_3 if version == "1.3" else ssl.TLSVersion.TLSv1_2
    ctx.minimum_version = tls
    ctx.maximum_version = tls
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def tls_connect(port, version="1.3", server_hostname="localhost", alpn=None,
                timeout=CLIENT_TIMEOUT, ctx=None, session=None):
    """A finished TLS handshake with usher, as a blocking SSLSocket."""
    ctx = ctx or client_context(version, alpn)
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.settimeout(timeout)
    try:
        raw.connect(("127.0.0.1", port))
        return ctx.wrap_socket(raw, server_hostname=server_hostname, session=session)
    except BaseException:
        raw.close()
        raise


def read_line(sock, timeout=CLIENT_TIMEOUT):
    """One line from sock (bytes up to '\\n'), or '' at end of stream."""
    sock.settimeout(timeout)
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").rstrip("\r\n")


def exchange(sock, line=None, timeout=CLIENT_TIMEOUT):
    """Send a line, read the backend's answer; return the backend's name."""
    line = line or f"hello-{uuid.uuid4().hex[:12]}"
    sock.sendall((line + "\n").encode())
    answer = read_line(sock, timeout)
    name, _, echoed = answer.partition(" ")
    if echoed != line:
        raise AssertionError(f"sent {line!r}, the answer was {answer!r}")
    return name


def one_request(port, version="1.3", timeout=CLIENT_TIMEOUT):
    """Connect, handshake, one line, close. Returns the backend's name."""
    return session_request(port, client_context(version), timeout=timeout)[1]


def session_request(port, ctx, session=None, timeout=CLIENT_TIMEOUT):
    """
    One request offering session (made with the same ctx), closed with
    close_notify so OpenSSL keeps the session resumable. Returns (reused,
    backend, session): the session as it stands at the end, with any ticket
    usher issued on the way.
    """
    with tls_connect(port, ctx=ctx, session=session, timeout=timeout) as s:
        name = exchange(s, timeout=timeout)
        reused, latest = s.session_reused, s.session
        try:
            s.unwrap()
        except (OSError, ssl.SSLError):
            pass
        return reused, name, latest


def wait_closed(sock, timeout):
    """
    Read and drop whatever arrives until the peer closes (EOF or reset).
    Returns the seconds it took; fails if still open after timeout.
    """
    start = time.monotonic()
    deadline = start + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"connection still open after {timeout:g}s")
        sock.settimeout(left)
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError,
                ssl.SSLZeroReturnError):
            return time.monotonic() - start
        except ssl.SSLError as e:
            # An alert from usher (or a torn record) also ends the stream.
            if "timed out" in str(e):
                continue
            return time.monotonic() - start
        if not chunk:
            return time.monotonic() - start


# ---------------------------------------------------------------------------
# metrics


class Metrics:
    """Parsed Prometheus text: a list of (name, labels, value)."""

    _LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)")
    _LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

    def __init__(self, text):
        self.text = text
        self.samples = []
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = self._LINE.match(line)
            if not m:
                raise AssertionError(f"malformed metrics line: {line!r}")
            labels = dict(self._LABEL.findall(m.group(2) or ""))
            self.samples.append((m.group(1), labels, float(m.group(3))))

    def sum(self, name, **labels):
        """Sum of every sample of name whose labels include labels (all workers)."""
        return sum(v for n, l, v in self.samples
                   if n == name and all(l.get(k) == str(w) for k, w in labels.items()))

    def has(self, name):
        return any(n == name for n, _, _ in self.samples)

    def names(self):
        return sorted({n for n, _, _ in self.samples})

    def grep(self, name):
        return "\n".join(l for l in self.text.splitlines() if l.startswith(name))


def fetch_metrics(port, timeout=CLIENT_TIMEOUT):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Connection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode(errors="replace")
    if " 200" not in status:
        raise AssertionError(f"GET /metrics answered {status!r}")
    return Metrics(body.decode(errors="replace"))


# ---------------------------------------------------------------------------
# background load


class Load(threading.Thread):
    """
    Runs fn() over and over on a thread (count times, or until stop()),
    recording each success and each failure with its reason.
    """

    def __init__(self, fn, count=None):
        super().__init__(daemon=True)
        self.fn = fn
        self.count = count
        self.done = 0
        self.failures = []
        self.results = []
        self._stop_flag = threading.Event()

    def run(self):
        while not self._stop_flag.is_set():
            if self.count is not None and self.done + len(self.failures) >= self.count:
                break
            try:
                self.results.append(self.fn())
                self.done += 1
            except Exception as e:  # noqa: BLE001 - every failure is counted
                self.failures.append(f"{type(e).__name__}: {e}")

    @property
    def attempts(self):
        return self.done + len(self.failures)

    def stop(self):
        self._stop_flag.set()
        self.join(timeout=60)
