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

Run by Crossbar as a guest worker (see ``.crossbar/config.json``: its
settings are the worker's ``options.stdin.value``, read with ``--config-stdin``)
or by hand on another host::

    python -m components.kernel_spawner --router ws://HOST:8080/ws --id NAME --config-file spawner.json

With ``--keep-alive`` the process started is a keeper that runs the spawner as
its child and starts a new one when it dies
(L{components.worker.spawner_keeper}): Crossbar ends the node when a guest
worker exits, so the embedded node runs its spawner that way.
"""

import argparse
import dataclasses
import os
import signal
import socket
import sys

import txaio
from autobahn.twisted.component import Component
from twisted.internet import defer

from components.child.process_setup import die_with_parent
from components.common.config import ConfigError, SpawnerConfig, from_mapping, json_settings
from components.common.node_key import cryptosign_authentication
from components.common.sessions import NodeSession
from components.common.transports import transport_for
from components.worker.spawner_keeper import SpawnerKeeper
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
    settings = parser.add_mutually_exclusive_group()
    settings.add_argument("--config", default="{}", help="JSON object of spawner settings (see docs/config.md)")
    settings.add_argument("--config-file", help="file holding the JSON object of spawner settings")
    settings.add_argument(
        "--config-stdin", action="store_true", help="read the JSON object of settings from stdin, to its end"
    )
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
    parser.add_argument(
        "--keep-alive",
        action="store_true",
        help="run the spawner as a child of this process and start a new one when it dies (a Crossbar guest)",
    )
    parser.add_argument("--restarts", type=int, default=0, help=argparse.SUPPRESS)  # set by the keeper
    parser.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)  # set by the keeper
    args = parser.parse_args(argv)
    try:
        args.settings = read_settings(args)  # read once: stdin has no second reading
        config = from_mapping(SpawnerConfig, dict(args.settings, spawner_id=args.spawner_id, realm=args.realm))
    except ConfigError as exc:
        parser.error(str(exc))
    if args.secret_env and not os.environ.get(args.secret_env):
        parser.error("--secret-env: the environment variable {} is not set".format(args.secret_env))
    return args, config


def read_settings(args, stdin=None):
    """The spawner's settings (a dict) from C{--config-stdin}, C{--config-file} or C{--config}.

    Crossbar writes a guest worker's ``options.stdin.value`` as JSON and closes
    its stdin, so stdin is read to its end.  The keeper reads them once and
    hands each spawner it starts C{--config JSON}.
    """
    if args.config_stdin:
        return json_settings((stdin or sys.stdin).read(), "--config-stdin")
    if args.config_file:
        try:
            with open(args.config_file, encoding="utf-8") as f:
                return json_settings(f.read(), "--config-file " + args.config_file)
        except OSError as exc:
            raise ConfigError("--config-file: {}".format(exc)) from None
    return json_settings(args.config, "--config")


def spawner_arguments(args):
    """The arguments a keeper gives each spawner it starts: its own, less the keeper's, and always
    ``--die-with-parent`` (a spawner never outlives its keeper)."""
    arguments = ["--router", args.router, "--realm", args.realm, "--id", args.spawner_id, "--die-with-parent"]
    for flag, value in (("--authid", args.authid), ("--secret-env", args.secret_env), ("--node-dir", args.node_dir)):
        if value:
            arguments += [flag, value]
    return arguments + ["--loglevel", args.loglevel]


def keep(args, settings):
    """Run the keeper (see L{SpawnerKeeper}); exits with 1 if the first spawner could not start."""
    from twisted.internet import reactor

    keeper = SpawnerKeeper(reactor, spawner_arguments(args), settings)
    reactor.addSystemEventTrigger("before", "shutdown", keeper.stop)
    failed = []

    def first_failed(failure):
        sys.stderr.write("spawner failed to start: {}\n".format(failure.value))
        failed.append(failure)
        reactor.stop()

    reactor.callWhenRunning(lambda: keeper.start().addErrback(first_failed))
    reactor.run()
    sys.exit(1 if failed else 0)


def tell_keeper(fd, uids):
    """Say on the keeper's pipe that this spawner is ready (it counts as up from now on), and which uid range
    it took (the keeper ends what is left there if this spawner dies)."""
    try:
        os.write(fd, "ready {}\n".format(uids.first if uids is not None else "-").encode())
        os.close(fd)
    except OSError:
        pass  # the keeper is gone: the parent-death signal ends this process


def main(argv=None):
    args, config = parse_args(argv)
    if args.die_with_parent:
        die_with_parent(signal.SIGTERM)
    txaio.use_twisted()
    txaio.start_logging(level=args.loglevel, out=sys.stdout)
    if args.keep_alive:
        keep(args, args.settings)
        return
    if args.ready_fd is not None:
        os.set_inheritable(args.ready_fd, False)  # the fork master and kernels must not hold it

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
    service.spawner.parts.spawner_restarts = args.restarts
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
        if args.ready_fd is not None:
            tell_keeper(args.ready_fd, service.spawner.sandbox.uids)
        component.start(reactor)

    def failed(failure):
        sys.stderr.write("spawner failed to start:\n{}".format(failure.getTraceback()))
        reactor.stop()

    reactor.callWhenRunning(lambda: go().addErrback(failed))
    reactor.run()


if __name__ == "__main__":
    main()
