"""The spawner's own child processes, each kept alive by a L{Supervisor}: the fork masters and the one-shot template.

Besides the Python fork master, a spawner with a Sage environment runs a Sage
master (L{components.child.sage_kernel}), started at the same time but not
waited for: Python kernels are served while Sage still imports, and a Sage
start waits in its pool until the Sage master is ready.

When the fork master dies (the OOM killer, ``kill -9``), the kernels it forked
die with it (``PR_SET_PDEATHSIG``), but nobody reaps them any more to say so:
L{SpawnerParts} ends each of them here (its process group and memory cgroup
killed, the cgroup removed) and declares it dead, so that its owner hears of
it, and the pools wait for the new master instead of failing start after start.
When the one-shot template dies, the runs it had fail with
C{cell.error.kernel_died} and one-shots run in pool kernels until a new
template is ready.
"""

import functools
import signal

from twisted.internet import defer
from twisted.logger import Logger

from components.child.sandbox import kill_cgroup, signal_group, try_remove_cgroup
from components.common import errors
from components.common.kernelspecs import PYTHON
from components.worker.death_causes import DeathReason
from components.worker.master_client import start_fork_master
from components.worker.oneshot_client import start_oneshot_template
from components.worker.supervisor import Supervisor

#: how often, and how many times, an orphaned kernel's cgroup is killed and removed again while it empties
CGROUP_RETRY_S = 1.0
CGROUP_RETRIES = 30

#: the parts' names, as in C{cell_spawner_part_restarts_total{part}} and the spawner's status
FORK_MASTER = "fork_master"
#: the spawner process itself, replaced by its keeper (L{components.worker.spawner_keeper})
SPAWNER = "spawner"
ONESHOT_TEMPLATE = "oneshot_template"
#: the fork master of each other forked kernel (``sagemath`` -> ``sagemath_master``)
FORKED_MASTER = "{}_master"


