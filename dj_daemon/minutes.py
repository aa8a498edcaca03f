"""Jobs done and failed per minute on this host, counted from the workers' reports, written once a minute.

The supervisor already reads every ``ok``/``fail`` its workers report (see
``reports``); ``Tally.count`` adds them up in memory, and ``Tally.flush``,
called by ``upkeep`` with the heartbeat, writes the minutes that have ended:
one upsert a minute whatever the job rate, plus one DELETE of rows older than
``KEEP`` once an hour. Counts the database did not take stay and go with the
next write. The web page draws its charts from these rows.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

from .job import utcnow
from .store import Store
from .store import minutes as table

KEEP = timedelta(days=7)
PRUNE_EVERY = timedelta(hours=1)


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


class Tally:
    """This host's counts since the last write."""

    def __init__(self, hostname: str, clock: Callable[[], datetime] = utcnow) -> None:
        self.hostname = hostname
        self.clock = clock
        self.minute = minute_of(clock())
        self.done = 0
        self.failed = 0
        self.pruned_at: datetime | None = None

    def count(self, done: int, failed: int) -> None:
        """Runs the workers ended since the last count: ``done`` succeeded, ``failed`` did not."""
        self.done += done
        self.failed += failed

    def flush(self, store: Store, depth: int | None) -> bool:
        """Write the counts of the minute that has ended, if one has; True when nothing is left to do."""
        now = self.clock()
        if minute_of(now) <= self.minute:
            return True
        table.record(store, self.hostname, self.minute, self.done, self.failed, depth)
        self.minute, self.done, self.failed = minute_of(now), 0, 0
        if self.pruned_at is None or now - self.pruned_at >= PRUNE_EVERY:
            table.prune(store, now - KEEP)
            self.pruned_at = now
        return True
