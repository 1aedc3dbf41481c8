"""The session router's entry points: Crossbar's classname, and a command line to run it outside Crossbar.

The component itself is L{components.control.router_session.SessionRouter}, the WAMP face of
L{components.control.control_plane.ControlPlane}.
"""

import os
import signal

from components.control.router_session import SessionRouter

__all__ = ["SessionRouter", "main"]


def main(argv=None):
    """Run a session router outside Crossbar (e.g. to replace one, or on its own host)::

    python -m components.session_router --router unix:.crossbar/backend.sock --extra '{...}'
    """
    import argparse
    import json

    import txaio
    from autobahn.twisted.component import Component, run

    from components.common.transports import transport_for

    parser = argparse.ArgumentParser(
        prog="python -m components.session_router", description="cellserver session router"
    )
    parser.add_argument(
        "--router",
        default="unix:.crossbar/backend.sock",
        help="ws://HOST:PORT/ws, rs://HOST:PORT or unix:PATH (a trusted backend transport)",
    )
    parser.add_argument("--realm", default="cell")
    parser.add_argument("--extra", default="{}", help="JSON object: the component's settings (see docs/config.md)")
    parser.add_argument(
        "--node-dir",
        help="where the node key is (default: the directory of a unix:PATH socket, else the working directory)",
    )
    args = parser.parse_args(argv)
    # Ctrl-C (SIGINT) stops it, however it was started: a process started in the background by a shell without job
    # control inherits SIGINT ignored, and Twisted then leaves it so (it only replaces Python's own handler). The
    # tests' SIGINT once went unheard for 60 s that way.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    txaio.use_twisted()
    extra = json.loads(args.extra)
    if args.node_dir or args.router.startswith("unix:"):
        extra["cbdir"] = os.path.abspath(args.node_dir or os.path.dirname(os.path.abspath(args.router[len("unix:") :])))
    component = Component(
        transports=[transport_for(args.router)], realm=args.realm, session_factory=SessionRouter, extra=extra
    )
    run([component], log_level="info")


if __name__ == "__main__":
    main()
