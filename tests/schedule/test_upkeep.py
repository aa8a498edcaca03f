"""The supervisor's recurring duty in process (``Upkeep.recur``): it enqueues what is due, keeps
its schedule when a reload brings a bad one, and survives an entry whose job cannot be built."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from dj_daemon.config import Config
from dj_daemon.metrics import Metrics
from dj_daemon.recurrence import Entry
from dj_daemon.store import Store
from dj_daemon.store import recurring as runs
from dj_daemon.upkeep import Upkeep

TICK = Entry("tick", "tests.schedule.recurring_jobs:record", interval=1, args=("/dev/null",), grace=3)


@pytest.fixture
def upkeep(config: Config, store: Store, tmp_path: Path):
    upkeep = Upkeep(config.replace(schedule=(TICK,)), Metrics(), str(tmp_path))
    yield upkeep
    upkeep.store.dispose()


def test_recur_enqueues_the_occurrences_due_then_waits(upkeep: Upkeep, store: Store) -> None:
    upkeep.recur()
    assert "tick" in runs.last_runs(store)
    enqueued = store.counts()["waiting"]
    assert enqueued in (3, 4)  # a new entry: the occurrences of its grace (3 s), none missed
    upkeep.new_turn()
    upkeep.recur()  # handled: nothing again, one more at most if a second began meanwhile
    assert store.counts()["waiting"] in (enqueued, enqueued + 1)


def test_a_reloaded_schedule_that_is_refused_leaves_the_running_one(upkeep: Upkeep, store: Store,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    running = upkeep.scheduler
    upkeep.config = upkeep.config.replace(schedule=(Entry("bad", "tests.schedule.recurring_jobs:nowhere",
                                                          interval=1),))
    with caplog.at_level(logging.ERROR):
        upkeep.recur()
    assert upkeep.scheduler is running and "schedule not reloaded, keeping the running one" in caplog.text
    assert "tick" in runs.last_runs(store)


def test_an_entry_whose_job_cannot_be_built_is_logged_once_not_fatal(upkeep: Upkeep,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    planned = upkeep.scheduler.planned[0]
    upkeep.scheduler.planned = [planned._replace(target=None)]  # its row cannot be built: EnqueueError
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            upkeep.new_turn()
            upkeep.recur()
    assert caplog.text.count("cannot enqueue a recurring job") == 1
