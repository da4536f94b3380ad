"""
The three TLS terminators under comparison, each configured the same way:

- one worker (usher workers: 1, nginx worker_processes 1, HAProxy nbthread 1);
- one listener on 127.0.0.1 with the same ECDSA P-256 certificate;
- TLS 1.2 and TLS 1.3;
- stateless session tickets from the same 80-byte key, and no server-side
  session cache;
- four plain TCP backends, balanced round robin;
- no access log, errors only.

Only usher sends a resumed session back to the backend of its first
handshake; for HAProxy and nginx the affinity the load generator reports
is whatever round robin gives, and that is the point of the comparison.

Ticket key layouts differ (see /work/shared/NOTES.md): usher and nginx
read name(16) | HMAC(32) | AES(32); HAProxy reads name(16) | AES(32) |
HMAC(32), base64, at least three keys, the second newest encrypting.
"""

import base64
import os
import re
import subprocess

NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"


def write_private(path, data):
    """Create path with mode 0600 (servers refuse keys others can read)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


class Material:
    """Certificate, private key and ticket keys shared by every server."""

    def __init__(self, work):
        self.work = work
        self.cert = os.path.join(work, "cert.pem")
        self.key = os.path.join(work, "key.pem")
        self.bundle = os.path.join(work, "cert+key.pem")  # HAProxy's crt
        self.ticket_key = os.path.join(work, "ticket.key")  # nginx layout
        self.haproxy_keys = os.path.join(work, "haproxy-tickets.keys")

    def create(self):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-keyout", self.key, "-out", self.cert],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.chmod(self.key, 0o600)
        with open(self.cert, "rb") as c, open(self.key, "rb") as k:
            write_private(self.bundle, c.read() + k.read())

        key = os.urandom(80)
        write_private(self.ticket_key, key)
        write_private(self.haproxy_keys, self._haproxy_ring(key))

    @staticmethod
    def _haproxy_ring(key):
        """Three base64 lines; our key second to last, so it encrypts."""
        name, hmac, aes = key[:16], key[16:48], key[48:80]
        ours = name + aes + hmac
        lines = [os.urandom(80), ours, os.urandom(80)]
        return b"".join(base64.b64encode(k) + b"\n" for k in lines)

    def wipe(self):
        """Remove every private file; the results keep none of them."""
        for path in (self.key, self.bundle, self.ticket_key, self.haproxy_keys):
            try:
                with open(path, "r+b") as f:
                    f.write(b"\0" * os.path.getsize(path))
                os.remove(path)
            except OSError:
                pass


class Server:
    """One terminator: how to configure it, start it and name its version."""

    name = "?"

    def __init__(self, work, material, backends, port):
        self.work = work
        self.material = material
        self.backends = backends  # [(name, port)]
        self.port = port
        self.config_path = os.path.join(work, self.config_name())

    def config_name(self):
        raise NotImplementedError

    def config_text(self):
        raise NotImplementedError

    def argv(self):
        raise NotImplementedError

    def version(self):
        raise NotImplementedError

    def write_config(self):
        with open(self.config_path, "w") as f:
            f.write(self.config_text())


def first_line(argv, pattern=r".*"):
    try:
        run = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = run.stdout.decode(errors="replace")
    m = re.search(pattern, text)
    if m:
        return m.group(0).strip()
    lines = text.strip().splitlines()
    return lines[0] if lines else "?"


class Usher(Server):
    name = "usher"

    def __init__(self, work, material, backends, port, binary):
        self.binary = binary
        super().__init__(work, material, backends, port)

    def config_name(self):
        return "usher.yaml"

    def config_text(self):
        servers = "".join(
            f"      - {{name: {n}, address: '127.0.0.1:{p}'}}\n" for n, p in self.backends)
        return (
            "# bench/compare: one worker, tickets from one nginx-layout key\n"
            "workers: 1\n"
            "listeners:\n"
            "  - name: bench\n"
            f"    bind: 127.0.0.1:{self.port}\n"
            "    certificates:\n"
            f"      - {{cert: '{self.material.cert}', key: '{self.material.key}'}}\n"
            "    protocols: [tls1.2, tls1.3]\n"
            "    pool: app\n"
            "pools:\n"
            "  - name: app\n"
            "    balance: round_robin\n"
            "    health_check: {interval: 1h, timeout: 1s}  # the others check nothing\n"
            "    servers:\n"
            f"{servers}"
            "tickets:\n"
            f"  key_files: ['{self.material.ticket_key}']\n"
            "  affinity: true\n"
            "limits:\n"
            "  max_connections: 9000\n"
            "log:\n"
            "  level: warn\n"
            "  access: 'off'\n")

    def argv(self):
        return [self.binary, "-c", self.config_path]

    def version(self):
        return first_line([self.binary, "--version"])


class Nginx(Server):
    name = "nginx"

    def config_name(self):
        return "nginx.conf"

    def config_text(self):
        servers = "".join(f"        server 127.0.0.1:{p};\n" for _, p in self.backends)
        return (
            "# bench/compare: stream module, TLS terminated here, one worker\n"
            f"load_module {NGINX_STREAM_MODULE};\n"
            "worker_processes 1;\n"
            "worker_rlimit_nofile 19000;\n"
            "daemon off;\n"
            f"pid {self.work}/nginx.pid;\n"
            f"error_log {self.work}/nginx-error.log warn;\n"
            "events {\n"
            "    worker_connections 18000;\n"
            "}\n"
            "stream {\n"
            "    upstream app {\n"
            f"{servers}"
            "    }\n"
            "    server {\n"
            f"        listen 127.0.0.1:{self.port} ssl;\n"
            "        proxy_pass app;\n"
            f"        ssl_certificate {self.material.cert};\n"
            f"        ssl_certificate_key {self.material.key};\n"
            "        ssl_protocols TLSv1.2 TLSv1.3;\n"
            "        ssl_session_cache off;\n"
            "        ssl_session_tickets on;\n"
            f"        ssl_session_ticket_key {self.material.ticket_key};\n"
            "    }\n"
            "}\n")

    def argv(self):
        return ["nginx", "-c", self.config_path, "-p", self.work]

    def version(self):
        return first_line(["nginx", "-v"], r"nginx/\S+")


class Haproxy(Server):
    name = "haproxy"

    def config_name(self):
        return "haproxy.cfg"

    def config_text(self):
        servers = "".join(f"    server {n} 127.0.0.1:{p}\n" for n, p in self.backends)
        return (
            "# bench/compare: TCP mode, TLS terminated here, one thread\n"
            "global\n"
            "    nbthread 1\n"
            "    maxconn 9000\n"
            "    tune.ssl.cachesize 0\n"
            "defaults\n"
            "    mode tcp\n"
            "    timeout connect 3s\n"
            "    timeout client 60s\n"
            "    timeout server 60s\n"
            "frontend bench\n"
            f"    bind 127.0.0.1:{self.port} ssl crt {self.material.bundle}"
            f" tls-ticket-keys {self.material.haproxy_keys}"
            " ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3\n"
            "    default_backend app\n"
            "backend app\n"
            "    balance roundrobin\n"
            f"{servers}")

    def argv(self):
        return ["haproxy", "-db", "-f", self.config_path]

    def version(self):
        return first_line(["haproxy", "-v"], r"HAProxy version \S+")


def make(name, work, material, backends, port, usher_binary):
    if name == "usher":
        return Usher(work, material, backends, port, usher_binary)
    if name == "nginx":
        return Nginx(work, material, backends, port)
    if name == "haproxy":
        return Haproxy(work, material, backends, port)
    raise ValueError(f"unknown server '{name}'")
