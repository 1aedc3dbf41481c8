"""The kernel spawner: one per worker host.

It owns a preloaded fork master, a warm pool and the kernels handed out on
this host, and offers them over WAMP:

- ``cell.spawner.<id>.start_kernel|shutdown_kernel|execute_once|info`` for the
  session router;
- one prefix registration ``cell.backend.kernel.<kernel_id>.`` per kernel
  (made while it waits in the pool), serving ``execute``, ``input``,
  ``interrupt``, ``restart``, ``shutdown``, ``complete``, ``inspect`` and
  ``files.*`` to the kernel's owner only (the kernel relay in the router
  carries clients' ``cell.kernel.<kernel_id>.*`` calls there);
- the topic ``cell.kernel.<kernel_id>.iopub``.

Run by Crossbar as a guest worker (see ``.crossbar/config.json``) or by hand
on another host::

    python -m components.kernel_spawner --router ws://HOST:8080/ws --id NAME
"""

import argparse
import dataclasses
import json
import os
import signal
import socket
import sys

import txaio
from autobahn.twisted.component import Component
from twisted.internet import defer

from components.child.process_setup import die_with_parent
from components.common.config import ConfigError, SpawnerConfig, from_mapping
from components.common.node_key import cryptosign_authentication
from components.common.sessions import NodeSession
from components.common.transports import transport_for
from components.worker.spawner_session import SpawnerService


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m components.kernel_spawner", description="cellserver kernel spawner (one per worker host)"
    )
    parser.add_argument(
        "--router",
        default="ws://127.0.0.1:8080/ws",
        help="router to join: ws://HOST:PORT/ws, rs://HOST:PORT or unix:PATH",
    )
    parser.add_argument("--realm", default="cell")
    parser.add_argument(
        "--id",
        dest="spawner_id",
        default=socket.gethostname().split(".")[0].lower().replace("-", "_"),
        help="spawner id (lowercase letters, digits, _)",
    )
    parser.add_argument("--config", default="{}", help="JSON object of spawner settings (see docs/config.md)")
    parser.add_argument(
        "--die-with-parent", action="store_true", help="exit when the parent process (the Crossbar node) dies"
    )
    parser.add_argument(
        "--authid", help="WAMP-CRA principal (role spawner) when joining over TCP; default: the spawner id"
    )
    parser.add_argument("--secret-env", help="environment variable holding the WAMP-CRA secret (enables WAMP-CRA)")
    parser.add_argument(
        "--node-dir", help="with --router unix:PATH, where the node key is (default: the socket's directory)"
    )
    parser.add_argument("--loglevel", default="info")
    args = parser.parse_args(argv)
    try:
        settings = json.loads(args.config)
        config = from_mapping(SpawnerConfig, dict(settings, spawner_id=args.spawner_id, realm=args.realm))
    except (ValueError, ConfigError) as exc:
        parser.error("--config: {}".format(exc))
    if args.secret_env and not os.environ.get(args.secret_env):
        parser.error("--secret-env: the environment variable {} is not set".format(args.secret_env))
    return args, config


def main(argv=None):
    args, config = parse_args(argv)
    if args.die_with_parent:
        die_with_parent(signal.SIGTERM)
    txaio.use_twisted()
    txaio.start_logging(level=args.loglevel, out=sys.stdout)

    authentication = None
    if args.secret_env:
        authentication = {
            "wampcra": {"authid": args.authid or config.spawner_id, "secret": os.environ[args.secret_env]}
        }
    elif args.router.startswith("unix:"):
        # The node's own socket admits only holders of the node key (components.common.node_key),
        # and its directory is one kernels must not see.
        node_dir = args.node_dir or os.path.dirname(os.path.abspath(args.router[len("unix:") :]))
        authentication = cryptosign_authentication(node_dir, "spawner_" + config.spawner_id)
        config = dataclasses.replace(config, hidden_paths=config.hidden_paths + (node_dir,))

    from twisted.internet import reactor  # the entry point is where the global reactor is chosen

    service = SpawnerService(reactor, config)
    component = Component(
        transports=[transport_for(args.router)],
        realm=config.realm,
        authentication=authentication,
        session_factory=NodeSession,
    )
    component.on("join", service.on_join)
    component.on("leave", service.on_leave)
    reactor.addSystemEventTrigger("before", "shutdown", service.spawner.stop)

    @defer.inlineCallbacks
    def go():
        yield service.spawner.start()
        component.start(reactor)

    def failed(failure):
        sys.stderr.write("spawner failed to start:\n{}".format(failure.getTraceback()))
        reactor.stop()

    reactor.callWhenRunning(lambda: go().addErrback(failed))
    reactor.run()


if __name__ == "__main__":
    main()
