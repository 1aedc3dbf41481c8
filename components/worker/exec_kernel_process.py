"""A kernel of another language, started from its kernelspec by jupyter_client's provisioning, in the sandbox.

L{ExecKernelProcess} is the process strategy of a non-Python L{Kernel}: the
same interface as L{KernelProcess} (generations, signals, exit reasons), but
each generation is launched, not forked from the warm master:

- a C{KernelManager} (L{SandboxedKernelManager}) with the kernel's
  kernelspec writes the connection file (``ipc`` transport in the
  generation's runtime directory, a fresh 256-bit key) and fills in the
  spec's ``argv`` (a bare ``python``: the Python of the environment the spec
  was found in, L{components.worker.kernelspecs}) and ``env`` (that
  environment's programs first on ``PATH``);
- its provisioner, L{SandboxedProvisioner} (jupyter_client's
  C{LocalProvisioner}), launches it with C{Popen} in a new session, but its
  command is L{components.child.exec_kernel}, which enters the sandbox the
  spawner's policy gives (network namespace, memory cgroup, mount namespace,
  rlimits, the kernel's uid, the seccomp filter) and then ``exec``s the
  spec's ``argv`` with the kernel's own environment;
- the spawner learns of the process's exit at once, from a pidfd in the
  reactor (L{ExitWatcher}), reaps it, kills what is left of its group and
  cgroup, and removes the cgroup.

The manager opens no socket of its own: the kernel's L{KernelChannels} talk
to it, as to a forked kernel.
"""

import json
import os
import signal
import subprocess
import uuid

from jupyter_client.manager import KernelManager
from jupyter_client.provisioning import LocalProvisioner
from twisted.internet.interfaces import IReadDescriptor
from twisted.logger import Logger
from zope.interface import implementer

from components.child.sandbox import (
    cgroup_oom_killed,
    cgroup_tasks,
    kill_cgroup,
    signal_group,
    try_remove_cgroup,
)
from components.common import errors
from components.worker.blocking import run_coroutine
from components.worker.kernel_environment import PROJECT, KernelEnvironment
from components.worker.kernel_process import KernelProcess
from components.worker.kernelspecs import environment_bins

#: how often, and how many times, a dead kernel's cgroup is removed again while its last processes leave it
CGROUP_RETRY_S = 1.0
CGROUP_RETRIES = 30

#: an argv[0] that means "a Python": the kernel's environment's, not the spawner's (jupyter_client would use its own)
BARE_PYTHONS = ("python", "python3")


#: languages whose kernels bind an ``ipc`` channel at ``<ip>:<port>``, not at jupyter_client's ``<ip>-<port>``
#: (GAP's JupyterKernel package joins transport, ip and port as for TCP)
COLON_IPC_LANGUAGES = ("gap",)

PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


def link_colon_addresses(connection):
    """For a kernel that binds its ``ipc`` channels at ``<ip>:<port>``: each ``<ip>-<port>``, where the spawner's
    channels connect, is a link to it (ZeroMQ connects through a link, and retries until the kernel has bound)."""
    for name in PORT_NAMES:
        target = "{}:{}".format(os.path.basename(connection["ip"]), connection[name])
        os.symlink(target, "{}-{}".format(connection["ip"], connection[name]))


def path_in_environment(path, python, kernels_python):
    """The ``PATH`` of a kernel found in C{python}'s environment: that environment's programs first (a kernelspec of
    the Sage environment runs ``jupyter-kernel-gap`` or ``sage``, which look for ``gap`` and ``Singular``), then
    C{path}, the kernels' usual one; unchanged for the kernels' own environment (C{kernels_python})."""
    if not python or python == kernels_python:
        return path
    kept = [d for d in environment_bins(python) if os.path.isdir(d)]
    return os.pathsep.join(kept + [d for d in path.split(os.pathsep) if d not in kept])


class SandboxedKernelManager(KernelManager):
    """A C{KernelManager} for one generation of a sandboxed kernel: it prepares and launches, nothing more.

    The spawner's own channels (L{components.worker.kernel_channels}) talk to
    the kernel, so the manager connects no control socket, and a spec whose
    ``argv`` starts with a bare ``python`` gets the interpreter of the
    environment the spec was found in (the kernels' one unless it was found in
    another's, the Sage environment's), not the spawner's.
    """

    #: the kernel's Python (set by L{ExecKernelProcess})
    kernel_python = None

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        if self.kernel_spec.argv and self.kernel_spec.argv[0] in BARE_PYTHONS and self.kernel_python:
            cmd[0] = self.kernel_python
        return cmd

    def _connect_control_socket(self):
        """Nothing: the spawner's channels carry every message to the kernel."""


