"""The per-kernel WAMP procedures: argument checks, ownership, then the L{Kernel} call.

A kernel's procedures (``execute``, ``input``, ``files.get``, ...) are the
methods of L{KernelProcedures} marked with L{arguments.procedure}: each
method's own signature, after C{kernel} and C{details}, is what callers may
pass, and L{arguments.bind} checks a call against it.
"""

from twisted.internet import defer

from components.common import arguments, errors, uris
from components.worker import jupyter_messages
from components.worker.downloads import FileDownload
from components.worker.jupyter_messages import check_comm

#: the longest tag a caller may give an execution (to find it again with ``attach``)
MAX_TAG_BYTES = 128


class KernelProcedures:
    """The per-kernel WAMP procedures, one method each (C{files.get} is C{files_get}).

    Each method takes the L{Kernel} and the call's details, then exactly the
    arguments callers may pass; L{call} checks the caller owns the kernel and
    binds the call's arguments to that signature.
    """

    def __init__(self, config, flow=None, blocking=None):
        self._config = config
        self._flow = flow
        #: runs a function off the reactor (a thread), returning a Deferred: directory walks and file writes
        self._blocking = blocking or (lambda f, *args: defer.maybeDeferred(f, *args))
        self._handlers = {name: getattr(self, name.replace(".", "_")) for name in uris.KERNEL_PROCEDURES}

    def call(self, kernel, name, args, kwargs, details):
        if kernel.owner != details.caller:
            raise errors.NotFound("no kernel {} is yours".format(kernel.kernel_id))
        handler = self._handlers.get(name)
        if handler is None:
            raise errors.NotFound(
                "kernels have no procedure {!r}; they have {}".format(name, ", ".join(uris.KERNEL_PROCEDURES))
            )
        return handler(kernel, details, **arguments.bind(name, handler, args, kwargs, skip=2))

    def _code(self, code):
        return arguments.check_str("code", code, self._config.max_code_bytes)

    def execute(
        self,
        kernel,
        details,
        code,
        allow_stdin=False,
        timeout=None,
        user_expressions=None,
        stop_on_error=True,
        tag=None,
    ):
        return kernel.execute(
            self._code(code),
            allow_stdin=arguments.check_bool("allow_stdin", allow_stdin),
            timeout=arguments.check_timeout("timeout", timeout),
            user_expressions=arguments.check_user_expressions("user_expressions", user_expressions),
            stop_on_error=arguments.check_bool("stop_on_error", stop_on_error),
            progress=details.progress or None,
            tag=None if tag is None else arguments.check_str("tag", tag, MAX_TAG_BYTES),
        )

    def executions(self, kernel, details):
        """The executions the kernel keeps (components.worker.execution_record), oldest first."""
        return kernel.executions.record.listing()

    def attach(self, kernel, details, execution=None, since=0):
        """What execution C{execution} (number, tag, or None: the latest) produced from item C{since} on, then the
        rest live (progressive results), then its result."""
        entry = kernel.executions.record.find(execution)
        return entry.follow(arguments.check_int("since", since), details.progress or None)

    def input(self, kernel, details, value):
        return kernel.input(arguments.check_str("value", value, self._config.max_code_bytes))

    def interrupt(self, kernel, details):
        kernel.interrupt()

    def restart(self, kernel, details):
        return kernel.restart()

    def shutdown(self, kernel, details):
        return kernel.shutdown()

    def complete(self, kernel, details, code, cursor_pos):
        return kernel.shell_request(
            "complete_request", {"code": self._code(code), "cursor_pos": arguments.check_int("cursor_pos", cursor_pos)}
        )

    def inspect(self, kernel, details, code, cursor_pos, detail_level=0):
        if detail_level not in (0, 1) or isinstance(detail_level, bool):
            raise errors.InvalidArgument("detail_level must be 0 or 1, not {!r}".format(detail_level))
        content = {
            "code": self._code(code),
            "cursor_pos": arguments.check_int("cursor_pos", cursor_pos),
            "detail_level": detail_level,
        }
        return kernel.shell_request("inspect_request", content)

    def comm(self, kernel, details, msg_type, content, metadata=None, buffers=None):
        """A comm message to the kernel (widgets): checked here, since the kernel trusts what the spawner signs."""
        content, metadata, buffers = check_comm(msg_type, content, metadata, buffers, self._config.max_comm_bytes)
        return {"msg_id": kernel.send_comm(msg_type, content, metadata, buffers)}

    def jupyter(self, kernel, details, channel, msg):
        """A Jupyter client's message for the kernel (the node's Jupyter face): checked and rebuilt
        (L{jupyter_messages.check}), then signed by us; replies come on ``cell.kernel.<id>.jupyter``."""
        message = jupyter_messages.check(channel, msg, self._config)
        if message.msg_type == "interrupt_request":
            kernel.interrupt()
            kernel.answer_jupyter(message, "interrupt_reply", {"status": "ok"})
        elif message.msg_type == "shutdown_request":
            restart = message.content["restart"]
            if restart:
                kernel.restart()
            kernel.answer_jupyter(message, "shutdown_reply", {"status": "ok", "restart": restart})
            if not restart:
                kernel.shutdown()
        else:
            kernel.jupyter_send(message)
        return {"msg_id": message.header["msg_id"]}

    def comm_info(self, kernel, details, target_name=None):
        """The kernel's open comms: C{{comm_id: {"target_name": ...}}} (``comm_info_request``)."""
        content = {}
        if target_name is not None:
            content["target_name"] = arguments.check_str("target_name", target_name, 256)
        d = kernel.shell_request("comm_info_request", content)
        d.addCallback(lambda reply: reply.get("comms", {}))
        return d

    def files_list(self, kernel, details, path=""):
        kernel.touch()
        return self._blocking(kernel.files.list, path)

    def files_get(self, kernel, details, path):
        """The file's bytes: progressive chunks (if asked for) then {size, sha256} (see L{FileDownload})."""
        kernel.touch()
        f, size = kernel.files.open_read(path)
        config = self._config
        if size > config.max_download_bytes:
            f.close()
            raise errors.TooLarge(
                "{!r} is {} bytes; downloads are limited to {} bytes".format(path, size, config.max_download_bytes),
                size=size,
            )
        if not details.progress and size > config.max_inline_file_bytes:
            f.close()
            raise errors.TooLarge(
                "{!r} is {} bytes: ask for progressive results to receive it in chunks".format(path, size), size=size
            )
        return FileDownload(f, config.file_chunk_bytes, details.progress or None, self._flow, self._blocking).run()

    def files_put(self, kernel, details, path, data, offset=0, final=True):
        if isinstance(data, str):
            data = data.encode("utf-8")
        if not isinstance(data, (bytes, bytearray)):
            raise errors.InvalidArgument(
                "data must be bytes (binary in msgpack/cbor, autobahn's binary encoding in JSON) or a string"
            )
        offset = arguments.check_int("offset", offset)
        final = arguments.check_bool("final", final)
        config = self._config
        if offset + len(data) > config.max_upload_file_bytes:
            raise errors.TooLarge(
                "uploads are limited to {} bytes per file".format(config.max_upload_file_bytes),
                limit=config.max_upload_file_bytes,
            )
        kernel.touch()
        # One piece of file work per kernel at a time, in the order the calls came (chunks of an upload).
        return kernel.file_work.run(self._blocking, self._put, kernel.files, path, data, offset, final)

    def _put(self, files, path, data, offset, final):
        """In a thread: the directory's use is checked, the chunk written, the file hashed when complete."""
        config = self._config
        snapshot = files.snapshot()
        if (
            config.disk_limit_mb
            and sum(size for size, _ in snapshot.values()) + len(data) > config.disk_limit_mb * 1024 * 1024
        ):
            raise errors.TooLarge(
                "the kernel's working directory would exceed its disk limit of {} MB".format(config.disk_limit_mb)
            )
        if path not in snapshot and len(snapshot) >= config.max_files:
            raise errors.TooLarge(
                "the kernel's working directory already has {} files, the most allowed".format(len(snapshot))
            )
        size = files.write(path, data, offset)
        result = {"size": size}
        if final:
            result["sha256"] = files.sha256(path)
        return result
