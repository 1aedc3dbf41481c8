"""Files in a kernel's working directory, reached safely from the spawner.

The spawner may run as root and the directory belongs to hostile code, so
every path is resolved one component at a time with ``openat`` semantics
(``dir_fd`` + ``O_NOFOLLOW``): absolute paths, ``..``, any symlink (wherever
it leads), device files, sockets and fifos are refused with
L{InvalidArgument}, and nothing outside the directory is ever touched.
Files the spawner creates are handed to the kernel's uid.  A write the
directory's file system has no room for (its bytes or its files, the
kernel's disk limits: L{components.worker.kernel_disk}) is refused with
L{TooLarge}.
"""

import errno
import hashlib
import os
import stat

from components.common import errors

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: what a file system without room says: out of blocks or inodes (ENOSPC), or past a quota (EDQUOT)
_FULL = (errno.ENOSPC, errno.EDQUOT)


def split_path(path, allow_root=False):
    """Check a client path and split it into components."""
    if not isinstance(path, str):
        raise errors.InvalidArgument("path must be a string, not {}".format(type(path).__name__))
    if path.startswith("/") or "\\" in path or "\0" in path:
        raise errors.InvalidArgument("path {!r} must be relative to the kernel's working directory".format(path))
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise errors.InvalidArgument("path {!r} may not contain '..'".format(path))
    if not parts and not allow_root:
        raise errors.InvalidArgument("a file path is required")
    return parts


class KernelFiles:
    """The working directory of one kernel: list, read, write, snapshot.

    @param root: the directory.  @param owner: (uid, gid) for created files, or None.
    """

    def __init__(self, root, owner=None, max_files=1000):
        self.root = root
        self.owner = owner
        self.max_files = max_files
        #: {path: (size, mtime_ns)} as the spawner itself last wrote each file (uploads, one-shot inputs):
        #: such a file is not something an execution made (L{changes_since})
        self._written = {}

    def _open_dir(self, parts, create=False):
        """An fd of the directory C{parts} below the root, refusing symlinks."""
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            for part in parts:
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise errors.NotFound("no directory {!r} in the kernel's working directory".format(part))
                    self._refuse_if_full(os.mkdir, part, 0o700, dir_fd=fd)
                    if self.owner:
                        os.chown(part, *self.owner, dir_fd=fd, follow_symlinks=False)
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except (NotADirectoryError, OSError) as exc:
                    if isinstance(exc, errors.CellError):
                        raise
                    raise errors.InvalidArgument(
                        "{!r} is not a plain directory (symlinks are not followed)".format(part)
                    ) from None
                os.close(fd)
                fd = child
            return fd
        except BaseException:
            os.close(fd)
            raise

    def list(self, path=""):
        parts = split_path(path, allow_root=True)
        fd = self._open_dir(parts)
        try:
            entries = []
            for name in sorted(os.listdir(fd)):
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                kind = "dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else None
                if kind is not None:
                    entries.append({"name": name, "size": st.st_size, "mtime": st.st_mtime, "type": kind})
            return entries
        finally:
            os.close(fd)

    def open_read(self, path):
        """An open binary file object of a regular file, and its size."""
        parts = split_path(path)
        fd = self._open_dir(parts[:-1])
        try:
            try:
                ffd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
            except FileNotFoundError:
                raise errors.NotFound("no file {!r} in the kernel's working directory".format(path)) from None
            except OSError:
                raise errors.InvalidArgument(
                    "{!r} is not a regular file (symlinks are not followed)".format(path)
                ) from None
        finally:
            os.close(fd)
        st = os.fstat(ffd)
        if not stat.S_ISREG(st.st_mode):
            os.close(ffd)
            raise errors.InvalidArgument("{!r} is not a regular file".format(path))
        return os.fdopen(ffd, "rb"), st.st_size

    def write(self, path, data, offset):
        """Write C{data} at C{offset} (0 creates or truncates; otherwise the current size); return the new size."""
        parts = split_path(path)
        fd = self._open_dir(parts[:-1], create=True)
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            if offset == 0:
                flags |= os.O_TRUNC
            try:
                ffd = self._refuse_if_full(os.open, parts[-1], flags, 0o600, dir_fd=fd)
            except OSError:
                raise errors.InvalidArgument(
                    "{!r} is not a regular file (symlinks are not followed)".format(path)
                ) from None
        finally:
            os.close(fd)
        try:
            st = os.fstat(ffd)
            if not stat.S_ISREG(st.st_mode):
                raise errors.InvalidArgument("{!r} is not a regular file".format(path))
            if offset != st.st_size:
                raise errors.InvalidArgument(
                    "offset {} does not continue the upload: {!r} has {} bytes".format(offset, path, st.st_size)
                )
            if self.owner:
                os.fchown(ffd, *self.owner)
            os.lseek(ffd, offset, os.SEEK_SET)
            view = memoryview(data)
            while view:
                view = view[self._refuse_if_full(os.write, ffd, view) :]
            st = os.fstat(ffd)
            self._written["/".join(parts)] = (st.st_size, st.st_mtime_ns)
            return st.st_size
        finally:
            os.close(ffd)

    def _refuse_if_full(self, f, *args, **kwargs):
        """C{f(*args, **kwargs)}, with a file system out of room turned into L{errors.TooLarge} naming its limits."""
        try:
            return f(*args, **kwargs)
        except OSError as exc:
            if exc.errno not in _FULL:
                raise
        try:
            st = os.statvfs(self.root)
            limits = " ({} MB and {} files at most)".format(st.f_blocks * st.f_frsize // 2**20, st.f_files)
        except OSError:
            limits = ""
        raise errors.TooLarge("the kernel's working directory is full{}: no space left on device".format(limits))

    def sha256(self, path):
        f, _ = self.open_read(path)
        with f:
            digest = hashlib.sha256()
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def _regular_files(self):
        """(relative path, stat) of every regular file, at most C{max_files}, no symlink followed."""
        found = 0
        stack = [("", os.open(self.root, _DIR_FLAGS))]
        try:
            while stack and found < self.max_files:
                prefix, fd = stack.pop()
                try:
                    for name in os.listdir(fd):
                        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                        if stat.S_ISREG(st.st_mode):
                            found += 1
                            yield prefix + name, st
                        elif stat.S_ISDIR(st.st_mode) and len(stack) < 64:
                            try:
                                stack.append((prefix + name + "/", os.open(name, _DIR_FLAGS, dir_fd=fd)))
                            except OSError:
                                pass
                finally:
                    os.close(fd)
        except OSError:
            pass
        finally:
            for _, fd in stack:
                os.close(fd)

    def snapshot(self):
        """{relative path: (size, mtime)} of every regular file (at most C{max_files})."""
        return {name: (st.st_size, st.st_mtime) for name, st in self._regular_files()}

    def changes_since(self, since_ns):
        """What an execution did to the directory, in one walk (run it in a thread: it is proportional to the directory).

        Returns C{(files, used_bytes)}: the files modified at or after
        C{since_ns} (``time.time_ns()`` when the execution started) as API
        entries, and the bytes the directory's files use on disk.
        """
        changed, used = [], 0
        for name, st in self._regular_files():
            used += st.st_blocks * 512
            if st.st_mtime_ns >= since_ns and self._written.get(name) != (st.st_size, st.st_mtime_ns):
                changed.append({"name": name, "size": st.st_size, "mtime": st.st_mtime})
        changed.sort(key=lambda entry: entry["name"])
        return changed, used
