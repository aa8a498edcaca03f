"""Experiments 7 and 8: kill -9 of the whole daemon, again and again; then the loss of a host.

A worker deletes its finished jobs' rows with its next reservation, and keeps
them meanwhile in its journal (``dj_daemon.journal``), which outlives the
processes. So after kill -9 of every process of the daemon, the next daemon
on the host deletes the finished jobs instead of running them again: the only
jobs that run twice are those a kill cut mid-run. A host lost whole (its
memory too: here, its journals removed) is taken over by another host once
its heartbeats stop; only then may finished jobs run again, at most a batch
per worker, and never a job whose class asks for ``commit_each``.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import time
from pathlib import Path

import pytest

from dj_daemon.api import Queue
from dj_daemon.config import Config
from tests.conftest import DIALECTS, SERVERS
from tests.faults import jobs as fjobs
from tests.faults.conftest import (Ledger, dialect_of, enqueue_timed, locked_rows, report_figure, size, total_rows,
                                   wait_until)
from tests.process.daemon import Daemon

WORKERS = 2
KILLS = round(size("DAEMON_KILLS", 4, 20))
#: More than the kill rounds get through (250-450 each here): the last daemon finds work left.
JOBS = max(2500, 300 * KILLS)
BATCH = 50  # the default batch_size: what a host loss may run again per worker


def kill_whole(daemon: Daemon) -> None:
    """SIGKILL to every process of the daemon at once, as the OOM killer or `systemctl kill -s 9` would."""
    os.killpg(daemon.proc.pid, signal.SIGKILL)
    daemon.proc.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.parametrize("db_url", DIALECTS, indirect=True)
def test_whole_daemon_kill_storm_runs_no_finished_job_again(config, store, subprocess_env, daemons,
                                                            tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    tokens = enqueue_timed(config, store, side, JOBS, 0.0005, 0.003, seed=7)
    rng = random.Random(8)
    kills = 0
    kill_times: list[float] = []
    for _ in range(KILLS):
        daemon = daemons(subprocess_env, "-n", str(WORKERS))
        daemon.wait_ready()
        time.sleep(rng.uniform(0.3, 0.9))
        kill_times.append(time.monotonic())
        kill_whole(daemon)
        kills += 1
    started, left = time.monotonic(), total_rows(store)
    last = daemons(subprocess_env, "-n", str(WORKERS))
    last.wait_ready()
    drained = wait_until(lambda: total_rows(store) == 0, timeout=120, interval=0.2)
    recover_s = time.monotonic() - started
    ledger = Ledger.read(side)
    after_end, cut_short = ledger.reruns(tokens)
    lost = ledger.lost(tokens)
    # a kill that lands between a job's last line and its worker's journal line (microseconds) is
    # indistinguishable from one a moment before that last line: such a job counts as cut, not finished
    at_kill = sum(1 for t in ledger.doubled(tokens) for _, end in ledger.ends[t]
                  if any(abs(kill - end) < 0.002 for kill in kill_times))
    report_figure("daemon_kill_storm", dialect_of(store), JOBS, ledger.performed(tokens),
                  len(ledger.doubled(tokens)), len(lost), recover_s, kills=kills, workers=WORKERS,
                  finished_reruns=after_end, cut_mid_job_reruns=cut_short, ended_at_a_kill=at_kill,
                  left_for_the_last=left)
    assert drained, f"{total_rows(store)} rows left, e.g. {[(j.id, j.locked_by) for j in store.jobs(limit=3)]}"
    assert not lost, f"{len(lost)} jobs never completed, e.g. {lost[:5]}"
    assert after_end <= at_kill, f"{after_end} jobs ran again after they had finished ({at_kill} at a kill)"
    assert cut_short <= kills * WORKERS, "more reruns than runs the kills could cut"
    assert locked_rows(store) == 0
    last.signal(signal.SIGTERM)
    assert last.wait(30) == 0


@pytest.mark.slow
@pytest.mark.parametrize("db_url", SERVERS, indirect=True)
def test_a_lost_host_reruns_at_most_a_batch_per_worker(config: Config, store, subprocess_env, daemons,
                                                      tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    tokens = enqueue_timed(config, store, side, JOBS, 0.0005, 0.003, seed=9)
    queue = Queue(config, store)
    durable = [f"d{n}" for n in range(300)]
    queue.enqueue_many(queue.prepare(fjobs.durable, side, token, 0.001) for token in durable)
    quick_beats = {"DJ_HEARTBEAT_INTERVAL": "0.2", "DJ_HEARTBEAT_TIMEOUT": "2"}
    lost_host = daemons({**subprocess_env, **quick_beats, "DJ_HOSTNAME": "lost"}, "-n", str(WORKERS))
    lost_host.wait_ready()
    time.sleep(1.0)
    kill_whole(lost_host)
    # the host's memory is gone with it: its page cache, so its workers' journals
    shutil.rmtree(os.path.join(config.sentinel_dir, "journal"))
    held = locked_rows(store)
    killed = time.monotonic()
    daemons({**subprocess_env, **quick_beats, "DJ_HOSTNAME": "survivor"}, "-n", str(WORKERS))
    drained = wait_until(lambda: total_rows(store) == 0, timeout=120, interval=0.2)
    recover_s = time.monotonic() - killed
    ledger = Ledger.read(side)
    after_end, cut_short = ledger.reruns(tokens)
    durable_after_end, _ = ledger.reruns(durable)
    lost = ledger.lost(tokens + durable)
    report_figure("host_lost_whole", dialect_of(store), JOBS + len(durable), ledger.performed(tokens + durable),
                  len(ledger.doubled(tokens + durable)), len(lost), recover_s, held_by_lost_host=held,
                  finished_reruns=after_end, finished_reruns_commit_each=durable_after_end,
                  cut_mid_job_reruns=cut_short, bound=WORKERS * BATCH)
    assert drained and not lost
    assert after_end <= WORKERS * BATCH, f"{after_end} finished jobs ran again: more than a batch per worker"
    assert durable_after_end == 0, "a commit_each job ran again after it had finished"
