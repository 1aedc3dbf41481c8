"""``make cluster``: a realistic deployment on this one machine, stopped with Ctrl-C.

    HAProxy (TLS on CELL_PORT) --> node1, node2 (each: Crossbar router, session router, spawner)
                                        \\--> PostgreSQL (permalinks), run as an unprivileged user

Each node is a ``crossbar start`` of a copy of the project's ``.crossbar``
config (so what runs is what ``make run`` runs), changed only where a node
behind a front differs: it listens on loopback, trusts the front's
``X-Forwarded-For``, names its spawner after itself and keeps permalinks in
the shared PostgreSQL.  ``python -m deploy.cluster --help`` lists the options;
docs/deploy.md explains the parts.
"""

import argparse
import os
import secrets
import shutil
import signal
import sys
import threading

from deploy.haproxy import HAProxy
from deploy.node import Node
from deploy.postgres import PostgresServer
from deploy.tls import self_signed

DSN_ENV = "CELL_PERMALINK_DSN"
LAUNCH_ENV = "CELL_LAUNCH_SECRET"


def node_config(name):
    """The edit that makes the project's config that of node C{name} behind the front."""

    def edit(config):
        for worker in config["workers"]:
            if worker["type"] == "router":
                for transport in worker["transports"]:
                    if transport.get("id") == "web":
                        transport["endpoint"]["interface"] = "127.0.0.1"  # reached through the front only
            elif worker["type"] == "container":
                for component in worker["components"]:
                    extra = component.setdefault("extra", {})
                    if component["id"] == "session_router":
                        # The node's one address resolver: WAMP sessions and the Jupyter face alike.
                        extra["trusted_proxies"] = ["127.0.0.1"]
                        for role in extra.get("roles", {}).values():  # real per-address quotas, as deployed
                            role.pop("max_kernels_per_address", None)
                            role.pop("max_oneshots_per_minute_per_address", None)
                    elif component["id"] == "permalinks":
                        extra.update(database="postgresql", dsn_env=DSN_ENV)
            elif worker["type"] == "guest":
                arguments = worker["arguments"]
                arguments[arguments.index("--id") + 1] = name

    return edit


class Cluster:
    """PostgreSQL, C{nodes} nodes and HAProxy in C{directory}; the front on C{port}."""

    def __init__(self, directory, port, nodes=2, service_secret=None):
        self.directory = os.path.abspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.port = port
        self.service_secret = service_secret or secrets.token_urlsafe(24)
        #: one key for Binder launch tokens on every node: a token one node hands out works on all (docs/deploy.md)
        self.launch_secret = os.environ.get(LAUNCH_ENV) or secrets.token_urlsafe(32)
        self.postgres = PostgresServer(os.path.join(self.directory, "db"))
        self.nodes = {}
        for i in range(1, nodes + 1):
            name = "node{}".format(i)
            node_dir = os.path.join(self.directory, name)
            os.makedirs(node_dir, exist_ok=True)
            node = Node(
                node_dir, edit=node_config(name), env={DSN_ENV: self.postgres.dsn, LAUNCH_ENV: self.launch_secret}
            )
            node.service_secret = self.service_secret
            self.nodes[name] = node
        self.crt, self.pem = self_signed(os.path.join(self.directory, "tls"))
        self.front = HAProxy(
            self.directory, port, self.pem, [(name, "127.0.0.1", node.port) for name, node in self.nodes.items()]
        )

    @property
    def url(self):
        return "https://localhost:{}/".format(self.port)

    @property
    def ws_url(self):
        return "wss://localhost:{}/ws".format(self.port)

    def start(self):
        try:
            self.postgres.start()
            starting = [
                threading.Thread(
                    target=node.start, kwargs={"ready": ("spawner {} joined".format(name), "session router ready")}
                )
                for name, node in self.nodes.items()
            ]
            errors = []
            for thread in starting:
                thread.run = _recording(thread.run, errors)
                thread.start()
            for thread in starting:
                thread.join()
            if errors:
                raise errors[0]
            self.front.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        self.front.stop()
        for node in self.nodes.values():
            node.stop()
        self.postgres.close()


def _recording(run, errors):
    def wrapped():
        try:
            run()
        except BaseException as exc:  # re-raised by Cluster.start
            errors.append(exc)

    return wrapped


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m deploy.cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=".cluster", help="where the cluster keeps its files (emptied at start)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("CELL_PORT", 8080)), help="the front's port")
    parser.add_argument("--nodes", type=int, default=2)
    args = parser.parse_args(argv)
    shutil.rmtree(args.dir, ignore_errors=True)
    cluster = Cluster(args.dir, args.port, args.nodes, os.environ.get("CELL_SERVICE_SECRET"))
    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    cluster.start()
    print("cellserver cluster up: {} (HAProxy, TLS)".format(cluster.url))
    print("  the certificate (self-signed, made now): {}".format(cluster.crt))
    for name, node in cluster.nodes.items():
        print("  {}: http://127.0.0.1:{}/ (metrics: /metrics), log {}".format(name, node.port, node.log_path))
    print("  permalinks: PostgreSQL on 127.0.0.1:{} (log {})".format(cluster.postgres.port, cluster.postgres.log_path))
    print("  service principal 'service', secret in CELL_SERVICE_SECRET: {}".format(cluster.service_secret))
    print("Ctrl-C stops all of it.")
    sys.stdout.flush()
    gone = set()
    try:
        while not stopping.wait(1):
            for name, node in cluster.nodes.items():
                if name not in gone and node.proc.poll() is not None:
                    gone.add(name)
                    print("{} exited ({}); the front routes around it".format(name, node.proc.returncode))
    finally:
        print("stopping the cluster")
        cluster.stop()


if __name__ == "__main__":
    main()
