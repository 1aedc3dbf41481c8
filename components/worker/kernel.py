"""The lifecycle of one kernel, in one place.

A L{Kernel} is what a client sees: an unguessable id, an owner, a working
directory that survives restarts, and one forked ipykernel process at a time
behind it.  Its states (L{KernelState})::

    starting --ready--> ready --(assign)--> ready (owned) --> dead
       ^                                         |
       +---------------- restart ----------------+

It is dead for good once its process exits unexpectedly, stops answering the
heartbeat, is shut down, or passes its idle timeout or lifespan; then every
pending call fails with L{KernelDied} and a last iopub ``status: dead`` event
(with a ``reason``) is published.

The work is shared by collaborators, each with one job: L{KernelProcess}
(fork, signal, kill, exit reasons), L{KernelReadiness} (the start-up probe),
L{KernelExecutions} (executions and shell requests: time limits, outputs
within the caps, the answer), L{JupyterClientRelay} (what Jupyter clients send
through the face) and L{Watchdog} (heartbeat, idle, lifespan, processes,
disk).  This class holds the state machine and routes the kernel's ZMQ
channels to them by state.
"""

import functools
import os
import secrets
import signal
import uuid

from twisted.internet import defer
from twisted.logger import Logger

from components.common import errors
from components.common.kernelspecs import PYTHON
from components.worker.death_causes import DeathReason
from components.worker.exec_kernel_process import ExecKernelProcess
from components.worker.files import KernelFiles
from components.worker.kernel_client_relay import JupyterClientRelay
from components.worker.kernel_execution import KernelExecutions
from components.worker.kernel_host import KernelHost
from components.worker.kernel_process import KernelProcess
from components.worker.kernel_readiness import LAUNCHED_PROBE_INTERVAL_S, PROBE_INTERVAL_S, KernelReadiness
from components.worker.kernel_state import KernelState
from components.worker.watchdog import Watchdog

#: what callers import from here (the probe's pace is the bench's too)
__all__ = ["Kernel", "KernelHost", "KernelState", "LAUNCHED_PROBE_INTERVAL_S", "PROBE_INTERVAL_S"]


