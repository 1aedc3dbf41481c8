"""HAProxy in front of the nodes: its configuration (L{config}) and its process (L{HAProxy}).

What the front does (docs/deploy.md explains each line):
- terminates TLS and passes HTTP and WebSocket (``/``, ``/ws``) to the nodes;
- sticky routing: a cookie names the node that served a browser, so a
  reconnecting page lands where its kernel lives (``option redispatch``: if
  that node is gone, another one answers, and the page's resume gets
  ``cell.error.not_found``);
- health checks on each node's ``/health`` every second: a dead node leaves
  the rotation within about two seconds;
- ``X-Forwarded-For`` names the client (the nodes trust it from the front
  only: the session router's ``trusted_proxies``, the node's one address
  resolver, which the Jupyter face uses too), so per-address quotas hold;
- every path is normalized before any rule reads it (``normalize-uri``:
  percent-encoded letters decoded, ``.``/``..`` segments and repeated slashes
  removed), and the node's ``/metrics`` is never served through the front,
  however it is spelt (the rule reads the decoded, lower-cased path).
"""

import os
import shutil
import signal
import socket
import subprocess
import time

from deploy.node import stop_process

TEMPLATE = """\
global
    # no maxconn: HAProxy derives it from the open-files limit it is given (production: set both, see docs/deploy.md)
    stats socket {stats_socket} mode 600 level admin
    # normalize-uri (below) is marked experimental in HAProxy 2.4 to 2.6 (Debian 12 ships 2.6): allowed by name.
    expose-experimental-directives
{privileges}
defaults
    mode http
    option dontlognull
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    # A WebSocket lives as long as its page: the router pings every few seconds, so an hour of tunnel is plenty.
    timeout tunnel 1h
    timeout http-request 10s

frontend cell
    bind {bind}:{port} ssl crt {pem} alpn http/1.1
    # One spelling of each path, before any rule reads it; the nodes get that spelling too.
    http-request normalize-uri percent-decode-unreserved
    http-request normalize-uri percent-to-uppercase
    http-request normalize-uri path-strip-dotdot full
    http-request normalize-uri path-strip-dot
    http-request normalize-uri path-merge-slashes
    # The nodes' metrics are for the monitoring network only: refused whatever the spelling left (decoded, any case).
    acl node_metrics path,url_dec,lower -m reg ^[/.]*metrics([/;]|$)
    http-request deny deny_status 403 if node_metrics
    http-request set-header X-Forwarded-Proto https
    option forwardfor
    default_backend nodes

backend nodes
    balance leastconn
    cookie CELLNODE insert indirect nocache httponly secure
    option redispatch
    retries 2
    option httpchk GET /health
    http-check expect status 200
    default-server inter 1s fall 2 rise 2
{servers}
"""


def config(port, pem, nodes, stats_socket, bind="*", run_as=None):
    """HAProxy's configuration text: C{nodes} is a list of (name, host, port)."""
    servers = "\n".join(
        "    server {name} {host}:{port} check cookie {name}".format(name=name, host=host, port=node_port)
        for name, host, node_port in nodes
    )
    privileges = "    user {}\n    group {}\n".format(*run_as) if run_as else ""
    return TEMPLATE.format(
        bind=bind, port=port, pem=pem, servers=servers, stats_socket=stats_socket, privileges=privileges
    )


class HAProxy:
    """Debian's ``haproxy`` in the foreground (master-worker), stopped with SIGTERM."""

    def __init__(self, directory, port, pem, nodes):
        self.directory = directory
        self.port = port
        self.stats_socket = os.path.join(directory, "haproxy.sock")
        self.config_path = os.path.join(directory, "haproxy.cfg")
        self.log_path = os.path.join(directory, "haproxy.log")
        run_as = ("nobody", "nogroup") if os.geteuid() == 0 else None  # root only binds, then drops privileges
        with open(self.config_path, "w") as f:
            f.write(config(port, pem, nodes, self.stats_socket, run_as=run_as))
        self.proc = None

    def start(self, timeout=30):
        executable = shutil.which("haproxy") or "/usr/sbin/haproxy"
        check = subprocess.run([executable, "-c", "-q", "-f", self.config_path], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError("haproxy refused its configuration:\n" + check.stdout + check.stderr)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [executable, "-W", "-db", "-f", self.config_path],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # poll: until the front accepts connections
            if self.proc.poll() is not None:
                raise RuntimeError("haproxy exited with {}:\n{}".format(self.proc.returncode, self.log()))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("haproxy did not listen on {} within {} s".format(self.port, timeout))

    def servers(self):
        """{server name: state} as HAProxy sees them now (``UP``, ``DOWN``, ...), from its stats socket."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.stats_socket)
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        lines = data.decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        states = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("pxname") == "nodes" and row.get("svname") not in ("FRONTEND", "BACKEND", None):
                states[row["svname"]] = row["status"]
        return states

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, timeout=15):
        if stop_process(self.proc, signal.SIGTERM, timeout):
            self._log.close()
