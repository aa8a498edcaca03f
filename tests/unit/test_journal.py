"""The worker's journal (``dj_daemon.journal``): notes that outlive the process, read back by whoever frees its rows."""
from __future__ import annotations

import os
from pathlib import Path

from dj_daemon import journal
from dj_daemon.journal import RECORD, Journal


def test_notes_read_back_until_cleared(tmp_path: Path) -> None:
    notes = Journal(str(tmp_path), "host:12")
    assert journal.read(str(tmp_path), "host:12") == set()
    for job_id in (7, 8, 2**62):
        assert notes.note(job_id)
    assert journal.read(str(tmp_path), "host:12") == {7, 8, 2**62}  # no close: what a kill -9 leaves
    notes.clear()
    notes.note(9)
    assert journal.read(str(tmp_path), "host:12") == {9}
    journal.remove(str(tmp_path), "host:12")
    assert journal.read(str(tmp_path), "host:12") is None  # no journal: nothing is known


def test_a_record_cut_mid_copy_is_ignored(tmp_path: Path) -> None:
    notes = Journal(str(tmp_path), "host:3")
    notes.note(41)
    path = journal.path_of(str(tmp_path), "host:3")
    with open(path, "r+b") as raw:  # the second record as a kill between the copy's two stores leaves it
        raw.seek(RECORD)
        raw.write(b"K%20d" % 42)
        raw.seek(3 * RECORD + 1)
        raw.write(b"%20d\n" % 43)
    assert journal.read(str(tmp_path), "host:3") == {41}


def test_a_full_journal_says_so(tmp_path: Path) -> None:
    notes = Journal(str(tmp_path), "host:4")
    assert all(notes.note(n) for n in range(journal.CAPACITY))
    assert not notes.note(journal.CAPACITY)
    notes.clear()
    assert notes.note(1) and journal.read(str(tmp_path), "host:4") == {1}


def test_dead_workers_of_this_host_only(tmp_path: Path) -> None:
    for name in ("web_1:999999999", f"web_1:{os.getpid()}", "other:999999998", "web_1:weird/name"):
        Path(journal.path_of(str(tmp_path), name)).touch()
    assert journal.dead_workers(str(tmp_path), "web_1", lambda pid: pid == os.getpid()) == ["web_1:999999999"]
    assert journal.dead_workers(str(tmp_path / "none"), "web_1", lambda pid: False) == []