class SandboxedProvisioner(LocalProvisioner):
    """jupyter_client's C{LocalProvisioner}, whose command puts the kernel in its sandbox first.

    C{pre_launch} (C{LocalProvisioner}'s) writes the connection file and fills
    in the kernelspec's ``argv`` and ``env``; L{launch_kernel} gives the
    kernel's files to its uid and hands ``argv``, ``env`` and the sandbox spec
    to L{components.child.exec_kernel}, which C{Popen} starts in a new session.
    """

    #: set by L{ExecKernelProcess} before the launch
    sandbox_spec = None
    environment = None

    async def launch_kernel(self, cmd, **kwargs):
        spec = self.sandbox_spec or {"limits": {}}
        if spec.get("uid") is not None:
            os.chown(self.parent.connection_file, spec["uid"], spec["gid"])
        request = {
            "argv": cmd,
            "env": kwargs["env"],
            "cwd": kwargs["cwd"],
            "sandbox": spec,
            "parent": os.getpid(),
        }
        launcher = self.environment.command("components.child.exec_kernel", json.dumps(request))
        # The launcher's own environment: the project on its path; the kernel gets request["env"] only.
        kwargs["env"] = {"PATH": os.environ.get("PATH", os.defpath), "PYTHONPATH": PROJECT, "LANG": "C.UTF-8"}
        return await super().launch_kernel(launcher, **kwargs)


@implementer(IReadDescriptor)
class ExitWatcher:
    """Calls C{on_exit()} once, when process C{pid} ends: its pidfd becomes readable (no polling, no SIGCHLD)."""

    def __init__(self, reactor, pid, on_exit):
        self._reactor = reactor
        self._on_exit = on_exit
        self._fd = os.pidfd_open(pid)
        reactor.addReader(self)

    def fileno(self):
        return self._fd

    def logPrefix(self):
        return "kernel-exit"

    def doRead(self):
        self.close()
        self._on_exit()

    def connectionLost(self, reason):
        self.close()

    def close(self):
        if self._fd >= 0:
            self._reactor.removeReader(self)
            os.close(self._fd)
            self._fd = -1


