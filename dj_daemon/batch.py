"""Batches of reserved jobs: how big the next one is, and giving back what a long job holds up.

A worker reserves several short jobs per round trip, which is most of the
speed of a database queue; but it must never sit on reserved jobs it is not
about to start. While a job runs, a timer stands ready: once the job has run
``LONG_JOB`` seconds, the rest of its batch is unlocked for other workers.
"""
from __future__ import annotations

import logging
import threading
import time
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
    """One background thread per worker that, while a job runs past ``LONG_JOB`` seconds,
    unlocks the rest of its batch. Armed and disarmed around each job: no thread per job.

    Only the first job of a batch wakes the thread; for the next ones, arming just moves
    the due time later, and the thread, waking at the old due time, waits again. A wake-up
    per job would cost two context switches per job at thousands of jobs a second.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cond = threading.Condition()
        self._rest: Sequence[Job] = ()
        self._due = 0.0
        self._timing = False  # the thread is in a timed wait: it will look at _due again by itself
        self.released = False
        self._stopped = False
        self._thread = threading.Thread(target=self._watch, name="release-if-long", daemon=True)
        self._thread.start()

    def arm(self, rest: Sequence[Job]) -> None:
        with self._cond:
            self._rest, self._due, self.released = rest, time.monotonic() + LONG_JOB, False
            if rest and not self._timing:
                self._cond.notify()

    def disarm(self) -> bool:
        """Stop watching; True if the rest was given back meanwhile."""
        with self._cond:
            self._rest = ()
            return self.released

    def stop(self) -> None:
        """End the thread (after a release in progress) and wait for it: the worker is closing."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join()

    def _watch(self) -> None:
        with self._cond:
            while not self._stopped:
                if not self._rest:
                    self._timing = False
                    self._cond.wait()
                    continue
                self._timing = True
                delay = self._due - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                rest, self._rest = self._rest, ()
                try:
                    self._store.release(rest)
                    self.released = True
                except DatabaseError as exc:  # the jobs stay ours; they run after this one
                    log.warning("could not give back %d reserved jobs: %s", len(rest), exc)