class SpawnerParts:
    """Starts, supervises and stops the fork master and the one-shot template of one L{KernelSpawner}.

    @param spawner: the spawner (its reactor, config, environment, sandbox, metrics, kernels by pid, pools).
    @param on_master_up: called with the new master's protocol each time one is ready (the first included).
    """

    log = Logger()

    def __init__(self, spawner, on_master_up):
        self._spawner = spawner
        self._clock = spawner._reactor
        self._on_master_up = on_master_up
        self._spawner_restarts = 0
        restarts = spawner.metrics.part_restarts
        self.master = Supervisor(
            self._clock,
            "fork master",
            self._start_master,
            on_up=self._master_up,
            on_down=functools.partial(self._master_down, PYTHON),
            restarted=restarts.labels(FORK_MASTER).inc,
        )
        #: {kernel name: the Supervisor of its fork master}, for forked kernels besides python3 (sagemath)
        self.forked = {
            name: Supervisor(
                self._clock,
                "{} fork master".format(name),
                functools.partial(self._start_forked, name, kind.environment),
                on_up=functools.partial(self._forked_master_up, name),
                on_down=functools.partial(self._master_down, name),
                restarted=restarts.labels(FORKED_MASTER.format(name)).inc,
            )
            for name, kind in spawner._forked.items()
        }
        self.oneshot = Supervisor(
            self._clock,
            "one-shot template",
            self._start_template,
            restarted=restarts.labels(ONESHOT_TEMPLATE).inc,
        )

    @defer.inlineCallbacks
    def start(self):
        """Start the master and, at the same time, the template when one-shots run in children; fire once the
        master is ready (kernels are served from then on: a spawner the keeper replaced joins sooner, and
        one-shots run in pool kernels until the template is ready)."""
        template = self.oneshot.start() if self._spawner.config.oneshot_children else None
        if template is not None:
            template.addCallbacks(self._template_up, self._template_failed)
        else:
            self.log.info("one-shots served by pool kernels (oneshot_children: 0)")
        for name, supervisor in self.forked.items():
            supervisor.start().addCallbacks(self._forked_ready, self._forked_failed, (name,), None, (name,))
        info = yield self.master.start()
        self.log.info(
            "fork master ready (pid {pid}) after {s:.2f} s, preloaded {mods}",
            pid=info["pid"],
            s=info["preload_s"],
            mods=info["preloaded"],
        )

    def _forked_ready(self, info, name):
        self.log.info(
            "{name} fork master ready (pid {pid}) after {s:.2f} s, preloaded {mods}",
            name=name,
            pid=info["pid"],
            s=info["preload_s"],
            mods=info["preloaded"],
        )

    def _forked_failed(self, failure, name):
        self.log.error(
            "the {name} fork master failed to start ({why}); {name} is not served", name=name, why=failure.value
        )

    @defer.inlineCallbacks
    def master_ready(self, kernel_name):
        """Fires once the fork master of C{kernel_name}'s kernels is up (at once if it is, or if they are launched);
        L{errors.Capacity} if it is not within the start timeout (starting or being replaced: Sage's takes seconds)."""
        supervisor = self.master if kernel_name == PYTHON else self.forked.get(kernel_name)
        if supervisor is None or supervisor.up:
            return
        if (yield supervisor.when_up(self._spawner.config.start_timeout_s)) is None:
            raise errors.Capacity(
                "the {} fork master is starting or being replaced; try again in a moment".format(kernel_name)
            )

    def forked_up(self, name):
        """Whether the fork master of C{name}'s kernels is up (their pool forks nothing while it is not)."""
        return self.forked[name].up

    def _start_forked(self, name, environment):
        s = self._spawner
        return start_fork_master(
            s._reactor, environment, s.config.preload, s._process_exited, home=s.process_home, flavour="sage"
        )

    def _forked_master_up(self, name, proto, event):
        self._on_master_up(proto, name)

    def _template_up(self, event):
        self.log.info("one-shot template ready; one-shots served by the template")

    def _template_failed(self, failure):
        self.log.error(
            "the one-shot template failed to start ({why}); one-shots served by pool kernels", why=failure.value
        )

    def _start_master(self):
        s = self._spawner
        return start_fork_master(s._reactor, s.environment, s.config.preload, s._process_exited, home=s.process_home)

    def _start_template(self):
        s = self._spawner
        return start_oneshot_template(s._reactor, s.config, s.sandbox, s.environment, home=s.process_home)

    def _master_up(self, proto, event):
        self._on_master_up(proto)

    def _master_down(self, kernel_name, proto, reason):
        """Every kernel the dead master forked (C{kernel_name}'s) died with it: end each for good, tell its owner."""
        spawner = self._spawner
        if kernel_name != PYTHON:
            spawner._forked[kernel_name].master = None
        orphans = [(pid, kernel) for pid, kernel in spawner._by_pid.items() if kernel.kernel_name == kernel_name]
        for pid, kernel in orphans:
            del spawner._by_pid[pid]
        for pid, kernel in orphans:
            signal_group(pid, signal.SIGKILL)  # what it started in its group, outside any cgroup
            cgroup = kernel.process.cgroup
            if cgroup:
                kill_cgroup(cgroup)
                self._remove_cgroup(cgroup, CGROUP_RETRIES)
            kernel.process.exited(pid)
            kernel.die(DeathReason("killed", "its fork master died; the spawner is starting a new one"))
            kernel.process.release()  # a kernel dead already (shut down, its exit not yet reported) frees its uid too
        if orphans:
            self.log.warn("{n} kernel(s) died with the {name} fork master", n=len(orphans), name=kernel_name)

    def _remove_cgroup(self, cgroup, retries):
        if not try_remove_cgroup(cgroup) and retries:
            kill_cgroup(cgroup)
            self._clock.callLater(CGROUP_RETRY_S, self._remove_cgroup, cgroup, retries - 1)

    @property
    def spawner_restarts(self):
        """How often this spawner's keeper started a spawner again before this one (told at its start)."""
        return self._spawner_restarts

    @spawner_restarts.setter
    def spawner_restarts(self, count):
        self._spawner.metrics.part_restarts.labels(SPAWNER).inc(max(0, count - self._spawner_restarts))
        self._spawner_restarts = count

    @property
    def master_up(self):
        return self.master.up

    def template(self):
        """The one-shot template that runs now, or None."""
        proto = self.oneshot.current
        return proto if proto is not None and self.oneshot.up else None

    def status(self):
        """What the spawner's status says of its parts: up or not, and how often each was replaced."""
        return {
            SPAWNER: {"up": True, "restarts": self.spawner_restarts},
            FORK_MASTER: self.master.state(),
            ONESHOT_TEMPLATE: self.oneshot.state(),
            **{FORKED_MASTER.format(name): supervisor.state() for name, supervisor in self.forked.items()},
        }

    @defer.inlineCallbacks
    def stop(self):
        """Stop supervising; stop the template, then the master (it kills every kernel)."""
        self.oneshot.stop()
        yield defer.DeferredList([supervisor.stop() for supervisor in self.forked.values()])
        yield self.master.stop()
