"""The store's listener (``Store.listen``) and the supervisor's ``listen.Ear`` over it, on every dialect.

PostgreSQL: an insert is heard once its transaction commits, with its ``run_at``, never
when it rolls back, and the ear makes the idle poll a slow safety net. Elsewhere there is
nothing to hear and the poll stays as configured.
"""
from __future__ import annotations

import select
import time
from datetime import timedelta

from sqlalchemy import insert

from dj_daemon.api import Queue
from dj_daemon.listen import SAFETY_POLL, Ear
from dj_daemon.schema import delayed_jobs as dj
from tests import jobs


def _heard(ear: Ear, wait: float = 5.0) -> list[float]:
    select.select(ear.fds(), [], [], wait)
    return ear.heard()


def test_the_ear_hears_committed_inserts_only_where_the_database_can_tell(config, store, tmp_path) -> None:
    ear = Ear(store)
    ear.keep_up(time.monotonic())
    queue = Queue(config, store)
    if store.engine.dialect.name != "postgresql":
        assert (ear.fds(), ear.heard(), ear.poll_interval(0.5)) == ([], [], 0.5)
        return
    try:
        assert len(ear.fds()) == 1 and ear.poll_interval(0.5) == SAFETY_POLL
        before = time.time()
        store.insert([queue.prepare(jobs.record, str(tmp_path / "x"), "now")])
        [due] = _heard(ear)
        assert before - 5 < due <= time.time() + 1  # the row's run_at: due now
        later = store.clock() + timedelta(hours=1)
        store.insert([queue.prepare(jobs.record, str(tmp_path / "x"), n, run_at=later) for n in range(3)])
        assert [round(d) for d in _heard(ear)] == [round(time.time() + 3600)]  # one for the statement
        with store.engine.connect() as conn:  # an insert rolled back is never announced
            conn.execute(insert(dj), [queue.prepare(jobs.record, "y", "z").to_row(store.clock())])
            conn.rollback()
        assert _heard(ear, wait=0.5) == []
    finally:
        ear.close()
