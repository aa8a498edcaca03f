"""The worker's journal (``dj_daemon.journal``): notes that outlive the process, read back by whoever frees its rows."""
from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

from dj_daemon import journal
from dj_daemon.journal import RECORD, Journal
from tests.journals import hold


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
    assert journal.dead_workers(str(tmp_path), "web_1") == ["web_1:999999999"]
    assert journal.dead_workers(str(tmp_path / "none"), "web_1") == []


def test_a_held_journal_tells_a_live_worker_from_a_dead_one_whatever_its_pid(tmp_path: Path) -> None:
    """The pid of a dead worker may be any process's now (pids wrap): a journal no one holds is a
    dead worker's even while its pid runs; so is one whose pid is gone."""
    other = subprocess.Popen(["sleep", "60"])  # a live process with the dead worker's pid
    try:
        dead = f"web_1:{other.pid}"
        Journal(str(tmp_path), dead).note(5)  # left by a worker that died holding it
        assert journal.held(str(tmp_path), dead) is False
        assert journal.gone(str(tmp_path), dead, "web_1") is True
        assert journal.dead_workers(str(tmp_path), "web_1") == [dead]
        holder, _ = hold(str(tmp_path), "web_1:777")
        try:
            assert journal.held(str(tmp_path), "web_1:777") is True
            assert journal.gone(str(tmp_path), "web_1:777", "web_1") is False  # its pid is not running: no matter
            assert journal.claim(str(tmp_path), "web_1:777", patience=0.05) is None
        finally:
            holder.kill()
            holder.wait()
        assert journal.held(str(tmp_path), "web_1:777") is False  # the kernel let go at SIGKILL
        assert journal.gone(str(tmp_path), "web_1:777", "web_1") is True
    finally:
        other.kill()
        other.wait()


def test_a_journal_that_cannot_tell_leaves_it_to_the_pid(tmp_path: Path) -> None:
    """No journal, or one an older version wrote (its worker never held it: no blank record after
    its notes): judged by the pid, as before journals were held."""
    assert journal.held(str(tmp_path), f"web_1:{os.getpid()}") is None
    old = Path(journal.path_of(str(tmp_path), f"web_1:{os.getpid()}"))
    old.write_bytes(bytes(journal.SIZE))
    assert journal.held(str(tmp_path), f"web_1:{os.getpid()}") is None
    assert journal.gone(str(tmp_path), f"web_1:{os.getpid()}", "web_1") is False
    assert journal.gone(str(tmp_path), "web_1:999999999", "web_1") is True
    assert journal.gone(str(tmp_path), "other:1", "web_1") is None


def test_a_claim_waits_out_a_brief_hold_and_takes_the_file_at_the_path(tmp_path: Path) -> None:
    """A releaser holds a dead worker's journal while it settles, then removes it: a new worker
    of that name waiting meanwhile holds the new file, not the removed one."""
    folder, name = str(tmp_path), "web_1:778"
    releaser = journal.claim(folder, name)
    assert releaser is not None
    started = threading.Event()
    got: list[int | None] = []

    def claim() -> None:
        started.set()
        got.append(journal.claim(folder, name, patience=5))
    thread = threading.Thread(target=claim)
    thread.start()
    started.wait()
    time.sleep(0.05)
    journal.remove(folder, name)
    os.close(releaser)
    thread.join()
    assert got[0] is not None
    try:
        assert os.fstat(got[0]).st_ino == os.stat(journal.path_of(folder, name)).st_ino
    finally:
        os.close(got[0])
