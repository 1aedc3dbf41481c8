"""What a kernel sees of the file system: its own mount namespace, made in the forked child.

Applied by L{components.child.sandbox.enter} while the child is still root, before
it drops to the kernel's uid and before any user code runs:

- every mount read-only and ``nosuid`` (the system, the kernel's Python
  environment, the project), recursively, in one ``mount_setattr`` call;
- a private, size-limited ``/tmp``, ``/var/tmp`` and ``/dev/shm`` (tmpfs),
  so nothing is shared with other kernels or the host through them;
- the node's state directories (node directory, the spawner's roots of
  working and runtime directories) covered by empty read-only tmpfs: absent;
- the kernel's own directories (working directory, runtime directory with
  its ZMQ sockets) bound back at their usual paths, writable, so that the
  spawner, outside, still sees the same inodes; its Python environment and
  the project bound back read-only where a scratch file system covers them
  (a checkout in ``/tmp``);
- a ``/proc`` of its own with ``hidepid=invisible``: only its uid's
  processes (its own) are listed.

Each step is a handful of syscalls: no new process, no ``exec``, which fits a
kernel forked from a warm master (bubblewrap would ``exec``).
"""

import ctypes
import os

from components.child.libc import LIBC

CLONE_NEWNS = 0x00020000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2

#: private scratch file systems of every kernel
SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, "{}: {}".format(what, os.strerror(err)))


def _mount(source, target, fstype, flags, data=None):
    _check(
        LIBC.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        ),
        "mount {} on {}".format(fstype or source, target),
    )


def _read_only_everywhere():
    """Every mount of the new namespace read-only and nosuid (device nodes stay usable)."""
    attr = _MountAttr(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0, 0, 0)
    if hasattr(LIBC, "mount_setattr"):
        _check(
            LIBC.mount_setattr(AT_FDCWD, b"/", AT_RECURSIVE, ctypes.byref(attr), ctypes.sizeof(attr)), "mount_setattr /"
        )
        return
    with open("/proc/self/mountinfo") as f:  # Linux before 5.12: one remount per mount point
        points = [line.split()[4] for line in f]
    for point in points:
        _mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)


def _bind(fd, path, flags):
    """Bind the directory open as C{fd} at C{path} (made anew inside a fresh tmpfs) with C{flags}."""
    os.makedirs(path, mode=0o755, exist_ok=True)
    _mount("/proc/self/fd/{}".format(fd), path, None, MS_BIND)
    _mount(None, path, None, MS_REMOUNT | MS_BIND | flags)
    os.close(fd)


def _under(path, roots):
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def enter(keep, hide, scratch_mb, show=(), hide_processes=True):
    """Give the calling process its own view (see the module docstring).

    @param keep: directories bound back writable at their own paths (the kernel's own).
    @param hide: directories replaced by an empty read-only directory.
    @param scratch_mb: size of each private scratch file system.
    @param show: directories the kernel needs read-only (its Python environment, the
        project), bound back where a scratch file system covers them (a checkout in /tmp).
    """
    _check(LIBC.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount leaks back to the host
    scratch = [p for p in SCRATCH if os.path.isdir(p)]
    show = [p for p in show if _under(p, scratch) and os.path.isdir(p)]
    # Handles on the directories to bind back, taken before anything covers them.
    shown = [(path, os.open(path, os.O_PATH | os.O_DIRECTORY)) for path in show]
    kept = [(path, os.open(path, os.O_PATH | os.O_DIRECTORY)) for path in keep]
    _read_only_everywhere()
    size = "size={}m".format(max(1, int(scratch_mb)))
    for path in scratch:
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777," + size)
    for path, fd in shown:
        _bind(fd, path, MS_RDONLY | MS_NOSUID | MS_NODEV)
    # What a scratch file system covers is gone already, unless it is inside a directory bound back.
    covers = [p for p in hide if os.path.isdir(p) and (not _under(p, scratch) or _under(p, show))]
    for path in covers:
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755,size=64k")
    for path, fd in kept:
        _bind(fd, path, MS_NOSUID | MS_NODEV)
    for path in covers:
        _mount(None, path, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if hide_processes:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible")
