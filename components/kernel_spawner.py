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
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import sys
import tempfile

import txaio
import zmq
from autobahn.twisted.component import Component
from autobahn.wamp.types import PublishOptions, RegisterOptions
from twisted.internet import defer, task
from twisted.logger import Logger

from components import arguments, errors, uris
from components.backend_auth import cryptosign_authentication
from components.config import ConfigError, SpawnerConfig, from_mapping
from components.fork_master import die_with_parent
from components.iopub_listeners import IopubListeners
from components.kernel import Kernel
from components.master_client import start_fork_master
from components.oneshot_client import start_oneshot_template
from components.pool import KernelPool
from components.sandbox import SandboxPolicy


class KernelSpawner:
    """Kernels of one host, without WAMP: the fork master, the pool, the kernels handed out.

    @param on_iopub: called with C{(kernel, msg)} for each iopub message of an owned kernel.
    @param on_kernel_ended: called with C{(kernel, reason, handed_out)} when a kernel is dead.
    @param prepare_kernel: called with each kernel before it joins the warm pool.
    """

    log = Logger()

    def __init__(self, reactor, config, on_iopub, on_kernel_ended, prepare_kernel=None):
        self._reactor = reactor
        self.config = config
        self._on_iopub = on_iopub
        self._on_kernel_ended = on_kernel_ended
        self.kernels = {}
        self._by_pid = {}
        self._all = set()
        self._own_work_root = not config.work_root
        self.work_root = config.work_root or tempfile.mkdtemp(prefix="cell-work-")
        os.makedirs(self.work_root, exist_ok=True)
        self.runtime_root = tempfile.mkdtemp(prefix="cellrt-")
        # Kernels (other uids) may pass through to their own directory, but not list their neighbours.
        os.chmod(self.work_root, 0o711)
        os.chmod(self.runtime_root, 0o711)
        self.master = None
        self.oneshot = None
        self.zmq_context = None
        self.sandbox = SandboxPolicy(config, hidden=(self.work_root, self.runtime_root))
        for warning in self.sandbox.warnings:
            self.log.warn("SANDBOX REDUCED: {warning}", warning=warning)
        self.pool = KernelPool(reactor, config.pool_size, self._make_kernel, self._room, prepare=prepare_kernel, refill_delay_s=config.pool_refill_delay_s)

    @defer.inlineCallbacks
    def start(self):
        """Start the fork master, then fill the pool; fires when the master is ready."""
        self.master = start_fork_master(self._reactor, self.config.preload, self._process_exited)
        info = yield self.master.ready
        self.log.info("fork master ready (pid {pid}) after {s:.2f} s, preloaded {mods}", pid=info["pid"], s=info["preload_s"], mods=info["preloaded"])
        self.zmq_context = zmq.Context()
        self.pool.refill()
        if self.config.oneshot_children:
            self.oneshot = start_oneshot_template(self._reactor, self.config, self.sandbox)
            yield self.oneshot.ready
            self.log.info("one-shot template ready")

    def _room(self):
        return self.config.max_kernels + self.config.pool_size - len(self._all)

    def _make_kernel(self):
        kernel = Kernel(
            self._reactor, self.config, self.master, self.zmq_context, self.work_root, self.runtime_root,
            on_iopub=self._on_iopub, on_dead=self._kernel_dead, on_pid=self._remember_pid, sandbox=self.sandbox,
        )
        self._all.add(kernel)
        return kernel

    def _remember_pid(self, kernel, pid):
        self._by_pid[pid] = kernel

    def _process_exited(self, pid, status, oom):
        kernel = self._by_pid.pop(pid, None)
        if kernel is not None:
            kernel.process_exited(pid, status, oom)

    def _kernel_dead(self, kernel, reason):
        self._all.discard(kernel)
        self.pool.discard(kernel)
        handed_out = self.kernels.pop(kernel.kernel_id, None) is not None
        self._on_kernel_ended(kernel, reason, handed_out)
        self.pool.refill()

    @defer.inlineCallbacks
    def acquire(self, owner):
        """A ready kernel handed to C{owner}."""
        if len(self.kernels) >= self.config.max_kernels:
            raise errors.Capacity("spawner {} runs its maximum of {} kernels; try again later".format(self.config.spawner_id, self.config.max_kernels))
        kernel = yield self.pool.acquire()
        self.kernels[kernel.kernel_id] = kernel
        kernel.assign(owner)
        return kernel

    @defer.inlineCallbacks
    def execute_once(self, code, timeout, user_expressions, stop_on_error, progress, files=None, return_files=False):
        """Run C{code} in a fresh kernel that is thrown away afterwards.

        C{files} ({path: bytes}) are written into its directory first; with
        C{return_files}, the files the run made come back inline (up to
        C{max_inline_file_bytes} in all; larger ones are listed without data).
        """
        if not files and not return_files and self.oneshot is not None and self.oneshot.running:
            result = yield self.oneshot.run(code, timeout, user_expressions, stop_on_error, progress, self.config.max_output_bytes)
            return result
        kernel = yield self.pool.acquire()
        try:
            for path, data in (files or {}).items():
                kernel.files.write(path, data.encode() if isinstance(data, str) else data, 0)
            result = yield kernel.execute(code, timeout=timeout, user_expressions=user_expressions, stop_on_error=stop_on_error, progress=progress, kill_on_timeout=True)
            if return_files and kernel.state != "dead":
                budget = self.config.max_inline_file_bytes
                for entry in result.get("files", []):
                    if entry["size"] <= budget:
                        f, _ = kernel.files.open_read(entry["name"])
                        with f:
                            entry["data"] = f.read()
                        budget -= entry["size"]
                    else:
                        entry["truncated"] = True
        finally:
            kernel.shutdown("one-shot execution finished")
        return result

    def status(self):
        return {
            "id": self.config.spawner_id,
            "host": socket.gethostname(),
            "kernels": len(self.kernels),
            "pool_ready": self.pool.ready_count,
            "capacity": self.config.max_kernels,
            "sandbox": self.sandbox.status(),
        }

    @defer.inlineCallbacks
    def stop(self):
        """Kill every kernel and the fork master."""
        self.pool.close()
        for kernel in list(self._all):
            kernel.shutdown("the spawner is stopping")
        if self.oneshot is not None:
            self.oneshot.stop()
        if self.master is not None:
            yield self.master.stop()
        if self.zmq_context is not None:
            self.zmq_context.destroy(linger=0)
        shutil.rmtree(self.runtime_root, ignore_errors=True)
        if self._own_work_root:
            shutil.rmtree(self.work_root, ignore_errors=True)