class Kernel:
    """One kernel: see the module docstring.

    @param host: the spawner's L{KernelHost}.
    @param on_iopub: called with C{(kernel, msg)} for every iopub message of an owned kernel.
    @param on_dead: called with C{(kernel, reason)} once, when the kernel is dead for good.
    @param on_pid: called with C{(kernel, pid)} each time a process is forked for it.
    @param on_jupyter: called with C{(kernel, channel, msg)} for what goes back to a Jupyter client.
    @param kernel_name: C{python3} (forked from the warm master), or the name of one of the host's
        C{kernelspecs} (launched from its kernelspec, L{ExecKernelProcess}).
    """

    log = Logger()

    def __init__(self, host, on_iopub, on_dead, on_pid=lambda kernel, pid: None, on_jupyter=None, kernel_name=PYTHON):
        self.kernel_id = uuid.uuid4().hex
        self.kernel_name = kernel_name
        self._host = host
        self._on_iopub = on_iopub
        self._on_dead = on_dead
        self.jupyter = JupyterClientRelay(functools.partial(on_jupyter or _ignore, self), host.messages, self.touch)
        self.cwd = os.path.join(host.work_root, self.kernel_id)
        self.files = KernelFiles(self.cwd, max_files=host.config.max_files)
        #: uploads run in threads, one at a time and in order (L{components.worker.procedures})
        self.file_work = defer.DeferredLock()
        #: how an interrupt reaches the kernel: "signal" (SIGINT to its group) or "message" (interrupt_request)
        self.process, self.interrupt_mode = _process_for(self, host, on_pid)
        self.readiness = KernelReadiness(
            host.clock, host.config, host.forks(kernel_name), self._became_ready, self._fail_start
        )
        self.executions = KernelExecutions(self, host)
        self.requests = self.executions.requests
        self.watchdog = _watchdog_for(self, host)
        self.owner = None
        #: a bearer secret that lets a new session take this kernel over (cell.kernel.resume)
        self.resume_token = secrets.token_urlsafe(24)
        self.state = KernelState.STARTING
        self.dead_reason = None
        #: the current process's ZMQ channels (L{KernelChannels}), None while none is up
        self.channels = None
        self._ready = None

    @property
    def pid(self):
        return self.process.pid

    # -- starting ----------------------------------------------------------------

    def start(self):
        """Fork the process; the Deferred fires with this kernel once it is ready."""
        self._host.disks.make(self.cwd)
        return self._fork()

    def _fork(self):
        self.state = KernelState.STARTING
        ready = self._ready = defer.Deferred()
        try:
            d = self.process.fork(niced=self.owner is None)
        except errors.CellError as exc:
            self._fail_start(exc)
            return ready
        self.files.owner = self.process.owns_files_as()
        self.watchdog.cgroup = self.process.cgroup
        self.readiness.begin()
        # A failure in _spawned too (no socket left for its channels): before, it was an unhandled error in
        # this Deferred and the start waited for its timeout (30 s) to fail.
        d.addCallback(self._spawned)
        d.addErrback(self._fail_start)
        return ready

    def _spawned(self, forked):
        pid, connection = forked
        if self.state == KernelState.DEAD:
            self.process.kill(pid)
            return
        self.channels = self._host.open_channels(
            connection, self._reply_received, self._iopub_received, self._stdin_received, self.watchdog.pong
        )
        self.readiness.probe(self.channels)

    def _became_ready(self):
        self.state = KernelState.READY
        for message in self.jupyter.take_held():
            self.jupyter_send(message)
        self.watchdog.watch_heartbeat()
        ready, self._ready = self._ready, None
        ready.callback(self)

    def _fail_start(self, failure):
        ready, self._ready = self._ready, None
        self.die(DeathReason("start_failed", "failed to start"))
        if ready is not None and not ready.called:
            ready.errback(failure)

    # -- ownership and lifetime ------------------------------------------------------

    def assign(self, owner):
        """Hand this ready kernel to C{owner} (a WAMP session id); start its clocks."""
        self.owner = owner
        self.process.restore_priority(self.log)
        self.watchdog.assigned()

    def touch(self):
        """Note activity: the idle clock starts again."""
        if self.owner is not None and self.state != KernelState.DEAD:
            self.watchdog.touch()

    def process_exited(self, pid, status, oom=False):
        """Called by the spawner when the fork master reaps C{pid} (any generation)."""
        if self.process.exited(pid) and self.state != KernelState.DEAD:
            self.die(self.process.exit_reason(status, oom))
        if self.state == KernelState.DEAD:
            self.process.release()

    def shutdown(self, reason=DeathReason("shutdown", "shut down by its owner")):
        """Kill the process group and declare the kernel dead."""
        self.die(reason)
        return defer.succeed(None)

    def die(self, reason):
        """Declare the kernel dead for good: fail everything pending, kill, clean up, tell."""
        if self.state == KernelState.DEAD:
            return
        was_starting = self.state == KernelState.STARTING
        self.state = KernelState.DEAD
        self._host.metrics.died(reason)
        reason = str(reason)  # the text travels; the cause was for the count
        self.dead_reason = reason
        self.log.info("kernel {kernel_id} dead: {reason}", kernel_id=self.kernel_id, reason=reason)
        if was_starting and self.process.runtime_dir:
            self.log.warn(
                "kernel {kernel_id} failed to start; its log ends with:\n{tail}",
                kernel_id=self.kernel_id,
                tail=self.process.log_tail(),
            )
        self.watchdog.stop()
        self.readiness.stop()
        self._close_channels()
        self.process.stop()
        self.executions.fail_all(errors.KernelDied("the kernel died: {}".format(reason), reason=reason))
        self.jupyter.forget()
        ready, self._ready = self._ready, None
        if ready is not None and not ready.called:
            ready.errback(errors.KernelDied("the kernel died while starting: {}".format(reason), reason=reason))
        self._host.disks.remove(self.cwd)
        self.process.release()
        self.publish(self._host.messages.dead(reason))
        self._on_dead(self, reason)

    def _close_channels(self):
        if self.channels is not None:
            self.channels.close()
            self.channels = None

    def restart(self):
        """Replace the process by a fresh one (same id, owner and directory)."""
        self._check_alive()
        self.executions.fail_all(errors.KernelDied("the kernel was restarted", reason="restarted"))
        self.jupyter.forget(held=False)
        self._close_channels()
        self.process.stop()
        self.watchdog.stop_heartbeat()
        self.publish(self._host.messages.restarting())
        d = self._fork()
        d.addCallback(lambda _: {"status": "ok"})
        return d

    def interrupt(self):
        """Interrupt the kernel the way its kernelspec says: SIGINT to its process group, or an interrupt_request."""
        self._check_alive()
        self.executions.interrupted()
        self.interrupt_process()

    def interrupt_process(self):
        """Interrupt whatever runs now (a time limit, a cancelled call, an output cap)."""
        if self.interrupt_mode == "message" and self.channels is not None:
            self.channels.request("control", "interrupt_request", {})
        else:
            self.process.signal(signal.SIGINT)

    def publish(self, msg):
        """An iopub message for the owner (a kernel in the pool has nobody to tell)."""
        if self.owner is not None:
            self._on_iopub(self, msg)

    # -- requests --------------------------------------------------------------------

    def execute(self, code, **options):
        """Run C{code}; fire with the result dict (see docs/api.md and L{KernelExecutions.execute} for C{options})."""
        return self._usable().execute(code, **options)

    def input(self, value):
        """Answer the pending ``input()`` of the running execution."""
        self._usable().input(value)

    def send_comm(self, msg_type, content, metadata, buffers):
        """Send a comm message (``comm_open``, ``comm_msg``, ``comm_close``); return its msg_id.

        It has no reply: what the kernel does with it shows on iopub under that msg_id as parent.
        """
        self._usable()
        return self.channels.request("shell", msg_type, content, metadata=metadata, buffers=buffers)

    def jupyter_send(self, message):
        """Send a Jupyter client's checked L{ClientMessage} (L{JupyterClientRelay}); return its msg_id."""
        if self.state == KernelState.STARTING and self.owner is not None:
            # Restarting: Jupyter clients keep sending (kernel_info until answered); as ZMQ would, hold on.
            return self.jupyter.hold(message, self.kernel_id)
        self._usable()
        return self.jupyter.send(self.channels, message)

    def answer_jupyter(self, message, msg_type, content):
        """Answer a client's request ourselves (interrupt, shutdown): the reply it waits for, on its channel."""
        self.jupyter.answer(message, msg_type, content)

    def shell_request(self, msg_type, content):
        """Send a shell request (complete, inspect); fire with the reply's content."""
        return self._usable().shell_request(msg_type, content)

    def _usable(self):
        """A call of the owner: the kernel must be ready, and it counts as activity."""
        self._check_alive()
        self.touch()
        return self.executions

    def _check_alive(self):
        if self.state == KernelState.DEAD:
            raise errors.NotFound("kernel {} is dead: {}".format(self.kernel_id, self.dead_reason))
        if self.state != KernelState.READY or self.channels is None:
            raise errors.Capacity("kernel {} is restarting; try again in a moment".format(self.kernel_id))

    # -- incoming messages, routed by state ----------------------------------------------

    def _reply_received(self, channel, msg):
        if self.jupyter.reply(channel, msg):
            return
        if self.state == KernelState.STARTING:
            self.readiness.reply(msg["parent_header"].get("msg_id"), msg["header"]["msg_type"])
        elif msg["header"]["msg_type"] != "kernel_info_reply":
            self.executions.reply(msg)

    def _iopub_received(self, msg):
        if self.state == KernelState.STARTING:
            self.readiness.iopub(msg["parent_header"].get("msg_id"), msg["header"]["msg_type"])
        else:
            self.executions.iopub(msg)

    def _stdin_received(self, msg):
        if msg["header"]["msg_type"] == "input_request" and not self.jupyter.input_request(msg):
            self.executions.input_request(msg)


