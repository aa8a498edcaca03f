"""One bad row never stops the queue: hostile values written into ``delayed_jobs`` with plain SQL.

Each row of the table puts one value a column can hold (SQLite keeps anything
anywhere; MariaDB keeps zero dates unless sql_mode forbids them) into a job
that sits among good ones, inside one reservation batch. Whatever the value,
the good jobs all run exactly once, the worker survives, and the bad job
either fails for good unrun with a one-line reason (``DefectiveJob: ...``),
runs like any other when the value is odd but usable, or, when the value
makes the row never ready (SQLite compares text), waits untouched; every
reader an operator uses shows it. ``tests/faults/test_bad_input.py`` covers
bad input through the CLI (handlers, config, ids): these are bad rows.
"""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from dj_daemon.api import Queue
from dj_daemon.config import Config
from dj_daemon.store import Store
from dj_daemon.worker import Worker
from tests.conftest import bin_path
from tests.faults import jobs as fjobs
from tests.faults.conftest import Ledger, dialect_of
from tests.process.daemon import wait_for
from tests.process.test_metrics import free_port, scrape, total

BATCH = 8
FAILS, RUNS, WAITS = "fails unrun", "runs", "waits"


@dataclass(frozen=True)
class Bad:
    name: str
    column: str
    sql: str  # the value as an SQL literal or expression
    outcome: str  # FAILS, RUNS or WAITS
    reason: str = ""  # in the one-line last_error of a FAILS row, or shown by ``get`` for WAITS
    dialects: tuple[str, ...] = ("sqlite", "mysql")
    error: str = "DefectiveJob"  # what a FAILS row fails with


BIG = 2**63 - 1
CASES = [
    Bad("run_at_zero_date", "run_at", "'0000-00-00 00:00:00'", FAILS, "run_at is not a valid date: '0000-00-00"),
    Bad("run_at_zero_month", "run_at", "'2000-00-00 00:00:00'", FAILS, "run_at is not a valid date: '2000-00-00"),
    Bad("run_at_empty", "run_at", "''", FAILS, "run_at is not a valid date: ''", ("sqlite",)),
    Bad("run_at_number", "run_at", "12345", FAILS, "run_at is not a valid date: 12345", ("sqlite",)),
    Bad("run_at_garbage", "run_at", "'garbage'", WAITS, "run_at is not a valid date: 'garbage'", ("sqlite",)),
    Bad("attempts_int_max", "attempts", "2147483647", FAILS, "attempts is not usable: 2147483647"),
    Bad("attempts_negative", "attempts", "-2147483647", FAILS, "attempts is not usable: -2147483647"),
    Bad("attempts_huge", "attempts", str(BIG), FAILS, f"attempts is not usable: {BIG}", ("sqlite",)),
    Bad("attempts_text", "attempts", "'abc'", FAILS, "attempts is not usable: 'abc'", ("sqlite",)),
    Bad("priority_text", "priority", "'abc'", FAILS, "priority is not usable: 'abc'", ("sqlite",)),
    Bad("priority_huge", "priority", str(BIG), RUNS, dialects=("sqlite",)),
    Bad("priority_negative", "priority", "-2147483648", RUNS),
    Bad("handler_not_utf8", "handler", "CAST(X'7bff' AS TEXT)", FAILS, "handler is not usable: b'{\\xff'",
        ("sqlite",)),
    Bad("handler_blob", "handler", "X'ff'", FAILS, "handler is not usable: b'\\xff'", ("sqlite",)),
    Bad("handler_huge_sqlite", "handler", "replace(hex(zeroblob(1500000)), '0', 'x')", FAILS, "malformed handler",
        ("sqlite",), "DeserializationError"),
    Bad("handler_huge_mysql", "handler", "REPEAT('x', 3000000)", FAILS, "malformed handler", ("mysql",),
        "DeserializationError"),
    Bad("queue_not_utf8", "queue", "CAST(X'ff' AS TEXT)", FAILS, "queue is not usable: b'\\xff'", ("sqlite",)),
    Bad("queue_empty", "queue", "''", RUNS),
    Bad("queue_very_long", "queue", f"'{'q' * 5000}'", RUNS, dialects=("sqlite",)),
    Bad("strand_number", "strand", "42", RUNS, dialects=("sqlite",)),
    Bad("locked_at_zero_date", "locked_at", "'0000-00-00 00:00:00'", RUNS, dialects=("mysql",)),
    Bad("locked_at_garbage", "locked_at", "'garbage'", WAITS, "locked_at is not a valid date", ("sqlite",)),
    Bad("failed_at_zero_date", "failed_at", "'0000-00-00 00:00:00'", WAITS, "failed_at is not a valid date"),
    Bad("created_at_zero_date", "created_at", "'0000-00-00 00:00:00'", RUNS),
]


def insert_bad(store: Store, side: str, bad: Bad) -> int:
    """The bad row, by hand: a good job's values but for ``bad.column``."""
    handler = json.dumps({"target": "tests.faults.jobs:timed", "args": [side, "bad", 0], "kwargs": {}})
    values = {"handler": f"'{handler}'", "priority": "0", "attempts": "0", "run_at": "'2000-01-01 00:00:00'",
              "created_at": "'2000-01-01 00:00:00'", "updated_at": "'2000-01-01 00:00:00'", bad.column: bad.sql}
    with store.engine.begin() as conn:
        conn.execute(text(f"INSERT INTO delayed_jobs ({', '.join(values)}) VALUES ({', '.join(values.values())})"))
        return conn.execute(text("SELECT MAX(id) FROM delayed_jobs")).scalar_one()


