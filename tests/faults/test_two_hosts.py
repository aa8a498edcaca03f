"""Experiment 4: two hosts on one database, as two daemons with different host names (20,000 jobs; 5,000 in
the suite).

The hosts are two daemons on this machine with ``DJ_HOSTNAME`` set apart:
everything that crosses hosts (locks, heartbeats, states) is in the
database, so that is what is exercised; only the network between them is
not (network namespaces would add nothing the database does not see).
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import SERVERS
from tests.faults.conftest import (Ledger, dialect_of, enqueue_timed, locked_rows, report_figure,
                                   rows_with_errors, size, total_rows, wait_until)

JOBS = round(size("TWO_HOSTS_JOBS", 5000, 20_000))


@pytest.mark.slow
@pytest.mark.parametrize("db_url", SERVERS, indirect=True)
def test_two_hosts_share_the_queue_and_free_a_dead_hosts_locks(config, store, subprocess_env, daemons,
                                                               tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    tokens = enqueue_timed(config, store, side, JOBS, 0.0, 0.0, seed=4)
    beats = {"DJ_HEARTBEAT_INTERVAL": "0.5", "DJ_HEARTBEAT_TIMEOUT": "3"}
    host_a = daemons({**subprocess_env, **beats, "DJ_HOSTNAME": "host-a"}, "-n", "2")
    host_b = daemons({**subprocess_env, **beats, "DJ_HOSTNAME": "host-b"}, "-n", "2")
    started = time.monotonic()
    assert wait_until(lambda: total_rows(store) == 0, timeout=240, interval=0.2), host_a.log()[-2000:]
    drain_s = time.monotonic() - started
    ledger = Ledger.read(side)
    report_figure(f"two_hosts_{JOBS // 1000}k", dialect_of(store), JOBS, ledger.performed(tokens), len(ledger.doubled(tokens)),
                  len(ledger.lost(tokens)), None, drain_s=round(drain_s, 1), jobs_per_s=round(JOBS / drain_s))
    assert ledger.doubled(tokens) == [] and ledger.lost(tokens) == []
    assert {w["hostname"] for w in store.workers()} == {"host-a", "host-b"}

    # host A dies whole (kill -9 of supervisor and workers) holding long jobs; B frees and runs them
    long_side = str(tmp_path / "long.txt")
    long_tokens = enqueue_timed(config, store, long_side, 4, 3.0, 3.0, seed=5, prefix="long")
    def held_by_a() -> list[int]:
        return [j.id for j in store.jobs() if (j.locked_by or "").startswith("host-a:")]

    # a worker of B may reserve several in one batch; it gives the rest back after 0.5 s, and A takes them
    assert wait_until(held_by_a, timeout=20, interval=0.05), host_a.log()[-2000:]
    held = held_by_a()
    assert held, "host A holds no job to lose"
    os.killpg(host_a.proc.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    assert wait_until(lambda: total_rows(store) == 0, timeout=60, interval=0.2), host_b.log()[-2000:]
    recover_s = time.monotonic() - killed_at
    ledger = Ledger.read(long_side)
    report_figure("host_killed", dialect_of(store), len(long_tokens), ledger.performed(long_tokens),
                  len(ledger.doubled(long_tokens)), len(ledger.lost(long_tokens)), recover_s, held_by_dead_host=len(held))
    assert ledger.lost(long_tokens) == []
    for token in ledger.doubled(long_tokens):  # only runs the dead host had started and not ended
        first_pid = ledger.starts[token][0][0]
        assert first_pid not in {pid for pid, _ in ledger.ends[token]}
    assert "lost: no heartbeat for 3s" in host_b.log()
    assert locked_rows(store) == 0 and rows_with_errors(store) == []
    assert {w["hostname"] for w in store.workers()} == {"host-b"}