def _execute_signature(code, allow_stdin=False, timeout=None, user_expressions=None, stop_on_error=True):
    pass


def _input_signature(value):
    pass


def _no_arguments():
    pass


def _complete_signature(code, cursor_pos):
    pass


def _inspect_signature(code, cursor_pos, detail_level=0):
    pass


def _execute_once_signature(code, timeout=None, user_expressions=None, stop_on_error=True, files=None, return_files=False):
    pass


def _path_signature(path=""):
    pass


def _get_signature(path):
    pass


def _put_signature(path, data, offset=0, final=True):
    pass


class KernelProcedures:
    """The per-kernel WAMP procedures: argument checks, then the L{Kernel} call."""

    def __init__(self, config):
        self._config = config

    def call(self, kernel, name, args, kwargs, details):
        if kernel.owner != details.caller:
            raise errors.NotFound("no kernel {} is yours".format(kernel.kernel_id))
        handler = getattr(self, "do_" + name.replace(".", "_"), None) if name.replace(".", "").isidentifier() else None
        if handler is None:
            raise errors.NotFound("kernels have no procedure {!r}; they have {}".format(name, ", ".join(uris.KERNEL_PROCEDURES)))
        return handler(kernel, args, kwargs, details)

    def do_execute(self, kernel, args, kwargs, details):
        a = arguments.bind("execute", _execute_signature, args, kwargs)
        code = arguments.check_str("code", a["code"], self._config.max_code_bytes)
        progress = details.progress if details.progress else None
        return kernel.execute(
            code,
            allow_stdin=arguments.check_bool("allow_stdin", a["allow_stdin"]),
            timeout=arguments.check_timeout("timeout", a["timeout"]),
            user_expressions=arguments.check_user_expressions("user_expressions", a["user_expressions"]),
            stop_on_error=arguments.check_bool("stop_on_error", a["stop_on_error"]),
            progress=progress,
        )

    def do_input(self, kernel, args, kwargs, details):
        a = arguments.bind("input", _input_signature, args, kwargs)
        return kernel.input(arguments.check_str("value", a["value"], self._config.max_code_bytes))

    def do_files_list(self, kernel, args, kwargs, details):
        a = arguments.bind("files.list", _path_signature, args, kwargs)
        kernel.touch()
        return kernel.files.list(a["path"])

    def do_files_get(self, kernel, args, kwargs, details):
        """The file's bytes: progressive chunks (if asked for) then {size, sha256}."""
        a = arguments.bind("files.get", _get_signature, args, kwargs)
        kernel.touch()
        f, size = kernel.files.open_read(a["path"])
        with f:
            if size > self._config.max_download_bytes:
                raise errors.TooLarge("{!r} is {} bytes; downloads are limited to {} bytes".format(a["path"], size, self._config.max_download_bytes), size=size)
            if not details.progress and size > self._config.max_inline_file_bytes:
                raise errors.TooLarge("{!r} is {} bytes: ask for progressive results to receive it in chunks".format(a["path"], size), size=size)
            digest = hashlib.sha256()
            offset = 0
            whole = []
            for chunk in iter(lambda: f.read(self._config.file_chunk_bytes), b""):
                digest.update(chunk)
                if details.progress:
                    details.progress({"offset": offset, "data": chunk})
                else:
                    whole.append(chunk)
                offset += len(chunk)
        result = {"size": offset, "sha256": digest.hexdigest()}
        if not details.progress:
            result["data"] = b"".join(whole)
        return result

    def do_files_put(self, kernel, args, kwargs, details):
        a = arguments.bind("files.put", _put_signature, args, kwargs)
        data = a["data"]
        if isinstance(data, str):
            data = data.encode("utf-8")
        if not isinstance(data, (bytes, bytearray)):
            raise errors.InvalidArgument("data must be bytes (binary in msgpack/cbor, autobahn's binary encoding in JSON) or a string")
        offset = arguments.check_int("offset", a["offset"])
        final = arguments.check_bool("final", a["final"])
        config = self._config
        if offset + len(data) > config.max_upload_file_bytes:
            raise errors.TooLarge("uploads are limited to {} bytes per file".format(config.max_upload_file_bytes), limit=config.max_upload_file_bytes)
        snapshot = kernel.files.snapshot()
        if config.disk_limit_mb and sum(size for size, _ in snapshot.values()) + len(data) > config.disk_limit_mb * 1024 * 1024:
            raise errors.TooLarge("the kernel's working directory would exceed its disk limit of {} MB".format(config.disk_limit_mb))
        if a["path"] not in snapshot and len(snapshot) >= config.max_files:
            raise errors.TooLarge("the kernel's working directory already has {} files, the most allowed".format(len(snapshot)))
        kernel.touch()
        size = kernel.files.write(a["path"], data, offset)
        result = {"size": size}
        if final:
            result["sha256"] = kernel.files.sha256(a["path"])
        return result

    def do_interrupt(self, kernel, args, kwargs, details):
        arguments.bind("interrupt", _no_arguments, args, kwargs)
        kernel.interrupt()

    def do_restart(self, kernel, args, kwargs, details):
        arguments.bind("restart", _no_arguments, args, kwargs)
        return kernel.restart()

    def do_shutdown(self, kernel, args, kwargs, details):
        arguments.bind("shutdown", _no_arguments, args, kwargs)
        return kernel.shutdown()

    def do_complete(self, kernel, args, kwargs, details):
        a = arguments.bind("complete", _complete_signature, args, kwargs)
        code = arguments.check_str("code", a["code"], self._config.max_code_bytes)
        cursor_pos = arguments.check_int("cursor_pos", a["cursor_pos"])
        return kernel.shell_request("complete_request", {"code": code, "cursor_pos": cursor_pos})

    def do_inspect(self, kernel, args, kwargs, details):
        a = arguments.bind("inspect", _inspect_signature, args, kwargs)
        code = arguments.check_str("code", a["code"], self._config.max_code_bytes)
        cursor_pos = arguments.check_int("cursor_pos", a["cursor_pos"])
        detail_level = arguments.check_int("detail_level", a["detail_level"])
        if detail_level not in (0, 1):
            raise errors.InvalidArgument("detail_level must be 0 or 1")
        return kernel.shell_request("inspect_request", {"code": code, "cursor_pos": cursor_pos, "detail_level": detail_level})


