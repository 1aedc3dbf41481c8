"""The kernels of one worker host, without WAMP: the fork masters, the warm pools, the kernels handed out.

L{KernelSpawner} is the host model the WAMP face (L{components.worker.spawner_session})
drives: it starts the fork master (and the Sage master where a Sage
environment is configured: L{components.worker.sage_offer}) and the one-shot
template, keeps the pools full (L{KernelPools}), hands out kernels and runs
one-shot executions.  Kernels of other languages
(L{components.worker.kernelspecs}) are launched from their kernelspecs, each
language with a small warm pool of its own.
"""

import functools
import os
import shutil
import socket
import tempfile

from twisted.internet import defer, task
from twisted.logger import Logger

from components.common import errors
from components.common.kernelspecs import PYTHON, SAGE
from components.common.kernelspecs import names as kernel_names
from components.worker.blocking import BlockingWork
from components.worker.death_causes import DeathReason
from components.worker.kernel import Kernel, KernelHost
from components.worker.kernel_channels import context_for
from components.worker.kernel_environment import KernelEnvironment
from components.worker.kernel_host import ForkedKind
from components.worker.kernel_pools import KernelPools
from components.worker.kernel_state import KernelState
from components.worker.kernelspecs import Kernelspecs, search_dirs
from components.worker.metrics import SpawnerMetrics
from components.worker.oneshot_runs import OneShotRuns
from components.worker.sage_offer import SageOffer
from components.worker.sandbox_policy import SandboxPolicy
from components.worker.spawner_parts import SpawnerParts


def _log_what_was_found(log, sandbox, kernelspecs):
    """Say at start what the sandbox could not do, which uids it took, and which kernelspecs are unusable."""
    for warning in sandbox.warnings:
        log.warn("SANDBOX REDUCED: {warning}", warning=warning)
    if sandbox.uids is not None and sandbox.uids.passed_over:
        log.info(
            "kernels run as uids {first}-{last}; passed over: {why}",
            first=sandbox.uids.first,
            last=sandbox.uids.end - 1,
            why="; ".join(sandbox.uids.passed_over),
        )
    if sandbox.stale_cgroups_removed:
        log.info("removed {n} empty kernel cgroup(s) a previous spawner left", n=sandbox.stale_cgroups_removed)
    for problem in kernelspecs.problems:
        log.warn("{problem}", problem=problem)
    for name in kernelspecs.missing:
        log.warn("languages names {name!r}, but no kernelspec of that name was found", name=name)


