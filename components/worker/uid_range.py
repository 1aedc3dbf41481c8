"""The uids a spawner's kernels and one-shot children run as: a range no other spawner on this host holds.

Two nodes on one host (``make cluster`` runs two) used to hand out the same
uids under the same memory cgroup root, so a kernel of one node listed the
other node's kernels as its own uid's processes, and could signal them or
read their memory.  So each spawner claims a range of its own for its life:

- the ranges are ``sandbox_uid_base + k * size`` (``size``: its kernels' uids
  and its one-shot children's), ``k < sandbox_uid_ranges``;
- a spawner tries the range its id hashes to first, then the next ones, so a
  spawner id keeps its range across restarts as long as nobody else took it;
- a range is free when no live spawner holds its lock (``flock`` on a file in
  a root-only directory: the kernel drops it however the holder dies) and no
  process runs as any of its uids (a spawner that started on a range where
  processes run would hand their uids to strangers).  With
  ``sandbox_uid_ranges: 1`` the range is pinned, and a busy one is refused.

Only a root spawner switches uids, so only a root spawner claims a range.
"""

import fcntl
import os
import zlib

#: where the locks live: root's alone (a kernel that could open a lock file could hold it)
LOCK_DIRS = ("/run/cellserver", "/var/tmp/cellserver")


class RangeBusy(RuntimeError):
    """No free range: say which ones are busy and why, so that an admin can act."""


class UidRange:
    """A claimed range: C{first}, C{count} (kernels' uids), C{oneshot_first}, C{oneshot_count}."""

    def __init__(self, first, count, oneshot_count, lock_fd=None, passed_over=()):
        self.first = first
        #: why each range tried before this one was not taken (the spawner logs it)
        self.passed_over = list(passed_over)
        self.count = count
        self.oneshot_first = first + count
        self.oneshot_count = oneshot_count
        self._lock_fd = lock_fd

    @property
    def end(self):
        return self.oneshot_first + self.oneshot_count

    def release(self):
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __contains__(self, uid):
        return self.first <= uid < self.end


def claim(spawner_id, base, count, oneshot_count, ranges, lock_dir=None, processes=None, reap=None):
    """Claim the first free range for C{spawner_id} (see the module docstring); raise L{RangeBusy} if none is.

    C{reap(first)}, when given, ends what a dead holder of the range starting at C{first} left running."""
    size = count + oneshot_count
    lock_dir = lock_dir or _lock_dir()
    start = zlib.crc32(spawner_id.encode()) % max(1, ranges)
    why = []
    for i in range(max(1, ranges)):
        first = base + ((start + i) % max(1, ranges)) * size
        fd = os.open(os.path.join(lock_dir, "uids-{}.lock".format(first)), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            why.append("{}-{}: another spawner holds it".format(first, first + size - 1))
            continue
        if reap is not None:
            reap(first)
        running = _processes_in(first, first + size, processes)
        if running:
            os.close(fd)
            why.append("{}-{}: processes run as its uids (pids {})".format(first, first + size - 1, running[:5]))
            continue
        return UidRange(first, count, oneshot_count, fd, passed_over=why)
    raise RangeBusy(
        "no free range of sandbox uids for spawner {!r} ({}); stop what runs there, or give this spawner other "
        "uids (sandbox_uid_base, sandbox_uid_ranges)".format(spawner_id, "; ".join(why))
    )


def reap_if_free(first, reap, lock_dir=None):
    """C{reap(first)} if no live spawner holds the range starting at C{first}; whether it did.

    A keeper calls it when its spawner died, so what that spawner left is
    ended at once, whichever range the next spawner takes."""
    fd = os.open(os.path.join(lock_dir or _lock_dir(), "uids-{}.lock".format(first)), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        reap(first)
        return True
    finally:
        os.close(fd)


def _lock_dir():
    for path in LOCK_DIRS:
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
            os.chmod(path, 0o700)
            return path
        except OSError:
            continue
    raise RangeBusy("no directory for the uid locks ({} not writable)".format(", ".join(LOCK_DIRS)))


def _processes_in(first, end, processes=None):
    """Pids of processes whose uid is in [first, end): from /proc (a process's directory belongs to its euid)."""
    if processes is not None:
        return [pid for pid, uid in processes if first <= uid < end]
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                uid = os.stat("/proc/" + name).st_uid
            except OSError:
                continue
            if first <= uid < end:
                found.append(int(name))
    return found
