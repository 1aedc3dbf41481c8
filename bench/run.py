"""cellserver benchmarks, each figure next to its baseline measured in the same run.

    make bench            # or: python -m bench.run [--quick]

Baselines: a cold ``jupyter_client.KernelManager`` start (until the kernel
answers ``kernel_info`` with iopub flowing) and a direct ``jupyter_client``
execute round trip.  cellserver figures: kernel acquisition from the warm
pool (``cell.kernel.start`` -> first ``execute`` reply) through a real node,
fork-to-ready of one kernel (the spawner's own code path, in process; without
and, as root, with the default sandbox), and
``execute("1+1")`` round trip through the router.  Results are printed and
written to ``bench/results/``.
"""

import argparse
import json
import os
import sys
import tempfile
import time

from bench import jupyter_face
from bench.figures import RESULTS, Record, oneshot_load, pct, summary, table

# -- baselines: plain jupyter_client -------------------------------------------------


def wait_iopub_ready(client):
    """Ready as the spawner counts it: iopub shows the status of one of our kernel_info requests.

    Probed exactly as the spawner probes its own kernels (a kernel_info every
    PROBE_INTERVAL_S until one request's status arrives on iopub), so the
    baseline is not charged for a slower probe than ours.
    """
    import queue

    from components.worker.kernel import PROBE_INTERVAL_S

    sent = set()
    next_probe = time.monotonic()
    while True:
        if time.monotonic() >= next_probe:
            sent.add(client.kernel_info())
            next_probe = time.monotonic() + PROBE_INTERVAL_S
        try:
            msg = client.get_iopub_msg(timeout=max(0.001, next_probe - time.monotonic()))
        except queue.Empty:
            continue
        if msg["msg_type"] == "status" and msg["parent_header"].get("msg_id") in sent:
            return sent


def drain_replies(client, sent):
    """Read the kernel_info replies of L{wait_iopub_ready}'s probes, so the next shell reply read is the next request's."""
    while sent:
        sent.discard(client.get_shell_msg(timeout=30)["parent_header"].get("msg_id"))


FLOOD_CODE = "for i in range(100000): print(i)"


def check_flood_text(text):
    lines = text.split("\n")
    assert lines[-1] == "" and lines[:-1] == [str(i) for i in range(100000)], "flood lines missing or out of order"


def direct_flood_seconds(runs):
    """A direct jupyter_client iopub reader: time until every line of the flood has arrived."""
    from jupyter_client import KernelManager

    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    client = km.client()
    client.start_channels()
    drain_replies(client, wait_iopub_ready(client))
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        msg_id = client.execute(FLOOD_CODE)
        text = []
        while True:
            msg = client.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                text.append(msg["content"]["text"])
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        samples.append(time.perf_counter() - t0)
        check_flood_text("".join(text))
    client.stop_channels()
    km.shutdown_kernel(now=True)
    return samples


def cold_kernel_uss_mb():
    """Unique memory of a cold kernel that imported the default preload list."""
    import psutil
    from jupyter_client import KernelManager

    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    client = km.client()
    client.start_channels()
    drain_replies(client, wait_iopub_ready(client))
    client.execute_interactive("import numpy, sympy, matplotlib.pyplot", timeout=60)
    uss = psutil.Process(km.provisioner.pid).memory_full_info().uss / 2**20
    client.stop_channels()
    km.shutdown_kernel(now=True)
    return uss


