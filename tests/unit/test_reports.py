"""The workers' boards as the supervisor reads them, and the STATUS= line and status dump it makes of them."""
from __future__ import annotations

import os

from dj_daemon.reports import Slot, busy, status_dump, status_text


def test_a_board_shows_the_supervisor_what_its_worker_wrote_through_a_fork() -> None:
    """The worker writes in a forked process; the supervisor reads the same memory, after the
    worker's death too, and wakes each wait once."""
    slot = Slot(10, "h:10", 0, 0, 0.0)
    pid = os.fork()
    if pid == 0:  # the worker: two runs ended, a third running, then a wait begins
        board = slot.board
        board.started()
        board.busy(5)
        board.ended(True, 6)
        board.ended(False, 7)
        board.ended(True)
        board.wait()
        os._exit(0)
    os.waitpid(pid, 0)
    assert (slot.up, slot.job, slot.done, slot.waiting) == (True, None, 3, True)
    assert slot.newly_ended() == (2, 1) and slot.newly_ended() == (0, 0)
    slot.wake_sent()
    assert not slot.waiting  # woken once: not again until it waits anew
    slot.board.woke()
    slot.board.busy(8)
    slot.board.wait()
    assert slot.job == 8 and slot.waiting
    slot.board.close()


def test_status_text_counts_busy_and_idle_workers_and_names_what_is_wrong() -> None:
    slots = [Slot(1, "h:1", 0, 0, 0.0), Slot(2, "h:2", 0, 0, 0.0)]
    slots[0].board.busy(4)
    assert busy(slots) == 1
    assert status_text(slots, 12, "3", "", "") == "2 workers (1 busy, 1 idle), 12 jobs done, 3 queued"
    assert status_text([], 0, "?", "; pool a: 2 worker(s) died young, respawning in 2s", "gone") == (
        "0 workers (0 busy, 0 idle), 0 jobs done, ? queued; pool a: 2 worker(s) died young, respawning in 2s"
        "; database unreachable: gone")


def test_status_dump_has_the_status_line_then_a_line_per_worker_by_pid() -> None:
    slots = [Slot(7, "h:7", 1, 2, 100.0, retiring=True), Slot(3, "h:3", 0, 1, 40.0)]
    slots[0].board.busy(9)
    slots[0].board.ended(True, 9)
    assert status_dump("2 workers", slots, ["mail"], 160.4) == [  # pool 1: gone with a reload
        "status: 2 workers",
        "  worker h:3 pool=mail gen=1 idle jobs_done=0 up=120s",
        "  worker h:7 pool=? gen=2 busy job 9 jobs_done=1 up=60s retiring"]
