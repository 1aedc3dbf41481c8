"""What the client libraries add, beside the same work done with raw autobahn in the same run (issue 23).

    make bench-clients      # or: python -m bench.clients [--quick]

Python (``cellclient``, clients/python): the kernel execute round trip (``execute("1+1")``, p50 and p90, sequential)
and one-shot throughput (``cell.execute`` with several in flight, runs per second), each through
:class:`cellclient.AsyncClient` (and the blocking :class:`cellclient.Client` for the round trip) against a raw
autobahn (asyncio) session on the same node, the two interleaved in rounds so that drift of the machine hits both.
The target: the client adds at most 10 % (ratio <= 1.10 for the round trip, >= 0.91 for throughput).

cellclient runs autobahn on asyncio, so this bench is a process of its own (txaio serves one framework a process).
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time

import txaio

txaio.use_asyncio()

from autobahn.asyncio.wamp import ApplicationSession  # noqa: E402
from autobahn.asyncio.websocket import WampWebSocketClientFactory  # noqa: E402
from autobahn.wamp.serializer import MsgPackSerializer  # noqa: E402
from autobahn.wamp.types import ComponentConfig  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


async def raw_session(url):
    """A joined autobahn (asyncio) session: what a program without the client library writes."""
    from urllib.parse import urlparse

    loop = asyncio.get_running_loop()
    joined = loop.create_future()

    class Session(ApplicationSession):
        def onJoin(self, details):
            joined.set_result(self)

    parsed = urlparse(url)
    factory = WampWebSocketClientFactory(
        lambda: Session(ComponentConfig(realm="cell")), url=url, serializers=[MsgPackSerializer()]
    )
    await loop.create_connection(factory, parsed.hostname, parsed.port)
    return await asyncio.wait_for(joined, 15)


def oneshots_unlimited(config):
    """Each side's one-shots go through one session: lift the session's rate (900 a minute) past the bench's."""
    for worker in config["workers"]:
        if worker["type"] == "container":
            for role in worker["components"][0]["extra"]["roles"].values():
                role.update(max_oneshots_per_minute=10**7)


def pctl(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def round_trips(raw, client, sync_client, rounds, per_round):
    """Interleaved rounds of sequential executes: raw, AsyncClient, Client; times in ms."""
    raw_kernel = await raw.call("cell.kernel.start")
    raw_uri = "cell.kernel.{}.execute".format(raw_kernel["kernel_id"])
    kernel = await client.start_kernel()
    sync_kernel = await asyncio.to_thread(sync_client.kernel)
    times = {"raw": [], "client": [], "sync": []}
    for _ in range(3):  # warm up each path
        await raw.call(raw_uri, "1+1")
        await kernel.run("1+1")
        await asyncio.to_thread(sync_kernel.run, "1+1")

    def sync_batch():
        out = []
        for _ in range(per_round):
            t = time.perf_counter()
            sync_kernel.run("1+1")
            out.append((time.perf_counter() - t) * 1000)
        return out

    for _ in range(rounds):
        for _ in range(per_round):
            t = time.perf_counter()
            await raw.call(raw_uri, "1+1")
            times["raw"].append((time.perf_counter() - t) * 1000)
        for _ in range(per_round):
            t = time.perf_counter()
            ex = await kernel.run("1+1")
            times["client"].append((time.perf_counter() - t) * 1000)
            assert ex.text == "2"
        times["sync"].extend(await asyncio.to_thread(sync_batch))
    await raw.call("cell.kernel.{}.shutdown".format(raw_kernel["kernel_id"]))
    await kernel.shutdown()
    await asyncio.to_thread(sync_kernel.shutdown)
    return times


async def oneshot_rate(call_one, seconds, in_flight):
    """One-shots completed per second with C{in_flight} at once for C{seconds}."""
    deadline = time.perf_counter() + seconds
    done = 0

    async def worker():
        nonlocal done
        while time.perf_counter() < deadline:
            await call_one()
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return done / (time.perf_counter() - start)


async def python_figures(url, quick):
    from cellclient import AsyncClient, Client

    raw = await raw_session(url)
    client = await AsyncClient(url).open()
    sync_client = await asyncio.to_thread(Client, url)
    try:
        rounds, per_round = (3, 30) if quick else (6, 60)
        times = await round_trips(raw, client, sync_client, rounds, per_round)
        seconds, in_flight = (3, 4) if quick else (6, 4)

        async def raw_once():
            result = await raw.call("cell.execute", "1+1")
            assert result["status"] == "ok"

        async def client_once():
            ex = await client.run("1+1")
            assert ex.status == "ok"

        await raw_once()
        await client_once()
        rates = {"raw": [], "client": []}
        for _ in range(2 if quick else 3):
            rates["raw"].append(await oneshot_rate(raw_once, seconds, in_flight))
            rates["client"].append(await oneshot_rate(client_once, seconds, in_flight))
    finally:
        raw.leave()
        await client.close()
        await asyncio.to_thread(sync_client.close)
    figures = {
        "execute_p50_ms": {k: statistics.median(v) for k, v in times.items()},
        "execute_p90_ms": {k: pctl(v, 0.9) for k, v in times.items()},
        "oneshots_per_s": {k: statistics.median(v) for k, v in rates.items()},
        "samples": {k: len(v) for k, v in times.items()},
    }
    p50 = figures["execute_p50_ms"]
    figures["ratios"] = {
        "execute_p50_client_over_raw": p50["client"] / p50["raw"],
        "execute_p50_sync_client_over_raw": p50["sync"] / p50["raw"],
        "oneshot_throughput_client_over_raw": figures["oneshots_per_s"]["client"] / figures["oneshots_per_s"]["raw"],
    }
    return figures


def print_python(figures):
    p50, p90, rate, ratios = (
        figures["execute_p50_ms"],
        figures["execute_p90_ms"],
        figures["oneshots_per_s"],
        figures["ratios"],
    )
    print("Python client (cellclient) against raw autobahn (asyncio), same node, interleaved:")
    print("  execute('1+1') round trip   raw p50 {:.2f} ms (p90 {:.2f})".format(p50["raw"], p90["raw"]))
    print(
        "                              AsyncClient p50 {:.2f} ms (p90 {:.2f}): x{:.3f}".format(
            p50["client"], p90["client"], ratios["execute_p50_client_over_raw"]
        )
    )
    print(
        "                              Client (sync) p50 {:.2f} ms (p90 {:.2f}): x{:.3f}".format(
            p50["sync"], p90["sync"], ratios["execute_p50_sync_client_over_raw"]
        )
    )
    print(
        "  one-shots per second        raw {:.1f}, AsyncClient {:.1f}: x{:.3f}".format(
            rate["raw"], rate["client"], ratios["oneshot_throughput_client_over_raw"]
        )
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    parser.add_argument("--url", help="a running node (default: start one)")
    args = parser.parse_args(argv)
    node = None
    if args.url is None:
        from tests.node import Node

        node = Node(tempfile.mkdtemp(prefix="bench-clients-"), edit=oneshots_unlimited).start()
    url = args.url or node.url
    try:
        figures = asyncio.run(python_figures(url, args.quick))
    finally:
        if node is not None:
            node.stop()
    print_python(figures)
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, "clients-python-{}.json".format(time.strftime("%Y%m%d-%H%M%S")))
    with open(path, "w") as f:
        json.dump(figures, f, indent=2)
    ratios = figures["ratios"]
    ok = ratios["execute_p50_client_over_raw"] <= 1.10 and ratios["oneshot_throughput_client_over_raw"] >= 1 / 1.10
    print("  target (the client adds <= 10 %):", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
