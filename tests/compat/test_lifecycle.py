"""delayed_job's job lifecycle, one test per behaviour, with a real in-process Worker on SQLite
and MariaDB: hook order (``Delayed::Backend::Base#invoke_job``, ``Delayed::Worker#run``,
``#handle_failed_job``, ``#failed``), the enqueue hook, the global ``Lifecycle`` plugin points,
a job's own ``reschedule_at``, and ``destroy_failed_jobs``."""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Iterator

import pytest
from sqlalchemy import select

from dj_daemon import lifecycle
from dj_daemon.api import Queue
from dj_daemon.config import Config
from dj_daemon.errors import EnqueueError
from dj_daemon.job import utcnow
from dj_daemon.lifecycle import LIFECYCLE, LifecycleError
from dj_daemon.schema import delayed_jobs as dj
from dj_daemon.store import Store
from dj_daemon.worker import Worker
from tests.compat import lifecycle_jobs as lj


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    """Each test starts with no event noted and no plugin callback (the lifecycle is per process)."""
    lj.EVENTS.clear()
    lj.SEEN.clear()
    lj.INSTALLS.clear()
    LIFECYCLE.clear()
    yield
    LIFECYCLE.clear()


def work_off(config: Config, store: Store) -> tuple[int, int]:
    stats = Worker(config, store, name="testhost:1").run(exit_when_empty=True)
    return stats.succeeded, stats.failed


# -- the job's hooks ---------------------------------------------------------------------------
def test_hooks_on_success(config, store) -> None:
    """delayed_job: enqueue at enqueue time; then before, perform, success, after (invoke_job)."""
    Queue(config, store).enqueue(lj.Hooked())
    assert lj.EVENTS == ["enqueue"]
    assert work_off(config, store) == (1, 0)
    assert lj.EVENTS == ["enqueue", "before", "perform", "success", "after"]
    assert store.jobs() == []


def test_hooks_on_failure_with_retry(config, store) -> None:
    """delayed_job: a failed attempt calls error(job, exception) then after, and no failure while
    attempts remain; the job is rescheduled with the attempt counted."""
    job_id = Queue(config, store).enqueue(lj.Hooked("perform"))
    assert work_off(config, store) == (0, 1)
    assert lj.EVENTS == ["enqueue", "before", "perform", "error:ValueError", "after"]
    job = store.get(job_id)
    assert (job.attempts, job.failed_at, job.locked_by) == (1, None, None)
    assert job.last_error.startswith("ValueError: perform failed")


def test_hooks_on_final_failure(config, store) -> None:
    """delayed_job: the last attempt calls error, after, then failure once the job gives up
    (Worker#failed); the row is kept with failed_at (destroy_failed_jobs is false here)."""
    config = config.replace(max_attempts=1)
    job_id = Queue(config, store).enqueue(lj.Hooked("perform"))
    assert work_off(config, store) == (0, 1)
    assert lj.EVENTS == ["enqueue", "before", "perform", "error:ValueError", "after", "failure"]
    job = store.get(job_id)
    assert job.failed_at is not None and job.attempts == 1


def test_before_raising_skips_perform(config, store) -> None:
    """delayed_job: when before raises, perform does not run, and error then after are called;
    the attempt fails with before's exception."""
    job_id = Queue(config, store).enqueue(lj.Hooked("before"))
    assert work_off(config, store) == (0, 1)
    assert lj.EVENTS == ["enqueue", "before", "error:RuntimeError", "after"]
    assert store.get(job_id).last_error.startswith("RuntimeError: before hook failed")


def test_enqueue_hook_changes_are_saved(config, store) -> None:
    """delayed_job: the enqueue hook runs before the job is saved, and what it changes on the job
    (priority, run_at, queue) is what is stored."""
    job_id = Queue(config, store).enqueue(lj.Urgent(), priority=3)
    assert lj.EVENTS == ["enqueue:3"]
    job = store.get(job_id)
    assert (job.priority, job.queue) == (-5, "urgent")
    assert timedelta(minutes=119) < job.run_at - utcnow() < timedelta(minutes=121)
    assert work_off(config, store) == (0, 0)  # not due for two hours


