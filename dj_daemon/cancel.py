"""Stopping a running job that was cancelled: the worker's flag, and the supervisor's rounds.

``delayed_job jobs cancel ID`` (or ``dj_daemon.cancel(ID)``) leaves a request in the database
for a running job (``store.cancels``). The supervisor of the host whose worker holds it reads
the requests in its upkeep (``Canceller.turn``) and, once that worker reports it busy with
the job, sends it ``SIGNAL``. The worker's handler only sets a flag. The job sees it through
``dj_daemon.cancelled()`` (one read of its request, to be sure the signal was meant for it)
and may stop: by returning or raising, its outcome is then recorded as cancelled, never as
done or failed, and it is not retried. A job that is still running ``cancel_grace`` seconds
after the signal has its worker killed; the supervisor's release of a killed worker's jobs
then removes it as cancelled too (``Store.worker_gone``). A job cancelled before it started
is removed at once.
"""
from __future__ import annotations

import logging
import signal
import time
from typing import Callable, Iterable

from .errors import DJError
from .job import current
from .reports import Slot

log = logging.getLogger(__name__)

#: What the supervisor sends a worker whose running job was cancelled.
SIGNAL = signal.SIGUSR1
#: How a worker killed for a cancelled job says so (its release then removes the job).
KILL_REASON = "cancelled job"
#: Seconds between two reads of the cancel requests by a supervisor.
READ_EVERY = 1.0


class JobCancelled(DJError):
    """A job stopped because it was cancelled (raised by the worker around a job that returned
    after ``cancelled()`` said so, so that no ``success`` hook runs)."""


class Flag:
    """A worker's cancel flag: set by ``SIGNAL``, confirmed against the job's request."""

    def __init__(self) -> None:
        self.signalled = False
        self.confirmed: int | None = None  # the job whose cancel was confirmed
        self.ask: Callable[[int], bool] | None = None  # whether a request stands for that job

    def on_signal(self, signum: int, frame: object) -> None:
        self.signalled = True

    def install(self, ask: Callable[[int], bool]) -> None:
        """In a worker process: take ``SIGNAL``; ``ask`` reads the request of a job."""
        self.ask = ask
        signal.signal(SIGNAL, self.on_signal)

    def requested(self, job_id: int) -> bool:
        """Whether job ``job_id`` was asked to stop. Free until a signal came; then one read, as
        a signal may be late, meant for the job before."""
        if self.confirmed == job_id:
            return True
        if not self.signalled or self.ask is None:
            return False
        self.signalled = False
        if self.ask(job_id):
            self.confirmed = job_id
            return True
        return False


#: This process's flag (a worker has one job at a time).
FLAG = Flag()


def cancelled() -> bool:
    """Inside a job: whether it was cancelled and should stop (return or raise) soon; its worker
    is killed ``cancel_grace`` seconds after the request otherwise. False outside a job."""
    try:
        job = current().job
    except LookupError:
        return False
    return job.id is not None and FLAG.requested(job.id)


def _idle(slots: list[Slot]) -> object:
    """While every worker is idle, what they have done (None otherwise). A request names the
    worker that holds the job: if a read found none, and the workers have been idle since,
    doing nothing, none can have come, and the next read waits until one works (an idle
    daemon sends no read)."""
    if any(slot.job is not None for slot in slots):
        return None
    return frozenset((slot.pid, slot.done) for slot in slots)


class Canceller:
    """A supervisor's side: which cancelled jobs' workers were signalled, and when."""

    def __init__(self) -> None:
        self.signalled: dict[int, float] = {}  # job id -> when its worker got SIGNAL (monotonic)
        self.next_read = 0.0
        self.quiet: object = None  # the idle workers' jobs done, at a read that found no request

    def turn(self, read: Callable[[], object], reconsider: Callable[[int], object], slots: Iterable[Slot],
             send: Callable[[Slot, int], None], grace: float) -> None:
        """One round, every ``READ_EVERY`` seconds but while nothing can have been asked (``_idle``):
        read this host's requests (``read``: None when the database did not answer), signal or
        kill the workers running those jobs, and cancel again (``reconsider``) the jobs their
        worker no longer holds."""
        now = time.monotonic()
        slots = list(slots)
        idle = _idle(slots)
        if now < self.next_read or (idle is not None and idle == self.quiet):
            return
        self.next_read = now + READ_EVERY
        requests = read()
        if not isinstance(requests, list):
            return
        self.quiet = idle if not requests else None
        by_name = {slot.name: slot for slot in slots}
        sends, stale = self.actions(requests, {name: slot.job for name, slot in by_name.items()}, grace, now)
        for name, signum, job_id in sends:
            slot = by_name[name]
            if signum == signal.SIGKILL:
                slot.kill_reason = f"{KILL_REASON} {job_id} still running after cancel_grace ({grace:g}s)"
            log.warning("job %d cancelled: %s worker %s", job_id,
                        "killing" if signum == signal.SIGKILL else "asking to stop", name)
            send(slot, signum)
        for job_id in stale:
            reconsider(job_id)

    def actions(self, requests: Iterable[tuple[int, str, str | None]], busy: dict[str, int | None],
                grace: float, now: float) -> tuple[list[tuple[str, int, int]], list[int]]:
        """What to do about the standing requests: ``(worker, signal, job)`` to send, and the jobs
        whose request no longer matches who holds them (to ``Store.reconsider``). ``busy`` maps
        this host's live workers to the job each reports running."""
        sends: list[tuple[str, int, int]] = []
        stale: list[int] = []
        standing = set()
        for job_id, worker, holder in requests:
            standing.add(job_id)
            if holder != worker:
                stale.append(job_id)
            elif worker in busy and busy[worker] == job_id:
                first = self.signalled.setdefault(job_id, now)
                if first == now:
                    sends.append((worker, SIGNAL, job_id))
                elif now - first >= grace:
                    sends.append((worker, signal.SIGKILL, job_id))
        self.signalled = {job_id: at for job_id, at in self.signalled.items() if job_id in standing}
        return sends, stale
