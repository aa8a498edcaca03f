"""The overview's queue counts, taken off the request: the queue's totals and its depth by queue.

``Store.counts`` and ``Store.queue_depths`` count up to ``COUNT_CAP`` along
indexes (tens of milliseconds at most, however many rows are stored; past the
cap a count says it is a lower bound). Still, a page never waits on them: a
thread of the page's process takes them again once a page asks and the last
reading is older than ``EVERY``; pages show the last reading with its time and
how long it took (none yet: "counting").
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dj_daemon.errors import DJError
from dj_daemon.job import utcnow
from dj_daemon.store import Counts, Depths, Store

log = logging.getLogger("long_jobs.web")
EVERY = 5.0


@dataclass(frozen=True)
class Reading:
    at: datetime  #: when it was taken (UTC)
    took: float  #: seconds
    totals: Counts  #: waiting, running, failed
    depths: Depths  #: due and waiting by queue, with the oldest's run_at
    error: str = ""


class SlowCounts:
    """The last reading, and at most one thread taking the next."""

    def __init__(self, store: Store, every: float = EVERY) -> None:
        self.store = store
        self.every = every
        self.latest: Reading | None = None
        self._taken = 0.0  # monotonic time of the last start
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def current(self) -> Reading | None:
        """The last reading; a new one is started in the background when it is due."""
        with self._lock:
            due = time.monotonic() - self._taken >= self.every or self.latest is None
            if due and (self._thread is None or not self._thread.is_alive()):
                self._taken = time.monotonic()
                self._thread = threading.Thread(target=self.refresh, name="long_jobs-web-counts", daemon=True)
                self._thread.start()
        return self.latest

    def refresh(self) -> Reading:
        """Take a reading now (on the calling thread)."""
        started, at = time.monotonic(), utcnow()
        try:
            reading = Reading(at, 0.0, self.store.counts(), self.store.queue_depths())
        except DJError as exc:
            log.warning("cannot count the work queue: %s", exc)
            reading = Reading(at, 0.0, Counts(0, 0, 0), Depths({}), str(exc))
        self.latest = Reading(reading.at, round(time.monotonic() - started, 3), reading.totals, reading.depths,
                              reading.error)
        return self.latest

    def wait(self, timeout: float = 30.0) -> None:
        """Until the reading in progress is done (for tests and the bench)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
