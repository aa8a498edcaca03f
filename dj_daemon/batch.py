"""Batches of reserved jobs: how big the next one is, and giving back what a long job holds up.

A worker reserves several short jobs per round trip, which is most of the
speed of a database queue; but it must never sit on reserved jobs it is not
about to start. While a job runs, a timer stands ready: once the job has run
``LONG_JOB`` seconds, the rest of its batch is unlocked for other workers.
"""
from __future__ import annotations

import logging
import threading
from typing import Sequence

from .errors import DatabaseError
from .job import Job
from .store import Store

log = logging.getLogger("dj_daemon.worker")
LONG_JOB = 0.5     #: seconds after which a running job gives back the rest of its batch
FAST_BATCH = 0.25  #: a full batch done quicker than this doubles the next one


class BatchSize:
    """Doubles while batches are full and quick, back to one as soon as a job is slow."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.current = 1

    def after(self, count: int, elapsed: float) -> None:
        if elapsed >= LONG_JOB:
            self.current = 1
        elif count >= self.current and elapsed < FAST_BATCH:
            self.current = min(self.current * 2, self.maximum)


class ReleaseIfLong:
    """Context around one job: past ``LONG_JOB`` seconds, unlock ``rest`` from a timer thread."""

    def __init__(self, store: Store, rest: Sequence[Job]) -> None:
        self._store, self._rest = store, rest
        self._lock = threading.Lock()
        self._done = False
        self.released = False
        self._timer = threading.Timer(LONG_JOB, self._release) if rest else None

    def __enter__(self) -> "ReleaseIfLong":
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()
        return self

    def _release(self) -> None:
        with self._lock:
            if self._done:
                return
            try:
                self._store.release(self._rest)
                self.released = True
            except DatabaseError as exc:  # the jobs stay ours; they run after this one
                log.warning("could not give back %d reserved jobs: %s", len(self._rest), exc)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
        if self._timer is not None:
            self._timer.cancel()
