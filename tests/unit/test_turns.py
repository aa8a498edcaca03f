"""Turns to reserve (``dj_daemon.turns``) between real processes: one holder per turn, none
waited for long, none kept by a holder that died."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from dj_daemon import turns
from dj_daemon.turns import WAIT, Turns


def _holder(folder: Path) -> tuple[int, int]:
    """A forked process that takes the only turn and holds it until killed; (pid, read end)."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        mine = Turns(str(folder), 1)
        assert mine.take(lambda: False) is not None
        os.write(ready_w, b"!")
        time.sleep(60)
        os._exit(0)
    os.close(ready_w)
    assert os.read(ready_r, 1) == b"!"
    return pid, ready_r


def test_a_turn_has_one_holder_and_a_dead_holder_keeps_none(tmp_path: Path) -> None:
    pid, ready = _holder(tmp_path)
    ours = Turns(str(tmp_path), 1)
    try:
        started = time.monotonic()
        assert ours.take(lambda: False) is None  # held elsewhere: given up after WAIT
        assert WAIT <= time.monotonic() - started < WAIT + 1
        started = time.monotonic()
        assert ours.take(lambda: True) is None and time.monotonic() - started < WAIT  # stopping: no wait
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        turn = ours.take(lambda: False)  # the kernel let go of the dead holder's
        assert turn is not None
        ours.give(turn)
    finally:
        ours.close()
        os.close(ready)


def test_a_turn_given_back_is_taken_by_a_waiter(tmp_path: Path) -> None:
    first, second = Turns(str(tmp_path), 1), Turns(str(tmp_path), 1)
    try:
        turn = first.take(lambda: False)
        assert turn is not None
        with turns.held(second, lambda: False):  # waits WAIT, then goes on without a turn
            pass
        first.give(turn)
        with turns.held(second, lambda: False):
            assert first.take(lambda: True) is None  # now the second one holds it
        assert first.take(lambda: True) is not None  # and gave it back
    finally:
        first.close()
        second.close()


def test_no_turns_where_no_more_workers_than_cpus(tmp_path: Path) -> None:
    assert turns.for_daemon(str(tmp_path), 2, 2) is None and not list(tmp_path.iterdir())
    more = turns.for_daemon(str(tmp_path), 4, 2)
    assert more is not None and sorted(p.name for p in tmp_path.iterdir()) == ["turn-0.lock", "turn-1.lock"]
    more.close()
    assert turns.for_daemon(str(tmp_path / "missing"), 4, 2) is None  # logged; reserving without turns
