"""How much one client address may store as permalinks: a rate, and bytes per day.

One client saved 507 permalinks a second (32 MB/s into the database).  Each
save is now counted against its client's address (the node's one resolver,
asked of the session router): a L{RateLimiter} allows C{saves_per_minute} in
bursts of a quarter of it (in this node's memory: a flood is a burst; an
address's bucket is forgotten once full again), and a
L{Charge} carries the save's bytes to the store, which adds them to the
address's use of the day (UTC) in the same transaction as the save and
refuses past C{max_bytes_per_day}.  The daily use lives in the database, so
it holds across restarts and, on PostgreSQL, across the nodes that share it;
a row names an address and a day, and is deleted the day after.
"""

import dataclasses

from components.common import errors
from components.control.quotas import RateLimiter

SECONDS_PER_DAY = 86400


@dataclasses.dataclass(frozen=True)
class Charge:
    """What one save costs C{address} on C{day} (days since the epoch, UTC), and the most it may store that day.

    The store adds C{nbytes} to the address's use of the day and, past C{limit}, undoes the save and raises
    L{refusal}.
    """

    address: str
    day: int
    nbytes: int
    limit: int

    def refusal(self, used_before):
        return errors.Capacity(
            "your address has stored {} bytes of permalinks today and may store {} a day (UTC); this one ({} bytes) "
            "does not fit: try again tomorrow".format(used_before, self.limit, self.nbytes),
            limit=self.limit,
        )


class PermalinkLimits:
    """The two limits of L{components.control.permalinks.PermalinkConfig}, for one node."""

    def __init__(self, clock, saves_per_minute, max_bytes_per_day):
        self._clock = clock
        self._rate = RateLimiter(clock, saves_per_minute)
        self._max_bytes = max_bytes_per_day

    def addresses(self):
        """How many addresses have a rate bucket now (idle ones are forgotten: L{RateLimiter.size})."""
        return self._rate.size()

    def admit(self, address, code, language):
        """The L{Charge} of saving C{code} for C{address}; raises L{errors.Capacity} past the rate."""
        if not self._rate.allow(address):
            raise errors.Capacity(
                "too many permalinks from your address: it may save {} per minute; slow down".format(
                    self._rate.per_minute
                ),
                limit=self._rate.per_minute,
            )
        nbytes = len(code.encode("utf-8", "surrogatepass")) + len(language.encode("utf-8", "surrogatepass"))
        return Charge(address, int(self._clock.seconds() // SECONDS_PER_DAY), nbytes, self._max_bytes)
