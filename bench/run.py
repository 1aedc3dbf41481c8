"""cellserver benchmarks, each figure next to its baseline measured in the same run.

    make bench            # or: python -m bench.run [--quick]

Baselines: a cold ``jupyter_client.KernelManager`` start (until the kernel
answers ``kernel_info`` with iopub flowing) and a direct ``jupyter_client``
execute round trip.  cellserver figures: kernel acquisition from the warm
pool (``cell.kernel.start`` -> first ``execute`` reply) through a real node,
fork-to-ready of one kernel (the spawner's own code path, in process), and
``execute("1+1")`` round trip through the router.  Results are printed and
written to ``bench/results/``.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def pct(samples, p):
    ordered = sorted(samples)
    k = (len(ordered) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(samples):
    return {"n": len(samples), "p50_ms": pct(samples, 50) * 1000, "p95_ms": pct(samples, 95) * 1000, "mean_ms": statistics.mean(samples) * 1000}


# -- baselines: plain jupyter_client -------------------------------------------------


def wait_iopub_ready(client):
    """kernel_info until iopub shows our request's status (the fair notion of 'ready')."""
    while True:
        msg_id = client.kernel_info()
        client.get_shell_msg(timeout=30)
        deadline = time.monotonic() + 0.25
        while time.monotonic() < deadline:
            try:
                msg = client.get_iopub_msg(timeout=0.05)
            except Exception:
                continue
            if msg["msg_type"] == "status" and msg["parent_header"].get("msg_id") == msg_id:
                return


def cold_start_samples(n):
    from jupyter_client import KernelManager

    samples = []
    for _ in range(n):
        km = KernelManager(kernel_name="python3")
        t0 = time.perf_counter()
        km.start_kernel()
        client = km.client()
        client.start_channels()
        wait_iopub_ready(client)
        samples.append(time.perf_counter() - t0)
        client.stop_channels()
        km.shutdown_kernel(now=True)
    return samples


def direct_execute_samples(n):
    from jupyter_client import KernelManager

    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    client = km.client()
    client.start_channels()
    wait_iopub_ready(client)
    samples = []
    for _ in range(n + 5):
        t0 = time.perf_counter()
        msg_id = client.execute("1+1")
        reply = client.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == msg_id
        while True:
            msg = client.get_iopub_msg(timeout=30)
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        samples.append(time.perf_counter() - t0)
    client.stop_channels()
    km.shutdown_kernel(now=True)
    return samples[5:]


# -- cellserver ------------------------------------------------------------------------


async def fork_to_ready_samples(reactor, n):
    """Fork one kernel with the spawner's own classes and wait until it is ready."""
    import zmq

    from components.config import SpawnerConfig
    from components.kernel import Kernel
    from components.master_client import start_fork_master

    config = SpawnerConfig()
    master = start_fork_master(reactor, config.preload, lambda pid, status, oom: None)
    await master.ready
    context = zmq.Context()
    root = tempfile.mkdtemp(prefix="cellbench-")
    samples = []
    for _ in range(n):
        kernel = Kernel(reactor, config, master, context, root, root, on_iopub=lambda k, m: None, on_dead=lambda k, r: None)
        t0 = time.perf_counter()
        await kernel.start()
        samples.append(time.perf_counter() - t0)
        kernel.shutdown("benchmark")
    await master.stop()
    context.destroy(linger=0)
    return samples


async def node_samples(reactor, n_acquire, n_execute):
    from twisted.internet import task

    from tests.node import Node
    from tests.wamp_client import connect

    tmp = tempfile.mkdtemp(prefix="cellbench-node-")
    node = Node(tmp).start()
    try:
        session = await connect(node.url, serializers=["msgpack"])

        async def pool_full():
            for _ in range(400):
                status = await session.call("cell.status")
                if status["spawners"][0]["pool_ready"] >= 4:
                    return
                await task.deferLater(reactor, 0.05, lambda: None)

        acquire = []
        for _ in range(n_acquire):
            await pool_full()
            t0 = time.perf_counter()
            kernel = await session.call("cell.kernel.start")
            await session.call("cell.kernel.{}.execute".format(kernel["kernel_id"]), "1+1")
            acquire.append(time.perf_counter() - t0)
            await session.call("cell.kernel.{}.shutdown".format(kernel["kernel_id"]))
        await pool_full()
        kernel = await session.call("cell.kernel.start")
        uri = "cell.kernel.{}.execute".format(kernel["kernel_id"])
        rtt = []
        for i in range(n_execute + 5):
            t0 = time.perf_counter()
            result = await session.call(uri, "1+1")
            rtt.append(time.perf_counter() - t0)
            assert result["status"] == "ok"
        session.leave()
        return acquire, rtt[5:]
    finally:
        node.stop()


def table(rows):
    lines = ["| measure | p50 ms | p95 ms | n | baseline | baseline p50 ms | ratio (baseline p50 / ours p50) |", "|---|---|---|---|---|---|---|"]
    for name, ours, base_name, base in rows:
        ratio = base["p50_ms"] / ours["p50_ms"]
        lines.append("| {} | {:.2f} | {:.2f} | {} | {} | {:.2f} | {:.2f}x |".format(name, ours["p50_ms"], ours["p95_ms"], ours["n"], base_name, base["p50_ms"], ratio))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    args = parser.parse_args(argv)
    n_cold, n_exec, n_fork, n_acq = (3, 50, 5, 10) if args.quick else (8, 300, 15, 30)

    print("baseline: cold jupyter_client KernelManager start x{} ...".format(n_cold), flush=True)
    cold = summary(cold_start_samples(n_cold))
    print("baseline: direct jupyter_client execute('1+1') x{} ...".format(n_exec), flush=True)
    direct = summary(direct_execute_samples(n_exec))

    from twisted.internet import defer, task

    measured = {}
    from twisted.logger import FilteringLogObserver, LogLevel, LogLevelFilterPredicate, globalLogBeginner, textFileLogObserver

    globalLogBeginner.beginLoggingTo([FilteringLogObserver(textFileLogObserver(sys.stderr), [LogLevelFilterPredicate(LogLevel.warn)])], redirectStandardIO=False)

    def run(reactor):
        async def go():
            print("cellserver: fork-to-ready x{} ...".format(n_fork), flush=True)
            measured["fork"] = summary(await fork_to_ready_samples(reactor, n_fork))
            print("cellserver: pool acquisition x{}, execute round trip x{} through a real node ...".format(n_acq, n_exec), flush=True)
            acquire, rtt = await node_samples(reactor, n_acq, n_exec)
            measured["acquire"] = summary(acquire)
            measured["rtt"] = summary(rtt)
            _report(cold, direct, measured)

        return defer.ensureDeferred(go())

    task.react(run)  # exits the process once run() has written the results


def _report(cold, direct, measured):
    rows = [
        ("kernel acquisition from warm pool (start -> first execute reply)", measured["acquire"], "cold KernelManager start", cold),
        ("fork-to-ready of one kernel", measured["fork"], "cold KernelManager start", cold),
        ("execute('1+1') round trip through the router", measured["rtt"], "direct jupyter_client execute", direct),
    ]
    text = table(rows)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "results.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(RESULTS, "results.json"), "w") as f:
        json.dump({"cold_start": cold, "direct_execute": direct, **measured}, f, indent=2)
    print(text)


if __name__ == "__main__":
    main()
