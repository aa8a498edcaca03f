"""The supervisor wakes idle workers through a pipe each: a worker that has just exited, and is
not reaped yet, has closed its end, and that must not end the supervisor.

Found by the PostgreSQL run of tests/schedule/test_daemons.py: a job announced by LISTEN/NOTIFY
woke the workers just as a reload had retired one, the write raised BrokenPipeError, and click
turned that into a silent exit 1 of the whole daemon. In-process: no database, no fork.
"""
from __future__ import annotations

import os

from dj_daemon.config import Config
from dj_daemon.reports import Slot
from dj_daemon.supervisor import Supervisor


def test_waking_a_worker_that_has_just_exited_leaves_the_others_woken() -> None:
    supervisor = Supervisor(Config(url="sqlite://", workers=2), lambda: Config())
    gone_r, gone_w = os.pipe()
    live_r, live_w = os.pipe()
    os.close(gone_r)  # the exited worker's end
    supervisor.slots = {1: Slot(1, "h:1", 0, 0, 0.0, wake=gone_w), 2: Slot(2, "h:2", 0, 0, 0.0, wake=live_w)}
    for slot in supervisor.slots.values():
        slot.board.wait()
    try:
        supervisor._wake_waiting(None)
        assert os.read(live_r, 1) == b"!"
        assert not any(slot.waiting for slot in supervisor.slots.values())
    finally:
        for fd in (gone_w, live_r, live_w):
            os.close(fd)
