"""Turns to work: at most one worker per CPU reserving or running short jobs among a host's workers.

With more workers than CPUs, the workers that reserve at the same moment read the
same best candidates, and all but one find them taken and read or lock again: four
workers on two cores sent 37% more statements per job to MariaDB than two did, and
the server and the workers each spent 41% more CPU per job (docs/performance.md,
"More workers than cores"). Nor do four workers running short jobs on two cores do
more than two: they take the cores from each other in the middle of a batch, and
each spent a fifth more CPU per job than two did. So a daemon with more workers than
CPUs hands out turns: one lock file per CPU in the journal folder, which a worker
holds (``flock``) from the start of its reservation to the end of its batch. A batch
that runs past ``SLICE`` gives its turn back (the batch guard's thread does, see
``batch``): workers whose jobs wait on the network still run as many at once as
before, and short jobs run as many at once as there are CPUs.

A turn only spares the CPUs and the database work; nothing depends on it. The kernel
lets go of a dead worker's turn however it died; a worker that has waited ``WAIT``
for a turn (every holder slow: a database that hangs, say) goes on without one, and
a worker being stopped does not wait.
"""
from __future__ import annotations

import fcntl
import logging
import os
import time
from typing import Callable

log = logging.getLogger("dj_daemon.worker")
#: seconds of a batch's run that a turn covers: many batches of short jobs (50 empty jobs took
#: 1.5 ms here), and short enough that a job waiting on the network soon lets another worker work
SLICE = 0.02
#: seconds a worker waits for a turn: longer than a holder keeps one unless its reservation is
#: slow (a turn goes back at its batch's end or ``SLICE`` into it), so that a worker waiting its
#: turn behind quick batches does not go on without one and take a CPU from them
WAIT = 0.2
FIRST_PAUSE, LONGEST_PAUSE = 0.0002, 0.002  #: a waiter looks again after these, doubling


class Turn:
    """A turn taken, given back once: by the worker at its batch's end, or by the batch guard's
    thread ``SLICE`` into the batch, whichever comes first. Each ``pop``s the one-item claim (one
    step under the GIL), and only the one that got it unlocks. Were the worker to take the same
    file again between the thread's ``pop`` and its unlock, that next turn would go unlocked: one
    batch beside the others, which is all a turn is ever worth (see above)."""

    def __init__(self, fd: int) -> None:
        self._claim = [fd]

    def give(self) -> None:
        try:
            fd = self._claim.pop()
        except IndexError:
            return
        fcntl.flock(fd, fcntl.LOCK_UN)


class Turns:
    """``count`` turns, shared by the workers of every daemon that keeps its journals in ``folder``."""

    def __init__(self, folder: str, count: int) -> None:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        self._fds = [os.open(os.path.join(folder, f"turn-{i}.lock"), flags, 0o600) for i in range(count)]

    def take(self, stopping: Callable[[], bool]) -> Turn | None:
        """A turn (to give back at the end of the batch that follows); None when none came within
        ``WAIT`` or the worker is being stopped: it goes on without one."""
        deadline, pause = time.monotonic() + WAIT, FIRST_PAUSE
        while True:
            for fd in self._fds:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return Turn(fd)
                except BlockingIOError:
                    pass
            if stopping() or time.monotonic() >= deadline:
                return None
            time.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE)

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

