"""One kernel's process, generation after generation: fork, signal, kill, and why it ended.

A L{Kernel} keeps its id, owner and working directory across restarts; each
restart is a new generation of L{KernelProcess}: a fresh runtime directory
(connection file with a new HMAC key, ZMQ sockets, log) and a fresh fork
from the fork master, in the sandbox the spawner's policy gives (the same
uid for every generation, released when the kernel is dead and its last
process is gone).
"""

import os
import signal
import uuid

from jupyter_client.connect import write_connection_file
from twisted.python.failure import Failure

from components.common import errors
from components.common.kernelspecs import PYTHON
from components.worker.death_causes import DeathReason


class KernelProcess:
    """The forked process behind one kernel (see the module docstring).

    @param host: the spawner's L{KernelHost}.
    @param on_pid: called with each new pid (the spawner maps exits to kernels by pid).
    """

    def __init__(self, kernel_id, host, cwd, on_pid, kernel_name=PYTHON):
        self._id = kernel_id
        #: python3, or another forked kernel (sagemath): which fork master forks it
        self._kernel_name = kernel_name
        self._host = host
        self._cwd = cwd
        self._on_pid = on_pid
        self.pid = None
        self.generation = 0
        self.runtime_dir = None
        self.spec = None
        self._uid = None
        self._live = set()
        #: forks asked of the master and not answered yet: the uid is not free while one may still come to life
        self._forking = 0
        self._release_wanted = False

    @property
    def cgroup(self):
        return (self.spec or {}).get("cgroup")

    def fork(self, niced):
        """Fork the next generation; the Deferred fires with C{(pid, connection)}.

        C{niced}: a pool kernel, started at the configured lower priority.
        Raises L{errors.Capacity} when no sandbox uid is free.
        """
        host, config = self._host, self._host.config
        spec = self._next_generation(niced)
        connection_file, connection = write_connection_file(
            os.path.join(self.runtime_dir, "connection.json"),
            transport="ipc",
            ip=os.path.join(self.runtime_dir, "k"),
            shell_port=1,
            iopub_port=2,
            stdin_port=3,
            control_port=4,
            hb_port=5,
            key=(uuid.uuid4().hex + uuid.uuid4().hex).encode(),
        )
        if host.sandbox is not None:
            host.sandbox.prepare_dirs(spec, self._cwd, self.runtime_dir, os.path.join(self.runtime_dir, "tmp"))
            if self._uid is not None:
                os.chown(connection_file, self._uid, spec["gid"])
        master = host.master_for(self._kernel_name)
        if master is None:
            raise errors.Capacity(
                "the {} fork master is starting or being replaced; try again in a moment".format(self._kernel_name)
            )
        d = master.spawn(
            connection_file,
            self._cwd,
            self._environment(),
            os.path.join(self.runtime_dir, "kernel.log"),
            spec,
            config.max_output_bytes,
        )
        self._forking += 1
        d.addBoth(self._answered)
        d.addCallback(self._spawned, connection)
        return d

    def _answered(self, result):
        self._forking -= 1
        if isinstance(result, Failure) and self._release_wanted:
            self.release()  # the kernel died while its fork was queued, and no process came of it
        return result

    def _next_generation(self, niced):
        """A fresh runtime directory and the generation's sandbox spec (the kernel's uid kept across restarts)."""
        host, config = self._host, self._host.config
        self.generation += 1
        self.runtime_dir = os.path.join(host.runtime_root, "{}-{}".format(self._id[:12], self.generation))
        host.disks.make(self.runtime_dir)  # a file system of its own, like the working directory
        os.mkdir(os.path.join(self.runtime_dir, "tmp"), mode=0o700)
        spec = {"limits": {}}
        if host.sandbox is not None:
            spec = host.sandbox.allocate(
                "{}-{}".format(self._id, self.generation), uid=self._uid, keep=(self._cwd, self.runtime_dir)
            )
            if spec is None:
                raise errors.Capacity("no sandbox uid is free on this worker; try again later")
        if niced and spec.get("uid") is not None and config.pool_nice:
            spec = dict(spec, nice=config.pool_nice)  # until restore_priority(): see SpawnerConfig.pool_nice
        self.spec = spec
        self._uid = spec.get("uid")
        return spec

    def _environment(self):
        tmp = os.path.join(self.runtime_dir, "tmp")
        return {
            "PATH": self._host.path_for(self._kernel_name),
            "HOME": self._cwd,
            "LANG": "C.UTF-8",
            "TMPDIR": tmp,
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "MPLCONFIGDIR": os.path.join(self.runtime_dir, "mpl"),
            "IPYTHONDIR": os.path.join(self.runtime_dir, "ipython"),
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }

    def _spawned(self, pid, connection):
        self._live.add(pid)
        self._on_pid(pid)
        self.pid = pid
        return pid, connection

    @property
    def uid(self):
        return self._uid

    def owns_files_as(self):
        """(uid, gid) that files made for the kernel belong to, or None."""
        return (self._uid, self.spec["gid"]) if self._uid is not None else None

    def signal(self, signum):
        """Send C{signum} to the current generation's process group."""
        if self.pid is not None:
            self._master().signal(self.pid, signum)

    def _master(self):
        master = self._host.master_for(self._kernel_name)
        return master if master is not None else _NO_MASTER

    def kill(self, pid):
        """Kill process C{pid} of this kernel (its group and cgroup too), of whatever generation."""
        self._master().signal(pid, signal.SIGKILL)

    def stop(self):
        """Kill the current generation (its whole group and cgroup) and remove its runtime directory (off the reactor)."""
        self.signal(signal.SIGKILL)
        self.pid = None
        if self.runtime_dir:
            self._host.disks.remove(self.runtime_dir)

    def restore_priority(self, log):
        """A pool kernel handed out: every thread of every process in its group back to niceness 0."""
        if self.spec and self.spec.get("nice") and self.pid is not None:
            try:
                os.setpriority(os.PRIO_PGRP, self.pid, 0)
            except OSError as exc:
                log.warn("kernel {kernel_id}: could not restore its priority: {exc}", kernel_id=self._id, exc=exc)

    def exited(self, pid):
        """The fork master reaped C{pid} (of any generation); True if it was the current one."""
        self._live.discard(pid)
        if pid == self.pid:
            self.pid = None
            return True
        return False

    def release(self):
        """The kernel is dead: free its uid once none of its processes is left, nor may still be forked (a
        kernel whose start timed out while the master had its fork queued: the late child runs as this uid until
        it is killed, so no other kernel may have the uid meanwhile)."""
        self._release_wanted = True
        if not self._live and not self._forking and self._uid is not None and self._host.sandbox is not None:
            self._host.sandbox.release(self._uid)
            self._uid = None

    def exit_reason(self, status, oom):
        """Name the limit that ended the process, when one did."""
        config = self._host.config
        if oom:
            return DeathReason(
                "memory_limit", "the kernel exceeded its memory limit of {} MB".format(config.memory_limit_mb)
            )
        if status == -signal.SIGXCPU:
            return DeathReason("cpu_limit", "the kernel used up its CPU time limit of {} s".format(config.limit_cpu_s))
        if status == -signal.SIGXFSZ:
            return DeathReason(
                "file_size_limit", "the kernel exceeded the file size limit of {} MB".format(config.limit_file_size_mb)
            )
        if status < 0:
            return DeathReason(
                "killed", "the kernel process was killed by signal {}".format(signal.Signals(-status).name)
            )
        return DeathReason("exited", "the kernel process exited (status {})".format(status))

    def log_tail(self, limit=3000):
        try:
            with open(os.path.join(self.runtime_dir, "kernel.log"), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - limit))
                return f.read().decode(errors="replace")
        except (OSError, TypeError):
            return "(no log)"


class _NoMaster:
    """Where signals go while a kernel's fork master is gone: its processes died with that master."""

    def signal(self, pid, signum):
        pass


_NO_MASTER = _NoMaster()