class SpawnerService:
    """The WAMP face of a L{KernelSpawner}; survives reconnects (sessions do not)."""

    log = Logger()

    def __init__(self, reactor, config):
        self._reactor = reactor
        self.config = config
        self.session = None
        self.spawner = KernelSpawner(reactor, config, self._publish_iopub, self._kernel_ended, prepare_kernel=self._prepare_kernel)
        self._procedures = KernelProcedures(config)
        self._registrations = {}
        self._orphaned = None  # the timer that ends our kernels if the router stays away
        self.listeners = IopubListeners()

    def _publish_iopub(self, kernel, msg):
        topic = uris.kernel_iopub(kernel.kernel_id)
        if self.session is not None and self.session.is_attached() and self.listeners.wanted(topic):
            self.session.publish(topic, msg)

    def _prepare_kernel(self, kernel):
        """Register a pool kernel's procedures before anyone asks for it: a start then costs no registration."""
        if self.session is not None and self.session.is_attached():
            return self._register_kernel(kernel)
        return None  # registered when we (re)join

    def _kernel_ended(self, kernel, reason, handed_out):
        registration = self._registrations.pop(kernel.kernel_id, None)
        if self.session is None or not self.session.is_attached():
            return
        if registration is not None and registration.active:
            registration.unregister().addErrback(lambda _: None)
        if not handed_out:
            return
        self.session.publish(
            uris.SPAWNER_ON_KERNEL_ENDED,
            {"spawner": self.config.spawner_id, "kernel_id": kernel.kernel_id, "owner": kernel.owner, "reason": reason},
            options=PublishOptions(acknowledge=False),
        )

    @defer.inlineCallbacks
    def on_join(self, session, details):
        """(Re)join: register our procedures and every kernel we still run, then announce them."""
        self.session = session
        if self._orphaned is not None and self._orphaned.active():
            self._orphaned.cancel()
        self._orphaned = None
        sid = self.config.spawner_id
        # Meta events are (session id, details) and (session id, subscription id).
        yield session.subscribe(lambda _session, details: self.listeners.created(details), uris.SUBSCRIPTION_ON_CREATE)
        yield session.subscribe(lambda _session, subscription_id: self.listeners.deleted(subscription_id), uris.SUBSCRIPTION_ON_DELETE)
        register = session.register
        yield register(self.start_kernel, uris.spawner_procedure(sid, "start_kernel"))
        yield register(self.shutdown_kernel, uris.spawner_procedure(sid, "shutdown_kernel"))
        yield register(self.rebind_kernel, uris.spawner_procedure(sid, "rebind_kernel"))
        yield register(self.execute_once, uris.spawner_procedure(sid, "execute_once"), options=RegisterOptions(details_arg="details"))
        yield register(self.info, uris.spawner_procedure(sid, "info"))
        for kernel in list(self.spawner.kernels.values()) + self.spawner.pool.ready_kernels():
            yield self._register_kernel(kernel)
        yield self.listeners.sync(session, [uris.kernel_iopub(k) for k in self.spawner.kernels])
        session.publish(uris.SPAWNER_ON_READY, self.info())
        self.log.info("spawner {sid} joined realm {realm} as session {session} with {n} kernel(s)", sid=sid, realm=details.realm, session=details.session, n=len(self.spawner.kernels))

    def on_leave(self, session, details):
        """The router is gone.  Keep our kernels for C{router_grace_s}: a restarted
        router (and the owners' resume tokens) may claim them; past it they end."""
        self.session = None
        self._registrations.clear()
        self.listeners.reset()
        grace = self.config.router_grace_s
        if self.spawner.kernels:
            self.log.warn("lost the router; keeping {n} kernel(s) for {grace} s", n=len(self.spawner.kernels), grace=grace)
        if self._orphaned is None or not self._orphaned.active():
            self._orphaned = self._reactor.callLater(grace, self._router_stayed_away)

    def _router_stayed_away(self):
        self._orphaned = None
        for kernel in list(self.spawner.kernels.values()):
            kernel.shutdown("the spawner lost its router connection for {} s".format(self.config.router_grace_s))

    def info(self):
        info = self.spawner.status()
        info["session"] = self.session._session_id if self.session is not None else None
        info["kernel_list"] = [{"kernel_id": k.kernel_id, "owner": k.owner} for k in self.spawner.kernels.values()]
        return info

    @defer.inlineCallbacks
    def _register_kernel(self, kernel):
        """One prefix registration serves all of a kernel's procedures."""

        def handler(*args, **kwargs):
            details = kwargs.pop("details")
            name = details.procedure[len(uris.kernel_backend_prefix(kernel.kernel_id)):]
            return self._procedures.call(kernel, name, args, kwargs, details)

        registration = yield self.session.register(
            handler, uris.kernel_backend_prefix(kernel.kernel_id), options=RegisterOptions(match="prefix", details_arg="details")
        )
        if kernel.state == "dead":
            registration.unregister().addErrback(lambda _: None)
        else:
            self._registrations[kernel.kernel_id] = registration
        return registration

    @defer.inlineCallbacks
    def start_kernel(self, owner):
        kernel = yield self.spawner.acquire(owner)
        if kernel.kernel_id not in self._registrations:  # forked on demand, not from the pool
            try:
                yield self._register_kernel(kernel)
            except Exception:
                kernel.shutdown("its procedures could not be registered")
                raise
        if kernel.state == "dead":
            raise errors.KernelDied("the kernel died while starting: {}".format(kernel.dead_reason))
        return {"kernel_id": kernel.kernel_id, "iopub": uris.kernel_iopub(kernel.kernel_id), "spawner": self.config.spawner_id, "resume_token": kernel.resume_token}

    def rebind_kernel(self, kernel_id, token, owner):
        """Give a kernel to a new session that shows its resume token."""
        kernel = self.spawner.kernels.get(kernel_id)
        if kernel is None or not isinstance(token, str) or not hmac.compare_digest(token.encode(), kernel.resume_token.encode()):
            raise errors.NotFound("no kernel {} can be resumed with this token".format(kernel_id))
        kernel.owner = owner
        kernel.touch()
        return True

    def shutdown_kernel(self, kernel_id, reason="its owner left"):
        kernel = self.spawner.kernels.get(kernel_id)
        if kernel is not None:
            kernel.shutdown(reason)
        return kernel is not None

    def execute_once(self, code, timeout=None, user_expressions=None, stop_on_error=True, files=None, return_files=False, details=None):
        a = arguments.bind("cell.execute", _execute_once_signature, (code,), {"timeout": timeout, "user_expressions": user_expressions, "stop_on_error": stop_on_error, "files": files, "return_files": return_files})
        files = a["files"] or {}
        if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, (bytes, bytearray, str)) for k, v in files.items()):
            raise errors.InvalidArgument("files must map relative paths to bytes")
        if sum(len(v) for v in files.values()) > self.config.max_inline_file_bytes:
            raise errors.TooLarge("input files are limited to {} bytes in all".format(self.config.max_inline_file_bytes))
        code = arguments.check_str("code", a["code"], self.config.max_code_bytes)
        timeout = arguments.check_timeout("timeout", a["timeout"])
        timeout = min(timeout or self.config.oneshot_timeout_s, self.config.oneshot_timeout_max_s)
        progress = details.progress if details is not None and details.progress else None
        return self.spawner.execute_once(
            code, timeout,
            arguments.check_user_expressions("user_expressions", a["user_expressions"]),
            arguments.check_bool("stop_on_error", a["stop_on_error"]),
            progress,
            files,
            arguments.check_bool("return_files", a["return_files"]),
        )