def test_enqueue_hook_runs_inside_the_callers_transaction(config, store) -> None:
    """delayed_job: Job.enqueue inside a transaction is saved, hook changes included, in that
    transaction, and rolled back with it."""
    with store.engine.begin() as conn:
        job_id = Queue(config, store).enqueue(lj.Urgent(), connection=conn)
        assert conn.execute(select(dj.c.priority).where(dj.c.id == job_id)).scalar() == -5
    assert store.get(job_id).priority == -5
    with pytest.raises(RuntimeError, match="roll back"):
        with store.engine.begin() as conn:
            rolled_back = Queue(config, store).enqueue(lj.Urgent(), connection=conn)
            raise RuntimeError("roll back")
    assert lj.EVENTS == ["enqueue:0", "enqueue:0"]
    assert [job.id for job in store.jobs()] == [job_id] and rolled_back != job_id


def test_enqueue_hook_error_stores_nothing(config, store) -> None:
    """delayed_job: an exception in the enqueue hook reaches the caller and the job is not saved;
    a value the row cannot hold is refused in one line."""
    with pytest.raises(EnqueueError, match="priority must be an integer, not 'high'"):
        Queue(config, store).enqueue(lj.Misprioritized())
    with pytest.raises(ZeroDivisionError):
        Queue(config, store).enqueue(lj.Hooked(), priority=1 // 0)
    assert store.jobs() == []


# -- the global plugin points (Delayed::Lifecycle) -------------------------------------------------
def test_around_perform_plugin_wraps_every_job(config, store) -> None:
    """delayed_job: Lifecycle#around(:perform) wraps each job's run, hooks included."""
    @lifecycle.around("perform")
    def traced(worker: Worker, job: Any, proceed: Any) -> Any:
        lj.EVENTS.append(f"start:{job.id}")
        result = proceed()
        lj.EVENTS.append(f"end:{job.id}:{result}")
        return result
    queue = Queue(config, store)
    first, second = queue.enqueue(lj.noted, "a"), queue.enqueue(lj.noted, "b")
    assert work_off(config, store) == (2, 0)
    assert lj.EVENTS == [f"start:{first}", "perform:a", f"end:{first}:True",
                         f"start:{second}", "perform:b", f"end:{second}:True"]


def test_plugin_events_nest_as_delayed_jobs(config, store) -> None:
    """delayed_job: execute wraps the worker's run, loop each batch, perform one job, invoke_job
    its hooks; error wraps recording a failed attempt, and failure (inside it) giving up."""
    for event in lifecycle.EVENTS:
        lifecycle.before(event, lambda *args, event=event: lj.EVENTS.append(f"<{event}"))
        lifecycle.after(event, lambda *args, event=event: lj.EVENTS.append(f"{event}>"))
    queue = Queue(config, store)
    queue.enqueue(lj.Hooked("perform"))
    assert lj.EVENTS == ["<enqueue", "enqueue", "enqueue>"]
    lj.EVENTS.clear()
    work_off(config, store)  # retried later: no failure event
    assert lj.EVENTS == ["<execute", "<loop", "<perform", "<invoke_job", "before", "perform", "error:ValueError",
                         "after", "<error", "error>", "perform>", "loop>", "execute>"]
    store.clear()
    queue.enqueue(lj.Hooked("perform"))
    lj.EVENTS.clear()
    work_off(config.replace(max_attempts=1), store)  # gives up: failure inside error
    assert lj.EVENTS[7:-1] == ["after", "<error", "<failure", "failure", "failure>", "error>", "perform>", "loop>"]


@pytest.mark.parametrize("kind", ["before", "after"])
def test_plugin_error_neither_crashes_the_worker_nor_repeats_the_job(config, store, caplog, kind) -> None:
    """delayed_job would let a raising perform callback end the worker with the job still locked;
    here it is logged, and the job runs once and is recorded."""
    getattr(lifecycle, kind)("perform", lambda worker, job: 1 / 0)
    Queue(config, store).enqueue(lj.noted, "once")
    with caplog.at_level(logging.ERROR, logger="dj_daemon.lifecycle"):
        assert work_off(config, store) == (1, 0)
    assert lj.EVENTS == ["perform:once"] and store.jobs() == []
    assert [r.message for r in caplog.records] == ["a perform callback raised; the worker goes on"]


def test_invoke_job_callback_error_fails_the_attempt(config, store) -> None:
    """delayed_job: an exception from an invoke_job callback is the job's failure (before it ran)."""
    lifecycle.before("invoke_job", lambda job: [][1])
    job_id = Queue(config, store).enqueue(lj.noted, "never")
    assert work_off(config, store) == (0, 1)
    assert lj.EVENTS == [] and store.get(job_id).last_error.startswith("IndexError")


def test_plugins_setting_installs_once_per_process(config, store) -> None:
    """delayed_job: Delayed::Worker.plugins are set up before the worker's first job; here the
    plugins setting names them, and each is installed once however many workers start."""
    config = config.replace(plugins=("tests.compat.lifecycle_jobs:plugin",))
    job_id = Queue(config, store).enqueue(lj.noted, "x")
    work_off(config, store)
    work_off(config, store)
    assert lj.INSTALLS == [1] and lj.EVENTS == [f"plugin:{job_id}", "perform:x"]


def test_unknown_event_and_around_without_proceed_are_refused(config, store) -> None:
    """delayed_job raises InvalidCallback for an unknown event; an around enqueue callback that
    never proceeds would silently drop the job, so it is an error, and nothing is stored."""
    with pytest.raises(LifecycleError, match="unknown lifecycle event 'perfrom'"):
        lifecycle.before("perfrom", print)
    lifecycle.around("enqueue", lambda job, proceed: None)
    with pytest.raises(LifecycleError, match="without calling proceed"):
        Queue(config, store).enqueue(lj.noted, "dropped")
    assert store.jobs() == []


# -- reschedule_at ---------------------------------------------------------------------------
def test_reschedule_at_replaces_the_backoff(config, store) -> None:
    """delayed_job: the payload's reschedule_at(now, attempts) decides when a failed job runs again."""
    job_id = Queue(config, store).enqueue(lj.HourLater())
    work_off(config, store)
    (now, attempts), = lj.SEEN
    assert attempts == 1 and now.utcoffset() == timedelta(0)
    job = store.get(job_id)
    assert job.run_at == now.replace(tzinfo=None) + timedelta(hours=1) and job.failed_at is None


def test_reschedule_at_decorator_option_with_an_aware_datetime(config, store) -> None:
    """delayed_job's reschedule_at as the @job option; an aware answer is converted to UTC."""
    job_id = Queue(config, store).enqueue(lj.tomorrow_in_another_zone)
    before = utcnow()
    work_off(config, store)
    run_at = store.get(job_id).run_at
    assert timedelta(hours=23, minutes=59) < run_at - before < timedelta(hours=24, minutes=1)


@pytest.mark.parametrize("value, line", [
    ("tomorrow", "reschedule_at returned 'tomorrow' (str), not a datetime"),
    (3600, "reschedule_at returned 3600 (int), not a datetime"),
    ("raise", "reschedule_at raised KeyError: 'no schedule'"),
])
def test_bad_reschedule_at_fails_the_job_in_one_line(config, store, value, line) -> None:
    """delayed_job would crash on a reschedule_at that is no time; here the job fails for good,
    the reason first in last_error, the job's own error after it, and the worker goes on."""
    queue = Queue(config, store)
    job_id = queue.enqueue(lj.BadSchedule(value))
    queue.enqueue(lj.noted, "next")
    assert work_off(config, store) == (1, 1)
    job = store.get(job_id)
    first, second = job.last_error.splitlines()[:2]
    assert (first, second) == (line, "ValueError: fails") and job.failed_at is not None
    assert lj.EVENTS == ["perform:next"]


# -- destroy_failed_jobs ---------------------------------------------------------------------
def test_failed_jobs_are_kept_by_default(config, store) -> None:
    """dj-daemon keeps a job that failed for good, failed_at set (delayed_job's default destroys)."""
    job_id = Queue(config, store).enqueue(lj.fails)
    work_off(config.replace(max_attempts=1), store)
    assert store.get(job_id).failed_at is not None


def test_destroy_failed_jobs_setting_deletes_and_logs_the_last_error(config, store, caplog) -> None:
    """delayed_job: Delayed::Worker.destroy_failed_jobs = true destroys a job that gives up; it
    leaves no row, so its last error goes to the log."""
    config = config.replace(max_attempts=1, destroy_failed_jobs=True)
    Queue(config, store).enqueue(lj.fails)
    with caplog.at_level(logging.WARNING, logger="dj_daemon.worker"):
        assert work_off(config, store) == (0, 1)
    assert store.jobs() == []
    destroyed = [r.getMessage() for r in caplog.records if "destroyed" in r.getMessage()]
    assert len(destroyed) == 1 and "ValueError: fails for good" in destroyed[0] and "in fails" in destroyed[0]


@pytest.mark.parametrize("setting", [False, True])
def test_job_overrides_destroy_failed_jobs(config, store, setting) -> None:
    """delayed_job: the payload's destroy_failed_jobs? beats the setting, either way; the @job
    option does the same for a function."""
    config = config.replace(destroy_failed_jobs=setting)
    queue = Queue(config, store)
    kept = queue.enqueue(lj.Keepsake())
    queue.enqueue(lj.Disposable())
    queue.enqueue(lj.disposable_function)
    assert work_off(config, store) == (0, 3)
    assert [job.id for job in store.jobs()] == [kept] and store.get(kept).failed_at is not None


@pytest.mark.parametrize("setting", [False, True])
def test_unloadable_handler_falls_back_to_the_setting(config, store, setting) -> None:
    """delayed_job: a job whose payload cannot load (DeserializationError) is failed at once, and
    destroyed or kept as Delayed::Worker.destroy_failed_jobs says."""
    now = utcnow()
    with store.engine.begin() as conn:
        conn.execute(dj.insert().values(handler='{"target": "tests.compat.lifecycle_jobs:gone", "args": []}',
                                        priority=0, attempts=0, run_at=now, created_at=now, updated_at=now))
    config = config.replace(destroy_failed_jobs=setting)
    assert work_off(config, store) == (0, 1)
    remaining = store.jobs()
    assert remaining == [] if setting else len(remaining) == 1 and "cannot import" in remaining[0].last_error


def test_destroyed_tracked_job_ends_in_error(config, store) -> None:
    """A tracked job destroyed on failure still ends in its error state, with its error."""
    config = config.replace(destroy_failed_jobs=True)
    Queue(config, store).enqueue(lj.tracked_failure, 9)
    work_off(config, store)
    row, = store.tracked()
    assert store.jobs() == [] and row["state"] == "error" and row["delayed_job_id"] is None
    assert row["last_error"].startswith("ValueError: dataset 9 failed")


def test_destroyed_after_its_workers_died_logs_the_recorded_error(config, store, caplog) -> None:
    """A job whose attempts ran out in workers that died (no delayed_job equivalent: it has no
    supervisor) is destroyed too when the setting says so, its recorded error logged after a note."""
    now = utcnow()
    with store.engine.begin() as conn:
        conn.execute(dj.insert().values(handler='{"target": "tests.compat.lifecycle_jobs:noted", "args": ["x"]}',
                                        priority=0, attempts=1, last_error="worker killed by SIGKILL (attempt 1)",
                                        run_at=now, created_at=now, updated_at=now))
    config = config.replace(max_attempts=1, destroy_failed_jobs=True)
    with caplog.at_level(logging.WARNING, logger="dj_daemon.worker"):
        assert work_off(config, store) == (0, 1)
    assert store.jobs() == [] and lj.EVENTS == []
    destroyed = [r.getMessage() for r in caplog.records if "destroyed" in r.getMessage()]
    assert len(destroyed) == 1
    assert destroyed[0].endswith("gave up after 1 attempts (max_attempts 1); the last one: "
                                 "worker killed by SIGKILL (attempt 1)")