def enqueue_good(config: Config, store: Store, side: str, prefix: str, count: int,
                 run_at: datetime | None = None) -> list[str]:
    queue = Queue(config, store)
    tokens = [f"{prefix}{n}" for n in range(count)]
    for token in tokens:
        queue.enqueue(fjobs.timed, side, token, 0, run_at=run_at)
    return tokens


def raw_row(store: Store, job_id: int) -> tuple:
    with store.engine.connect() as conn:
        return conn.execute(text("SELECT attempts, failed_at IS NOT NULL, locked_by, last_error FROM delayed_jobs "
                                 "WHERE id = :id"), {"id": job_id}).one()


@pytest.mark.parametrize("db_url, bad", [(d, b) for b in CASES for d in b.dialects], indirect=["db_url"],
                         ids=[f"{b.name}-{d}" for b in CASES for d in b.dialects])
def test_bad_row_among_good_ones_in_one_batch(config: Config, store: Store, subprocess_env, tmp_path: Path,
                                              bad: Bad) -> None:
    side = str(tmp_path / "runs.txt")
    config = config.replace(batch_size=BATCH)
    worker = Worker(config, store, name="testhost:1")
    warm: list[str] = []
    for turn in range(10):  # a batch doubles only when quick: a loaded machine may need more turns
        warm += enqueue_good(config, store, side, f"warm{turn}_", 2 * BATCH)
        worker.run(exit_when_empty=True)
        if worker.batch.current == BATCH:
            break
    assert worker.batch.current == BATCH  # the next reservation takes the bad row with good ones

    good = enqueue_good(config, store, side, "before", 3, run_at=datetime(1999, 1, 1))
    bad_id = insert_bad(store, side, bad)
    good += enqueue_good(config, store, side, "after", BATCH)
    assert isinstance(store.queue_depths(), dict) and store.counts()  # readers survive it while it waits
    assert bad_id in [job.id for job in store.jobs()]
    stats = worker.run(exit_when_empty=True)  # the worker survives: run returns

    ledger = Ledger.read(side)
    assert all(len(ledger.starts[t]) == len(ledger.ends[t]) == 1 for t in warm + good), dict(ledger.starts)
    if bad.outcome == RUNS:
        assert len(ledger.starts["bad"]) == len(ledger.ends["bad"]) == 1 and stats.failed == 0
        assert store.jobs() == []
        return
    attempts, failed, locked_by, last_error = raw_row(store, bad_id)
    shown = store.get(bad_id)
    assert shown.id == bad_id and locked_by is None
    if bad.outcome == FAILS:
        assert "bad" not in ledger.starts and stats.failed == 1
        assert (attempts, failed) == (1, True) and shown.state == "failed"
        first = last_error.splitlines()[0]
        assert first.startswith(f"{bad.error}: ") and bad.reason in first and len(first) < 200, first
        assert bad.error != "DefectiveJob" or last_error.strip() == first, last_error  # one line: nothing ran
    else:
        assert "bad" not in ledger.starts and stats.failed == 0 and last_error is None
        assert shown.state == "defective" and bad.reason in (shown.defect or ""), shown
        listing, detail = dj(subprocess_env, "jobs", "list"), dj(subprocess_env, "jobs", "show", str(bad_id))
        line = [row for row in listing.stdout.splitlines() if row.split()[0] == str(bad_id)]
        assert line and "defective" in line[0] and bad.reason in line[0], listing
        assert f"defect: {bad.reason}" in detail.stdout, detail
        assert dj(subprocess_env, "jobs", "retry", str(bad_id)).returncode == 0  # the operator's way out
        worker.run(exit_when_empty=True)
        assert len(Ledger.read(side).ends["bad"]) == 1 and store.jobs() == []


def dj(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """``delayed_job ARGS``, which must succeed without a traceback."""
    result = subprocess.run([bin_path("delayed_job"), *args], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result
    return result


@pytest.mark.parametrize("db_url", ["sqlite", "mysql"], indirect=True)
def test_daemon_with_metrics_outlives_a_bad_row(config: Config, store: Store, start_daemon, subprocess_env,
                                                tmp_path: Path) -> None:
    """The real daemon, metrics on: the supervisor's queue reading meets the bad row (due, the
    oldest) and must not exit 70; no worker crash-loops; the bad job fails, the rest run."""
    side, port = str(tmp_path / "runs.txt"), free_port()
    good = enqueue_good(config, store, side, "before", 4 * BATCH)
    bad = Bad("zero", "run_at", "'0000-00-00 00:00:00'" if dialect_of(store) == "mysql" else "''", FAILS)
    bad_id = insert_bad(store, side, bad)  # due and the oldest at the supervisor's first reading
    good += enqueue_good(config, store, side, "after", 4 * BATCH)
    daemon = start_daemon("-n", "2", env={"DJ_METRICS_PORT": str(port), "DJ_BATCH_SIZE": str(BATCH)})
    daemon.wait_ready()
    wait_for(lambda: Ledger.read(side).performed(good) == len(good), what="every good job run")
    wait_for(lambda: raw_row(store, bad_id)[1], what="the bad job failed")
    wait_for(lambda: daemon.sent("STATUS=") and "0 queued" in daemon.sent("STATUS=")[-1], what="a reading after")
    assert daemon.proc.poll() is None, daemon.log()  # the supervisor is alive...
    found = scrape(port)  # ...and serving
    assert total(found, "delayed_job_jobs_failed_total") == 1
    assert total(found, "delayed_job_supervisor_errors_total") == 0
    assert daemon.log().count("spawned worker") == 2, daemon.log()  # no worker died and came back
    assert "Traceback" not in daemon.log()
    ledger = Ledger.read(side)
    assert all(len(ledger.starts[t]) == 1 for t in good) and "bad" not in ledger.starts
    listing = dj(subprocess_env, "jobs", "list", "--failed")
    assert "DefectiveJob: run_at is not a valid date" in listing.stdout, listing
