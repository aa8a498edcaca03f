"""Experiment 4: InnoDB deadlocks (1213) and lock waits (1205) under six ``workoff`` processes (MariaDB).

The store retries a transaction from its start on 1213/1205, so neither may
surface as a job error, a lost job or a doubled job. Whether they actually
occurred is counted, not assumed: from the workers (``instrumented_cli``'s
retry log, which records each 1213/1205 the store saw) and from the server
(``Innodb_deadlocks``/``Innodb_row_lock_waits``, server-wide so an upper bound on
a shared server, and ``SHOW ENGINE INNODB STATUS``'s latest deadlock when it
names this test's database).
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from tests.conftest import ROOT
from tests.faults.conftest import (Ledger, dialect_of, enqueue_timed, innodb_counters, locked_rows,
                                   report_figure, rows_with_errors, total_rows, wait_until)

PROCESSES = 6


def start_workoffs(env: dict[str, str], count: int = PROCESSES) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-m", "tests.faults.instrumented_cli", "workoff"], cwd=ROOT,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(count)]


def finish(procs: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    outputs = [p.communicate(timeout=120) for p in procs]
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]


def latest_deadlock_here(store) -> bool:
    """Whether InnoDB's LATEST DETECTED DEADLOCK involved this test's database."""
    with store.engine.connect() as conn:
        status = conn.execute(text("SHOW ENGINE INNODB STATUS")).fetchone()[2]
    section = status.split("LATEST DETECTED DEADLOCK", 1)[1].split("TRANSACTIONS", 1)[0] \
        if "LATEST DETECTED DEADLOCK" in status else ""
    return store.engine.url.database in section


def retry_codes(path: Path) -> Counter:
    return Counter(line.split()[0] for line in path.read_text().splitlines()) if path.exists() else Counter()


def check_outcome(store, ledger: Ledger, tokens: list[str], results) -> None:
    assert all(code == 0 for code, _, _ in results), [(c, err[-2000:]) for c, _, err in results]
    assert sum(int(out.split()[0]) for _, out, _ in results) == len(tokens), [out for _, out, _ in results]
    assert all("Traceback" not in err for _, _, err in results)
    assert rows_with_errors(store) == [] and locked_rows(store) == 0 and total_rows(store) == 0
    assert not ledger.lost(tokens) and not ledger.doubled(tokens) and not ledger.unknown(tokens)


@pytest.mark.parametrize("isolation", ["store default (READ COMMITTED)", "REPEATABLE READ"])
@pytest.mark.parametrize("db_url", ["mysql"], indirect=True)
def test_six_batched_workoffs_deadlock_free_outcome(config, store, subprocess_env, tmp_path: Path,
                                                    isolation: str) -> None:
    with store.engine.connect() as conn:
        server_default = conn.execute(text("SELECT @@GLOBAL.tx_isolation")).scalar_one()
        store_isolation = conn.execute(text("SELECT @@SESSION.tx_isolation")).scalar_one()
    side, retries = str(tmp_path / "runs.txt"), tmp_path / "retries.txt"
    tokens = enqueue_timed(config, store, side, 1200, 0.001, 0.005, seed=5)
    env = {**subprocess_env, "DJ_BATCH_SIZE": "20", "DJ_LOG_LEVEL": "WARNING", "DJ_FAULTS_RETRY_LOG": str(retries)}
    if isolation == "REPEATABLE READ":
        env["DJ_FAULTS_ISOLATION"] = "REPEATABLE READ"
    before = innodb_counters(store)
    results = finish(start_workoffs(env))
    after = innodb_counters(store)
    ledger = Ledger.read(side)
    codes = retry_codes(retries)
    gave_up = sum(err.count("Deadlock found") + err.count("Lock wait timeout") for _, _, err in results)
    report_figure("deadlocks_6_workoffs_batch20", dialect_of(store), len(tokens), ledger.performed(tokens),
                  len(ledger.doubled(tokens)), len(ledger.lost(tokens)), None, isolation=isolation,
                  server_default_isolation=server_default,
                  workers_isolation="REPEATABLE-READ" if isolation == "REPEATABLE READ" else store_isolation,
                  store_saw_1213=codes.get("1213", 0), store_saw_1205=codes.get("1205", 0),
                  retries_exhausted_log_lines=gave_up,
                  server_deadlocks_delta=after["Innodb_deadlocks"] - before["Innodb_deadlocks"],
                  server_row_lock_waits_delta=after["Innodb_row_lock_waits"] - before["Innodb_row_lock_waits"],
                  latest_deadlock_in_this_db=latest_deadlock_here(store))
    assert server_default == "REPEATABLE-READ" and store_isolation == "READ-COMMITTED"
    check_outcome(store, ledger, tokens, results)


def hold_row_locks(url: str, rounds: int, hold_s: float, held: list[int], stop: threading.Event) -> None:
    """An operator's session at the server's default isolation: lock rows with FOR UPDATE, sit on them.

    ``held`` gets the number of rows locked in each round, or -1 for a round in which
    InnoDB chose this session as a deadlock victim (the round is then tried again).
    """
    engine = create_engine(url)
    try:
        while len([n for n in held if n >= 0]) < rounds and not stop.is_set() and len(held) < 2 * rounds:
            try:
                with engine.connect() as conn, conn.begin():
                    reserved = conn.execute(text("SELECT id FROM delayed_jobs WHERE locked_by IS NOT NULL "
                                                 "FOR UPDATE")).scalars().all()
                    waiting = conn.execute(text("SELECT id FROM delayed_jobs WHERE locked_by IS NULL "
                                                "ORDER BY id DESC LIMIT 40 FOR UPDATE")).scalars().all()
                    held.append(len(reserved) + len(waiting))
                    time.sleep(hold_s)
            except DBAPIError:
                held.append(-1)
            time.sleep(0.5)
    finally:
        engine.dispose()


@pytest.mark.parametrize("db_url", ["mysql"], indirect=True)
def test_rows_held_for_update_by_another_session_cause_waits_not_errors(config, store, subprocess_env,
                                                                        tmp_path: Path) -> None:
    side, retries = str(tmp_path / "runs.txt"), tmp_path / "retries.txt"
    tokens = enqueue_timed(config, store, side, 1000, 0.005, 0.015, seed=6)
    env = {**subprocess_env, "DJ_BATCH_SIZE": "20", "DJ_LOG_LEVEL": "WARNING", "DJ_FAULTS_RETRY_LOG": str(retries),
           "DJ_FAULTS_LOCK_WAIT_TIMEOUT": "1"}
    before = innodb_counters(store)
    procs = start_workoffs(env)
    assert wait_until(lambda: locked_rows(store) > 0, timeout=20, interval=0.02)
    held: list[int] = []
    stop = threading.Event()
    holder = threading.Thread(target=hold_row_locks, args=(config.url, 2, 2.0, held, stop))
    holder.start()
    results = finish(procs)
    stop.set()
    holder.join(timeout=30)
    left_by_workoff = total_rows(store)
    if left_by_workoff:  # a workoff exits when nothing is runnable; rows the holder had locked were not
        results += finish(start_workoffs(env, 1))
    after = innodb_counters(store)
    ledger = Ledger.read(side)
    codes = retry_codes(retries)
    gave_up = sum(err.count("Lock wait timeout") + err.count("Deadlock found") for _, _, err in results)
    report_figure("lock_waits_for_update_holder", dialect_of(store), len(tokens), ledger.performed(tokens),
                  len(ledger.doubled(tokens)), len(ledger.lost(tokens)), None, rows_held_per_round=held,
                  session_lock_wait_timeout_s=1, store_saw_1205=codes.get("1205", 0),
                  store_saw_1213=codes.get("1213", 0), retries_exhausted_log_lines=gave_up,
                  left_for_a_second_workoff=left_by_workoff,
                  server_row_lock_waits_delta=after["Innodb_row_lock_waits"] - before["Innodb_row_lock_waits"],
                  server_deadlocks_delta=after["Innodb_deadlocks"] - before["Innodb_deadlocks"])
    assert any(n > 0 for n in held), held
    check_outcome(store, ledger, tokens, results)