class ExecKernelProcess(KernelProcess):
    """The launched process behind one non-Python kernel (see the module docstring).

    @param kernel_name: the kernelspec's name.
    @param kernelspecs: the spawner's L{components.worker.kernelspecs.Kernelspecs}.
    @param on_exit: called with C{(pid, status, oom)} when a process of this kernel ended (any generation).
    """

    log = Logger()

    def __init__(self, kernel_id, host, cwd, kernel_name, kernelspecs, on_exit):
        super().__init__(kernel_id, host, cwd, on_pid=lambda pid: None)
        self.kernel_name = kernel_name
        self._kernelspecs = kernelspecs
        self._on_exit = on_exit
        #: pid -> (Popen, cgroup, ExitWatcher, KernelManager); the manager lives as long as its process, since
        #: jupyter_client's KernelManager removes its connection file when it is garbage-collected
        self._processes = {}

    def fork(self, niced):
        """Launch the next generation; the Deferred fires with C{(pid, connection)}.

        Raises L{errors.Capacity} when no sandbox uid is free; fails with it when the launch fails.
        """
        host = self._host
        spec = self._next_generation(niced)
        if host.sandbox is not None:
            host.sandbox.prepare_dirs(spec, self._cwd, self.runtime_dir, os.path.join(self.runtime_dir, "tmp"))
        # jupyter_client's provisioner is asyncio and ends in a Popen: in a thread of the spawner's blocking work
        # (blocking.run_coroutine, an event loop of its own), its result back on the reactor
        d = host.blocking(self._launch, spec)
        d.addCallbacks(self._launched, self._launch_failed)
        return d

    def _launched(self, launched):
        """On the reactor: watch the new process (a Kernel dead meanwhile kills it on C{(pid, connection)})."""
        pid, popen, connection, manager, cgroup = launched
        watcher = ExitWatcher(self._host.clock, pid, lambda: self._reap(pid))
        self._processes[pid] = (popen, cgroup, watcher, manager)
        self._live.add(pid)
        self.pid = pid
        return (pid, connection)

    def _launch_failed(self, failure):
        self.log.failure(
            "kernel {kernel_id}: launching {name} failed", failure, kernel_id=self._id, name=self.kernel_name
        )
        raise errors.Capacity("the {} kernel could not be launched: {}".format(self.kernel_name, failure.value))

    def _launch(self, spec):
        """In a thread: prepare the connection file and launch; C{(pid, Popen, connection, manager, cgroup)}."""
        environment = self._environment_of_kernels()
        manager = SandboxedKernelManager(
            kernel_name=self.kernel_name,
            kernel_spec_manager=self._kernelspecs.manager,
            transport="ipc",
            ip=os.path.join(self.runtime_dir, "k"),
            connection_file=os.path.join(self.runtime_dir, "connection.json"),
            shell_port=1,
            iopub_port=2,
            stdin_port=3,
            control_port=4,
            hb_port=5,
        )
        manager.kernel_python = self._kernelspecs.pythons.get(self.kernel_name) or environment.python
        manager.session.key = (uuid.uuid4().hex + uuid.uuid4().hex).encode()
        provisioner = SandboxedProvisioner(kernel_id=self._id, kernel_spec=manager.kernel_spec, parent=manager)
        provisioner.sandbox_spec = spec
        provisioner.environment = environment
        manager.provisioner = provisioner
        log = os.open(os.path.join(self.runtime_dir, "kernel.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            cmd, launch = manager.pre_start_kernel(
                env=self._environment(), cwd=self._cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
            with open(manager.connection_file) as f:  # what the manager wrote: read before anything runs
                connection = json.load(f)
            if (manager.kernel_spec.language or "").lower() in COLON_IPC_LANGUAGES:
                link_colon_addresses(connection)
            run_coroutine(provisioner.launch_kernel, cmd, **launch)
        finally:
            os.close(log)
        return provisioner.pid, provisioner.process, connection, manager, spec.get("cgroup")

    def _environment_of_kernels(self):
        sandbox = self._host.sandbox
        if sandbox is not None:
            return sandbox.environment
        return KernelEnvironment(self._host.config.kernel_python)

    def _environment(self):
        """A forked kernel's environment without Matplotlib's backend, with Jupyter's own directories private, and
        the programs of the environment its kernelspec belongs to first on its ``PATH``."""
        env = super()._environment()
        env.pop("MPLBACKEND", None)
        kernels_python = self._environment_of_kernels().python
        python = self._kernelspecs.pythons.get(self.kernel_name)
        env["PATH"] = path_in_environment(env["PATH"], python, kernels_python)
        for name, sub in (
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("JUPYTER_DATA_DIR", "data"),
            ("JUPYTER_CONFIG_DIR", "config"),
        ):
            env[name] = os.path.join(self.runtime_dir, "jupyter", sub)
        return env

    def _reap(self, pid):
        """The pidfd said C{pid} ended: reap it, kill what it left behind, tell the kernel."""
        popen, cgroup, _, _ = self._processes.pop(pid)
        status = popen.wait()
        signal_group(pid, signal.SIGKILL)
        oom = False
        if cgroup:
            oom = cgroup_oom_killed(cgroup)
            kill_cgroup(cgroup)
            self._remove_cgroup(cgroup, CGROUP_RETRIES)
        self._on_exit(pid, status, oom)

    def _remove_cgroup(self, cgroup, retries):
        if not try_remove_cgroup(cgroup) and retries:
            kill_cgroup(cgroup)
            self._host.clock.callLater(CGROUP_RETRY_S, self._remove_cgroup, cgroup, retries - 1)

    def signal(self, signum):
        """Send C{signum} to the current generation's process group (SIGKILL: and to everything in its cgroup)."""
        if self.pid is not None:
            self._signal(self.pid, signum)

    def kill(self, pid):
        self._signal(pid, signal.SIGKILL)

    def _signal(self, pid, signum):
        if pid not in self._processes:
            return  # reaped already: the number may be another process's now
        signal_group(pid, signum)
        cgroup = self._processes[pid][1]
        if cgroup and signum == signal.SIGKILL:
            kill_cgroup(cgroup)

    def restore_priority(self, log):
        """A pool kernel handed out: its group and everything in its cgroup back to niceness 0.

        Kernels such as bash_kernel run their shell in a session of its own (a pty), outside the group.
        """
        super().restore_priority(log)
        if self.spec and self.spec.get("nice") and self.cgroup:
            for tid in cgroup_tasks(self.cgroup):
                try:
                    os.setpriority(os.PRIO_PROCESS, tid, 0)
                except OSError:
                    pass
