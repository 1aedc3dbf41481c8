"""Who runs where: the session router's view of spawners, kernels and their holders.

Pure bookkeeping, no I/O, so that placement and quotas are unit-tested
directly.  A kernel is counted against its holder (the principal its quotas
count it against: a client's session id, or a Jupyter face's principal) from
the moment its start is asked (a reservation), so concurrent starts cannot
pass the cap.  Which session may call a kernel is the spawner's business.
"""

import dataclasses

from components.common import errors
from components.common import kernelspecs as kernelspec_models
from components.common.kernelspecs import PYTHON


@dataclasses.dataclass
class SpawnerInfo:
    spawner_id: str
    session: int
    host: str = ""
    capacity: int = 0
    pool_ready: int = 0
    kernels: set = dataclasses.field(default_factory=set)
    reserved: int = 0
    #: the kernels it offers, {name: Jupyter REST model} (python3 on every spawner)
    kernelspecs: dict = dataclasses.field(default_factory=lambda: {PYTHON: kernelspec_models.PYTHON_MODEL})

    def offers(self, kernel_name):
        return kernel_name in self.kernelspecs

    @property
    def free(self):
        return self.capacity - len(self.kernels) - self.reserved


class Placement:
    """Spawners, the kernels placed on them, and who holds each."""

    def __init__(self, max_kernels_per_session):
        self.max_kernels_per_session = max_kernels_per_session
        self.spawners = {}
        self.kernels = {}  # kernel_id -> (spawner_id, holder)
        self._held = {}  # holder -> set of kernel ids
        self._reserved = {}  # holder -> starts in flight
        self._by_address = {}  # client address -> set of kernel ids
        self._address_of = {}  # kernel id -> client address
        self._reserved_by_address = {}  # client address -> starts in flight

    def add_spawner(self, spawner_id, session, host="", capacity=0, pool_ready=0, kernelspecs=None, **_):
        info = self.spawners.get(spawner_id)
        if info is None or info.session != session:
            info = self.spawners[spawner_id] = SpawnerInfo(spawner_id, session)
        info.host, info.capacity, info.pool_ready = host, capacity, pool_ready
        if kernelspecs:
            info.kernelspecs = dict(kernelspecs)
        return info

    def kernelspecs(self):
        """``cell.kernelspecs()``: every kernel some spawner offers, in Jupyter's REST shape."""
        return kernelspec_models.merged(info.kernelspecs for info in self.spawners.values())

    def check_offered(self, kernel_name):
        """Raise L{errors.NotFound}, naming the kernels offered, unless some spawner offers C{kernel_name}."""
        if kernel_name == PYTHON or any(info.offers(kernel_name) for info in self.spawners.values()):
            return
        offered = self.kernelspecs()["kernelspecs"]
        raise errors.NotFound(
            "no kernel named {!r} is offered here; the kernels offered are {}".format(
                str(kernel_name)[:64], kernelspec_models.names(offered)
            ),
            available=sorted(offered),
        )

    def remove_spawner_by_session(self, session):
        """Forget the spawner behind C{session}; return (spawner_id, [(kernel_id, holder)]) or None."""
        for spawner_id, info in list(self.spawners.items()):
            if info.session == session:
                del self.spawners[spawner_id]
                lost = [(k, self.kernels[k][1]) for k in info.kernels if k in self.kernels]
                for kernel_id, _ in lost:
                    self.forget_kernel(kernel_id)
                return spawner_id, lost
        return None

    def reserve(self, holder, cap=None, prefer=(), address=None, address_cap=None, kernel_name=PYTHON):
        """Count a start against C{holder} (at most C{cap} kernels) and pick a spawner; raise L{Capacity} if none.

        C{prefer}: spawners to pick first when they have room (those holding a ready kernel for us).
        C{kernel_name}: only spawners that offer it (L{errors.NotFound} if none does).
        """
        self.check_offered(kernel_name)
        cap = self.max_kernels_per_session if cap is None else cap
        held = len(self._held.get(holder, ())) + self._reserved.get(holder, 0)
        if held >= cap:
            raise errors.Capacity(
                "this session already has {} kernels, the most one session may have; shut one down first".format(held),
                limit=cap,
            )
        if address is not None and address_cap:
            held = len(self._by_address.get(address, ())) + self._reserved_by_address.get(address, 0)
            if held >= address_cap:
                raise errors.Capacity(
                    "your address already holds {} kernels (kernels kept for a resume included), the most one address may "
                    "hold; shut one down first".format(held),
                    limit=address_cap,
                )
        spawner = self.choose(prefer, kernel_name)
        if address is not None:
            self._reserved_by_address[address] = self._reserved_by_address.get(address, 0) + 1
        self._reserved[holder] = self._reserved.get(holder, 0) + 1
        spawner.reserved += 1
        return spawner

    def choose(self, prefer=(), kernel_name=PYTHON):
        """The spawner offering C{kernel_name} with the most free capacity (among C{prefer} first, when any of
        them has room)."""
        candidates = [s for s in self.spawners.values() if s.free > 0 and s.offers(kernel_name)]
        preferred = [s for s in candidates if s.spawner_id in prefer]
        candidates = preferred or candidates
        if not candidates:
            raise errors.Capacity(
                "no kernel can be had now: every worker is full or none is connected; try again later"
            )
        return max(candidates, key=lambda s: (s.free, s.pool_ready))

    def release(self, holder, spawner_id, address=None):
        """Undo L{reserve} (always called, whether the start worked or not)."""
        if address is not None:
            left = self._reserved_by_address.get(address, 0) - 1
            if left > 0:
                self._reserved_by_address[address] = left
            else:
                self._reserved_by_address.pop(address, None)
        left = self._reserved.get(holder, 0) - 1
        if left > 0:
            self._reserved[holder] = left
        else:
            self._reserved.pop(holder, None)
        spawner = self.spawners.get(spawner_id)
        if spawner is not None:
            spawner.reserved = max(0, spawner.reserved - 1)

    def add_kernel(self, kernel_id, spawner_id, holder, address=None):
        self.kernels[kernel_id] = (spawner_id, holder)
        if address is not None:
            self._address_of[kernel_id] = address
            self._by_address.setdefault(address, set()).add(kernel_id)
        self._held.setdefault(holder, set()).add(kernel_id)
        spawner = self.spawners.get(spawner_id)
        if spawner is not None:
            spawner.kernels.add(kernel_id)

    def forget_kernel(self, kernel_id):
        entry = self.kernels.pop(kernel_id, None)
        if entry is None:
            return None
        spawner_id, holder = entry
        address = self._address_of.pop(kernel_id, None)
        if address is not None:
            kernels = self._by_address.get(address)
            kernels.discard(kernel_id)
            if not kernels:
                del self._by_address[address]
        held = self._held.get(holder)
        if held is not None:
            held.discard(kernel_id)
            if not held:
                del self._held[holder]
        spawner = self.spawners.get(spawner_id)
        if spawner is not None:
            spawner.kernels.discard(kernel_id)
        return entry

    def move_kernel(self, kernel_id, new_holder):
        """Give a kernel to another holder (cell.kernel.resume: the resuming session)."""
        address = self._address_of.get(kernel_id)
        spawner_id, _ = self.forget_kernel(kernel_id)
        self.add_kernel(kernel_id, spawner_id, new_holder, address)

    def kernels_on(self, spawner_id):
        spawner = self.spawners.get(spawner_id)
        return set(spawner.kernels) if spawner is not None else set()

    def sizes(self):
        """Its tables' sizes (node metrics, the soak): each comes back to its baseline when its holders go.

        The names are labels of ``cell_session_router_table_entries``, printed by the soak: they keep their first
        spelling ("owners" for holders)."""
        return {
            "kernels": len(self.kernels),
            "kernel_owners": len(self._held),
            "owners_starting": len(self._reserved),
            "kernel_addresses": len(self._by_address),
            "addresses_starting": len(self._reserved_by_address),
        }

    def has_reservation(self, holder):
        """Whether a start for C{holder} is in flight."""
        return holder in self._reserved

    def kernels_of(self, holder):
        """[(kernel_id, spawner_id)] of the kernels C{holder} holds."""
        return [(k, self.kernels[k][0]) for k in self._held.get(holder, ())]