def _process_for(kernel, host, on_pid):
    """The process behind C{kernel} and how it is interrupted: forked (Python) or launched from a kernelspec."""
    if host.forks(kernel.kernel_name):
        process = KernelProcess(kernel.kernel_id, host, kernel.cwd, lambda pid: on_pid(kernel, pid), kernel.kernel_name)
        return process, "signal"
    process = ExecKernelProcess(
        kernel.kernel_id, host, kernel.cwd, kernel.kernel_name, host.kernelspecs, on_exit=kernel.process_exited
    )
    return process, host.kernelspecs.specs[kernel.kernel_name].interrupt_mode


def _watchdog_for(kernel, host):
    """The clocks that end C{kernel}: heartbeat, idle, lifespan, its processes and disk (L{Watchdog})."""

    def ping():
        if kernel.channels is not None:
            kernel.channels.ping()

    watchdog = Watchdog(
        host.clock,
        host.config,
        kernel.die,
        busy=lambda: bool(kernel.requests.executions or kernel.jupyter.busy),
        ping=ping,
        # ipykernel answers heartbeats from a thread of its own; IRkernel's loop does not while it runs code
        heartbeat_while_busy=host.forks(kernel.kernel_name),
    )
    watchdog.disk_check = lambda: host.disks.check(kernel.cwd)
    return watchdog


def _ignore(*args):
    pass
