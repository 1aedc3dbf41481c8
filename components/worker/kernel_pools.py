"""The warm pools of one spawner, one per kernel it offers.

Forked kernels (``python3``, and ``sagemath`` where a Sage environment is
configured) come from a fork master each: their pool waits while that master
is down or being replaced.  Kernels of other languages are launched from
their kernelspecs, one at a time, into a small pool each.  L{KernelPools}
keeps them together so the spawner asks one place which pool serves a name,
and refills, discards and closes them all at once.
"""

import functools

from components.common.kernelspecs import PYTHON, SAGE
from components.worker.pool import KernelPool


class KernelPools:
    """@param make_kernel: C{make_kernel(kernel_name)} -> a new, unstarted kernel.
    @param room: how many more kernels the spawner may start now.
    @param masters_up: {forked kernel name: callable saying whether its fork master is up}.
    @param launched: names of the kernelspecs launched rather than forked.
    """

    def __init__(self, clock, config, make_kernel, room, masters_up, launched, prepare=None):
        def pool(name, size, concurrency, available=None):
            return KernelPool(
                clock,
                size,
                functools.partial(make_kernel, name),
                room,
                concurrency=concurrency,
                prepare=prepare,
                refill_delay_s=config.pool_refill_delay_s,
                available=available,
            )

        #: the forked Python kernels' pool
        self.python = pool(PYTHON, config.pool_size, 2, masters_up[PYTHON])
        self._pools = {PYTHON: self.python}
        if SAGE in masters_up:
            # One Sage start at a time: each costs its kernel's Sage set-up (the namespace), and the CPU is shared.
            self._pools[SAGE] = pool(SAGE, config.sage_pool_size, 1, masters_up[SAGE])
        for name in launched:
            self._pools[name] = pool(name, config.language_pool_size, 1)

    def get(self, kernel_name):
        """The pool of C{kernel_name}, or None if this spawner offers no such kernel."""
        return self._pools.get(kernel_name)

    def others(self):
        """{name: pool} of every kernel but ``python3`` (what the spawner's status reports per language)."""
        return {name: pool for name, pool in self._pools.items() if name != PYTHON}

    def most_kept(self):
        """How many ready kernels the pools keep in all (counted on top of C{max_kernels})."""
        return sum(pool.size for pool in self._pools.values())

    def retry_now(self, kernel_name=None):
        """Their kernels can start again (a fork master is ready): C{kernel_name}'s pool, or every pool."""
        for name, pool in self._pools.items():
            if kernel_name is None or name == kernel_name:
                pool.retry_now()

    def discard(self, kernel):
        for pool in self._pools.values():
            pool.discard(kernel)

    def refill(self):
        for pool in self._pools.values():
            pool.refill()

    def close(self):
        for pool in self._pools.values():
            pool.close()
