"""A class opens the page at once: N people, each from an address of their own, start a kernel (or a one-shot) together.

    python -m bench.burst [--people 30 200] [--cold 5]     # as root, as the node's sandbox needs; `make bench` runs it

Each person does what the page does, all at the same moment: connect a WAMP session as an anonymous browser from
a loopback address of its own (127.0.0.2 ... 127.0.0.251, then 127.0.1.x), so the per-address quotas apply as
deployed; then either ``cell.kernel.start``, a subscription to the kernel's iopub topic and the first
``execute("1+1")`` (the *kernel* case), or one ``cell.execute("1+1")`` (the *one-shot* case).  The time to first
result runs from the common start to that result; connect, start, subscribe and execute are timed apart.

The node is L{deploy.node.Node}, the shipped configuration as users run it: L{tests.node.Node} lifts the quotas per
client address, which is what a burst from many addresses must meet.  N = 30 runs the shipped config unchanged;
for N > 30 L{room_for} raises the spawner's ``max_kernels`` to N (the shipped 32 would refuse the 33rd); no quota
per address or per session needs raising, since each person is one session from one address.

Beside it, in the same run: a cold ``jupyter_client.KernelManager`` start (L{bench.run.cold_start_samples}).
While a burst runs, an observer session (127.0.0.1) samples ``cell.status`` to show what the warm pool does.
Each figure is printed as it is measured and written to ``bench/results/burst.json``.
"""

import argparse
import json
import os
import sys
import tempfile
import time

from bench.figures import RESULTS, Record, pct, summary

#: how long one person may take in all, from the common start, before counted as timed out (the N = 200 target is 8 s)
PERSON_TIMEOUT_S = 60


