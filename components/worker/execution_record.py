"""What each of a kernel's executions produced, kept by the spawner so that a caller who lost its connection gets it.

A page closed or reloaded, a dropped connection, a router restarted: the
code runs on, and what it printed meanwhile used to be lost with the call.
The spawner, which outlives all of those, keeps every execution's
progressive items (outputs, ``clear_output``, ``update_display_data``,
``input_request``) numbered from 0, and the execution itself numbered from 1
per kernel.  ``cell.kernel.<id>.attach`` replays what a caller missed, from
the item it names, then passes on the rest live and ends with the
execution's result: in order, nothing twice (the replay and the switch to
live items happen in one turn of the reactor).

Bounds: the last L{SpawnerConfig.record_executions} executions and
L{SpawnerConfig.record_bytes} of their outputs per kernel (one execution's
outputs are already capped at ``max_output_bytes``); past them the oldest
finished executions are forgotten, and attaching to one says so.  At most
L{MAX_LISTENERS} callers follow one execution at once.
"""

import collections

from twisted.internet import defer

from components.common import errors
from components.worker.executions import send_progress
from components.worker.outputs import output_size

#: callers following one execution at once (each is sent every item: a bound on the work one caller can cause)
MAX_LISTENERS = 8
#: what one kept item costs beyond its text (the dict, its keys), counted against record_bytes
ITEM_OVERHEAD = 200


class RecordedExecution:
    """One execution's items, its end, and who follows it."""

    def __init__(self, number, tag):
        self.number = number
        self.tag = tag
        self.items = []
        self.bytes = 0
        self.result = None  # the result dict, once it ended well
        self.failure = None  # the Failure it ended with (the kernel died or was restarted under it)
        self._listeners = []  # (progress, Deferred of the end)

    @property
    def ended(self):
        return self.result is not None or self.failure is not None

    def status(self, running):
        if self.result is not None:
            return self.result.get("status", "error")
        if self.failure is not None:
            return "died"
        return "running" if running else "queued"

    def add(self, item):
        seq = len(self.items)
        self.items.append(item)
        self.bytes += ITEM_OVERHEAD + (output_size(item) if _is_output(item) else len(str(item)))
        gone = []
        for progress, d in self._listeners:
            message = {"execution": self.number, "seq": seq, "next": seq + 1, "output": item}
            if progress is not None and not send_progress(progress, message):
                gone.append(d)
        for d in gone:
            self._unfollow(d)

    def end(self, result=None, failure=None):
        self.result, self.failure = result, failure
        listeners, self._listeners = self._listeners, []
        for _, d in listeners:
            self._answer(d)

    def follow(self, since, progress):
        """Replay the items from C{since} (merged runs of one stream), then follow live: a Deferred of the end."""
        if not self.ended and len(self._listeners) >= MAX_LISTENERS:
            raise errors.Capacity(
                "execution {} already has {} callers attached, the most it takes".format(self.number, MAX_LISTENERS),
                limit=MAX_LISTENERS,
            )
        for start, end, item in merged(self.items, since):
            if progress is not None:
                progress({"execution": self.number, "seq": start, "next": end, "output": item})  # raises: no follower
        d = defer.Deferred(canceller=lambda d: self._unfollow(d))
        if self.ended:
            self._answer(d)
        else:
            self._listeners.append((progress, d))
        return d

    def _unfollow(self, d):
        self._listeners = [(p, other) for p, other in self._listeners if other is not d]

    def _answer(self, d):
        if self.failure is not None:
            d.errback(self.failure.value)  # the kernel died or was restarted: said as the execute's caller heard it
        else:
            d.callback(dict(self.result, next=len(self.items)))


class ExecutionRecord:
    """A kernel's kept executions, oldest first; see the module docstring."""

    def __init__(self, max_executions, max_bytes):
        self._max_executions = max(1, max_executions)
        self._max_bytes = max_bytes
        self._executions = collections.OrderedDict()  # number -> RecordedExecution
        self._numbers = 0

    def begin(self, tag=None):
        """A new execution (its number is the next): what its items and its end go to."""
        self._numbers += 1
        entry = RecordedExecution(self._numbers, tag)
        self._executions[entry.number] = entry
        self._trim()
        return entry

    def track(self, entry, deferred):
        """Record the end of the execution whose result C{deferred} fires with (which gains its number and tag)."""

        def succeeded(result):
            result["execution"] = entry.number
            if entry.tag is not None:
                result["tag"] = entry.tag
            self._ended(entry, result=result)
            return result

        def failed(failure):
            self._ended(entry, failure=failure)
            return failure

        deferred.addCallbacks(succeeded, failed)

    def _ended(self, entry, result=None, failure=None):
        entry.end(result, failure)
        self._trim()

    def find(self, execution=None):
        """The kept execution named by its number, its tag, or None (the latest)."""
        if execution is None:
            if not self._executions:
                raise errors.NotFound("this kernel has run nothing yet")
            return next(reversed(self._executions.values()))
        if isinstance(execution, str):
            for entry in reversed(self._executions.values()):
                if entry.tag == execution:
                    return entry
        elif isinstance(execution, int) and not isinstance(execution, bool):
            entry = self._executions.get(execution)
            if entry is not None:
                return entry
        else:
            raise errors.InvalidArgument(
                "execution must be an execution's number, its tag, or null, not {!r}".format(execution)
            )
        raise errors.NotFound(
            "no execution {!r} is kept for this kernel (it keeps its last {} executions and {} bytes of their "
            "outputs; {} ran so far)".format(execution, self._max_executions, self._max_bytes, self._numbers)
        )

    def listing(self):
        """C{[{"execution", "tag", "status", "outputs"}]}, oldest first."""
        first_open = next((e for e in self._executions.values() if not e.ended), None)
        return [
            {"execution": e.number, "tag": e.tag, "status": e.status(e is first_open), "outputs": len(e.items)}
            for e in self._executions.values()
        ]

    def size(self):
        """(executions kept, bytes counted): for the soak's table sizes."""
        return len(self._executions), sum(e.bytes for e in self._executions.values())

    def _trim(self):
        """Forget the oldest ended executions past the bounds (one still running is never dropped)."""
        total = sum(e.bytes for e in self._executions.values())
        for entry in list(self._executions.values()):
            if len(self._executions) <= self._max_executions and total <= self._max_bytes:
                return
            if entry.ended:
                del self._executions[entry.number]
                total -= entry.bytes


def merged(items, since=0):
    """C{(start, end, item)} from C{items[since:]}: a run of stream outputs of one name as one output."""
    since = max(0, since)
    i = since
    while i < len(items):
        item = items[i]
        if item.get("output_type") == "stream":
            j = i + 1
            while j < len(items) and items[j].get("output_type") == "stream" and items[j]["name"] == item["name"]:
                j += 1
            if j > i + 1:
                text = "".join(items[k]["text"] for k in range(i, j))
                yield i, j, {"output_type": "stream", "name": item["name"], "text": text}
                i = j
                continue
        yield i, i + 1, item
        i += 1


def _is_output(item):
    return item.get("output_type") in ("stream", "display_data", "execute_result", "error")
