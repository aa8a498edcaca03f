"""What the workers tell the supervisor, and what the supervisor tells of them (STATUS=).

Each worker has a ``Board``: a few numbers in memory it shares with its
supervisor (made before the fork), which it writes as it goes (up, waiting
for work, the job it runs, its runs that ended) and the supervisor reads
when it needs them: STATUS= (``status_text``), the status dump
(``status_dump``), the heartbeats, the jobs done counted for the web page's
charts. What a dead worker's rows become is read from its journal, which
outlives the supervisor too (see ``journal``).
"""
from __future__ import annotations

import mmap
from dataclasses import dataclass, field
from typing import Collection, Iterable, Sequence

UP, WAITS, WAITING, JOB, OK, FAILED = range(6)  #: the board's fields, 8 bytes each


class Board:
    """One worker's live figures, in an anonymous shared mapping that the fork gives the worker
    and the supervisor alike: written by the worker only, read by the supervisor.

    A job's report is a store or two into this memory: no system call, nothing to parse. The
    pipe of text lines it replaced cost a write(2) per job in the worker and the parsing in the
    supervisor, 6 to 8 µs of CPU a job between them on SQLite at thousands of jobs a second
    (docs/performance.md). Each field has one writer and is an aligned 8-byte integer, which a
    reader sees whole; and the memory outlives the worker, so what a worker that died had
    done is still there for its supervisor to count.
    """

    def __init__(self) -> None:
        self._map = mmap.mmap(-1, mmap.PAGESIZE)  # anonymous and MAP_SHARED: the fork shares it
        self._fields: memoryview | tuple[int, ...] = memoryview(self._map).cast("q")

    def close(self) -> None:
        """Unmap (the supervisor, once its worker is gone); it reads as last written from then on."""
        fields, self._fields = self._fields, tuple(self._fields)
        fields.release()
        self._map.close()

    # -- the worker's side ---------------------------------------------------------------
    def started(self) -> None:
        """Up and running: the supervisor's READY=1 waits for every first worker's."""
        self._fields[UP] = 1

    def wait(self) -> None:
        """About to wait for work: one more wait begins (the supervisor wakes each one once)."""
        self._fields[WAITS] += 1
        self._fields[WAITING] = 1

    def woke(self) -> None:
        self._fields[WAITING] = 0

    def busy(self, job_id: int) -> None:
        self._fields[JOB] = job_id

    def ended(self, ok: bool, next_job: int = 0) -> None:
        """A run ended (``ok``: it succeeded); the worker goes on with ``next_job`` (0: none)."""
        self._fields[OK if ok else FAILED] += 1
        self._fields[JOB] = next_job

    # -- the supervisor's side -------------------------------------------------------------
    def __getitem__(self, index: int) -> int:
        return self._fields[index]


@dataclass
class Slot:
    """One live worker process as the supervisor sees it: what it holds of its own, and the
    worker's ``Board``."""

    pid: int
    name: str
    pool: int
    generation: int
    started: float
    board: Board = field(default_factory=Board)
    wake: int = -1
    retiring: bool = False
    kill_reason: str = ""
    number: int = 0  #: the lowest not taken by a live worker when it was forked (its title in ps)
    woken: int = 0  #: the board's count of waits when the supervisor last woke it
    counted: tuple[int, int] = (0, 0)  #: runs that succeeded and failed, as last counted

    @property
    def up(self) -> bool:
        return bool(self.board[UP])

    @property
    def job(self) -> int | None:
        """The job it runs, if any."""
        return self.board[JOB] or None

    @property
    def done(self) -> int:
        """Runs ended, whatever their outcome."""
        return self.board[OK] + self.board[FAILED]

    @property
    def waiting(self) -> bool:
        """Waiting for work, and not woken yet since it began to."""
        return bool(self.board[WAITING]) and self.board[WAITS] != self.woken

    @property
    def looking(self) -> bool:
        """Neither waiting nor running a job: reserving, or about to wait after a reservation that
        found nothing, which may have read the queue before a job now committed was."""
        return not self.board[WAITING] and not self.board[JOB]

    def wake_sent(self) -> None:
        self.woken = self.board[WAITS]

    def newly_ended(self) -> tuple[int, int]:
        """Runs that succeeded and failed since the last call."""
        ok, failed = self.board[OK], self.board[FAILED]
        before, self.counted = self.counted, (ok, failed)
        return ok - before[0], failed - before[1]


def busy(slots: Iterable[Slot]) -> int:
    """How many of these workers run a job."""
    return sum(1 for s in slots if s.job)


def status_text(slots: Collection[Slot], jobs_done: int, queued: str, respawning: str, db_error: str) -> str:
    """The supervisor's one line for STATUS= and its status dump: workers busy and idle, jobs done
    since it started, ``queued`` (its last queue reading, see ``upkeep``), pools backing off
    (``respawning``, see ``pools.Respawns.waiting``), and why the database is unreachable (``db_error``,
    empty while it answers)."""
    working = busy(slots)
    text = (f"{len(slots)} workers ({working} busy, {len(slots) - working} idle), "
            f"{jobs_done} jobs done, {queued} queued")
    return text + respawning + (f"; database unreachable: {db_error}" if db_error else "")


def status_dump(status: str, slots: Iterable[Slot], labels: Sequence[str], now: float) -> list[str]:
    """The supervisor's status dump (USR2): its ``status`` line, then a line per worker by pid: its
    pool's label from ``labels`` ("?" for a pool a reload took away), generation, job, runs
    ended and age at ``now`` (monotonic)."""
    lines = [f"status: {status}"]
    for slot in sorted(slots, key=lambda s: s.pid):
        label = labels[slot.pool] if slot.pool < len(labels) else "?"
        doing = f"busy job {slot.job}" if slot.job else "idle"
        lines.append(f"  worker {slot.name} pool={label} gen={slot.generation:d} {doing} jobs_done={slot.done:d} "
                     f"up={now - slot.started:.0f}s{' retiring' if slot.retiring else ''}")
    return lines
