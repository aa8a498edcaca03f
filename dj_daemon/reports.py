"""What the workers tell the supervisor: one pipe of short lines, and each worker's slot; and
what the supervisor tells of them (STATUS=).

A worker writes ``<pid> up``, ``busy <id>``, ``ok <id>``, ``fail <id>``
and ``wait`` (several in one write where they fall together). The
supervisor reads the pipe once per turn of its loop and applies each line
to the worker's ``Slot`` (``Channel.deliver``): that feeds STATUS=
(``status_text``), the status dump and the heartbeats. What a dead worker's
rows become is read from its journal, which outlives the supervisor too (see
``journal``).
"""
from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from typing import Collection, Iterable

CHANNEL_BYTES = 1 << 20  #: seconds of reports at thousands of jobs a second


@dataclass
class Slot:
    """One live worker process as the supervisor sees it."""

    pid: int
    name: str
    pool: int
    generation: int
    started: float
    job: int | None = None
    wake: int = -1
    done: int = 0
    up: bool = False
    waiting: bool = False
    retiring: bool = False
    kill_reason: str = ""
    number: int = 0  #: the lowest not taken by a live worker when it was forked (its title in ps)

    def apply(self, event: str, job_id: str = "") -> bool:
        """Take in one report; True when it ends a job (``ok`` or ``fail``)."""
        self.waiting = event == "wait"
        if event == "up":
            self.up = True
        elif event == "busy":
            self.job = int(job_id)
        elif event in ("ok", "fail"):
            self.job = None
            self.done += 1
            return True
        return False


class Channel:
    """The report pipe: workers inherit ``write_fd``; the supervisor calls ``read``."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        #: a pipe that could not be widened must be read on every message, lest workers block
        self.needs_select = not _widen(self.write_fd)
        self._partial = ""

    def read(self) -> list[tuple[int, list[str]]]:
        """Every complete line written since the last call, as ``(pid, [event, arg...])``."""
        chunks = [self._partial]
        while True:
            try:
                chunk = os.read(self.read_fd, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk.decode())
        lines = "".join(chunks).split("\n")
        self._partial = lines.pop()
        reports = []
        for line in lines:
            pid, _, event = line.partition(" ")
            if pid.isdigit() and event:
                reports.append((int(pid), event.split()))
        return reports

    def deliver(self, slots: dict[int, Slot]) -> list[tuple[Slot, str]]:
        """Apply every report since the last call to its worker's slot (one not in ``slots``, reaped
        already, is passed over); returns the slots whose job ended, each with how (``ok``, ``fail``)."""
        ended = []
        for pid, event in self.read():
            slot = slots.get(pid)
            if slot is not None and slot.apply(*event):
                ended.append((slot, event[0]))
        return ended


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


def _widen(fd: int) -> bool:
    """Room enough to read the pipe once per loop turn instead of on every message (at
    thousands of jobs a second, waking per message cost a quarter of a core)."""
    try:
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), CHANNEL_BYTES)
        return True
    except OSError:
        return False