def kernel_gateway_samples(n_start, n_exec):
    """Jupyter Kernel Gateway (its own venv, bench/.kg-venv): REST start, then executes over its WebSocket.

    Returns (start -> first execute reply samples, execute round trip samples), or None if not installed.
    """
    import asyncio
    import socket
    import subprocess
    import urllib.request

    jupyter = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".kg-venv", "bin", "jupyter")
    if not os.path.exists(jupyter):
        print("  (Kernel Gateway not installed: `make bench` installs it in bench/.kg-venv)", flush=True)
        return None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = "http://127.0.0.1:{}".format(port)
    log = open(os.path.join(tempfile.mkdtemp(prefix="cellbench-kg-"), "kg.log"), "wb")
    proc = subprocess.Popen(
        [jupyter, "kernelgateway", "--KernelGatewayApp.ip=127.0.0.1", "--KernelGatewayApp.port={}".format(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/api", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("Kernel Gateway did not start")
                time.sleep(0.1)  # waiting for a server to listen, with a deadline

        async def measure():
            from jupyter_client.session import Session
            from tornado.websocket import websocket_connect

            session = Session(key=b"")
            starts, rtts = [], []

            async def execute(ws, code):
                msg = session.msg(
                    "execute_request",
                    {
                        "code": code,
                        "silent": False,
                        "store_history": True,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                )
                msg["channel"] = "shell"
                msg_id = msg["header"]["msg_id"]
                await ws.write_message(json.dumps(msg, default=str))
                replied = idle = False
                while not (replied and idle):
                    reply = json.loads(await asyncio.wait_for(ws.read_message(), 30))
                    if reply.get("parent_header", {}).get("msg_id") != msg_id:
                        continue
                    kind = reply["header"]["msg_type"]
                    replied = replied or kind == "execute_reply"
                    idle = idle or (kind == "status" and reply["content"]["execution_state"] == "idle")

            for i in range(n_start):
                t0 = time.perf_counter()
                request = urllib.request.Request(
                    base + "/api/kernels", data=b"{}", method="POST", headers={"Content-Type": "application/json"}
                )
                kernel_id = json.loads(urllib.request.urlopen(request, timeout=60).read())["id"]
                ws = await websocket_connect("ws://127.0.0.1:{}/api/kernels/{}/channels".format(port, kernel_id))
                await execute(ws, "1+1")
                starts.append(time.perf_counter() - t0)
                if i == 0:
                    for j in range(n_exec + 5):
                        t1 = time.perf_counter()
                        await execute(ws, "1+1")
                        if j >= 5:
                            rtts.append(time.perf_counter() - t1)
                ws.close()
                urllib.request.urlopen(
                    urllib.request.Request(base + "/api/kernels/" + kernel_id, method="DELETE"), timeout=30
                ).read()
            return starts, rtts

        return asyncio.run(measure())
    finally:
        proc.terminate()
        proc.wait(30)


def cold_start_samples(n):
    from jupyter_client import KernelManager

    samples = []
    for _ in range(n):
        km = KernelManager(kernel_name="python3")
        t0 = time.perf_counter()
        km.start_kernel()
        client = km.client()
        client.start_channels()
        probes = wait_iopub_ready(client)
        samples.append(time.perf_counter() - t0)
        drain_replies(client, probes)
        client.stop_channels()
        km.shutdown_kernel(now=True)
    return samples


def direct_execute_samples(n):
    from jupyter_client import KernelManager

    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    client = km.client()
    client.start_channels()
    drain_replies(client, wait_iopub_ready(client))
    samples = []
    for _ in range(n + 5):
        t0 = time.perf_counter()
        msg_id = client.execute("1+1")
        reply = client.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == msg_id
        while True:
            msg = client.get_iopub_msg(timeout=30)
            if (
                msg["parent_header"].get("msg_id") == msg_id
                and msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"
            ):
                break
        samples.append(time.perf_counter() - t0)
    client.stop_channels()
    km.shutdown_kernel(now=True)
    return samples[5:]


# -- cellserver ------------------------------------------------------------------------


async def fork_to_ready_samples(reactor, n, sandboxed=False, layers=True):
    """Fork one kernel with the spawner's own classes and wait until it is ready; also its USS then.

    C{sandboxed}: with the spawner's default sandbox (as root: its own uid, a network
    namespace, a memory cgroup, rlimits, its own mount namespace, the seccomp filter),
    as a pool refill in a node runs; without it, as the cold-start baseline runs.
    C{layers=False}: the sandbox without the mount namespace and the seccomp filter,
    to measure what those two add.
    """
    import dataclasses

    import psutil
    import zmq

    from components.common.config import SpawnerConfig
    from components.worker.kernel import Kernel, KernelHost
    from components.worker.kernel_environment import KernelEnvironment
    from components.worker.master_client import start_fork_master
    from components.worker.sandbox_policy import SandboxPolicy

    config = SpawnerConfig()
    if not layers:
        config = dataclasses.replace(config, sandbox_filesystem=False, sandbox_seccomp=False)
    root = tempfile.mkdtemp(prefix="cellbench-")
    os.chmod(root, 0o711)
    policy = SandboxPolicy(config, hidden=(root,)) if sandboxed else None
    master = start_fork_master(reactor, KernelEnvironment(), config.preload, lambda pid, status, oom: None)
    await master.ready
    context = zmq.Context()
    samples, uss = [], []
    host = KernelHost(reactor, config, master, context, root, root, policy)
    try:
        for _ in range(n):
            kernel = Kernel(host, on_iopub=lambda k, m: None, on_dead=lambda k, r: None)
            t0 = time.perf_counter()
            await kernel.start()
            samples.append(time.perf_counter() - t0)
            uss.append(psutil.Process(kernel.pid).memory_full_info().uss / 2**20)
            kernel.shutdown("benchmark")
    finally:
        await master.stop()
        await host.disks.close()  # the root's mount, as a spawner's stop does (it stayed mounted in /tmp)
        if policy is not None:
            policy.close()  # its cgroup root and its uid range
        context.destroy(linger=0)
    return samples, uss


def bench_config(config):
    """The shipped config, with room for the density run (more kernels per spawner and per session)."""
    from tests.node import spawner_settings

    spawner_settings(config, max_kernels=128)
    for worker in config["workers"]:
        if worker["type"] == "container":
            worker["components"][0]["extra"]["roles"]["browser"]["max_kernels_per_session"] = 128


async def node_samples(reactor, n_acquire, n_execute, n_flood, oneshot_s, n_density):
    from twisted.internet import defer, task, threads

    from tests.node import Node
    from tests.wamp_client import connect

    tmp = tempfile.mkdtemp(prefix="cellbench-node-")
    node = Node(tmp, edit=bench_config).start()
    out = {}
    try:
        session = await connect(node.url, serializers=["msgpack"])
        lag_before = await threads.deferToThread(reactor_lag_buckets, node)

        async def pool_full():
            for _ in range(400):
                status = await session.call("cell.status")
                if status["spawners"][0]["pool_ready"] >= 4:
                    return
                await task.deferLater(reactor, 0.05, lambda: None)

        acquire = []
        for _ in range(
            n_acquire + 3
        ):  # the first 3 are the node's warm-up, not counted (as for the execute round trip)
            await pool_full()
            t0 = time.perf_counter()
            kernel = await session.call("cell.kernel.start")
            await session.call("cell.kernel.{}.execute".format(kernel["kernel_id"]), "1+1")
            acquire.append(time.perf_counter() - t0)
            await session.call("cell.kernel.{}.shutdown".format(kernel["kernel_id"]))
        del acquire[:3]
        await pool_full()
        kernel = await session.call("cell.kernel.start")
        uri = "cell.kernel.{}.execute".format(kernel["kernel_id"])
        rtt = []
        for i in range(n_execute + 5):
            t0 = time.perf_counter()
            result = await session.call(uri, "1+1")
            rtt.append(time.perf_counter() - t0)
            assert result["status"] == "ok"
        out["acquire"], out["rtt"] = acquire, rtt[5:]
        # The same round trip with 1,000 files in the kernel's working directory: what the spawner
        # learns of an execution's files is read off the reactor, so the directory's size should not show.
        await session.call(
            uri,
            "import os\nos.makedirs('many', exist_ok=True)\nfor i in range(1000): open('many/f%d' % i, 'w').write('x')",
        )
        rtt_files = []
        for i in range(n_execute + 5):
            t0 = time.perf_counter()
            result = await session.call(uri, "1+1")
            rtt_files.append(time.perf_counter() - t0)
            assert result["status"] == "ok"
        out["rtt_1000_files"] = rtt_files[5:]

        print("cellserver: output flood x{} through the router to an iopub subscriber ...".format(n_flood), flush=True)
        flood = []
        for _ in range(n_flood):
            text = []
            done = defer.Deferred()

            def on_event(msg, text=text, done=done):
                if msg["header"]["msg_type"] == "stream":
                    text.append(msg["content"]["text"])
                elif (
                    msg["header"]["msg_type"] == "status"
                    and msg["content"]["execution_state"] == "idle"
                    and msg["parent_header"].get("msg_type") == "execute_request"
                    and not done.called
                ):
                    done.callback(None)

            sub = await session.subscribe(on_event, kernel["iopub"])
            t0 = time.perf_counter()
            session.call(uri, FLOOD_CODE)
            await done
            flood.append(time.perf_counter() - t0)
            await sub.unsubscribe()
            check_flood_text("".join(text))
        out["flood"] = flood
        out["router_memory"] = await router_memory_under_floods(reactor, node, session, kernel, uri, n_flood)
        await session.call("cell.kernel.{}.shutdown".format(kernel["kernel_id"]))

        print(
            "cellserver: one-shot cell.execute('1+1'), 16 concurrent sessions for {} s ...".format(oneshot_s),
            flush=True,
        )
        callers = [await connect(node.url, serializers=["msgpack"]) for _ in range(16)]
        out["oneshot"] = await oneshot_load(callers, oneshot_s)
        for s in callers:
            s.leave()

        print("cellserver: density, {} idle kernels on one spawner ...".format(n_density), flush=True)
        import psutil

        await pool_full()
        pids = []
        for _ in range(n_density):
            k = await session.call("cell.kernel.start")
            r = await session.call("cell.kernel.{}.execute".format(k["kernel_id"]), "import os; os.getpid()")
            pids.append(int(r["outputs"][0]["data"]["text/plain"]))
        uss = [psutil.Process(pid).memory_full_info().uss / 2**20 for pid in pids]
        out["density"] = {"kernels": len(pids), "uss_mb": uss}
        # Everything above (acquisitions, executes, floods, 20 s of one-shots, the density's kernels) on one spawner.
        out["reactor_lag"] = reactor_lag_between(lag_before, await threads.deferToThread(reactor_lag_buckets, node))
        session.leave()
        return out
    finally:
        node.stop()


#: the spawner's reactor-lag histogram (components/worker/reactor_lag.py) and the aim of issue 20
LAG_FAMILY = "cell_spawner_reactor_lag_seconds"
LAG_AIM_S = 0.05


def reactor_lag_buckets(node):
    """{le: cumulative count} of the local spawner's reactor-lag histogram, from the node's /metrics page."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen("http://127.0.0.1:{}/metrics".format(node.port), timeout=15) as response:
        text = response.read().decode()
    buckets = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == LAG_FAMILY + "_bucket" and sample.labels.get("spawner") == "local":
                buckets[float(sample.labels["le"])] = sample.value
    return buckets


def reactor_lag_between(before, after):
    """What the probe saw between two readings: samples, how many past L{LAG_AIM_S}, the bucket bounding the worst."""
    delta = {le: after[le] - before.get(le, 0) for le in after}
    samples = delta[float("inf")]
    return {
        "samples": int(samples),
        "past_50ms": int(samples - delta.get(LAG_AIM_S, samples)),
        "max_at_most_s": min(le for le in delta if delta[le] == samples),
    }


def router_rss_mb(node):
    """Resident memory of the node's router worker process."""
    import psutil

    for child in psutil.Process(node.proc.pid).children(recursive=True):
        if "RouterController" in " ".join(child.cmdline()):
            return child.memory_info().rss / 2**20
    raise RuntimeError("no router worker found under the node")


async def router_memory_under_floods(reactor, node, session, kernel, uri, n_flood):
    """Router RSS around floods: with a subscriber that keeps up, then with a second one that stops reading.

    A stalled subscriber is the worst case for a router: what it cannot
    deliver queues in the router.  It is bounded by the per-execution output
    cap and by the router's auto-ping, which drops a peer that stops answering.
    """
    from twisted.internet import defer

    from tests.wamp_client import connect

    async def flood_once(kernel, uri):
        done = defer.Deferred()

        def on_event(msg):
            if (
                msg["header"]["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"
                and msg["parent_header"].get("msg_type") == "execute_request"
                and not done.called
            ):
                done.callback(None)

        sub = await session.subscribe(on_event, kernel["iopub"])
        session.call(uri, FLOOD_CODE)
        await done
        await sub.unsubscribe()

    before = router_rss_mb(node)
    for _ in range(max(3, n_flood)):
        await flood_once(kernel, uri)
    after_reading = router_rss_mb(node)
    # The stalled subscriber starts a kernel and subscribes; our session then takes the kernel over
    # with its resume token (the subscription stays) and floods it.
    stalled = await connect(node.url, serializers=["msgpack"])
    shared = await stalled.call("cell.kernel.start")
    await stalled.subscribe(lambda msg: None, shared["iopub"])
    await session.call("cell.kernel.resume", shared["kernel_id"], shared["resume_token"])
    stalled._transport.transport.pauseProducing()  # stops reading its socket, stays connected
    peak = after_reading
    for _ in range(5):
        await flood_once(shared, "cell.kernel.{}.execute".format(shared["kernel_id"]))
        peak = max(peak, router_rss_mb(node))
    await session.call("cell.kernel.{}.shutdown".format(shared["kernel_id"]))
    return {
        "before_mb": before,
        "after_reading_floods_mb": after_reading,
        "peak_with_stalled_subscriber_mb": peak,
        "floods_with_stalled_subscriber": 5,
    }


def plot(measured, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [
        (name, [x * 1000 for x in measured[key]])
        for name, key in (
            ("pool acquisition", "acquire_samples"),
            ("execute RTT (router)", "rtt_samples"),
            ("direct execute", "direct_samples"),
            ("one-shot (16 callers)", "oneshot_samples"),
        )
        if measured.get(key)
    ]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.boxplot([v for _, v in series], orientation="horizontal", showfliers=True)
    ax.set_yticks(range(1, len(series) + 1), [n for n, _ in series])
    ax.set_xscale("log")
    ax.set_xlabel("latency, ms (log scale)")
    ax.set_title("cellserver latency distributions")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    args = parser.parse_args(argv)
    n_cold, n_exec, n_fork, n_acq = (3, 50, 5, 10) if args.quick else (20, 300, 15, 30)
    n_flood, oneshot_s, n_density = (1, 5, 10) if args.quick else (3, 20, 100)
    record = Record(os.path.join(RESULTS, "results.json"))
    samples = {}

    with record.part("baseline: cold KernelManager start"):
        print("baseline: cold jupyter_client KernelManager start x{} ...".format(n_cold), flush=True)
        record.add("cold_start", summary(cold_start_samples(n_cold)))
    with record.part("baseline: direct execute"):
        print("baseline: direct jupyter_client execute('1+1') x{} ...".format(n_exec), flush=True)
        samples["direct_samples"] = direct_execute_samples(n_exec)
        record.add("direct_execute", summary(samples["direct_samples"]))
    with record.part("baseline: direct output flood"):
        print("baseline: direct jupyter_client iopub reader, output flood x{} ...".format(n_flood), flush=True)
        record.add("direct_flood", summary(direct_flood_seconds(n_flood)))
    with record.part("baseline: cold kernel USS"):
        print("baseline: USS of a cold kernel with the preload list ...", flush=True)
        record.add("cold_kernel_uss_mb", cold_kernel_uss_mb())
    with record.part("baseline: Kernel Gateway"):
        print("baseline: Jupyter Kernel Gateway, REST start + WebSocket execute ...", flush=True)
        kg = kernel_gateway_samples(n_cold, n_exec)
        if kg is not None:
            record.add("kg_start", summary(kg[0]))
            record.add("kg_execute", summary(kg[1]))
    with record.part("Jupyter face vs Kernel Gateway"):
        print("Jupyter face (/jupyter) vs Kernel Gateway, the same clients ...", flush=True)
        face = jupyter_face.summarise(jupyter_face.measure(args.quick))
        if face is not None:
            record.add("jupyter_face", face)

    from twisted.internet import defer, task
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        textFileLogObserver,
    )

    globalLogBeginner.beginLoggingTo(
        [FilteringLogObserver(textFileLogObserver(sys.stderr), [LogLevelFilterPredicate(LogLevel.warn)])],
        redirectStandardIO=False,
    )

    def run(reactor):
        async def go():
            with record.part("cellserver: fork-to-ready"):
                await _fork_figures(reactor, record, n_fork)
            with record.part("cellserver: through a real node"):
                print(
                    "cellserver: pool acquisition x{}, execute round trip x{} through a real node ...".format(
                        n_acq, n_exec
                    ),
                    flush=True,
                )
                out = await node_samples(reactor, n_acq, n_exec, n_flood, oneshot_s, n_density)
                _node_figures(record, out, samples)
            _report(record, samples)
            if record.failed:
                raise SystemExit("bench: {} part(s) failed: {}".format(len(record.failed), ", ".join(record.failed)))

        return defer.ensureDeferred(go())

    task.react(run)  # exits the process once run() has written the results


async def _fork_figures(reactor, record, n_fork):
    print("cellserver: fork-to-ready x{} ...".format(n_fork), flush=True)
    samples, _ = await fork_to_ready_samples(reactor, n_fork)
    record.add("fork", summary(samples))
    if os.geteuid() == 0:
        print("cellserver: fork-to-ready x{} with the sandbox minus mount namespace and seccomp ...".format(n_fork))
        samples, uss = await fork_to_ready_samples(reactor, n_fork, sandboxed=True, layers=False)
        record.add("fork_sandboxed_without_layers", dict(summary(samples), uss_p50_mb=pct(uss, 50)))
        print("cellserver: fork-to-ready x{} with the default sandbox ...".format(n_fork), flush=True)
        samples, uss = await fork_to_ready_samples(reactor, n_fork, sandboxed=True)
        record.add("fork_sandboxed", dict(summary(samples), uss_p50_mb=pct(uss, 50)))


def _node_figures(record, out, samples):
    record.add("acquire", summary(out["acquire"]))
    record.add("rtt", summary(out["rtt"]))
    record.add("rtt_1000_files", summary(out["rtt_1000_files"]))
    record.add("flood", summary(out["flood"]))
    record.add("router_memory", out["router_memory"])
    oneshot = out["oneshot"]
    record.add(
        "oneshot",
        dict(
            summary(oneshot["latencies"]),
            per_s=oneshot["per_s"],
            errors=oneshot["errors"],
            first_error=oneshot["first_error"],
            p99_ms=pct(oneshot["latencies"], 99) * 1000,
        ),
    )
    uss = out["density"]["uss_mb"]
    record.add(
        "density",
        {
            "kernels": len(uss),
            "uss_p50_mb": pct(uss, 50),
            "uss_max_mb": max(uss),
            "cold_kernel_uss_mb": record.figures.get("cold_kernel_uss_mb", float("nan")),
        },
    )
    record.add("reactor_lag", out["reactor_lag"])
    samples.update(acquire_samples=out["acquire"], rtt_samples=out["rtt"], oneshot_samples=oneshot["latencies"])


#: the comparison table's rows: (ours, its key, the baseline, its key); a row is left out if a figure is missing
ROWS = (
    (
        "kernel acquisition from warm pool (start -> first execute reply)",
        "acquire",
        "cold KernelManager start",
        "cold_start",
    ),
    ("fork-to-ready of one kernel", "fork", "cold KernelManager start", "cold_start"),
    (
        "fork-to-ready, default sandbox (own uid, network and mount namespaces, memory cgroup, seccomp)",
        "fork_sandboxed",
        "cold KernelManager start (no sandbox)",
        "cold_start",
    ),
    (
        "fork-to-ready, default sandbox",
        "fork_sandboxed",
        "the same without mount namespace and seccomp",
        "fork_sandboxed_without_layers",
    ),
    ("execute('1+1') round trip through the router", "rtt", "direct jupyter_client execute", "direct_execute"),
    ("execute('1+1'), 1,000 files in the kernel's directory", "rtt_1000_files", "the same, empty directory", "rtt"),
    (
        "output flood: 100000 printed lines, all received in order",
        "flood",
        "direct jupyter_client iopub reader",
        "direct_flood",
    ),
    (
        "kernel acquisition from warm pool (start -> first execute reply)",
        "acquire",
        "Kernel Gateway: POST /api/kernels -> first execute reply",
        "kg_start",
    ),
    ("execute('1+1') round trip through the router", "rtt", "Kernel Gateway WebSocket execute", "kg_execute"),
)


def _report(record, samples):
    """The tables of what was measured (results.md), the plot, and results.json once more."""
    measured = record.figures
    rows = [
        (name, measured[ours], base_name, measured[base])
        for name, ours, base_name, base in ROWS
        if ours in measured and base in measured
    ]
    text = table(rows)
    oneshot = measured.get("oneshot")
    if oneshot is not None:
        text += "\n\n| one-shot `cell.execute('1+1')`, 16 concurrent sessions | value |\n|---|---|\n"
        text += "| throughput | {:.1f} /s |\n| p50 / p95 / p99 latency | {:.0f} / {:.0f} / {:.0f} ms |\n| errors | {} |\n".format(
            oneshot["per_s"], oneshot["p50_ms"], oneshot["p95_ms"], oneshot["p99_ms"], oneshot["errors"]
        )
    density = measured.get("density")
    if density is not None:
        text += "\n| density | value |\n|---|---|\n| idle kernels on one spawner | {} |\n| USS per forked kernel, p50 / max | {:.1f} / {:.1f} MB |\n| USS of a cold kernel with the same preload (baseline) | {:.1f} MB |\n".format(
            density["kernels"], density["uss_p50_mb"], density["uss_max_mb"], density["cold_kernel_uss_mb"]
        )
        if "fork_sandboxed" in measured:
            text += "| USS of a just-ready kernel, default sandbox / without mount namespace and seccomp | {:.1f} / {:.1f} MB |\n".format(
                measured["fork_sandboxed"]["uss_p50_mb"], measured["fork_sandboxed_without_layers"]["uss_p50_mb"]
            )
    memory = measured.get("router_memory")
    if memory is not None:
        text += "\n| router memory (RSS of the router worker) | value |\n|---|---|\n| before any flood | {:.1f} MB |\n| after 3 floods, subscriber reading | {:.1f} MB |\n| peak over {} more floods with a second subscriber that stopped reading | {:.1f} MB |\n".format(
            memory["before_mb"],
            memory["after_reading_floods_mb"],
            memory["floods_with_stalled_subscriber"],
            memory["peak_with_stalled_subscriber_mb"],
        )
    lag = measured.get("reactor_lag")
    if lag is not None:
        text += "\n| the spawner's reactor lag during the node's part (probe every 50 ms) | value |\n|---|---|\n| probe samples | {} |\n| samples later than 50 ms (the aim: 0) | {} ({:.2%}) |\n| worst lag, at most | {:.0f} ms |\n".format(
            lag["samples"], lag["past_50ms"], lag["past_50ms"] / max(1, lag["samples"]), lag["max_at_most_s"] * 1000
        )
    if "jupyter_face" in measured:
        text += "\n" + jupyter_face.report(measured["jupyter_face"]) + "\n"
    if record.failed:
        text += "\n| part that failed | why |\n|---|---|\n" + "".join(
            "| {} | {} |\n".format(name, why.replace("|", "/").replace("\n", " "))
            for name, why in record.failed.items()
        )
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "results.md"), "w") as f:
        f.write(text + "\n")
    record.write()
    with record.part("the latency plot"):
        plot(samples, os.path.join(RESULTS, "latency.png"))
    print(text)


if __name__ == "__main__":
    main()
