"""Start a kernel of another language in the kernel sandbox: what jupyter_client's provisioner runs.

Non-Python kernels are not forked from the warm master: they start from
their kernelspec's ``argv`` (R, bash_kernel, ...).  The spawner launches them
with jupyter_client's provisioning (L{components.worker.exec_kernel_process}),
whose command is this module::

    python -m components.child.exec_kernel '<request as JSON>'

    {"argv": [str],            # the kernelspec's argv, {connection_file} filled in
     "env": {str: str},        # the kernel's whole environment (nothing of the spawner's)
     "cwd": str,               # the kernel's working directory
     "sandbox": {...},         # see components.child.sandbox.enter
     "parent": int}            # the spawner's pid: the kernel dies with it

It runs as root in a new session (the provisioner's ``start_new_session``),
with stdin from /dev/null and stdout/stderr on the kernel's log.  It enters
the same cage a forked kernel enters, in the same order (network namespace,
memory cgroup, mount namespace, rlimits, the uid, the seccomp filter), asks
to die with the spawner, moves into the working directory and ``exec``s the
kernel: the kernel keeps this process's pid, session and process group, so
the spawner signals and kills it as it does a forked kernel.  If any step
fails, it exits with status 127 and says why on the log.
"""

import json
import os
import signal
import sys
import traceback

from components.child import process_setup, sandbox
from components.child import syscall_filter as syscall_filters

#: the exit status of a launch that failed before the kernel ran
LAUNCH_FAILED = 127


def enter_and_exec(request):
    """Apply the request's sandbox and become the kernel.  Never returns (raises if a step fails)."""
    spec = request.get("sandbox") or {"limits": {}}
    if spec.get("nice"):
        os.nice(spec["nice"])  # a pool kernel; the spawner (root) restores it on hand-out
    built = syscall_filters.build() if spec.get("seccomp") else None
    sandbox.enter(spec, built)
    # After the uid change, which clears it; it survives the exec (the kernel is no set-uid program).
    process_setup.die_with_parent(signal.SIGKILL)
    if os.getppid() != request["parent"]:
        raise RuntimeError("the spawner went away before the kernel started")
    os.umask(0o077)
    os.chdir(request["cwd"])
    argv = request["argv"]
    os.execvpe(argv[0], argv, request["env"])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        enter_and_exec(json.loads(argv[0]))
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
    os._exit(LAUNCH_FAILED)


if __name__ == "__main__":
    main()
