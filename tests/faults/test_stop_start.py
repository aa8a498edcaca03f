"""Experiment 2: SIGTERM the daemon under load and start it again, five times over (three in the suite).

With ``DJ_GRACEFUL_TIMEOUT=5`` and jobs of at most 50 ms every job in hand
finishes inside the grace period, so no job may run twice and none is lost.
"""
from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.conftest import SERVERS
from tests.faults.conftest import (Ledger, dialect_of, enqueue_timed, locked_rows, report_figure,
                                   rows_with_errors, size, total_rows, wait_until)

JOBS = 1000
CYCLES = round(size("RESTARTS", 3, 5))
WORKERS = 4


def _ends_after(side: str, moment: float) -> list[float]:
    return [t for t in Ledger.read(side).end_times() if t > moment]


@pytest.mark.parametrize("db_url", SERVERS, indirect=True)
def test_stop_and_start_under_load_loses_and_doubles_nothing(config, store, subprocess_env, daemons,
                                                             tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    tokens = enqueue_timed(config, store, side, JOBS, 0.005, 0.050, seed=3)
    env = {**subprocess_env, "DJ_GRACEFUL_TIMEOUT": "5"}
    stops, gaps, logs = [], [], []
    last_term: float | None = None
    for cycle in range(CYCLES + 1):
        daemon = daemons(env, "-n", str(WORKERS))
        daemon.wait_ready()
        if last_term is not None:  # downtime: from the SIGTERM to the first job done by the new daemon
            assert wait_until(lambda: _ends_after(side, started), timeout=20, interval=0.02), daemon.log()
            gaps.append(_ends_after(side, started)[0] - last_term)
        started = time.monotonic()
        if cycle == CYCLES:
            break
        # under load: stop once this daemon has done a good handful of jobs, with jobs in hand
        wait_until(lambda: len(_ends_after(side, started)) >= 100, timeout=20, interval=0.02)
        assert total_rows(store) > 0, "queue drained before the restarts were done; enqueue more"
        last_term = time.monotonic()
        daemon.signal(signal.SIGTERM)
        code = daemon.wait(30)
        stops.append(time.monotonic() - last_term)
        logs.append(daemon.log())
        assert code == 0, logs[-1][-3000:]
        started = time.monotonic()
    drained = wait_until(lambda: total_rows(store) == 0, timeout=60, interval=0.1)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    logs.append(daemon.log())
    ledger = Ledger.read(side)
    doubled, lost = ledger.doubled(tokens), ledger.lost(tokens)
    grace_kills = sum(log.count("graceful timeout: killing") for log in logs)
    report_figure(f"stop_start_x{CYCLES}", dialect_of(store), JOBS, ledger.performed(tokens), len(doubled), len(lost),
                  max(gaps), restarts=CYCLES, graceful_timeout_s=5, max_stop_s=round(max(stops), 2),
                  restart_gaps_s=[round(g, 2) for g in gaps], grace_period_kills=grace_kills)
    assert drained, f"{total_rows(store)} rows left"
    assert not lost, f"{len(lost)} jobs never completed, e.g. {lost[:5]}"
    assert not doubled, f"ran twice: {[(t, ledger.starts[t]) for t in doubled[:5]]}"
    assert grace_kills == 0 and max(stops) < 5
    assert locked_rows(store) == 0 and rows_with_errors(store) == []
    assert all("Traceback" not in log for log in logs)
