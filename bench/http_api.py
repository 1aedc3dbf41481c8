"""The HTTP API's one-shot next to ``cell.execute`` over WAMP, on one node, in one run.

    python -m bench.http_api [--rounds 10] [--per-round 50]

``POST /v1/execute {"code": "1+1"}`` (JSON answer, one keep-alive connection, http.client) and
``cell.execute("1+1")`` (one anonymous WebSocket session, msgpack) in alternating rounds, so that both meet the
same machine load; the first round of each is warm-up and not counted.  Prints each one's p50 and p99 and the
difference of the p50s (the target: the HTTP one within 2 ms of cell.execute's).  The node's per-session one-shot
rate is lifted (the bench runs far more than a browser may in a minute).
"""

import argparse
import http.client
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.figures import pct  # noqa: E402


def unlimited(config):
    for worker in config["workers"]:
        if worker["type"] == "container":
            for role in worker["components"][0]["extra"]["roles"].values():
                role["max_oneshots_per_minute"] = 10**7


def http_round(port, n, conn):
    body = json.dumps({"code": "1+1"}).encode()
    headers = {"Content-Type": "application/json"}
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", "/v1/execute", body, headers)
        response = conn.getresponse()
        answer = response.read()
        samples.append(time.perf_counter() - t0)
        assert response.status == 200, answer
        assert json.loads(answer)["outputs"][0]["data"]["text/plain"] == "2", answer
    return samples


async def wamp_round(session, n):
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        result = await session.call("cell.execute", "1+1")
        samples.append(time.perf_counter() - t0)
        assert result["outputs"][0]["data"]["text/plain"] == "2", result
    return samples


async def measure(rounds, per_round):
    from twisted.internet import threads

    from tests.node import Node
    from tests.wamp_client import connect

    node = Node(tempfile.mkdtemp(prefix="cellbench-http-"), edit=unlimited).start()
    try:
        session = await connect(node.url, serializers=["msgpack"])
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=60)
        found = {"http": [], "wamp": []}
        for i in range(rounds + 1):
            wamp = await wamp_round(session, per_round)
            # in a thread: the reactor keeps answering the WebSocket's pings meanwhile
            over_http = await threads.deferToThread(http_round, node.port, per_round, conn)
            if i:  # the first round warms both up
                found["wamp"] += wamp
                found["http"] += over_http
        conn.close()
        session.leave()
        return found
    finally:
        node.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=50)
    args = parser.parse_args(argv)
    from twisted.internet import defer, task

    def run(reactor):
        async def go():
            found = await measure(args.rounds, args.per_round)
            p50 = {}
            for name, label in (("wamp", "cell.execute over WAMP"), ("http", "POST /v1/execute (JSON)")):
                samples = found[name]
                p50[name] = 1000 * pct(samples, 50)
                print(
                    "{:28s} n={:5d}  p50 {:6.2f} ms  p99 {:6.2f} ms".format(
                        label, len(samples), p50[name], 1000 * pct(samples, 99)
                    )
                )
            difference = p50["http"] - p50["wamp"]
            print("HTTP p50 - WAMP p50: {:+.2f} ms (target: within 2 ms)".format(difference))

        return defer.ensureDeferred(go())

    task.react(run)


if __name__ == "__main__":
    main()
