"""Experiment 1: kill -9 a random worker of ``delayed_job run -n 4`` every 0.5 s for 20 s while 2,000 jobs run
(in the suite: for 10 s, 1,000 jobs; ``make reliability`` runs the full size).

Afterwards every job has run, nothing is locked, the table is empty, and a
job ran twice only where a kill cut its first run short: its extra start is
by a pid this test killed, and the supervisor logged releasing that pid's job.
"""
from __future__ import annotations

import os
import random
import re
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import DIALECTS
from tests.faults.conftest import (Ledger, dialect_of, enqueue_timed, locked_rows, report_figure,
                                   rows_with_errors, size, total_rows, wait_until)

WORKERS = 4
KILL_EVERY = 0.5
KILL_FOR = size("KILL_SECONDS", 10, 20)
JOBS = round(100 * KILL_FOR)  # of 27.5 ms on average: enough to keep 4 workers busy through the storm


@pytest.mark.slow
@pytest.mark.parametrize("db_url", DIALECTS, indirect=True)
def test_kill_storm_loses_nothing_and_doubles_only_killed_runs(config, store, subprocess_env, daemons,
                                                               tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    tokens = enqueue_timed(config, store, side, JOBS, 0.005, 0.050, seed=1)
    daemon = daemons(subprocess_env, "-n", str(WORKERS))
    daemon.wait_ready()
    rng = random.Random(2)
    killed: list[int] = []
    empty_ticks = 0
    ticks = storm_start = time.monotonic()
    while time.monotonic() - storm_start < KILL_FOR:
        pids = daemon.worker_pids()
        if pids:
            victim = rng.choice(pids)
            try:
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)
            except ProcessLookupError:
                pass
        else:
            empty_ticks += 1  # no worker alive to kill (the supervisor is backing off its respawns)
        ticks += KILL_EVERY
        time.sleep(max(0.0, ticks - time.monotonic()))
    storm_end = time.monotonic()
    assert daemon.proc.poll() is None, daemon.log()
    full_pool = wait_until(lambda: len(daemon.worker_pids()) == WORKERS, timeout=60, interval=0.05)
    pool_back_s = time.monotonic() - storm_end
    drained = wait_until(lambda: total_rows(store) == 0, timeout=120, interval=0.2)
    drain_s = time.monotonic() - storm_end
    ledger = Ledger.read(side)
    killed_set = set(killed)
    doubled = ledger.doubled(tokens)
    log = daemon.log()
    released = {int(pid) for pid in re.findall(r"released \d+ job\(s\) of testhost:(\d+): worker testhost:\d+ "
                                                r"killed by SIGKILL", log)}
    unexplained, cut_mid_job, ended_then_rerun = [], 0, 0
    for token in doubled:
        ended_by = {pid for pid, _ in ledger.ends[token]}
        killed_starts = [pid for pid, _ in ledger.starts[token] if pid in killed_set]
        # each start beyond the first must belong to a run a kill cut short, released by the supervisor
        # (a killed worker's run that had ended is deleted by the supervisor, not released)
        cut_short = [p for p in killed_starts if p not in ended_by]
        if len(ledger.starts[token]) - 1 > len(killed_starts) or not all(p in released for p in cut_short):
            unexplained.append((token, ledger.starts[token], ledger.ends[token]))
        cut_mid_job += sum(1 for p in killed_starts if p not in ended_by)
        # a run that ended, by a worker killed before its row was deleted, then ran again
        ended_then_rerun += sum(1 for p, at in ledger.starts[token][:-1] if p in killed_set and p in ended_by)
    lost = ledger.lost(tokens)
    report_figure("worker_kill_storm", dialect_of(store), JOBS, ledger.performed(tokens), len(doubled), len(lost),
                  pool_back_s, kills=len(killed), kill_seconds=KILL_FOR, ticks_without_worker=empty_ticks,
                  drain_s=round(drain_s, 2),
                  doubled_cut_mid_job=cut_mid_job, doubled_after_end=ended_then_rerun,
                  died_young_backoff_lines=log.count("died young"))
    assert full_pool, f"pool not back to {WORKERS} workers: {daemon.worker_pids()}"
    assert drained, f"{total_rows(store)} rows left after {drain_s:.0f}s"
    assert not lost, f"{len(lost)} jobs never completed, e.g. {lost[:5]}"
    assert not ledger.unknown(tokens)
    assert not unexplained, f"double runs no kill explains: {unexplained[:5]}"
    assert locked_rows(store) == 0 and total_rows(store) == 0
    assert rows_with_errors(store) == []
    assert daemon.proc.poll() is None
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0, log[-3000:]
