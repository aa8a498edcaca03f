"""Waking the idle workers: when the supervisor polls the database for them, and whom it wakes.

Idle workers do not poll: each ``wait``s on a pipe of its own, and the
supervisor asks the database once for all of them, every ``poll_interval``
(``Wakeups.turn``), or wakes them at once when it hears of a job: a nudge
from an enqueue on this host (``nudge``), or a job PostgreSQL announced from
any host (``listen``), which brings the next poll forward to when it is due.
A woken worker tries to reserve; the supervisor wakes each wait once (see
``reports.Slot.waiting``), and a worker reserving at that moment too
(``reports.Slot.looking``): its read may have come before the job's commit.
"""
from __future__ import annotations

import math
import os
import socket
import time
from typing import Callable, Collection, Iterable

from . import nudge
from .listen import Ear
from .pools import Pool
from .reports import Slot


class Wakeups:
    """The supervisor's wake-up sources (the nudge socket, the ear on the database) and its idle
    poll's schedule."""

    def __init__(self, nudges: socket.socket | None, ear: Ear) -> None:
        self.nudges = nudges
        self.ear = ear
        self.next_poll = 0.0
        #: when a job the database announced comes due (``hear``): a poll then, whatever the
        #: poll interval's own schedule, which a poll in between must not push back
        self.announced_due = math.inf

    def fds(self) -> list[int | socket.socket]:
        """What the loop's ``select`` watches besides its own pipe."""
        return ([self.nudges] if self.nudges is not None else []) + self.ear.fds()

    def timeout(self, longest: float, slots: Iterable[Slot]) -> float:
        """How long the loop may sleep: ``longest``, or less for a poll brought forward by ``hear``
        while a worker waits for it."""
        if self.ear.fds() and any(s.waiting for s in slots):
            return max(0.0, min(longest, self.due() - time.monotonic()))
        return longest

    def heed(self, ready: list[int | socket.socket], slots: Collection[Slot]) -> None:
        """After the loop's ``select``: a nudge wakes every idle worker; the ear's news, ``hear``."""
        if self.nudges is not None and self.nudges in ready and nudge.drain(self.nudges):
            wake(slots, None)
        heard = self.ear.fds()
        if heard and heard[0] in ready:
            self.hear(slots)

    def hear(self, slots: Collection[Slot]) -> None:
        """Jobs the database announced (``listen``): wake the idle workers if one is due now, else
        bring the next poll forward to when the first is due."""
        due = self.ear.heard()
        if not due:
            return
        wait = min(due) - time.time()
        if wait <= 0:
            wake(slots, None)
        else:
            self.announced_due = min(self.announced_due, time.monotonic() + wait)

    def due(self) -> float:
        """When the next idle poll is due: on the poll interval's schedule, or sooner for a job
        announced for then (before, a poll that fell due in the turn that heard the announcement
        set the schedule past it, and the job waited a whole safety poll)."""
        return min(self.next_poll, self.announced_due)

    def turn(self, now: float, poll_interval: float, slots: Collection[Slot], pools: list[Pool],
             has_work: Callable[[tuple[str, ...]], bool | None]) -> bool:
        """Keep listening (``listen.Ear.keep_up``); then, if a poll is due and a worker waits, ask
        ``has_work`` once per pool with idle workers and wake those of a pool that has work. True
        when that poll found every worker waiting and the database sure that no pool has a job
        ready (what ends ``run --exit-on-complete``)."""
        self.ear.keep_up(now)
        if now < self.due() or not any(s.waiting for s in slots):
            return False
        self.next_poll = now + self.ear.poll_interval(poll_interval)
        if self.announced_due <= now:
            self.announced_due = math.inf
        answers = []
        for index, pool in enumerate(pools):
            idle = any(s.waiting and s.pool == index for s in slots)
            work = has_work(pool.queues) if idle else None
            answers.append(work)
            if work:
                wake(slots, index)
        return all_waiting(slots, pools) and all(work is False for work in answers)

    def close(self) -> None:
        """At the supervisor's stop."""
        self.ear.close()
        if self.nudges is not None:
            self.nudges.close()

    def forget_in_child(self) -> None:
        """In a forked worker: close the nudge socket, keep the ear's connection unclosed (the
        supervisor still uses both)."""
        if self.nudges is not None:
            self.nudges.close()
        self.ear.forget_in_child()


def all_waiting(slots: Collection[Slot], pools: Iterable[Pool]) -> bool:
    """Every worker of every pool is running and waits for work."""
    expected = sum(pool.size for pool in pools)
    return len(slots) == expected and all(s.waiting for s in slots)


def wake(slots: Iterable[Slot], pool: int | None) -> None:
    """Wake the idle workers (of one pool, or all): each will try to reserve. One reserving now is
    woken too (its wait to come ends at once): its reservation may have read the queue before the
    job that wakes the others was committed, and it would then wait for the next poll with the job
    due. A worker that has just exited, not yet reaped, has closed its end: the reaping that
    follows deals with it (a BrokenPipeError let through here ended the supervisor: click exits 1
    on EPIPE, silently)."""
    for slot in slots:
        if pool in (None, slot.pool) and (slot.waiting or slot.looking):
            if slot.waiting:
                slot.wake_sent()
            try:
                os.write(slot.wake, b"!")
            except (BlockingIOError, BrokenPipeError):
                pass
