"""The spawner's side of the one-shot template (see L{components.child.oneshot}).

Starts the template, sends it runs, and folds what each child streams back
into the same result as a kernel execute (L{OutputCollector}), with the
same output cap.  Cancelling a run's Deferred kills its child.
"""

import json
import uuid

from twisted.internet import defer

from components.common import errors
from components.worker.json_lines import JsonLinesProcess
from components.worker.outputs import OutputCollector, output_size


class _Run:
    def __init__(self, progress, cap):
        self.collector = OutputCollector()
        self.progress = progress
        self.cap = cap
        self.truncated = False
        self.deferred = None


class OneShotTemplate(JsonLinesProcess):
    name = "one-shot template"

    def __init__(self):
        super().__init__()
        self._runs = {}
        self.ready = defer.Deferred()

    def event_received(self, event):
        op = event["op"]
        if op == "ready":
            self.ready.callback(event)
            return
        run = self._runs.get(event["id"])
        if run is None:
            return
        if op == "output":
            self._output(run, event["output"])
        elif op == "failed":
            del self._runs[event["id"]]
            if not run.deferred.called:
                run.deferred.errback(
                    errors.Capacity(
                        "the one-shot could not be started: {}; try again in a moment".format(event.get("error"))
                    )
                )
        elif op == "done":
            del self._runs[event["id"]]
            reply = event["reply"]
            result = {
                "status": reply.get("status", "error"),
                "execution_count": reply.get("execution_count"),
                "outputs": run.collector.nbformat_outputs(),
                "files": [],
            }
            for key in ("ename", "evalue", "traceback", "user_expressions", "widgets"):
                if key in reply:
                    result[key] = reply[key]
            if not run.deferred.called:
                run.deferred.callback(result)

    def _output(self, run, output):
        if run.truncated:
            return
        size = output_size(output)
        if run.cap and run.collector.output_bytes + size > run.cap:
            run.truncated = True
            output = {
                "output_type": "stream",
                "name": "stderr",
                "text": "\n[output truncated: this execution produced more than {} bytes of output; the rest is dropped]\n".format(
                    run.cap
                ),
            }
        run.collector.add(output)
        if run.progress is not None:
            run.progress(output)

    def run(self, code, timeout, user_expressions, stop_on_error, progress, max_output_bytes):
        """Run C{code} in a fresh child; the Deferred fires with the execution result."""
        if not self.running:
            return defer.fail(errors.Capacity("the one-shot template is not running; try again in a moment"))
        run_id = uuid.uuid4().hex
        run = _Run(progress, max_output_bytes)

        def cancel(_):
            self._runs.pop(run_id, None)
            self.send({"op": "cancel", "id": run_id})

        run.deferred = defer.Deferred(canceller=cancel)
        self._runs[run_id] = run
        self.send(
            {
                "op": "run",
                "id": run_id,
                "code": code,
                "timeout": timeout,
                "user_expressions": user_expressions or {},
                "stop_on_error": stop_on_error,
                "max_output_bytes": max_output_bytes,
            }
        )
        return run.deferred

    def process_ended(self, reason):
        if not self.ready.called:
            self.ready.errback(reason)
        runs, self._runs = self._runs, {}
        for run in runs.values():
            if not run.deferred.called:
                run.deferred.errback(errors.KernelDied("the one-shot template exited: {}".format(reason.value)))

    def stop(self):
        if self.running:
            self.transport.closeStdin()
        return self.ended


def start_oneshot_template(reactor, config, policy, environment, home=None):
    """Start the template for C{config} (a L{SpawnerConfig}) in C{environment}, children sandboxed by C{policy}.

    Wait on C{.ready}.
    """
    proto = OneShotTemplate()
    limits = {
        name: getattr(config, "limit_" + name)
        for name in ("address_space_mb", "processes", "file_size_mb", "open_files")
    }
    args = environment.command(
        "components.child.oneshot",
        "--preload",
        ",".join(config.preload),
        "--limits",
        json.dumps(limits),
        "--max-children",
        str(config.oneshot_children),
    )
    if policy.uids is not None:
        args += ["--uids", "{}:{}".format(policy.uids.oneshot_first, policy.uids.oneshot_count)]
    if policy.cgroup_root is not None:
        args += ["--cgroup-root", policy.cgroup_root, "--memory-limit-mb", str(config.memory_limit_mb)]
    if policy.status()["network_isolated"]:
        args.append("--isolate-network")
    args += [
        "--sandbox",
        json.dumps(
            {"filesystem": policy.filesystem_view([]) if policy.filesystem else None, "seccomp": policy.seccomp}
        ),
    ]
    reactor.spawnProcess(proto, args[0], args, env=environment.env(home), childFDs={0: "w", 1: "r", 2: "r"})
    return proto
