"""Sage kernels: forked from the warmed-up Sage master, against cold Sage kernels started by jupyter_client.

Each figure beside its baseline measured in the same run (docs/benchmarks.md, "Sage"):

- acquisition: ``cell.kernel.start(kernel_name="sagemath")`` -> the reply of a first ``factor(2^64+1)``,
  against a cold Sage kernel (``jupyter_client.KernelManager``, the same kernelspec) from start to that reply;
- a fresh kernel's first ``integrate(sin(x)^2, x)`` and first ``plot(sin(x), (x, 0, pi))`` (Sage loads Maxima and
  the plotting code lazily: the cold kernel pays for them at first use, a forked one found them warmed up);
- idle USS of 30 forked Sage kernels against one cold Sage kernel's.

Needs the Sage environment (``make sage``).  Run: ``make bench`` (all benches) or ``python -m bench.sage``.
"""

import argparse
import json
import os
import tempfile
import time

from bench.figures import RESULTS, Record, summary
from bench.run import drain_replies, wait_iopub_ready
from components.common.kernelspecs import SAGE
from components.worker.kernel_environment import PROJECT

SAGE_PYTHON = os.path.join(PROJECT, ".sage-venv", "bin", "python")
FACTOR = ("factor(2^64 + 1)", "274177 * 67280421310721")
INTEGRATE = ("integrate(sin(x)^2, x)", "1/2*x - 1/4*sin(2*x)")
PLOT = "plot(sin(x), (x, 0, pi))"


def cold_kernel_manager(tmp):
    """A KernelManager for a Sage kernel launched as Jupyter launches it (passagemath's kernelspec, absolute python)."""
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    spec_dir = os.path.join(tmp, "kernels", SAGE)
    os.makedirs(spec_dir, exist_ok=True)
    with open(os.path.join(spec_dir, "kernel.json"), "w") as f:
        json.dump(
            {
                "argv": [SAGE_PYTHON, "-m", "sage.repl.ipython_kernel", "-f", "{connection_file}"],
                "display_name": "SageMath (cold)",
                "language": "sage",
            },
            f,
        )
    return KernelManager(
        kernel_name=SAGE, kernel_spec_manager=KernelSpecManager(kernel_dirs=[os.path.dirname(spec_dir)])
    )


def run_and_time(client, code, expected=None):
    """Seconds from sending C{code} to its execute reply; checks C{expected} in what it showed."""
    shown = []

    def output(msg):
        content = msg["content"]
        shown.append(content.get("text") or content.get("data", {}).get("text/plain", ""))

    t0 = time.perf_counter()
    reply = client.execute_interactive(code, timeout=120, output_hook=output)
    seconds = time.perf_counter() - t0
    assert reply["content"]["status"] == "ok", reply["content"]
    if expected is not None:
        assert expected in "".join(shown), (code, shown)
    return seconds


def cold_samples(n):
    """Per cold Sage kernel: start -> first factor reply, then its first integrate and first plot; its idle USS."""
    import psutil

    out = {"acquire": [], "integrate": [], "plot": [], "uss_mb": []}
    with tempfile.TemporaryDirectory(prefix="cellbench-sage-") as tmp:
        for _ in range(n):
            km = cold_kernel_manager(tmp)
            t0 = time.perf_counter()
            km.start_kernel()
            client = km.client()
            client.start_channels()
            drain_replies(client, wait_iopub_ready(client))
            run_and_time(client, *FACTOR)
            out["acquire"].append(time.perf_counter() - t0)
            out["integrate"].append(run_and_time(client, *INTEGRATE))
            out["plot"].append(run_and_time(client, PLOT))
            out["uss_mb"].append(psutil.Process(km.provisioner.pid).memory_full_info().uss / 2**20)
            client.stop_channels()
            km.shutdown_kernel(now=True)
    return out


def sage_bench_config(config):
    from bench.run import bench_config
    from tests.node import spawner_settings, with_sage

    bench_config(config)
    with_sage(config)
    spawner_settings(config, sage_pool_size=2)


