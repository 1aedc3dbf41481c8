"""One-shot throughput with and without the one-shot children's containment, measured in the same run.

``python -m bench.oneshots [--seconds 15] [--sessions 16]`` (as root, as the sandbox needs): two nodes in turn, each
loaded by 16 anonymous sessions calling ``cell.execute("1+1")`` in a loop:

- **contained** (the shipped config): each child in a memory cgroup of its uid's, its own network and IPC
  namespaces, killed until its cgroup is empty when the call ends;
- **baseline**: the same node with the layers that are per child turned off (``allow_network: true`` keeps the
  children in the template's network, ``memory_limit_mb: 0`` takes the cgroups away); the IPC namespace and the
  rest of the sandbox stay.

It prints one-shots per second and latency percentiles for both, and their ratio: what containment costs.
"""

import argparse
import tempfile

from bench.figures import oneshot_load, pct


def layers_off(config):
    from tests.node import spawner_settings

    spawner_settings(config, allow_network=True, memory_limit_mb=0)


async def throughput(edit, seconds, sessions):
    from tests.node import Node
    from tests.wamp_client import connect

    node = Node(tempfile.mkdtemp(prefix="cellbench-oneshots-"), edit=edit).start()
    try:
        callers = [await connect(node.url, serializers=["msgpack"]) for _ in range(sessions)]
        for s in callers:  # warm: every session's first call, and the template's first children
            await s.call("cell.execute", "1+1")
        load = await oneshot_load(callers, seconds)
        for s in callers:
            s.leave()
        return dict(load, p50_ms=1000 * pct(load["latencies"], 50), p99_ms=1000 * pct(load["latencies"], 99))
    finally:
        node.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--sessions", type=int, default=16)
    args = parser.parse_args(argv)
    from twisted.internet import defer, task

    def run(reactor):
        async def go():
            baseline = await throughput(layers_off, args.seconds, args.sessions)
            contained = await throughput(None, args.seconds, args.sessions)
            for name, r in (("baseline (no per-child netns, no cgroup)", baseline), ("contained (shipped)", contained)):
                print(
                    "{:42s} {:7.1f} one-shots/s  p50 {:6.1f} ms  p99 {:6.1f} ms  errors {}".format(
                        name, r["per_s"], r["p50_ms"], r["p99_ms"], r["errors"]
                    )
                )
                if r["first_error"]:
                    print("  first error:", r["first_error"])
            print(
                "contained / baseline: throughput x{:.2f}, p50 x{:.2f}, p99 x{:.2f}".format(
                    contained["per_s"] / baseline["per_s"],
                    contained["p50_ms"] / baseline["p50_ms"],
                    contained["p99_ms"] / baseline["p99_ms"],
                )
            )

        return defer.ensureDeferred(go())

    task.react(run)


if __name__ == "__main__":
    main()
