"""``cell.execute`` on a worker host: in a child of the one-shot template when it can, else in a pool kernel.

Python one-shots without files run in the template's children (L{components.child.oneshot_children}), which need
no kernel.  One with input or returned files, or in another language, takes a kernel of a warm pool and throws it
away afterwards; while it runs that kernel counts against the spawner's C{max_kernels} (40 such one-shots from
one session once made 44 live kernels on a spawner allowing 32).
"""

from twisted.internet import defer

from components.common.kernelspecs import PYTHON
from components.worker.death_causes import DeathReason
from components.worker.kernel_state import KernelState
from components.worker.oneshot_files import OneshotFiles


class OneShotRuns:
    """@param spawner: the L{KernelSpawner}: its pools, its one-shot template, its room for kernels.
    @param blocking: its one way to run blocking work (L{components.worker.blocking}), for the inline files."""

    def __init__(self, spawner, blocking, config):
        self._spawner = spawner
        self._config = config
        self._files = OneshotFiles(blocking, config.max_inline_file_bytes)
        #: pool kernels running a one-shot now: they count as kernels
        self.in_kernels = 0

    @defer.inlineCallbacks
    def run(
        self,
        code,
        timeout,
        user_expressions,
        stop_on_error,
        progress,
        files=None,
        return_files=False,
        kernel_name=PYTHON,
    ):
        """Run C{code} once; the Deferred fires with the execution result.

        C{files} ({path: bytes}) are written into the kernel's directory first; with C{return_files}, the files
        the run made come back inline (up to C{max_inline_file_bytes} in all; larger ones are listed without data).
        """
        spawner = self._spawner
        pool = spawner.pool_for(kernel_name)
        template = spawner.parts.template()
        if kernel_name == PYTHON and not files and not return_files and template is not None:
            result = yield template.run(
                code, timeout, user_expressions, stop_on_error, progress, self._config.max_output_bytes
            )
            return result
        spawner.check_room()
        self.in_kernels += 1
        try:
            yield spawner.parts.master_ready(kernel_name)
            kernel = yield pool.acquire()
        except BaseException:
            self.in_kernels -= 1
            raise
        try:
            yield self._files.put(kernel, files)
            result = yield kernel.execute(
                code,
                timeout=timeout,
                user_expressions=user_expressions,
                stop_on_error=stop_on_error,
                progress=progress,
                kill_on_timeout=True,
            )
            if return_files and kernel.state != KernelState.DEAD:
                yield self._files.collect(kernel, result)
        finally:
            self.in_kernels -= 1
            kernel.shutdown(DeathReason("oneshot_done", "one-shot execution finished"))
        return result