def address(i):
    """The i-th person's own loopback address (127.0.0.1 is the observer's)."""
    return "127.0.{}.{}".format(i // 250, i % 250 + 2)


def room_for(people):
    """The config edit for a burst of C{people}: the shipped one, with max_kernels raised to C{people} if past it."""

    def edit(config):
        from tests.node import spawner_settings

        settings = spawner_settings(config)
        settings["max_kernels"] = max(settings.get("max_kernels", 32), people)

    return edit


class Person:
    """One person opening the page: the time of each step from the common start, or how it failed."""

    def __init__(self, i):
        self.source = address(i)
        self.times = {}
        self.failure = None

    async def _step(self, name, d, t0):
        from tests.wamp_client import within

        left = max(0.001, PERSON_TIMEOUT_S - (time.perf_counter() - t0))
        result = await within(d, left, "{} (the person's {} s in all)".format(name, PERSON_TIMEOUT_S))
        self.times[name] = time.perf_counter() - t0
        return result

    async def open_page(self, url, t0, oneshot):
        from tests.wamp_client import connect

        session = None
        try:
            session = await self._step("connect", connect(url, source=self.source), t0)
            if oneshot:
                result = await self._step("execute", session.call("cell.execute", "1+1"), t0)
                assert result["outputs"][0]["data"]["text/plain"] == "2", result
            else:
                kernel = await self._step("start", session.call("cell.kernel.start"), t0)
                await self._step("subscribe", session.subscribe(lambda msg: None, kernel["iopub"]), t0)
                uri = "cell.kernel.{}.execute".format(kernel["kernel_id"])
                result = await self._step("execute", session.call(uri, "1+1"), t0)
                assert result["status"] == "ok", result
        except Exception as exc:  # counted and shown: a bench reports, it does not stop
            self.failure = "{}: {}".format(type(exc).__name__, exc)[:300]
        return session


class PoolWatch:
    """Samples the spawner's status (warm pool, held, handed-out kernels) every C{interval} s until stopped."""

    def __init__(self, session, interval=0.05):
        self.session, self.interval = session, interval
        self.samples = []  # (seconds from start, pool_ready, held, kernels)
        self.running = False

    async def status(self):
        spawner = (await self.session.call("cell.status"))["spawners"][0]
        self.capacity = spawner["capacity"]
        return spawner["pool_ready"], spawner.get("held", 0), spawner["kernels"]

    async def run(self, t0):
        from twisted.internet import reactor, task

        self.running = True
        while self.running:
            self.samples.append((time.perf_counter() - t0,) + await self.status())
            await task.deferLater(reactor, self.interval, lambda: None)

    async def until_full(self, pool_size, seconds=120):
        """The pool's status once it holds C{pool_size} ready kernels again (and the time that took), or the last."""
        from twisted.internet import reactor, task

        t0 = time.perf_counter()
        while True:
            now = await self.status()
            # Held kernels come out of the pool: at max_kernels handed out, ready + held = pool_size is all it
            # may hold (the spawner refuses the next start anyway).
            at_capacity = sum(now) >= self.capacity + pool_size
            if now[0] >= pool_size or at_capacity or time.perf_counter() - t0 > seconds:
                return now, time.perf_counter() - t0
            await task.deferLater(reactor, 0.05, lambda: None)


#: the node's processes by what their command line says, in this order (a forked kernel shows its fork master's)
PARTS = (
    ("router", "RouterController"),
    ("session router (container)", "ContainerController"),
    ("spawner", "components.kernel_spawner"),
    ("one-shot template and children", "components.child.oneshot"),
    ("fork master and kernels", "components.child.fork_master"),
)


def node_cpu(node):
    """CPU seconds of the node's processes by part, reaped children included (so one-shot children count)."""
    import psutil

    out = {}
    root = psutil.Process(node.proc.pid)
    for process in [root] + root.children(recursive=True):
        try:
            line = " ".join(process.cmdline())
            t = process.cpu_times()
        except psutil.Error:
            continue
        part = next((name for name, marker in PARTS if marker in line), "node controller")
        out[part] = out.get(part, 0.0) + t.user + t.system + t.children_user + t.children_system
    return out


def phases(people, oneshot):
    """Per-step durations (each step from the end of the one before), p50/p99 in ms, over those who got that far."""
    order = ["connect", "execute"] if oneshot else ["connect", "start", "subscribe", "execute"]
    out = {}
    for k, name in enumerate(order):
        spans = [p.times[name] - (p.times[order[k - 1]] if k else 0.0) for p in people if name in p.times]
        if spans:
            out[name] = {"p50_ms": pct(spans, 50) * 1000, "p99_ms": pct(spans, 99) * 1000, "max_ms": max(spans) * 1000}
    return out


async def burst(n, oneshot, pool_size=4):
    """One burst of C{n} people against a fresh node; the figures of L{Record}'s ``burst_*`` entries."""
    import psutil
    from twisted.internet import defer

    from deploy.node import Node
    from tests.wamp_client import connect

    node = Node(tempfile.mkdtemp(prefix="cellbench-burst-"), edit=room_for(n)).start()
    try:
        watcher = PoolWatch(await connect(node.url))
        before, _ = await watcher.until_full(pool_size)
        people = [Person(i) for i in range(n)]
        cpu0, me0, node0 = psutil.cpu_times(), psutil.Process().cpu_times(), node_cpu(node)
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        watch = defer.ensureDeferred(watcher.run(t0))
        sessions = await defer.gatherResults([defer.ensureDeferred(p.open_page(node.url, t0, oneshot)) for p in people])
        elapsed = time.perf_counter() - t0
        watcher.running = False
        await watch
        cpu1, me1, node1 = psutil.cpu_times(), psutil.Process().cpu_times(), node_cpu(node)
        after, refill_s = await watcher.until_full(pool_size)
        busy = (cpu1.user + cpu1.system + cpu1.nice) - (cpu0.user + cpu0.system + cpu0.nice)
        by_part = {k: round(v - node0.get(k, 0.0), 2) for k, v in node1.items()}
        clients = (me1.user + me1.system) - (me0.user + me0.system)
        for s in sessions:
            if s is not None:
                s.leave()
        watcher.session.leave()
        served = [p.times["execute"] for p in people if "execute" in p.times]
        failures = [p.failure for p in people if p.failure]
        samples = watcher.samples
        return {
            "people": n,
            "served": len(served),
            "failed": len(failures),
            "timed_out": sum("did not finish within" in f for f in failures),
            "first_failures": sorted(set(failures))[:5],
            "first_result_p50_ms": pct(served, 50) * 1000 if served else None,
            "first_result_p99_ms": pct(served, 99) * 1000 if served else None,
            "first_result_max_ms": max(served) * 1000 if served else None,
            "burst_wall_s": elapsed,
            # CPU seconds spent during the burst: the machine's (2 cores: at most 2 x burst_wall_s), the node's by
            # part, the N clients' (all in this one process, on the same cores), and everyone else's (other work on
            # the machine: what remains); load_1min_before says how busy the machine was before the burst
            "cpu_s": {
                "machine": round(busy, 2),
                "node": by_part,
                "clients": round(clients, 2),
                "others": round(busy - sum(by_part.values()) - clients, 2),
            },
            "load_1min_before": load,
            "phases": phases(people, oneshot),
            # the first result's time at every tenth of the people, fastest first: a queue shows as a ramp
            "first_result_deciles_ms": [round(pct(served, q) * 1000) for q in range(0, 101, 10)] if served else [],
            "pool": {
                "before": dict(zip(("pool_ready", "held", "kernels"), before)),
                "min_ready_during": min(s[1] for s in samples) if samples else None,
                "first_empty_at_s": next((round(s[0], 3) for s in samples if s[1] == 0), None),
                "max_kernels_during": max(s[3] for s in samples) if samples else None,
                "end_of_burst": dict(zip(("pool_ready", "held", "kernels"), samples[-1][1:])) if samples else None,
                "after_refill": dict(zip(("pool_ready", "held", "kernels"), after)),
                "refill_s": refill_s,
                # kernels forked and ready by the end of the burst: handed out, pooled or held then, less the
                # warm ones before it (a kernel still starting is not counted; none dies during a burst)
                "forked_ready_by_end_of_burst": sum(samples[-1][1:]) - sum(before) if samples else None,
            },
        }
    finally:
        node.stop()


def headline(f):
    """One line of what matters in a burst's figures."""
    line = "  served {served}/{people}, failed {failed} (timed out {timed_out}); first result p50 {p50:.0f} ms, p99 {p99:.0f} ms"
    line = line.format(p50=f["first_result_p50_ms"] or 0, p99=f["first_result_p99_ms"] or 0, **f)
    steps = ", ".join("{} p50 {:.0f}/p99 {:.0f} ms".format(k, v["p50_ms"], v["p99_ms"]) for k, v in f["phases"].items())
    return "{}\n  steps: {}\n  pool: {}\n  CPU s: {}".format(line, steps, json.dumps(f["pool"]), json.dumps(f["cpu_s"]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, nargs="+", default=[30, 200])
    parser.add_argument("--cold", type=int, default=5, help="cold KernelManager starts for the baseline")
    parser.add_argument("--out", default=os.path.join(RESULTS, "burst.json"))
    parser.add_argument(
        "--cases", nargs="+", choices=("kernel", "oneshot"), default=["kernel", "oneshot"], help="which bursts to run"
    )
    args = parser.parse_args(argv)
    record = Record(args.out)
    with record.part("baseline: cold KernelManager start"):
        from bench.run import cold_start_samples

        print("baseline: cold jupyter_client KernelManager start x{} ...".format(args.cold), flush=True)
        cold = cold_start_samples(args.cold)
        record.add("cold_start", dict(summary(cold), p99_ms=pct(cold, 99) * 1000, max_ms=max(cold) * 1000))

    from twisted.internet import defer, task
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        textFileLogObserver,
    )

    globalLogBeginner.beginLoggingTo(
        [FilteringLogObserver(textFileLogObserver(sys.stderr), [LogLevelFilterPredicate(LogLevel.critical)])],
        redirectStandardIO=False,
    )

    def run(reactor):
        async def go():
            for n in args.people:
                for oneshot in [case == "oneshot" for case in args.cases]:
                    name = "burst_{}_{}".format("oneshot" if oneshot else "kernel", n)
                    with record.part(name):
                        print("{}: {} people open the page at once ...".format(name, n), flush=True)
                        figures = record.add(name, await burst(n, oneshot))
                        print(headline(figures), flush=True)
            if record.failed:
                raise SystemExit("burst: {} part(s) failed: {}".format(len(record.failed), ", ".join(record.failed)))

        return defer.ensureDeferred(go())

    task.react(run)


if __name__ == "__main__":
    main()
