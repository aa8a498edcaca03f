"""What the fault experiments share: the run ledger, the figures they print, daemons, table checks.

Every experiment counts runs from its jobs' own side channel (``tests.faults.jobs``),
never from the queue's bookkeeping, and prints one figure::

    {"experiment", "dialect", "enqueued", "performed", "doubled", "lost", "recover_s", ...}

to stdout (see it with ``pytest -s``) and, when ``DJ_FAULTS_REPORT`` names a
file, as one JSON line appended to it.
"""
from __future__ import annotations

import json
import os
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import pytest
from sqlalchemy import func, select, text

from dj_daemon.api import Queue
from dj_daemon.config import Config
from dj_daemon.schema import delayed_jobs as dj
from dj_daemon.store import Store
from tests.faults import jobs as fjobs
from tests.process.daemon import Daemon


#: ``make reliability`` runs the experiments at their full size (``DJ_FAULTS_FULL=1``); the suite,
#: as CI runs it, sizes the storms smaller (``size``), each still long enough for what it asserts.
FULL = os.environ.get("DJ_FAULTS_FULL") == "1"


def size(knob: str, ci: float, full: float) -> float:
    """An experiment's size: ``$DJ_FAULTS_<knob>`` if set, else ``full`` under ``make reliability``,
    else ``ci``."""
    given = os.environ.get(f"DJ_FAULTS_{knob}")
    if given:
        return float(given)
    return float(full if FULL else ci)


@dataclass
class Ledger:
    """The runs recorded in a side channel: per token, the (pid, time) of each start and end."""

    path: str
    starts: dict[str, list[tuple[int, float]]] = field(default_factory=lambda: defaultdict(list))
    ends: dict[str, list[tuple[int, float]]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def read(cls, path: str) -> "Ledger":
        ledger = cls(path)
        try:
            with open(path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            kind, token, pid, stamp = line.split()
            (ledger.starts if kind == "start" else ledger.ends)[token].append((int(pid), float(stamp)))
        return ledger

    def performed(self, tokens: list[str]) -> int:
        return sum(1 for t in tokens if self.ends.get(t))

    def lost(self, tokens: list[str]) -> list[str]:
        return [t for t in tokens if not self.ends.get(t)]

    def doubled(self, tokens: list[str]) -> list[str]:
        return [t for t in tokens if len(self.starts.get(t, ())) > 1]

    def reruns(self, tokens: list[str]) -> tuple[int, int]:
        """Starts beyond a job's first: (those after it had already ended, those after a run cut short)."""
        after_end = cut_short = 0
        for token in tokens:
            ends = [at for _, at in self.ends.get(token, ())]
            for _, at in sorted(self.starts.get(token, ()), key=lambda run: run[1])[1:]:
                if any(end < at for end in ends):
                    after_end += 1
                else:
                    cut_short += 1
        return after_end, cut_short

    def unknown(self, tokens: list[str]) -> set[str]:
        """Tokens recorded that were never enqueued (must be none)."""
        return (set(self.starts) | set(self.ends)) - set(tokens)

    def end_times(self) -> list[float]:
        return sorted(t for runs in self.ends.values() for _, t in runs)


def report_figure(experiment: str, dialect: str, enqueued: int, performed: int, doubled: int, lost: int,
                  recover_s: float | None, **extra: Any) -> dict[str, Any]:
    """Print the experiment's figure and append it to ``$DJ_FAULTS_REPORT`` if set."""
    figure = {"experiment": experiment, "dialect": dialect, "enqueued": enqueued, "performed": performed,
              "doubled": doubled, "lost": lost,
              "recover_s": None if recover_s is None else round(recover_s, 2), **extra}
    line = json.dumps(figure, sort_keys=False)
    print(f"\nFIGURE {line}")
    target = os.environ.get("DJ_FAULTS_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(line + "\n")
    return figure


def enqueue_timed(config: Config, store: Store, side: str, count: int, low: float, high: float,
                  seed: int, prefix: str = "j") -> list[str]:
    """``count`` jobs of ``tests.faults.jobs:timed`` sleeping a seeded random ``low``..``high`` seconds."""
    rng = random.Random(seed)
    queue = Queue(config, store)
    tokens = [f"{prefix}{n}" for n in range(count)]
    for start in range(0, count, 500):
        queue.enqueue_many(queue.prepare(fjobs.timed, side, token, round(rng.uniform(low, high), 4))
                           for token in tokens[start:start + 500])
    return tokens


def locked_rows(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(dj).where(dj.c.locked_by.is_not(None))).scalar_one()


def total_rows(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(dj)).scalar_one()


def rows_with_errors(store: Store) -> list[tuple[int, int, str]]:
    """(id, attempts, first line of last_error) of every row that has an error."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(dj.c.id, dj.c.attempts, dj.c.last_error)
                            .where(dj.c.last_error.is_not(None))).all()
    return [(r[0], r[1], (r[2] or "").splitlines()[0]) for r in rows]


def dialect_of(store: Store) -> str:
    return store.engine.dialect.name


def innodb_counters(store: Store) -> dict[str, int]:
    """Server-wide InnoDB counters (shared by everything on the server, so read as an upper bound)."""
    with store.engine.connect() as conn:
        rows = conn.execute(text("SHOW GLOBAL STATUS WHERE Variable_name IN "
                                 "('Innodb_deadlocks', 'Innodb_row_lock_waits', 'Innodb_row_lock_current_waits')"))
        return {name: int(value) for name, value in rows}


@pytest.fixture
def daemons() -> Iterator[Callable[..., Daemon]]:
    """``daemons(env, "-n", "4")`` starts ``delayed_job run``; every one is killed at the end of the test."""
    started: list[Daemon] = []

    def start(env: dict[str, str], *args: str) -> Daemon:
        daemon = Daemon(env, *args)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.close()


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate``; True when it held within ``timeout`` (the caller asserts with context)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
