"""What the JavaScript client adds to raw autobahn.js: bench/clients_js.mjs against a node of its own.

    make bench-clients-js       # or: python -m bench.clients_js [--rounds 10 --per-round 40 --oneshots 200]

The execute round trip (``kernel.run("1+1")`` against ``execute("1+1")``, and the same with live outputs) and
one-shot throughput (``client.run`` against ``cell.execute``, 8 at a time), both sides in one Node.js process,
alternating in rounds.  The issue's target: the client adds at most 10 %.  Printed and written to
``bench/results/clients_js.json``.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

from bench.figures import RESULTS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = 0.10


def oneshots_unlimited(config):
    """Both sides' one-shots go through one session: lift its rate (900 a minute, bursts of 225) past the bench's."""
    for worker in config["workers"]:
        if worker["type"] == "container":
            for role in worker["components"][0]["extra"]["roles"].values():
                role.update(max_oneshots_per_minute=10**7)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=40)
    parser.add_argument("--oneshots", type=int, default=200)
    parser.add_argument("--out", default=os.path.join(RESULTS, "clients_js.json"))
    options = parser.parse_args(argv)
    if not os.path.isdir(os.path.join(ROOT, "clients", "js", "node_modules", "autobahn")):
        sys.exit("clients/js's packages are missing: run make bench-clients-js (it installs them)")

    from tests.node import Node  # the quotas per address lifted: both sides run hundreds of one-shots a minute

    node = Node(tempfile.mkdtemp(prefix="cellbench-clientsjs-"), edit=oneshots_unlimited).start()
    try:
        proc = subprocess.run(
            ["node", os.path.join(ROOT, "bench", "clients_js.mjs"), node.url]
            + ["--rounds", str(options.rounds), "--per-round", str(options.per_round)]
            + ["--oneshots", str(options.oneshots)],
            capture_output=True,
            text=True,
            timeout=1800,
        )
    finally:
        node.stop()
    if proc.returncode != 0:
        sys.exit("bench/clients_js.mjs failed:\n" + proc.stdout + proc.stderr)
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    os.makedirs(os.path.dirname(options.out), exist_ok=True)
    with open(options.out, "w") as f:
        json.dump(figures, f, indent=2)
    for name in ("execute", "execute_live"):
        e = figures[name]
        print(
            "JS client {:<13} p50 {:.2f} ms vs raw autobahn.js {:.2f} ms: {:+.1%} (mean {:+.1%})".format(
                name, e["client_p50_ms"], e["raw_p50_ms"], e["added_p50"], e["added_mean"]
            )
        )
    t = figures["oneshot_throughput"]
    print(
        "JS client one-shots      {:.1f}/s vs raw {:.1f}/s ({} at a time): {:+.1%} lost".format(
            t["client_per_s"], t["raw_per_s"], t["concurrency"], t["lost"]
        )
    )
    worst = max(figures["execute"]["added_p50"], figures["execute_live"]["added_p50"], t["lost"])
    if worst > TARGET:
        print("over the target: the client adds {:.1%} (at most {:.0%})".format(worst, TARGET))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
