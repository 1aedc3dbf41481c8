"""Soak: thousands of sessions come and go, half of them vanishing mid-call; nothing may leak.

    make soak             # or: python -m bench.soak [--sessions N] [--steady M] ...

A real node (L{tests.node.Node}) on loopback, in a temporary directory, and
WAMP clients over WebSocket in this process (Twisted).  Churn sessions (16 in
flight): each joins, runs one call, either on a kernel of its own
(``cell.kernel.start``, a subscription to its iopub, an execute) or as a
one-shot (``cell.execute``), and every other one drops its TCP connection in
the middle of the call, without a goodbye; the others wait for the result,
shut their kernel down and leave.  Steady sessions hold a kernel and execute
``1+1`` in a loop throughout; their latency is reported.  Alongside the
churn, clients of the Jupyter face (bench.soak_tables) start kernels there,
half of them leaving with a request unanswered.

After a warm-up (1,000 churn sessions) the node is let settle (the dropped
sessions' kernels reclaimed after the resume grace, the pool refilled), and
the RSS of the router worker, the container worker (the session router), the
spawner, its fork master and its one-shot template is taken, with the router's
``wamp.session.count`` and its registrations and subscriptions.  After 2,000
more churn sessions and the same settling: RSS within the tolerance (5%) of
those figures, the counts back to their baseline, no kernel process, cgroup,
working, runtime or one-shot directory beyond the kernels meant to live,
no table of the session router or the face larger than after the warm-up
(and each back to the empty node's once all left: bench.soak_tables), no
ended kernel's id anywhere, no error or traceback in the node's log, and once
the node stopped, nothing of it left.  Figures are printed and written to
``bench/results/soak.json``; the exit status is 1 if a check failed.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

import psutil

from bench.figures import RESULTS, pct
from bench.soak_tables import differ, face_churn, grown, off_text, tables_of, wait_tables

SPAWNER_ID = "soak"
CGROUP_MEMORY_ROOT = "/sys/fs/cgroup/memory"
#: what churn sessions do, in turn
MIX = ("kernel_polite", "kernel_dropped", "oneshot_polite", "oneshot_dropped")
#: the code of a churn session's call: long enough that a dropping session is surely mid-call when it drops
CALL_CODE = "import time; time.sleep({sleep}); 6*7"
#: lines of the node's log that are an error: a traceback; an exception a WAMP handler did not handle (autobahn's
#: onUserError); Twisted's unhandled errors; the router failing to detach a session (what a caller leaving mid-call
#: once caused) or meeting a message it cannot handle; a worker ending in error; and the components' own reports of
#: an operation that failed (their log.warn of a failure: components/control/, components/worker/).
LOG_ERROR = re.compile(
    r"Traceback \(most recent call last\)|onUserError|Unhandled [Ee]rror|Failed to detach|unhandled message"
    r"|(?:ended|exited) with (?:error|failure)"
    r"|could not (?:unregister|shut down|look at|restore)|could not be handed over|holds no kernels for us"
    r"|failed to start"
)


def soak_config(resume_grace_s, max_kernels):
    """The edits the soak makes to the shipped config (each for the reason given)."""

    def edit(config):
        from tests.node import spawner_settings

        for worker in config["workers"]:
            if worker["type"] == "container":
                extra = worker["components"][0]["extra"]
                # Dropped sessions' kernels wait resume_grace_s (60 s shipped) for a resume: a few seconds here,
                # so they are reclaimed during the run and the node can be seen to settle within it.
                extra["resume_grace_s"] = resume_grace_s
            if worker["type"] == "guest":
                args = worker["arguments"]
                # Its own spawner id: the kernels' memory cgroups go under cellserver-<id>-<uids>, apart from those
                # of any other node on this host (a test node is "local"), so every cgroup counted here is ours.
                args[args.index("--id") + 1] = SPAWNER_ID
        # Room for the steady sessions' kernels, the churn in flight and the dropped sessions' kernels waiting out
        # their grace (32 shipped): a start refused for capacity would be the soak's doing.
        return dict(spawner_settings(config, max_kernels=max_kernels))

    return edit


def make_node(root, args):
    from tests.node import Node

    class SoakNode(Node):
        def env(self):
            env = super().env()
            # The spawner makes its kernels' working and runtime roots and the one-shot template its root with
            # tempfile: under TMPDIR they are ours alone to count (and sandboxed uids may pass through: 0711).
            env["TMPDIR"] = os.path.join(root, "tmp")
            return env

    os.makedirs(os.path.join(root, "tmp"))
    os.chmod(root, 0o711)
    os.chmod(os.path.join(root, "tmp"), 0o711)
    settings = {}

    def edit(config):
        settings.update(soak_config(args.resume_grace, args.max_kernels)(config))

    node = SoakNode(root, edit=edit)
    return node, settings


# -- the node's processes and resources -------------------------------------------------------------------------


def _cmd(process):
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def _live_children(process, recursive=False):
    out = []
    try:
        children = process.children(recursive=recursive)
    except psutil.Error:
        return out
    for child in children:
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                out.append(child)
        except psutil.Error:
            continue
    return out


class Processes:
    """The node's long-lived processes, found once from the node's pid by their command lines."""

    def __init__(self, node_pid):
        node = psutil.Process(node_pid)
        found = {}
        for child in node.children(recursive=True):
            cmd = _cmd(child)
            if "crossbar.worker.router.RouterController" in cmd:
                found["router"] = child
            elif "crossbar.worker.container.ContainerController" in cmd:
                found["session router (container)"] = child
            elif "components.kernel_spawner" in cmd and "--keep-alive" not in cmd:
                found["spawner"] = child
        spawner = found["spawner"]
        for child in spawner.children():
            cmd = _cmd(child)
            if "components.child.fork_master" in cmd:
                found["fork master"] = child
            elif "components.child.oneshot" in cmd:
                found["one-shot template"] = child
        missing = {"router", "session router (container)", "spawner", "fork master", "one-shot template"} - set(found)
        if missing:
            raise RuntimeError("not found under the node: {}".format(", ".join(sorted(missing))))
        self.by_name = found

    def rss_mb(self, samples=5, interval=0.2):
        """Median RSS of each process over a few samples (a transient buffer does not make a figure)."""
        values = {name: [] for name in self.by_name}
        for i in range(samples):
            for name, process in self.by_name.items():
                values[name].append(process.memory_info().rss / 2**20)
            if i + 1 < samples:
                time.sleep(interval)  # sampling, not synchronising
        return {name: statistics.median(v) for name, v in values.items()}

    def kernel_pids(self):
        """Every kernel: the fork master's children (Python, forked) and the spawner's other children (kernels of
        other languages, launched from their kernelspecs through components.child.exec_kernel)."""
        ours = {self.by_name["fork master"].pid, self.by_name["one-shot template"].pid}
        forked = _live_children(self.by_name["fork master"])
        launched = [p for p in _live_children(self.by_name["spawner"]) if p.pid not in ours]
        return sorted(p.pid for p in forked + launched)

    def oneshot_children(self):
        return sorted(p.pid for p in _live_children(self.by_name["one-shot template"], recursive=True))

    def alive(self):
        return all(_alive(p.pid) for p in self.by_name.values())


def _alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _entries(path):
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


class Resources:
    """Where kernels leave traces: working, runtime and one-shot directories (under the node's TMPDIR), cgroups."""

    def __init__(self, tmp, cgroup_before):
        self.tmp = tmp
        #: cgroups another run left (not this run's to answer for; reported)
        self.cgroup_before = cgroup_before

    def _root(self, prefix):
        roots = [name for name in _entries(self.tmp) if name.startswith(prefix)]
        return os.path.join(self.tmp, roots[0]) if len(roots) == 1 else None

    def work_dirs(self):
        root = self._root("cell-work-")
        return _entries(root) if root else []

    def runtime_dirs(self):
        """Kernels' runtime directories (not ``home``: the fork master's and one-shot template's own HOME)."""
        root = self._root("cellrt-")
        return [name for name in _entries(root) if name != "home"] if root else []

    def oneshot_dirs(self):
        root = self._root("cell-oneshot-")
        return _entries(root) if root else []

    def cgroups(self):
        """This run's kernel cgroups: {name: number of processes in it}.  Not the one-shot children's
        (``oneshot-<uid>``: one per one-shot uid, reused by its runs, removed with the template)."""
        out = {}
        for name in existing_cgroups():
            if name in self.cgroup_before or os.path.basename(name).startswith("oneshot-"):
                continue
            try:
                with open(os.path.join(CGROUP_MEMORY_ROOT, name, "cgroup.procs")) as f:
                    out[name] = sum(1 for line in f if line.strip())
            except FileNotFoundError:
                continue
        return out

    def top_level(self):
        """What is left in the node's TMPDIR (after the node stopped: nothing of the spawner's should be)."""
        return _entries(self.tmp)


def spawner_cgroup_roots():
    """The soak spawner's cgroup roots: ``cellserver-<id>-<first uid>``, named after the uid range it claimed."""
    prefix = "cellserver-{}-".format(SPAWNER_ID)
    return [name for name in _entries(CGROUP_MEMORY_ROOT) if name.startswith(prefix)]


def existing_cgroups():
    """The kernel cgroups (directories, as ``root/name``) under the soak spawner's roots.  Not their other
    entries: in cgroup v1 a cgroup directory holds its own control files (``cgroup.procs``, ``memory.*``), which a
    machine that never had this root sees appear with it, and which are not anybody's leftovers."""
    found = set()
    for root in spawner_cgroup_roots():
        path = os.path.join(CGROUP_MEMORY_ROOT, root)
        found.update(root + "/" + name for name in _entries(path) if os.path.isdir(os.path.join(path, name)))
    return found


# -- WAMP clients ---------------------------------------------------------------------------------------------------


def backend_connect(cbdir):
    """A session as the node itself (role ``backend``: the node key in its cbdir) over the node's unix socket.

    Only the backend may call the router's meta API (``wamp.session.count``) and a spawner's ``info``.
    """
    from autobahn.twisted.rawsocket import WampRawSocketClientFactory
    from autobahn.wamp.serializer import MsgPackSerializer
    from autobahn.wamp.types import ComponentConfig
    from twisted.internet import defer, reactor
    from twisted.internet.endpoints import UNIXClientEndpoint

    from components.common.node_key import BackendSession
    from tests.wamp_client import within

    joined = defer.Deferred()

    class SoakBackend(BackendSession):
        backend_authid = "soak_probe"

        def onJoin(self, details):
            joined.callback(self)

        def onLeave(self, details):
            if not joined.called:
                joined.errback(Exception("{}: {}".format(details.reason, details.message)))
            self.disconnect()

    config = ComponentConfig(realm="cell", extra={"cbdir": cbdir})
    factory = WampRawSocketClientFactory(lambda: SoakBackend(config), serializer=MsgPackSerializer())
    d = UNIXClientEndpoint(reactor, os.path.join(cbdir, "backend.sock")).connect(factory)
    d.addCallback(lambda _: joined)
    return within(d, 15, "the backend joining")


def drop(session):
    """Cut the session's TCP connection: no WAMP GOODBYE, no WebSocket close, an RST."""
    session._transport.transport.abortConnection()


class Churn:
    """Churn sessions, kept C{concurrency} in flight: what each did and what went wrong."""

    def __init__(self, url, concurrency, sleep_s, drop_after_s, mix=MIX):
        self.url = url
        self.mix = mix
        self.concurrency = concurrency
        self.code = CALL_CODE.format(sleep=sleep_s)
        self.drop_after_s = drop_after_s
        self.counts = {"kernel_polite": 0, "kernel_dropped": 0, "oneshot_polite": 0, "oneshot_dropped": 0}
        self.errors = []
        self.kernel_ids = []
        self.durations = []

    async def one(self, i):
        """Session C{i}: the C{i}-th of the mix, in turn (by default kernel, kernel dropped, one-shot, dropped)."""
        from twisted.internet import reactor, task

        from tests.wamp_client import connect, within

        kind, how = self.mix[i % len(self.mix)].split("_")
        dropping = how == "dropped"
        t0 = time.perf_counter()
        session = None
        try:
            session = await connect(self.url)
            if kind == "kernel":
                started = await within(session.call("cell.kernel.start"), 60, "cell.kernel.start")
                kernel_id = started["kernel_id"]
                self.kernel_ids.append(kernel_id)
                await session.subscribe(lambda *a, **kw: None, started["iopub"])
                pending = session.call("cell.kernel.{}.execute".format(kernel_id), self.code)
            else:
                pending = session.call("cell.execute", self.code)
            if dropping:
                pending.addErrback(lambda failure: None)  # the connection is cut on purpose
                await task.deferLater(reactor, self.drop_after_s, lambda: None)  # let the call get under way
                if pending.called:
                    raise AssertionError("the call finished before the session could drop mid-call")
                drop(session)
                await within(session.config.extra["left"], 15, "the dropped session's end")
            else:
                result = await within(pending, 60, "the churn call")
                text = result["outputs"][-1]["data"]["text/plain"] if result.get("outputs") else None
                if result.get("status") != "ok" or text != "42":
                    raise AssertionError("unexpected result: {!r}".format(result)[:300])
                if kind == "kernel":
                    await within(session.call("cell.kernel.{}.shutdown".format(kernel_id)), 30, "shutdown")
                session.leave()
                await within(session.config.extra["left"], 15, "the polite session's leave")
            self.counts["{}_{}".format(kind, "dropped" if dropping else "polite")] += 1
        except Exception as exc:
            self.errors.append("session {} ({}, {}): {!r}".format(i, kind, "drop" if dropping else "polite", exc)[:400])
            if session is not None and session.is_attached():
                drop(session)
        self.durations.append(time.perf_counter() - t0)

    async def run(self, first, last):
        from twisted.internet import defer

        semaphore = defer.DeferredSemaphore(self.concurrency)
        runs = [semaphore.run(lambda i=i: defer.ensureDeferred(self.one(i))) for i in range(first, last)]
        await defer.gatherResults(runs, consumeErrors=True)


class Steady:
    """Sessions that hold a kernel and execute ``1+1`` in a loop until told to stop."""

    def __init__(self, url, count, interval_s):
        self.url = url
        self.count = count
        self.interval_s = interval_s
        self.latencies = []
        self.errors = []
        self.sessions = []
        self.kernel_ids = []
        self._stopping = False
        self._loops = []

    async def start(self):
        from twisted.internet import defer

        from tests.helpers import start_kernel
        from tests.wamp_client import connect

        for _ in range(self.count):
            session = await connect(self.url)
            self.sessions.append(session)
            self.kernel_ids.append(await start_kernel(session))
        self._loops = [defer.ensureDeferred(self._loop(s, k)) for s, k in zip(self.sessions, self.kernel_ids)]

    async def _loop(self, session, kernel_id):
        from twisted.internet import reactor, task

        from tests.wamp_client import within

        uri = "cell.kernel.{}.execute".format(kernel_id)
        while not self._stopping:
            t0 = time.perf_counter()
            try:
                result = await within(session.call(uri, "1+1"), 30, "a steady execute")
                if result["status"] != "ok" or result["outputs"][0]["data"]["text/plain"] != "2":
                    raise AssertionError("unexpected result: {!r}".format(result)[:300])
                self.latencies.append(time.perf_counter() - t0)
            except Exception as exc:
                self.errors.append(repr(exc)[:400])
                if not session.is_attached():
                    return
            await task.deferLater(reactor, self.interval_s, lambda: None)  # the steady pace, not a poll

    async def stop(self):
        """Stop the loops, shut the kernels down, leave."""
        from twisted.internet import defer

        from tests.wamp_client import within

        self._stopping = True
        await defer.gatherResults(self._loops, consumeErrors=True)
        for session, kernel_id in zip(self.sessions, self.kernel_ids):
            try:
                await within(session.call("cell.kernel.{}.shutdown".format(kernel_id)), 30, "shutdown")
                session.leave()
                await within(session.config.extra["left"], 15, "a steady session's leave")
            except Exception as exc:
                self.errors.append("at the end: {!r}".format(exc)[:400])

    def summary(self):
        samples = self.latencies or [float("nan")]
        return {
            "sessions": self.count,
            "executes": len(self.latencies),
            "errors": len(self.errors),
            "first_errors": self.errors[:5],
            "p50_ms": pct(samples, 50) * 1000,
            "p95_ms": pct(samples, 95) * 1000,
            "p99_ms": pct(samples, 99) * 1000,
            "max_ms": max(samples) * 1000,
        }


# -- settling and snapshots -----------------------------------------------------------------------------------------


async def status_of(backend):
    """The spawner's own view (backend only): pool, held and handed-out kernels, with their ids."""
    return await backend.call("cell.spawner.{}.info".format(SPAWNER_ID))


async def settled_snapshot(backend, processes, resources, handed_out, pool_size, seconds):
    """Wait (poll, with a deadline) until the node is at rest, then describe it.

    At rest: exactly C{handed_out} kernels handed out (the steady sessions'; the dropped sessions' ones
    reclaimed after the resume grace), the pool full, every live kernel process accounted for (handed out,
    pooled, held, or ready in another language's pool: none starting, none left over), one working directory,
    runtime directory and cgroup per kernel process, no one-shot child or directory; and all of it (with the
    router's registrations and subscriptions, which follow the kernels by a round trip) the same in two polls
    in a row.  Past the deadline the snapshot shows what is left over.
    """
    from twisted.internet import reactor, task

    deadline = time.monotonic() + seconds
    previous = None
    while True:
        info = await status_of(backend)
        snap = snapshot(info, processes, resources)
        snap["registrations"] = await meta_count(backend, "wamp.registration.list")
        snap["subscriptions"] = await meta_count(backend, "wamp.subscription.list")
        live = snap["kernel_processes"]
        at_rest = (
            info["kernels"] == handed_out
            and info["pool_ready"] >= pool_size
            and live == accounted_kernels(snap)
            and snap["work_dirs"] == live
            and snap["runtime_dirs"] == live
            and (snap["cgroups"] is None or (snap["cgroups"] == live and snap["empty_cgroups"] == 0))
            and snap["oneshot_children"] == 0
            and snap["oneshot_dirs"] == 0
            and snap == previous
        )
        previous = snap
        if at_rest or time.monotonic() > deadline:
            return dict(snap, at_rest=at_rest)
        await task.deferLater(reactor, 0.25, lambda: None)  # poll


def accounted_kernels(snap):
    """The kernels the spawner says it has: handed out, in the pool, held, ready in another language's pool."""
    return snap["handed_out"] + snap["pool_ready"] + snap["held"] + snap["languages_ready"]


def snapshot(info, processes, resources):
    cgroups = resources.cgroups() if os.geteuid() == 0 and spawner_cgroup_roots() else None
    return {
        "handed_out": info["kernels"],
        "pool_ready": info["pool_ready"],
        "held": info["held"],
        #: ready kernels of other languages' pools (a spawner without them reports none)
        "languages_ready": sum(info.get("language_pools", {}).values()),
        "handed_out_ids": sorted(k["kernel_id"] for k in info.get("kernel_list", [])),
        "kernel_processes": len(processes.kernel_pids()),
        "oneshot_children": len(processes.oneshot_children()),
        "work_dirs": len(resources.work_dirs()),
        "runtime_dirs": len(resources.runtime_dirs()),
        "oneshot_dirs": len(resources.oneshot_dirs()),
        "cgroups": None if cgroups is None else len(cgroups),
        "empty_cgroups": None if cgroups is None else sum(1 for n in cgroups.values() if n == 0),
    }


def traces_of(kernel_ids, info, resources):
    """Anything still bearing the id of a kernel that should be gone: handed out, a directory, a cgroup."""
    gone = set(kernel_ids)
    short = {k[:12] for k in gone}
    left = []
    left += ["handed out: " + k for k in (k["kernel_id"] for k in info.get("kernel_list", [])) if k in gone]
    left += ["working directory: " + d for d in resources.work_dirs() if d in gone]
    left += ["runtime directory: " + d for d in resources.runtime_dirs() if d.split("-")[0] in short]
    if os.geteuid() == 0:
        left += ["cgroup: " + c for c in resources.cgroups() if os.path.basename(c).rsplit("-", 1)[0] in gone]
    return left


async def meta_count(backend, procedure):
    """How many registrations (or subscriptions) the router holds, all match policies together."""
    listing = await backend.call(procedure)
    return sum(len(ids) for ids in listing.values())


def meta_figures(snap):
    """Registrations beyond the kernels' own (each kernel, handed out, pooled or held, has one), subscriptions."""
    return snap["registrations"] - snap["kernel_processes"], snap["subscriptions"]


def meta_text(snap):
    return "{} registrations ({} kernels), {} subscriptions".format(
        snap["registrations"], snap["kernel_processes"], snap["subscriptions"]
    )


async def session_count(backend):
    return await backend.call("wamp.session.count")


async def wait_for_count(backend, expected, seconds):
    """Poll C{wamp.session.count} until it is C{expected} (a dropped TCP peer is detached when its RST arrives)."""
    from twisted.internet import reactor, task

    deadline = time.monotonic() + seconds
    while True:
        count = await session_count(backend)
        if count == expected or time.monotonic() > deadline:
            return count
        await task.deferLater(reactor, 0.25, lambda: None)  # poll


def log_errors(text):
    return [line for line in text.splitlines() if LOG_ERROR.search(line)]


def error_kinds(lines):
    """The error lines without timestamps, pids and ids, counted: what kind of error, how often."""
    kinds = {}
    for line in lines:
        kind = re.sub(r"^\S+ \[(\w+)\s+\d+\]", r"[\1]", line)
        kind = re.sub(r"\d{4}-\d\d-\d\dT\S+ ", "", kind)
        kind = re.sub(r"\b[0-9a-f]{32}\b|\b\d{6,}\b", "<id>", kind).strip()
        kinds[kind] = kinds.get(kind, 0) + 1
    return dict(sorted(kinds.items(), key=lambda item: -item[1]))


# -- the run ---------------------------------------------------------------------------------------------------------


def rss_slopes(samples, warmup):
    """Least-squares slope of each process's RSS against churn sessions done, after the warm-up: KB per session."""
    after = [s for s in samples if s["done"] >= warmup]
    if len(after) < 3 or after[-1]["done"] == after[0]["done"]:
        return {}
    xs = [s["done"] for s in after]
    mean_x = statistics.mean(xs)
    var_x = sum((x - mean_x) ** 2 for x in xs)
    slopes = {}
    for name in after[0]:
        if name in ("t_s", "done"):
            continue
        ys = [s[name] for s in after]
        mean_y = statistics.mean(ys)
        slopes[name] = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / var_x * 1024
    return slopes


class Trajectory:
    """RSS of the node's processes every C{interval_s} while the churn runs (to tell a slope from a step)."""

    def __init__(self, processes, churn, interval_s):
        from twisted.internet import task

        self.processes, self.churn, self.samples = processes, churn, []
        self._t0 = time.perf_counter()
        self._loop = task.LoopingCall(self.sample)
        self._loop.start(interval_s, now=False)

    def sample(self):
        try:
            rss = {name: round(p.memory_info().rss / 2**20, 1) for name, p in self.processes.by_name.items()}
        except psutil.Error:
            return  # a process gone: the checks say so
        self.samples.append({"t_s": round(time.perf_counter() - self._t0, 1), "done": len(self.churn.durations), **rss})

    def stop(self):
        if self._loop.running:
            self._loop.stop()


async def after_stop(pids, resources, cgroup_before, seconds):
    """What is left once the node stopped (poll, with a deadline: the kernels die as their master goes)."""
    from twisted.internet import reactor, task

    deadline = time.monotonic() + seconds
    while True:
        left = {
            "processes": [pid for pid in pids if _alive(pid)],
            "tmp_entries": resources.top_level(),
            "cgroups": sorted(existing_cgroups() - cgroup_before) if os.geteuid() == 0 else [],
        }
        if not any(left.values()) or time.monotonic() > deadline:
            return left
        await task.deferLater(reactor, 0.25, lambda: None)  # poll


async def soak(reactor, args):
    root = tempfile.mkdtemp(prefix="cellsoak-")
    cgroup_before = existing_cgroups()
    node, settings = make_node(root, args)
    pool_size = settings.get("pool_size", 4)
    out = {"args": vars(args), "node_dir": node.dir}
    t_start = time.perf_counter()
    print("soak: starting a node in {} ...".format(root), flush=True)
    node.start(ready=("spawner {} joined".format(SPAWNER_ID), "session router ready"))
    resources = Resources(os.path.join(root, "tmp"), cgroup_before)
    settle_s = args.resume_grace + args.settle_timeout
    try:
        processes = Processes(node.proc.pid)
        node_pids = [p.pid for p in processes.by_name.values()]
        backend = await backend_connect(node.cbdir)
        settled_start = await settled_snapshot(backend, processes, resources, 0, pool_size, settle_s)
        count_empty = await session_count(backend)
        tables_start = await tables_of(backend)

        steady = Steady(node.url, args.steady, args.steady_interval)
        churn = Churn(node.url, args.concurrency, args.call_sleep, args.drop_after, args.mix.split(","))
        await steady.start()
        warmup, total = args.warmup_sessions, args.warmup_sessions + args.sessions
        print(
            "soak: warm-up, {} churn sessions ({} in flight) with {} steady sessions ...".format(
                warmup, args.concurrency, args.steady
            ),
            flush=True,
        )
        trajectory = Trajectory(processes, churn, args.sample_every)
        t0 = time.perf_counter()
        await churn.run(0, warmup)
        warm_s = time.perf_counter() - t0
        settled_warm = await settled_snapshot(backend, processes, resources, args.steady, pool_size, settle_s)
        rss_warm = processes.rss_mb()
        count_warm = await session_count(backend)
        tables_warm = await tables_of(backend)
        print(
            "soak: after warm-up ({:.0f} s): RSS {}; {} sessions".format(
                warm_s, ", ".join("{} {:.1f} MB".format(k, v) for k, v in rss_warm.items()), count_warm
            ),
            flush=True,
        )

        print(
            "soak: churn, {} sessions, and {} Jupyter face clients ...".format(args.sessions, args.face_sessions),
            flush=True,
        )
        t0 = time.perf_counter()
        from twisted.internet import threads

        face_run = threads.deferToThread(face_churn, node, args.face_sessions)
        await churn.run(warmup, total)
        face_errors = await face_run
        churn_s = time.perf_counter() - t0
        trajectory.stop()
        print("soak: churn done in {:.0f} s; letting the node settle ...".format(churn_s), flush=True)
        settled_end = await settled_snapshot(backend, processes, resources, args.steady, pool_size, settle_s)
        rss_end = processes.rss_mb()
        count_end = await wait_for_count(backend, count_warm, 10)
        traces = traces_of(churn.kernel_ids, await status_of(backend), resources)
        tables_end, tables_grown = await wait_tables(backend, lambda sizes: grown(sizes, tables_warm), settle_s)

        await steady.stop()
        steady_summary = steady.summary()
        settled_empty = await settled_snapshot(backend, processes, resources, 0, pool_size, settle_s)
        count_final = await wait_for_count(backend, count_empty, 10)
        tables_empty, tables_off = await wait_tables(backend, lambda sizes: differ(sizes, tables_start), settle_s)
        traces += traces_of(steady.kernel_ids, await status_of(backend), resources)
        all_alive = processes.alive()
        last_pids = node_pids + processes.kernel_pids() + processes.oneshot_children()
        backend.leave()
    finally:
        node.stop()
    print("soak: node stopped; looking for what it left ...", flush=True)
    left_after_stop = await after_stop(last_pids, resources, cgroup_before, 15)
    log = node.log()
    errors = log_errors(log)

    checks = []
    ratio = {name: rss_end[name] / rss_warm[name] for name in rss_warm}
    slope = rss_slopes(trajectory.samples, warmup)
    for name in rss_warm:
        checks.append(
            (
                "RSS of the {} within +{:g}% of after warm-up".format(name, args.rss_tolerance),
                None if args.no_rss_check else ratio[name] <= 1 + args.rss_tolerance / 100.0,
                "{:.1f} -> {:.1f} MB ({:+.1f}%)".format(rss_warm[name], rss_end[name], (ratio[name] - 1) * 100),
            )
        )
    checks += [
        (
            "wamp.session.count back to its baseline (steady sessions connected)",
            count_end == count_warm,
            "{} -> {}".format(count_warm, count_end),
        ),
        (
            "wamp.session.count back to the empty node's once all left",
            count_final == count_empty,
            "{} -> {}".format(count_empty, count_final),
        ),
        (
            "the router's registrations (beyond one per kernel) and subscriptions back to their baseline",
            meta_figures(settled_end) == meta_figures(settled_warm),
            "{} -> {}".format(meta_text(settled_warm), meta_text(settled_end)),
        ),
        (
            "the router's registrations (beyond one per kernel) and subscriptions back to the empty node's once all "
            "left",
            meta_figures(settled_empty) == meta_figures(settled_start),
            "{} -> {}".format(meta_text(settled_start), meta_text(settled_empty)),
        ),
        (
            "the node at rest after the churn: every kernel process accounted for, one directory and cgroup each, "
            "no one-shot left",
            settled_end["at_rest"],
            "{} kernel processes, {} accounted for".format(
                settled_end["kernel_processes"], accounted_kernels(settled_end)
            ),
        ),
        (
            "the node at rest once the steady sessions left",
            settled_empty["at_rest"],
            "{} kernel processes, {} accounted for".format(
                settled_empty["kernel_processes"], accounted_kernels(settled_empty)
            ),
        ),
        ("no trace of a churn or steady kernel's id left", not traces, "; ".join(traces[:3])),
        (
            "no table of the session router or the face larger after the churn than after the warm-up",
            not tables_grown,
            off_text(tables_grown),
        ),
        (
            "every table of the session router and the face back to the empty node's once all left",
            not tables_off,
            off_text(tables_off),
        ),
        ("no error in the Jupyter face clients", not face_errors, "; ".join(face_errors[:1])),
        (
            "no error or traceback in the node's log",
            not errors,
            "{} line(s), first: {}".format(len(errors), errors[0][:160]) if errors else "",
        ),
        ("no error in the steady sessions", steady_summary["errors"] == 0, "; ".join(steady.errors[:1])),
        ("no error in the churn sessions", not churn.errors, churn.errors[0] if churn.errors else ""),
        ("every churn session ran", sum(churn.counts.values()) == total, ""),
        ("the node's processes all alive throughout", all_alive, ""),
        (
            "after the node stopped: no process of it left",
            not left_after_stop["processes"],
            str(left_after_stop["processes"][:5]),
        ),
        (
            "after the node stopped: nothing left in the spawner's TMPDIR",
            not left_after_stop["tmp_entries"],
            ", ".join(left_after_stop["tmp_entries"][:3]),
        ),
        (
            "after the node stopped: no kernel cgroup left",
            not left_after_stop["cgroups"] if os.geteuid() == 0 else None,
            "{} left, e.g. {}".format(len(left_after_stop["cgroups"]), left_after_stop["cgroups"][:1])
            if left_after_stop["cgroups"]
            else "",
        ),
    ]
    out.update(
        {
            "duration_s": time.perf_counter() - t_start,
            "churn": {
                "sessions": args.sessions,
                "warmup_sessions": warmup,
                "mix": churn.mix,
                "warmup_s": warm_s,
                "churn_s": churn_s,
                "per_s": args.sessions / churn_s if churn_s else None,
                "counts": churn.counts,
                "errors": len(churn.errors),
                "first_errors": churn.errors[:5],
                "kernels_started": len(churn.kernel_ids),
                "session_p50_ms": pct(churn.durations, 50) * 1000,
            },
            "steady": steady_summary,
            "face_clients": {
                "sessions": args.face_sessions,
                "errors": len(face_errors),
                "first_errors": face_errors[:5],
            },
            "tables": {
                "start": tables_start,
                "after_warmup": tables_warm,
                "after_churn": tables_end,
                "all_left": tables_empty,
            },
            "rss_mb": {"after_warmup": rss_warm, "after_churn": rss_end, "ratio": ratio, "slope_kb_per_session": slope},
            "rss_trajectory": trajectory.samples,
            "session_count": {"empty": count_empty, "after_warmup": count_warm, "after_churn": count_end},
            "session_count_all_left": count_final,
            "settled_at_start": settled_start,
            "settled_after_warmup": settled_warm,
            "settled_after_churn": settled_end,
            "settled_all_left": settled_empty,
            "kernel_id_traces": traces,
            "log_errors": errors[:50],
            "log_error_lines": len(errors),
            "log_error_kinds": error_kinds(errors),
            "log_bytes": len(log),
            "left_after_stop": left_after_stop,
            "cgroups_before_run": len(cgroup_before),
            "checks": [{"check": c, "ok": ok, "detail": d} for c, ok, d in checks],
        }
    )
    print(report(out, checks), flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
    with open(args.results, "w") as f:
        json.dump(out, f, indent=2, default=str)
    print("soak: figures written to {}".format(args.results), flush=True)
    failed = [c for c, ok, _ in checks if ok is False]
    if args.keep or failed:
        print("soak: the node's directory (and its log) is kept: {}".format(node.dir), flush=True)
    else:
        shutil.rmtree(root, ignore_errors=True)
    if failed:
        print("soak: FAILED: {}".format("; ".join(failed)), flush=True)
        raise SystemExit(1)
    print("soak: all checks passed", flush=True)


def report(out, checks):
    churn, steady, rss, count = out["churn"], out["steady"], out["rss_mb"], out["session_count"]
    lines = [
        "",
        "| churn | value |",
        "|---|---|",
        "| sessions (warm-up + measured) | {} + {} |".format(churn["warmup_sessions"], churn["sessions"]),
        "| kernel polite / kernel dropped / one-shot polite / one-shot dropped | {kernel_polite} / {kernel_dropped} / "
        "{oneshot_polite} / {oneshot_dropped} |".format(**churn["counts"]),
        "| measured churn | {:.0f} s, {:.1f} sessions/s |".format(churn["churn_s"], churn["per_s"] or 0),
        "| errors | {} |".format(churn["errors"]),
        "",
        "| steady sessions ({}, `1+1` in a loop) | value |".format(steady["sessions"]),
        "|---|---|",
        "| executes | {} |".format(steady["executes"]),
        "| p50 / p95 / p99 / max | {:.1f} / {:.1f} / {:.1f} / {:.1f} ms |".format(
            steady["p50_ms"], steady["p95_ms"], steady["p99_ms"], steady["max_ms"]
        ),
        "| errors | {} |".format(steady["errors"]),
        "",
        "| RSS | after warm-up | after churn | change | slope meanwhile |",
        "|---|---|---|---|---|",
    ]
    for name in rss["after_warmup"]:
        slope = rss["slope_kb_per_session"].get(name)
        lines.append(
            "| {} | {:.1f} MB | {:.1f} MB | {:+.1f}% | {} |".format(
                name,
                rss["after_warmup"][name],
                rss["after_churn"][name],
                (rss["ratio"][name] - 1) * 100,
                "n/a" if slope is None else "{:+.2f} KB/session".format(slope),
            )
        )
    end, empty = out["settled_after_churn"], out["settled_all_left"]

    def row(label, key):
        return "| {} | {} | {} |".format(label, end[key], empty[key])

    left = out["left_after_stop"]
    lines += [
        "",
        "| at rest | after churn (steady connected) | all left |",
        "|---|---|---|",
        "| wamp.session.count (baseline) | {} ({}) | {} ({}) |".format(
            count["after_churn"], count["after_warmup"], out["session_count_all_left"], count["empty"]
        ),
        "| kernels handed out / pool ready / held / other languages' pools ready | {} / {} / {} / {} "
        "| {} / {} / {} / {} |".format(
            end["handed_out"],
            end["pool_ready"],
            end["held"],
            end["languages_ready"],
            empty["handed_out"],
            empty["pool_ready"],
            empty["held"],
            empty["languages_ready"],
        ),
        "| router registrations beyond one per kernel / subscriptions (baseline) | {} / {} ({} / {}) "
        "| {} / {} ({} / {}) |".format(
            *meta_figures(end),
            *meta_figures(out["settled_after_warmup"]),
            *meta_figures(empty),
            *meta_figures(out["settled_at_start"]),
        ),
        row("kernel processes (forked or launched by the spawner)", "kernel_processes"),
        row("kernel working directories", "work_dirs"),
        row("kernel runtime directories", "runtime_dirs"),
        row("kernel memory cgroups (None: not root)", "cgroups"),
        row("empty kernel cgroups", "empty_cgroups"),
        row("one-shot children", "oneshot_children"),
        row("one-shot working directories", "oneshot_dirs"),
        "| ids of ended kernels still found anywhere | {} | |".format(len(out["kernel_id_traces"])),
        *table_rows(out["tables"]),
        "| error lines in the node's log ({:.1f} MB) | {} | |".format(out["log_bytes"] / 2**20, out["log_error_lines"]),
        "",
        "| after the node stopped | left |",
        "|---|---|",
        "| processes (node's, kernels, one-shot children) | {} |".format(len(left["processes"])),
        "| entries in the spawner's TMPDIR | {} |".format(len(left["tmp_entries"])),
        "| kernel cgroups | {} |".format(len(left["cgroups"])),
        "",
        "| check | result | detail |",
        "|---|---|---|",
    ]
    for check, ok, detail in checks:
        lines.append("| {} | {} | {} |".format(check, {True: "ok", False: "FAILED", None: "not checked"}[ok], detail))
    return "\n".join(lines)


def table_rows(tables):
    """The session router's and the face's tables: after the churn (after the warm-up), all left (at start)."""
    end, warm, empty, start = (tables[k] for k in ("after_churn", "after_warmup", "all_left", "start"))
    return [
        "| table: {} (baseline) | {} ({}) | {} ({}) |".format(
            name, end.get(name), warm.get(name), empty.get(name), start.get(name)
        )
        for name in sorted(set(end) | set(start))
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sessions", type=int, default=2000, help="churn sessions measured, after the warm-up (default 2000)"
    )
    parser.add_argument(
        "--warmup-sessions",
        type=int,
        default=1000,
        help="churn sessions before the first RSS figures (default 1000: the spawner's memory grows with the most "
        "kernels it has had at once, dropped ones waiting out their grace included, and reaches that plateau over "
        "the first thousand or so sessions)",
    )
    parser.add_argument("--steady", type=int, default=20, help="steady sessions (default 20)")
    parser.add_argument("--concurrency", type=int, default=16, help="churn sessions in flight (default 16)")
    parser.add_argument(
        "--steady-interval", type=float, default=0.2, help="pause between a steady session's executes (default 0.2 s)"
    )
    parser.add_argument(
        "--mix",
        default=",".join(MIX),
        help="what churn sessions do, in turn (default: {}; e.g. one kind alone, to find which leaks)".format(
            ",".join(MIX)
        ),
    )
    parser.add_argument("--call-sleep", type=float, default=0.3, help="how long a churn call runs (default 0.3 s)")
    parser.add_argument(
        "--drop-after", type=float, default=0.1, help="when a dropping session cuts its connection (default 0.1 s)"
    )
    parser.add_argument(
        "--resume-grace", type=float, default=3.0, help="the session router's resume_grace_s here (default 3 s)"
    )
    parser.add_argument(
        "--settle-timeout",
        type=float,
        default=60.0,
        help="how long past the resume grace the node may take to come to rest (default 60 s)",
    )
    parser.add_argument(
        "--max-kernels", type=int, default=128, help="the spawner's max_kernels here (default 128; shipped 32)"
    )
    parser.add_argument(
        "--rss-tolerance", type=float, default=5.0, help="allowed RSS growth after warm-up, in percent (default 5)"
    )
    parser.add_argument(
        "--no-rss-check",
        action="store_true",
        help="report RSS but do not check it: only for runs too short for the processes' memory to settle after "
        "warm-up (a short form of a few hundred sessions), where a growth says nothing about a leak",
    )
    parser.add_argument(
        "--sample-every", type=float, default=5.0, help="RSS trajectory sampling period (default 5 s; in the JSON)"
    )
    parser.add_argument(
        "--results", default=os.path.join(RESULTS, "soak.json"), help="where the JSON goes (bench/results/soak.json)"
    )
    parser.add_argument(
        "--face-sessions", type=int, default=40, help="Jupyter face clients during the churn (default 40)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the node's directory (and its log)")
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.warmup_sessions < 1:
        parser.error("--sessions and --warmup-sessions must be at least 1")
    if not args.mix or set(args.mix.split(",")) - set(MIX):
        parser.error("--mix: a comma-separated list of {}".format(", ".join(MIX)))

    from twisted.internet import defer, task
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        textFileLogObserver,
    )

    globalLogBeginner.beginLoggingTo(
        [FilteringLogObserver(textFileLogObserver(sys.stderr), [LogLevelFilterPredicate(LogLevel.error)])],
        redirectStandardIO=False,
    )
    task.react(lambda reactor: defer.ensureDeferred(soak(reactor, args)))


if __name__ == "__main__":
    main()
