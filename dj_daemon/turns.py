"""Turns to reserve: at most one reservation per CPU in flight among a host's workers.

With more workers than CPUs, the workers that reserve at the same moment read the
same best candidates, and all but one find them taken and read or lock again: four
workers on two cores sent 37% more statements per job to MariaDB than two did, and
the server and the workers each spent 41% more CPU per job (docs/performance.md,
"More workers than cores"). So a daemon with more workers than CPUs hands out turns:
one lock file per CPU in the journal folder, which a worker holds (``flock``) from
the start of its reservation to its commit. Jobs run outside any turn, so workers
whose jobs wait on the network still run as many at once as before.

A turn only spares the database work; nothing depends on it. The kernel lets go of
a dead worker's turn however it died; a worker that has waited ``WAIT`` for a turn
(every holder slow: a database that hangs, say) reserves without one, and a worker
being stopped does not wait.
"""
from __future__ import annotations

import fcntl
import logging
import os
import time
from contextlib import contextmanager
from typing import Callable, Iterator

log = logging.getLogger("dj_daemon.worker")
WAIT = 0.05  #: seconds a worker waits for a turn: many reservations' time (1-2 ms each here)
FIRST_PAUSE, LONGEST_PAUSE = 0.0002, 0.002  #: a waiter looks again after these, doubling


class Turns:
    """``count`` turns, shared by the workers of every daemon that keeps its journals in ``folder``."""

    def __init__(self, folder: str, count: int) -> None:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        self._fds = [os.open(os.path.join(folder, f"turn-{i}.lock"), flags, 0o600) for i in range(count)]

    def take(self, stopping: Callable[[], bool]) -> int | None:
        """A turn (to ``give`` back after the reservation's commit); None when none came within
        ``WAIT`` or the worker is being stopped: it reserves without one."""
        deadline, pause = time.monotonic() + WAIT, FIRST_PAUSE
        while True:
            for fd in self._fds:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    pass
            if stopping() or time.monotonic() >= deadline:
                return None
            time.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE)

    def give(self, turn: int) -> None:
        fcntl.flock(turn, fcntl.LOCK_UN)

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []


def for_daemon(folder: str, workers: int, cpus: int) -> Turns | None:
    """The turns of a daemon running ``workers`` on ``cpus``; None where there are no more workers
    than CPUs (no turn to wait for: no system call either), or where ``folder`` cannot hold them
    (logged: the workers reserve as they would without turns)."""
    if workers <= cpus:
        return None
    try:
        return Turns(folder, cpus)
    except OSError as exc:
        log.warning("cannot keep turns to reserve in %s (%s): reserving without them", folder, exc.strerror)
        return None


@contextmanager
def held(turns: Turns | None, stopping: Callable[[], bool]) -> Iterator[None]:
    """A turn of ``turns`` (if any, and if one comes: see ``Turns.take``) held over the block."""
    turn = turns.take(stopping) if turns is not None else None
    try:
        yield
    finally:
        if turn is not None:
            turns.give(turn)