def transport_for(router):
    """An autobahn transport config for C{--router}: ``ws://…``, ``rs://…`` or ``unix:PATH``."""
    if router.startswith("unix:"):
        path = os.path.abspath(router[len("unix:"):])
        return {"type": "rawsocket", "url": "rs://localhost", "endpoint": {"type": "unix", "path": path}, "serializer": "msgpack"}
    if router.startswith("rs://"):
        return {"type": "rawsocket", "url": router, "serializer": "msgpack"}
    # Ping the router so that a silent network cut is noticed (and the spawner reconnects) within seconds.
    return {"type": "websocket", "url": router, "serializers": ["msgpack"], "options": {"auto_ping_interval": 3, "auto_ping_timeout": 3}}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m components.kernel_spawner", description="cellserver kernel spawner (one per worker host)")
    parser.add_argument("--router", default="ws://127.0.0.1:8080/ws", help="router to join: ws://HOST:PORT/ws, rs://HOST:PORT or unix:PATH")
    parser.add_argument("--realm", default="cell")
    parser.add_argument("--id", dest="spawner_id", default=socket.gethostname().split(".")[0].lower().replace("-", "_"), help="spawner id (lowercase letters, digits, _)")
    parser.add_argument("--config", default="{}", help="JSON object of spawner settings (see docs/config.md)")
    parser.add_argument("--die-with-parent", action="store_true", help="exit when the parent process (the Crossbar node) dies")
    parser.add_argument("--authid", help="WAMP-CRA principal (role spawner) when joining over TCP; default: the spawner id")
    parser.add_argument("--secret-env", help="environment variable holding the WAMP-CRA secret (enables WAMP-CRA)")
    parser.add_argument("--node-dir", help="with --router unix:PATH, where the node key is (default: the socket's directory)")
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
        authentication = {"wampcra": {"authid": args.authid or config.spawner_id, "secret": os.environ[args.secret_env]}}
    elif args.router.startswith("unix:"):
        # The node's own socket admits only holders of the node key (components.backend_auth),
        # and its directory is one kernels must not see.
        node_dir = args.node_dir or os.path.dirname(os.path.abspath(args.router[len("unix:"):]))
        authentication = cryptosign_authentication(node_dir, "spawner_" + config.spawner_id)
        config = dataclasses.replace(config, hidden_paths=config.hidden_paths + (node_dir,))

    def run(reactor):
        service = SpawnerService(reactor, config)
        component = Component(transports=[transport_for(args.router)], realm=config.realm, authentication=authentication)
        component.on("join", service.on_join)
        component.on("leave", service.on_leave)
        stopped = defer.Deferred()

        def stop():
            return service.spawner.stop()

        reactor.addSystemEventTrigger("before", "shutdown", stop)

        @defer.inlineCallbacks
        def go():
            yield service.spawner.start()
            component.start(reactor)

        def failed(failure):
            sys.stderr.write("spawner failed to start:\n{}".format(failure.getTraceback()))
            reactor.stop()

        go().addErrback(failed)
        return stopped

    task.react(run)


if __name__ == "__main__":
    main()
