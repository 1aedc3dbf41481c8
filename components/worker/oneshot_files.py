"""The inline files of a one-shot run in a kernel: written before it, read back after it, off the reactor.

A one-shot's C{files} and the files it returns add up to C{max_inline_file_bytes}
(8 MiB by default): writing or reading them on the reactor held every other
kernel of the spawner, so both go through the spawner's L{BlockingWork}.
"""

from twisted.internet import defer


class OneshotFiles:
    """Puts a one-shot's input files into its kernel's directory and fills in the files it made.

    @param blocking: runs C{f(*args)} off the reactor, returning a Deferred (L{components.worker.blocking}).
    @param budget: C{max_inline_file_bytes}: what comes back inline in all; larger files are listed, marked truncated.
    """

    def __init__(self, blocking, budget):
        self._blocking = blocking
        self._budget = budget

    def put(self, kernel, files):
        """Write C{files} ({path: bytes or str}) into C{kernel}'s directory, in a thread."""
        if not files:
            return defer.succeed(None)
        return self._blocking(_write_all, kernel.files, dict(files))

    def collect(self, kernel, result):
        """Fill in C{result["files"]} entries' C{data} (or C{truncated}) from C{kernel}'s directory, in a thread."""
        entries = result.get("files", [])
        if not entries:
            return defer.succeed(result)
        d = self._blocking(_read_all, kernel.files, entries, self._budget)
        d.addCallback(lambda _: result)
        return d


def _write_all(files, inputs):
    """In a thread: each input file written from the start."""
    for path, data in inputs.items():
        files.write(path, data.encode() if isinstance(data, str) else data, 0)


def _read_all(files, entries, budget):
    """In a thread: each made file's bytes while the budget lasts; the others marked truncated."""
    for entry in entries:
        if entry["size"] <= budget:
            f, _ = files.open_read(entry["name"])
            with f:
                entry["data"] = f.read()
            budget -= entry["size"]
        else:
            entry["truncated"] = True
