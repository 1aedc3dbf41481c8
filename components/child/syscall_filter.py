"""The seccomp filter of every kernel: refuse what no notebook needs, with ``EPERM``.

Built once in a fork master (or the one-shot template) before it forks, with
libseccomp (through ``pyseccomp``); each child only loads it, after it has
dropped to its uid and before any user code runs.  Refused calls fail with
``EPERM`` ("Operation not permitted"), so code that tries them gets a normal
Python exception instead of a killed kernel.  ``clone3`` answers ``ENOSYS``:
its flags sit in memory a filter cannot read, and the C library then falls
back to ``clone``, whose flags are checked (no new namespaces).

The filter also sets ``no_new_privs``: set-uid programs cannot raise a
kernel's privileges.
"""

import errno

#: refused outright: debugging other processes, mounting, namespaces, kernel
#: keyrings, BPF, perf, kernel modules, reboot, swap, clocks, raw I/O ports,
#: handles that bypass path permissions, io_uring (a large attack surface).
DENIED = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "kcmp",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "mount_setattr",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "unshare",
    "setns",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "quotactl_fd",
    "syslog",
    "vhangup",
    "lookup_dcookie",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "iopl",
    "ioperm",
    "open_by_handle_at",
    "name_to_handle_at",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
)

#: ``clone`` flags that would make new namespaces (refused with EPERM)
NAMESPACE_FLAGS = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)


def build():
    """The filter, ready to L{load} in children; None where libseccomp is missing."""
    try:
        import pyseccomp as seccomp
    except (ImportError, RuntimeError, OSError):
        return None
    refuse = seccomp.ERRNO(errno.EPERM)
    syscall_filter = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in DENIED:
        try:
            syscall_filter.add_rule(refuse, name)
        except (ValueError, RuntimeError, OSError):
            pass  # not a syscall on this architecture (e.g. iopl on arm64)
    for flag in NAMESPACE_FLAGS:
        syscall_filter.add_rule(refuse, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    try:
        syscall_filter.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    except (ValueError, RuntimeError, OSError):
        pass
    return syscall_filter


def load(syscall_filter):
    """In the child, after the uid drop: from here on, L{DENIED} calls fail."""
    syscall_filter.load()
