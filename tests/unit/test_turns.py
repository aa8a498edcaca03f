"""Turns to work (``dj_daemon.turns``) between real processes: one holder per turn, none
waited for long, none kept by a holder that died; a worker holds its turn over a quick batch
and gives it back at its end, or ``SLICE`` into a longer one."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from dj_daemon import turns
from dj_daemon.api import Queue
from dj_daemon.turns import SLICE, WAIT, Turns
from dj_daemon.worker import Worker
from tests import jobs


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
        turn.give()
    finally:
        ours.close()
        os.close(ready)


def test_a_turn_given_back_is_taken_by_a_waiter_and_given_once(tmp_path: Path) -> None:
    first, second = Turns(str(tmp_path), 1), Turns(str(tmp_path), 1)
    try:
        turn = first.take(lambda: False)
        assert turn is not None
        assert second.take(lambda: False) is None  # waited WAIT: goes on without a turn
        turn.give()
        again = second.take(lambda: False)
        assert again is not None and first.take(lambda: True) is None  # now the second one holds it
        again.give()
        mine = first.take(lambda: True)
        assert mine is not None  # and gave it back; the first holds it again, on the same file
        turn.give()  # given already (by the batch guard's thread, say): this second give is nothing
        assert second.take(lambda: True) is None  # the first's new turn still holds
    finally:
        first.close()
        second.close()


def test_no_turns_where_no_more_workers_than_cpus(tmp_path: Path) -> None:
    assert turns.for_daemon(str(tmp_path), 2, 2) is None and not list(tmp_path.iterdir())
    more = turns.for_daemon(str(tmp_path), 4, 2)
    assert more is not None and sorted(p.name for p in tmp_path.iterdir()) == ["turn-0.lock", "turn-1.lock"]
    more.close()
    assert turns.for_daemon(str(tmp_path / "missing"), 4, 2) is None  # logged; reserving without turns


def _worker_with_turns(config, store, folder: Path) -> Worker:
    """A worker as the daemon runs it with more workers than CPUs: here, with the only turn."""
    return Worker(config, store, name="testhost:1", turns=Turns(str(folder), 1))


def test_a_quick_batch_holds_its_turn_until_it_ends(config, store, tmp_path: Path) -> None:
    side, folder = str(tmp_path / "runs.txt"), tmp_path / "turns"
    folder.mkdir()
    queue = Queue(config, store)
    queue.enqueue_many(queue.prepare(jobs.turn_state, side, str(folder)) for _ in range(3))
    with _worker_with_turns(config, store, folder) as worker:
        assert worker.run(exit_when_empty=True).succeeded == 3
        assert jobs.runs(side) == ["held"] * 3  # batches of one, then two: each ran in its turn
        assert Turns(str(folder), 1).take(lambda: True) is not None  # given back with the batch's end


def test_a_batch_running_past_its_slice_gives_its_turn_back(config, store, tmp_path: Path) -> None:
    """A job waiting on the network keeps no CPU's turn: the batch guard's thread gives it back
    ``SLICE`` into the batch, while the job still runs."""
    side, folder = str(tmp_path / "runs.txt"), tmp_path / "turns"
    folder.mkdir()
    queue = Queue(config, store)
    queue.enqueue(jobs.turn_state, side, str(folder), priority=0)
    queue.enqueue(jobs.turn_state, side, str(folder), SLICE * 5, priority=1)
    with _worker_with_turns(config, store, folder) as worker:
        worker.batch.current = 2  # both in one batch
        assert worker.run(exit_when_empty=True).succeeded == 2
    assert jobs.runs(side) == ["held", "free"]
