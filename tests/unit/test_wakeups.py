"""The supervisor's idle poll and its wake-ups: when it polls, whom it wakes, when nothing is left.

It wakes idle workers through a pipe each: a worker that has just exited, and is not reaped yet,
has closed its end, and that must not end the supervisor. Found by the PostgreSQL run of
tests/schedule/test_daemons.py: a job announced by LISTEN/NOTIFY woke the workers just as a
reload had retired one, the write raised BrokenPipeError, and click turned that into a silent
exit 1 of the whole daemon. In-process: no database, no fork.
"""
from __future__ import annotations

import os
import time

from dj_daemon.pools import Pool
from dj_daemon.reports import Slot
from dj_daemon.wakeups import Wakeups, wake


class TellingEar:
    """Hears the due times the test gives it, as ``listen.Ear`` hears PostgreSQL's announcements."""

    def __init__(self) -> None:
        self.due: list[float] = []

    def keep_up(self, now: float) -> None:
        pass

    def fds(self) -> list[int]:
        return []

    def poll_interval(self, configured: float) -> float:
        return configured

    def heard(self) -> list[float]:
        due, self.due = self.due, []
        return due


def _waiting_slots(count: int) -> tuple[list[Slot], list[int]]:
    """Workers of pools 0, 1, ..., each waiting; and the reading end of each one's wake pipe."""
    slots, reads = [], []
    for index in range(count):
        read, write = os.pipe()
        os.set_blocking(read, False)
        slots.append(Slot(index + 1, f"h:{index + 1}", index, 0, 0.0, wake=write))
        slots[-1].board.wait()
        reads.append(read)
    return slots, reads


def _woken(read: int) -> bool:
    try:
        return os.read(read, 8) == b"!"
    except BlockingIOError:
        return False


def test_waking_a_worker_that_has_just_exited_leaves_the_others_woken() -> None:
    gone_r, gone_w = os.pipe()
    live_r, live_w = os.pipe()
    os.close(gone_r)  # the exited worker's end
    slots = [Slot(1, "h:1", 0, 0, 0.0, wake=gone_w), Slot(2, "h:2", 0, 0, 0.0, wake=live_w)]
    for slot in slots:
        slot.board.wait()
    try:
        wake(slots, None)
        assert os.read(live_r, 1) == b"!"
        assert not any(slot.waiting for slot in slots)
    finally:
        for fd in (gone_w, live_r, live_w):
            os.close(fd)


def test_a_worker_reserving_is_woken_too_one_running_a_job_or_already_woken_is_not() -> None:
    """A reservation under way may have read the queue before the job that wakes the others was
    committed (tests/process/test_daemon.py shows what followed: a wait for the next poll)."""
    slots, reads = _waiting_slots(4)
    slots[1].board.woke()  # reserving: neither waiting nor running a job
    slots[2].board.woke()
    slots[2].board.busy(7)  # running job 7: it reserves again once the job ends
    wake(slots, None)
    assert [_woken(read) for read in reads] == [True, True, False, True]
    wake(slots, None)  # the waits already woken are not woken again; the reservation under way is
    assert [_woken(read) for read in reads] == [False, True, False, False]


def test_a_poll_when_due_wakes_the_pools_with_work_and_tells_when_none_has_any() -> None:
    slots, reads = _waiting_slots(2)
    pools = [Pool(("a",), 1), Pool(("b",), 1)]
    asked: list[tuple[str, ...]] = []

    def has_work(queues: tuple[str, ...]) -> bool:
        asked.append(queues)
        return queues == ("a",)

    wakeups = Wakeups(None, TellingEar())  # type: ignore[arg-type]
    assert not wakeups.turn(100.0, 5.0, slots, pools, has_work)
    assert asked == [("a",), ("b",)] and [_woken(r) for r in reads] == [True, False]
    assert not wakeups.turn(104.0, 5.0, slots, pools, has_work) and len(asked) == 2  # not due yet
    slots[0].board.wait()
    assert wakeups.turn(105.0, 5.0, slots, pools, lambda queues: False)  # all wait, no work anywhere
    for fd in reads + [s.wake for s in slots]:
        os.close(fd)


def test_an_announced_job_wakes_at_once_when_due_else_brings_the_poll_forward() -> None:
    slots, reads = _waiting_slots(1)
    pools, nothing = [Pool((), 1)], lambda queues: False
    ear = TellingEar()
    wakeups = Wakeups(None, ear)  # type: ignore[arg-type]
    now = time.monotonic()
    wakeups.turn(now, 10.0, slots, pools, nothing)
    assert wakeups.due() == now + 10.0
    ear.due = [time.time() + 12.0]
    wakeups.hear(slots)
    assert wakeups.due() == now + 10.0 and not _woken(reads[0])  # the interval's poll comes first
    wakeups.turn(now + 10.0, 10.0, slots, pools, nothing)
    assert now + 11.0 < wakeups.due() < now + 13.0  # it has not pushed the announced one back
    wakeups.turn(now + 13.0, 10.0, slots, pools, nothing)
    assert wakeups.due() == now + 13.0 + 10.0  # the announced poll done: back on the interval's schedule
    ear.due = [time.time() - 1.0]
    wakeups.hear(slots)
    assert _woken(reads[0])
    for fd in reads + [s.wake for s in slots]:
        os.close(fd)