class KernelSpawner:
    """Kernels of one host, without WAMP: the fork master, the pool, the kernels handed out.

    @param on_iopub: called with C{(kernel, msg)} for each iopub message of an owned kernel.
    @param on_kernel_ended: called with C{(kernel, reason, handed_out)} when a kernel is dead.
    @param prepare_kernel: called with each kernel before it joins the warm pool.
    """

    log = Logger()

    def __init__(self, reactor, config, on_iopub, on_kernel_ended, prepare_kernel=None, on_jupyter=None):
        self._reactor = reactor
        self.config = config
        self._on_iopub = on_iopub
        self._on_kernel_ended = on_kernel_ended
        self._on_jupyter = on_jupyter
        self.kernels = {}
        #: ready kernels held for the session router (components.control.held_kernels): a start takes one at once
        self.held = {}
        self._by_pid = {}
        self._all = set()
        self._own_work_root = not config.work_root
        self.work_root = config.work_root or tempfile.mkdtemp(prefix="cell-work-")
        os.makedirs(self.work_root, exist_ok=True)
        self.runtime_root = tempfile.mkdtemp(prefix="cellrt-")
        # Kernels (other uids) may pass through to their own directory, but not list their neighbours.
        os.chmod(self.work_root, 0o711)
        os.chmod(self.runtime_root, 0o711)
        #: HOME of the fork master and the one-shot template (their caches), out of kernels' reach like its parent
        self.process_home = os.path.join(self.runtime_root, "home")
        os.mkdir(self.process_home, 0o700)
        self.metrics = SpawnerMetrics()
        self.metrics.watch(self)
        self.blocking = BlockingWork(reactor)  # the one way blocking work runs; the probe shows nothing else blocks
        self.lag = self.metrics.lag_probe(reactor)
        #: cell.execute on this host (components.worker.oneshot_runs)
        self.oneshots = OneShotRuns(self, self.blocking, config)
        self.zmq_context = None
        self.host = None
        self.environment = KernelEnvironment(config.kernel_python)
        #: forked Sage kernels, where a Sage environment is configured and there
        self.sage = SageOffer(config.sage_python)
        if self.sage.missing:
            self.log.warn("{why}", why=self.sage.missing)
        #: forked kernels besides python3, each with its fork master (set as each comes up)
        self._forked = {SAGE: ForkedKind(self.sage.environment)} if self.sage.offered else {}
        #: the fork masters and the one-shot template, each replaced when it dies (L{SpawnerParts})
        self.parts = SpawnerParts(self, on_master_up=self._master_up)
        self.sandbox = SandboxPolicy(
            config,
            hidden=(self.work_root, self.runtime_root),
            environment=self.environment,
            shown=[kind.environment for kind in self._forked.values()],
        )
        self.kernelspecs = Kernelspecs(search_dirs(config, self.environment), config.languages)
        _log_what_was_found(self.log, self.sandbox, self.kernelspecs)
        launched = [name for name in self.kernelspecs.specs if name not in self._forked]
        masters_up = {PYTHON: lambda: self.parts.master_up}
        masters_up.update((name, functools.partial(self.parts.forked_up, name)) for name in self._forked)
        #: a warm pool per kernel offered (a launch from a kernelspec is slower than a fork: a small one)
        self.pools = KernelPools(reactor, config, self._make_kernel, self._room, masters_up, launched, prepare_kernel)
        self.pool = self.pools.python

    @defer.inlineCallbacks
    def start(self):
        """Start the fork master (fires when it is ready, the pools filling), then the one-shot template."""
        self.lag.start()
        yield self.parts.start()
        self.log.info("kernels offered: {names}", names=kernel_names(self.offered()))

    @property
    def language_pools(self):
        """{name: pool} of every kernel but python3 (the status and metrics report each one's ready kernels)."""
        return self.pools.others()

    def offered(self):
        """Every kernel offered, in Jupyter's REST shape: {name: model} (what the spawner announces)."""
        models = self.kernelspecs.models()
        if self.sage.offered:
            models[SAGE] = self.sage.model()
        return models

    def _master_up(self, master, kernel_name=PYTHON):
        """A fork master is ready (the first, or one replacing a dead one): C{kernel_name}'s kernels fork from it."""
        if kernel_name != PYTHON:
            self._forked[kernel_name].master = master
            self.pools.retry_now(kernel_name)
            return
        if self.host is None:
            # sized for all its kernels (libzmq's default stopped at 204: starts refused, the pool short)
            self.zmq_context = context_for(self._most_kernels())
            self.host = KernelHost(
                self._reactor,
                self.config,
                master,
                self.zmq_context,
                self.work_root,
                self.runtime_root,
                self.sandbox,
                metrics=self.metrics,
                run_blocking=self.blocking,
                kernelspecs=self.kernelspecs,
                forked=self._forked,
            )
        self.host.master = master
        self.pools.retry_now()

    def _most_kernels(self):
        """Kernels this spawner may hold at once: C{max_kernels} handed out, the warm pools on top."""
        return self.config.max_kernels + self.pools.most_kept()

    def _room(self):
        return self._most_kernels() - len(self._all)

    def _make_kernel(self, kernel_name=PYTHON):
        kernel = Kernel(
            self.host,
            on_iopub=self._on_iopub,
            on_dead=self._kernel_dead,
            on_pid=self._remember_pid,
            on_jupyter=self._on_jupyter,
            kernel_name=kernel_name,
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
        self.pools.discard(kernel)
        held = self.held.pop(kernel.kernel_id, None) is not None
        handed_out = self.kernels.pop(kernel.kernel_id, None) is not None
        self._on_kernel_ended(kernel, reason, handed_out or held)
        self.pools.refill()

    def pool_for(self, kernel_name):
        """The warm pool of C{kernel_name}'s kernels; L{errors.NotFound} (naming the offered ones) if none."""
        pool = self.pools.get(kernel_name)
        if pool is None:
            offered = self.offered()
            raise errors.NotFound(
                "spawner {} has no kernel named {!r}; it offers {}".format(
                    self.config.spawner_id, str(kernel_name)[:64], kernel_names(offered)
                ),
                available=sorted(offered),
            )
        return pool

    @defer.inlineCallbacks
    def acquire(self, owner, kernel_name=PYTHON):
        """A ready C{kernel_name} kernel handed to C{owner}."""
        pool = self.pool_for(kernel_name)
        self.check_room()
        yield self.parts.master_ready(kernel_name)  # starting or being replaced: wait for it rather than fail
        kernel = yield pool.acquire()
        self.kernels[kernel.kernel_id] = kernel
        kernel.assign(owner)
        return kernel

    def check_room(self):
        """Refuse a kernel past C{max_kernels}: kernels handed out and one-shots running in pool kernels count."""
        if len(self.kernels) + self.oneshots.in_kernels >= self.config.max_kernels:
            raise errors.Capacity(
                "spawner {} runs its maximum of {} kernels; try again later".format(
                    self.config.spawner_id, self.config.max_kernels
                )
            )

    def hold(self, count):
        """Hold up to C{count} ready pool kernels for the session router; return every kernel held."""
        while len(self.held) < count:
            kernel = self.pool.take_ready()
            if kernel is None:
                break
            self.held[kernel.kernel_id] = kernel
        return list(self.held.values())

    def hand_over(self, kernel_id, owner):
        """Give held kernel C{kernel_id} to C{owner} (the session router already told the client)."""
        kernel = self.held.get(kernel_id)
        if kernel is None or kernel.state == KernelState.DEAD:
            raise errors.NotFound(
                "no kernel {} is held for hand-over on spawner {}".format(kernel_id, self.config.spawner_id)
            )
        self.check_room()
        del self.held[kernel_id]
        self.kernels[kernel_id] = kernel
        kernel.assign(owner)
        return kernel

    def status(self):
        return {
            "id": self.config.spawner_id,
            "host": socket.gethostname(),
            "kernels": len(self.kernels),
            "pool_ready": self.pool.ready_count,
            "held": len(self.held),
            "capacity": self.config.max_kernels,
            "sandbox": self.sandbox.status(),
            #: ready kernels in each other language's warm pool
            "language_pools": {name: pool.ready_count for name, pool in self.language_pools.items()},
            #: every kernel offered, in Jupyter's REST shape (the session router merges them: cell.kernelspecs)
            "kernelspecs": self.offered(),
            #: the fork master and the one-shot template: up or not, and how often each was replaced
            "parts": self.parts.status(),
        }

    @defer.inlineCallbacks
    def stop(self):
        """Kill every kernel and the fork master."""
        self.lag.stop()
        self.pools.close()
        for kernel in list(self._all):
            kernel.shutdown(DeathReason("spawner_stopping", "the spawner is stopping"))
        yield self.parts.stop()
        for _ in range(50):  # the template's and master's last cgroups are emptied as they exit
            if self.sandbox.close():
                break
            yield task.deferLater(self._reactor, 0.1, lambda: None)
        if self.zmq_context is not None:
            self.zmq_context.destroy(linger=0)
        if self.host is not None:
            yield self.host.disks.close()  # the kernels' directories went off the reactor; the roots' mounts go now
        yield self.blocking(shutil.rmtree, self.runtime_root, True)
        if self._own_work_root:
            yield self.blocking(shutil.rmtree, self.work_root, True)
