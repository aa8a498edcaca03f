"""The workers' report pipe as the supervisor reads it, and the STATUS= line it makes of it."""
from __future__ import annotations

import os

from dj_daemon.reports import Channel, Slot, busy, status_text


def test_reports_reach_their_slots_and_ended_jobs_are_returned() -> None:
    channel = Channel()
    slots = {10: Slot(10, "h:10", 0, 0, 0.0), 11: Slot(11, "h:11", 1, 0, 0.0)}
    try:
        os.write(channel.write_fd, b"10 up\n10 busy 5\n11 up\n10 ok 5\n99 ok 3\n11 busy 6\n11 fail 6\n10 busy 7\n11 wa")
        ended = channel.deliver(slots)
        assert [(slot.pid, outcome) for slot, outcome in ended] == [(10, "ok"), (11, "fail")]  # 99: reaped already
        assert (slots[10].job, slots[10].done, slots[11].job, slots[11].waiting) == (7, 1, None, False)
        os.write(channel.write_fd, b"it\n")  # the rest of a line cut in two
        assert channel.deliver(slots) == [] and slots[11].waiting
    finally:
        os.close(channel.read_fd)
        os.close(channel.write_fd)


def test_status_text_counts_busy_and_idle_workers_and_names_what_is_wrong() -> None:
    slots = [Slot(1, "h:1", 0, 0, 0.0, job=4), Slot(2, "h:2", 0, 0, 0.0)]
    assert busy(slots) == 1
    assert status_text(slots, 12, "3", "", "") == "2 workers (1 busy, 1 idle), 12 jobs done, 3 queued"
    assert status_text([], 0, "?", "; pool a: 2 worker(s) died young, respawning in 2s", "gone") == (
        "0 workers (0 busy, 0 idle), 0 jobs done, ? queued; pool a: 2 worker(s) died young, respawning in 2s"
        "; database unreachable: gone")