async def node_samples(reactor, n, n_density):
    """The same through a real node's forked Sage kernels (each sample waits for a warm pool, as for Python)."""
    import psutil
    from twisted.internet import task

    from tests.node import Node
    from tests.wamp_client import connect

    node = Node(tempfile.mkdtemp(prefix="cellbench-sage-node-"), edit=sage_bench_config).start()
    out = {"acquire": [], "integrate": [], "plot": [], "factor_again": []}
    try:
        session = await connect(node.url, serializers=["msgpack"])

        async def pool_ready(count=2):
            for _ in range(2400):  # poll: the Sage master's start (imports, warm-up) and each refill
                status = await session.call("cell.status")
                if status["spawners"][0]["language_pools"].get(SAGE, 0) >= count:
                    return
                await task.deferLater(reactor, 0.05, lambda: None)
            raise RuntimeError("no warm Sage kernels after 120 s")

        async def execute(kernel_id, code, expected=None):
            t0 = time.perf_counter()
            result = await session.call("cell.kernel.{}.execute".format(kernel_id), code)
            seconds = time.perf_counter() - t0
            assert result["status"] == "ok", result
            if expected is not None:
                assert expected in json.dumps(result["outputs"]), result["outputs"]
            return seconds

        for i in range(n + 2):  # the first two warm the node's paths, not counted
            await pool_ready()
            t0 = time.perf_counter()
            kernel = await session.call("cell.kernel.start", kernel_name=SAGE)
            await execute(kernel["kernel_id"], *FACTOR)
            acquired = time.perf_counter() - t0
            again = await execute(kernel["kernel_id"], *FACTOR)  # what of the acquisition is the computation itself
            integrate = await execute(kernel["kernel_id"], *INTEGRATE)
            await session.call("cell.kernel.{}.shutdown".format(kernel["kernel_id"]))
            await pool_ready()
            kernel = await session.call("cell.kernel.start", kernel_name=SAGE)
            plot = await execute(kernel["kernel_id"], PLOT)
            await session.call("cell.kernel.{}.shutdown".format(kernel["kernel_id"]))
            if i >= 2:
                out["acquire"].append(acquired)
                out["factor_again"].append(again)
                out["integrate"].append(integrate)
                out["plot"].append(plot)

        print("cellserver: density, {} idle Sage kernels ...".format(n_density), flush=True)
        pids, starts = [], []
        for _ in range(n_density):
            t0 = time.perf_counter()
            kernel = await session.call("cell.kernel.start", kernel_name=SAGE)
            starts.append(time.perf_counter() - t0)
            result = await session.call("cell.kernel.{}.execute".format(kernel["kernel_id"]), "import os; os.getpid()")
            pids.append(int(result["outputs"][0]["data"]["text/plain"]))
        out["uss_mb"] = [psutil.Process(pid).memory_full_info().uss / 2**20 for pid in pids]
        # Past the pool's two, each start forks a kernel and waits for it: a Sage kernel's fork-to-ready.
        out["start_unpooled"] = starts[2:]
        session.leave()
        return out
    finally:
        node.stop()


def report(record, cold, ours):
    lines = ["| measure | cellserver p50 ms | cold Sage kernel p50 ms | ratio |", "|---|---|---|---|"]
    for key, name in (
        ("acquire", "start -> first factor(2^64+1) reply"),
        ("integrate", "a fresh kernel's first integrate"),
        ("plot", "a fresh kernel's first plot"),
    ):
        a, b = summary(ours[key]), summary(cold[key])
        record.add("sage_" + key, {"ours": a, "cold": b, "ratio": b["p50_ms"] / a["p50_ms"]})
        lines.append(
            "| {} | {:.1f} | {:.1f} | {:.1f}x |".format(name, a["p50_ms"], b["p50_ms"], b["p50_ms"] / a["p50_ms"])
        )
    unpooled = summary(ours["start_unpooled"])
    record.add("sage_start_unpooled", unpooled)
    lines.append("| a start with the pool empty (fork to ready) | {:.1f} | | |".format(unpooled["p50_ms"]))
    again = summary(ours["factor_again"])
    record.add("sage_factor_again", again)
    lines.append("| the same factor again in that kernel (its own cost) | {:.1f} | | |".format(again["p50_ms"]))
    uss, cold_uss = sorted(ours["uss_mb"]), cold["uss_mb"]
    record.add(
        "sage_idle_uss_mb",
        {"forked_median": uss[len(uss) // 2], "forked_max": uss[-1], "kernels": len(uss), "cold": min(cold_uss)},
    )
    lines.append(
        "| idle kernel USS (MB) | {:.1f} (median of {}) | {:.1f} | {:.1f}x |".format(
            uss[len(uss) // 2], len(uss), min(cold_uss), min(cold_uss) / uss[len(uss) // 2]
        )
    )
    print("\n".join(lines), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    args = parser.parse_args(argv)
    if not os.access(SAGE_PYTHON, os.X_OK):
        raise SystemExit("bench.sage: no Sage environment ({} is missing): run `make sage`".format(SAGE_PYTHON))
    n_cold, n, n_density = (2, 5, 10) if args.quick else (3, 15, 30)
    record = Record(os.path.join(RESULTS, "sage.json"))
    cold = {}
    with record.part("baseline: cold Sage kernels"):
        print("baseline: cold Sage kernel (jupyter_client KernelManager) x{} ...".format(n_cold), flush=True)
        cold = cold_samples(n_cold)
        record.add("cold_sage", {key: summary(value) for key, value in cold.items() if key != "uss_mb"})

    from twisted.internet import defer, task

    def run(reactor):
        async def go():
            with record.part("cellserver: forked Sage kernels"):
                print("cellserver: forked Sage kernels x{} through a real node ...".format(n), flush=True)
                ours = await node_samples(reactor, n, n_density)
                report(record, cold, ours)
            if record.failed:
                raise SystemExit(
                    "bench.sage: {} part(s) failed: {}".format(len(record.failed), ", ".join(record.failed))
                )

        return defer.ensureDeferred(go())

    task.react(run)


if __name__ == "__main__":
    main()
