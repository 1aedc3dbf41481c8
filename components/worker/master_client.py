"""The spawner's side of the fork master (see L{components.child.fork_master}).

A Twisted ``ProcessProtocol`` that starts the master, sends it JSON-line
requests and turns its events into Deferreds and callbacks: C{spawn()} fires
with the new kernel's pid; C{on_exit(pid, status, oom)} is called when a
kernel process ends, however it ended (C{oom}: its memory cgroup hit the limit).
"""

from twisted.internet import defer

from components.common import errors
from components.worker.json_lines import JsonLinesProcess


class MasterDied(errors.Capacity):
    """The fork master exited; no kernel can be forked until its supervisor has started a new one."""


class ForkFailed(errors.Capacity):
    """The fork master could not fork this kernel (EAGAIN, ENOMEM, ...); it goes on serving."""


class ForkMasterProtocol(JsonLinesProcess):
    name = "fork master"

    def __init__(self, on_exit):
        super().__init__()
        self._on_exit = on_exit
        self._pending = {}
        self._next_ref = 0
        self.ready = defer.Deferred()

    def event_received(self, event):
        op = event["op"]
        if op == "ready":
            self.ready.callback(event)
        elif op == "spawned":
            self._pending.pop(event["ref"]).callback(event["pid"])
        elif op == "failed":
            self._pending.pop(event["ref"]).errback(
                ForkFailed("the kernel could not be forked: {}; try again in a moment".format(event.get("error")))
            )
        elif op == "exited":
            self._on_exit(event["pid"], event["status"], event.get("oom", False))

    def spawn(self, connection_file, cwd, env, log_file, sandbox=None, max_output_bytes=0):
        """Fork one kernel in C{sandbox} (see L{components.child.sandbox}); the Deferred fires with its pid.

        C{max_output_bytes}: the output cap the kernel applies to itself (L{components.child.kernel_streams}).
        """
        if not self.running:
            return defer.fail(
                MasterDied("the fork master is not running (it is being restarted); try again in a moment")
            )
        self._next_ref += 1
        ref = str(self._next_ref)
        d = defer.Deferred()
        self._pending[ref] = d
        self.send(
            {
                "op": "spawn",
                "ref": ref,
                "connection_file": connection_file,
                "cwd": cwd,
                "env": env,
                "log_file": log_file,
                "sandbox": sandbox,
                "max_output_bytes": max_output_bytes,
            }
        )
        return d

    def signal(self, pid, signum):
        """Send C{signum} to the process group of kernel C{pid} (if it still lives)."""
        if self.running:
            self.send({"op": "signal", "pid": pid, "signum": int(signum)})

    def process_ended(self, reason):
        for d in self._pending.values():
            d.errback(MasterDied("the fork master exited: {}".format(reason.value)))
        self._pending.clear()
        if not self.ready.called:
            self.ready.errback(MasterDied("the fork master exited before it was ready: {}".format(reason.value)))

    def stop(self):
        """Close the master's stdin: it kills every kernel and exits."""
        if self.running:
            self.transport.closeStdin()
        return self.ended


def start_fork_master(reactor, environment, preload, on_exit, home=None, flavour="python"):
    """Start the master in C{environment} (a L{KernelEnvironment}); return its protocol (wait on C{.ready}).

    C{home}: its private directory for caches (see L{KernelEnvironment.env}); C{flavour}: the kernels it forks
    (``python``, or ``sage``: L{components.child.sage_kernel}).
    """
    proto = ForkMasterProtocol(on_exit)
    command = environment.command("components.child.fork_master", "--preload", ",".join(preload), "--flavour", flavour)
    reactor.spawnProcess(proto, command[0], command, env=environment.env(home), childFDs={0: "w", 1: "r", 2: "r"})
    return proto
