"""What every bench shares: percentiles, summaries, the comparison table, and a record written as it grows.

Apart from L{bench.run} so that the benches import it and not each other (bench.run and bench.jupyter_face
imported one another).  A L{Record} prints each figure the moment it is measured and rewrites the results file
after each, so a part that fails late (once, after 10 minutes of measuring) loses nothing measured before it.
"""

import contextlib
import json
import os
import statistics
import time
import traceback

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def pct(samples, p):
    ordered = sorted(samples)
    k = (len(ordered) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(samples):
    return {
        "n": len(samples),
        "p50_ms": pct(samples, 50) * 1000,
        "p95_ms": pct(samples, 95) * 1000,
        "mean_ms": statistics.mean(samples) * 1000,
    }


def table(rows):
    lines = [
        "| measure | p50 ms | p95 ms | n | baseline | baseline p50 ms | ratio (baseline p50 / ours p50) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, ours, base_name, base in rows:
        ratio = base["p50_ms"] / ours["p50_ms"]
        lines.append(
            "| {} | {:.2f} | {:.2f} | {} | {} | {:.2f} | {:.2f}x |".format(
                name, ours["p50_ms"], ours["p95_ms"], ours["n"], base_name, base["p50_ms"], ratio
            )
        )
    return "\n".join(lines)


def describe(value):
    """One line for a figure: a summary's p50/p95/n, or the value itself."""
    if isinstance(value, dict) and "p50_ms" in value and "n" in value:
        return "p50 {:.2f} ms, p95 {:.2f} ms, n {}".format(value["p50_ms"], value["p95_ms"], value["n"])
    return json.dumps(value, default=str)[:400]


class Record:
    """The figures of one bench run, printed and written (C{path}, JSON) as each comes; parts that failed too."""

    def __init__(self, path):
        self.path = path
        self.figures = {}
        self.failed = {}  # part -> what went wrong

    def add(self, key, value):
        self.figures[key] = value
        print("  {}: {}".format(key, describe(value)), flush=True)
        self.write()
        return value

    @contextlib.contextmanager
    def part(self, name):
        """Run one part of the bench: if it fails, say so, keep what was measured, and go on with the next."""
        try:
            yield
        except Exception as exc:
            traceback.print_exc()
            self.failed[name] = "{}: {}".format(type(exc).__name__, exc)[:1000]
            print("  {} FAILED: {}; the figures measured so far are kept".format(name, self.failed[name]), flush=True)
            self.write()

    def write(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path + ".tmp", "w") as f:
            json.dump(dict(self.figures, failed_parts=self.failed), f, indent=2, default=str)
        os.replace(self.path + ".tmp", self.path)


async def oneshot_load(callers, seconds, code="1+1", expected="2"):
    """Every session of C{callers} calls ``cell.execute(code)`` in a loop for C{seconds}: one-shots per second,
    each call's latency, and the errors (counted and shown: a bench reports, it does not stop)."""
    from twisted.internet import defer

    latencies, errors = [], []
    deadline = time.perf_counter() + seconds

    async def caller(session):
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                result = await session.call("cell.execute", code)
                assert result["outputs"][0]["data"]["text/plain"] == expected
                latencies.append(time.perf_counter() - t0)
            except Exception as exc:
                errors.append(repr(exc)[:200])

    started = time.perf_counter()
    await defer.gatherResults([defer.ensureDeferred(caller(s)) for s in callers])
    elapsed = time.perf_counter() - started
    return {
        "per_s": len(latencies) / elapsed,
        "latencies": latencies,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }
