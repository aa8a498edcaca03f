"""Batches of reserved jobs: how big the next one is, and giving back what a long job holds up.

A worker reserves several short jobs per round trip, which is most of the
speed of a database queue; but it must never sit on reserved jobs it is not
about to start. While a job runs, a timer stands ready: once the job has run
``LONG_JOB`` seconds, the rest of its batch is unlocked for other workers; and
once the batch has run ``turns.SLICE``, the worker's turn (if it holds one, see
``turns``) goes back to the other workers.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from typing import Sequence

from .errors import DatabaseError
from .job import Job
from .store import Store
from .turns import SLICE, Turn

log = logging.getLogger("dj_daemon.worker")
LONG_JOB = 0.5     #: seconds after which a running job gives back the rest of its batch
FAST_BATCH = 0.25  #: a full batch done quicker than this doubles the next one
#: The claim of a job with nothing after it (see ``ReleaseIfLong``): empty, never appended to.
NOTHING: list[Sequence[Job]] = []


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
    unlocks the rest of its batch, and while a batch runs past ``SLICE``, gives back the turn
    it holds. Armed and disarmed around each job, held for each batch: no thread per job.

    Only the first job of a batch wakes the thread; for the next ones, arming just moves
    the due time later, and the thread, waking at the old due time, waits again. A wake-up
    per job would cost two context switches per job at thousands of jobs a second. So for
    turns: the thread, timing one batch's turn, wakes at its due time and times the next.

    Nor does a job take a lock: its rest is held in a one-item list, its claim, which the
    worker (``disarm``) and the thread (giving back) each try to ``pop``. A ``pop`` is one
    step under the GIL, so exactly one of them gets it: the rest either runs here or is
    given back, never both. Only a worker whose claim the thread took waits, on the
    thread's lock, to learn whether the give-back held. Two lock round trips per job
    were a tenth of a worker's CPU per job on SQLite (docs/performance.md).
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cond = threading.Condition(threading.Lock())
        self._claim: list[Sequence[Job]] = NOTHING  # the running job's rest, until claimed
        self._due = 0.0
        self._turn: Turn | None = None  # the running batch's turn, until given back
        self._turn_due = 0.0
        self._timing = False  # the thread is in a timed wait: it will look at _due again by itself
        self._outcome: tuple[list[Sequence[Job]], bool] | None = None  # the last claim it took, given back?
        self._stopped = False
        self._thread = threading.Thread(target=self._watch, name="release-if-long", daemon=True)
        self._thread.start()

    def hold(self, turn: Turn | None) -> None:
        """A batch starts, holding ``turn`` (if any): given back if the batch runs past ``SLICE``
        (the worker gives it back itself at the batch's end: ``Turn.give`` happens once)."""
        if turn is None:  # no turns (no more workers than CPUs): no clock read per batch either
            self._turn = None
            return
        self._turn_due = time.monotonic() + SLICE
        self._turn = turn
        if not self._timing:  # read after the turn is set: see ``_watch``
            with self._cond:
                self._cond.notify()

    def arm(self, rest: Sequence[Job]) -> None:
        """A job starts; ``rest`` (the batch after it) goes back if it runs long."""
        self._due = time.monotonic() + LONG_JOB
        self._claim = [rest] if rest else NOTHING
        if rest and not self._timing:  # read after the claim is set: see ``_watch``
            with self._cond:
                self._cond.notify()

    def disarm(self) -> bool:
        """The job ended; True if the rest was given back meanwhile (do not run it)."""
        claim, self._claim = self._claim, NOTHING
        try:
            claim.pop()
            return False
        except IndexError:
            if claim is NOTHING:
                return False
        with self._cond:  # the thread took it: wait for the give-back's outcome
            while self._outcome is None or self._outcome[0] is not claim:
                self._cond.wait()
            return self._outcome[1]

    def stop(self) -> None:
        """End the thread (after a release in progress) and wait for it: the worker is closing."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join()

    def _watch(self) -> None:
        with self._cond:
            while not self._stopped:
                # not timing first, then look for a claim: an ``arm`` that set its claim after
                # this look saw ``_timing`` false, and notifies once this thread waits
                self._timing = False
                claim, turn = self._claim, self._turn
                if not claim and turn is None:
                    self._cond.wait()
                    continue
                self._timing = True
                now = time.monotonic()
                if turn is not None and self._turn_due <= now:
                    if self._turn is turn:  # else a new batch holds a new one, timed from now on
                        self._turn = None
                    turn.give()
                    continue
                due = min(self._due if claim else math.inf, self._turn_due if turn is not None else math.inf)
                delay = due - now
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                try:
                    rest = claim.pop()
                except IndexError:
                    continue  # its job ended first
                self._outcome = (claim, self._give_back(rest))
                self._cond.notify_all()

    def _give_back(self, rest: Sequence[Job]) -> bool:
        try:
            self._store.release(rest)
            return True
        except DatabaseError as exc:  # the jobs stay ours; they run after this one
            log.warning("could not give back %d reserved jobs: %s", len(rest), exc)
            return False
