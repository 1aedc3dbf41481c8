"""The output caps of one kernel: bytes per execution, iopub messages per second.

Pure decisions (the clock is passed in): L{OutputLimiter.admit} says whether
an output message goes on to the caller and, when it passes a cap, why the
execution's output is cut.  The kernel itself also stops writing past the
byte cap (L{components.child.kernel_streams}); this side does not trust it to.
"""

from components.common.token_bucket import TokenBucket
from components.worker.outputs import output_size


class OutputLimiter:
    def __init__(self, clock, config):
        self._max_bytes = config.max_output_bytes
        rate = config.max_iopub_messages_per_s
        self._rate = rate
        self._bucket = TokenBucket(clock, rate, rate) if rate else None

    def admit(self, execution, output, content):
        """C{(admitted, why_cut)}: whether the output goes on, and the reason to cut C{execution} (or None).

        C{output} is the message's nbformat output (L{to_output}), C{content} its raw content.
        """
        if self._bucket is not None and not self._bucket.take():
            return False, "more than {} output messages per second".format(self._rate)
        if "oversized_bytes" in content:
            return False, "a single output of {} bytes".format(content["oversized_bytes"])
        if execution is None:
            return True, None
        if execution.truncated:
            return False, None
        if (
            self._max_bytes
            and output is not None
            and execution.collector.output_bytes + output_size(output) > self._max_bytes
        ):
            return False, "more than {} bytes of output".format(self._max_bytes)
        return True, None
