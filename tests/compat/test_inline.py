"""delayed_job's inline mode (``Delayed::Worker.delay_jobs = false``), one test per behaviour: the
job runs at once in the enqueuing process, through the same hooks, and no row is stored
(``Delayed::Backend::Base.enqueue_job`` -> ``invoke_job``); on SQLite and MariaDB."""
from __future__ import annotations

from typing import Iterator

import pytest

import dj_daemon
from dj_daemon import lifecycle
from dj_daemon.api import Queue
from dj_daemon.config import load_config
from dj_daemon.errors import ConfigError
from dj_daemon.lifecycle import LIFECYCLE
from tests.compat import lifecycle_jobs as lj


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    lj.EVENTS.clear()
    lj.SEEN.clear()
    LIFECYCLE.clear()
    yield
    LIFECYCLE.clear()


@pytest.fixture
def inline(config, store) -> Queue:
    """The README's fixture: the app's enqueues run at once (here a Queue; the README's configures
    the default queue)."""
    return Queue(config.replace(delay_jobs=False), store)


def test_inline_runs_the_job_through_its_hooks_and_stores_no_row(inline, store) -> None:
    """delayed_job: with delay_jobs false, enqueue calls the enqueue hook, then invoke_job (before,
    perform, success, after) at once, and saves nothing."""
    assert inline.enqueue(lj.Hooked()) is None  # no row, so no id
    assert lj.EVENTS == ["enqueue", "before", "perform", "success", "after"]
    assert store.jobs() == [] and store.counts() == {"waiting": 0, "running": 0, "failed": 0}


def test_inline_failure_reaches_the_caller(inline, store) -> None:
    """delayed_job: invoke_job re-raises the job's exception to the enqueuing code, after error and
    after; no retry, no failure hook (the job does not give up: it was never queued)."""
    with pytest.raises(ValueError, match="perform failed"):
        inline.enqueue(lj.Hooked("perform"))
    assert lj.EVENTS == ["enqueue", "before", "perform", "error:ValueError", "after"]
    assert store.jobs() == []


def test_delay_jobs_callable_decides_per_job(config, store) -> None:
    """delayed_job: delay_jobs may be a proc of the job; here a callable of the job being enqueued,
    which sees it after its enqueue hook."""
    queue = Queue(config.replace(delay_jobs=lambda job: job.queue == "urgent"), store)
    stored = queue.enqueue(lj.Urgent())  # its hook moves it to "urgent": delayed
    assert queue.enqueue(lj.noted, "now") is None
    assert [job.id for job in store.jobs()] == [stored] and lj.EVENTS == ["enqueue:0", "perform:now"]


def test_inline_enqueue_many_stores_only_the_delayed(config, store) -> None:
    """Bulk enqueue in inline mode: jobs run inline are not inserted, the others in one INSERT."""
    queue = Queue(config.replace(delay_jobs=lambda job: job.name.endswith("echo")), store)
    count = queue.enqueue_many([queue.prepare(lj.noted, "a"), queue.prepare(lj.echo, [1]),
                                queue.prepare(lj.noted, "b")])
    assert count == 3 and lj.EVENTS == ["perform:a", "perform:b"]
    assert [job.name for job in store.jobs()] == ["tests.compat.lifecycle_jobs:echo"]


def test_inline_job_gets_its_arguments_as_a_worker_would(inline) -> None:
    """A job run inline is decoded from its JSON handler, as a worker decodes it: a tuple
    argument arrives as a list, so a test sees what production will."""
    inline.enqueue(lj.echo, (1, "two"))
    assert lj.SEEN == [[1, "two"]]


def test_inline_goes_through_enqueue_and_invoke_job_callbacks_only(inline) -> None:
    """delayed_job: inline, the enqueue and invoke_job callbacks run; perform, error and failure
    are the worker's, and do not."""
    for event in lifecycle.EVENTS:
        lifecycle.before(event, lambda *args, event=event: lj.EVENTS.append(event))
    inline.enqueue(lj.noted, "x")
    assert lj.EVENTS == ["enqueue", "invoke_job", "perform:x"]


def test_delay_jobs_from_the_environment_and_refused_values() -> None:
    """delay_jobs is a setting (file, DJ_DELAY_JOBS); what is neither a boolean nor a callable is
    refused in one line."""
    assert load_config(env={"DJ_DELAY_JOBS": "false"}).delay_jobs is False
    with pytest.raises(ConfigError, match="invalid value 'sometimes' for delay_jobs"):
        load_config(env={"DJ_DELAY_JOBS": "sometimes"})
    with pytest.raises(ConfigError, match="delay_jobs must be true, false or a callable of the job"):
        load_config(env={}, overrides={"delay_jobs": 0})


def test_readme_fixture_runs_decorated_jobs_inline(config, store, monkeypatch) -> None:
    """The README's pytest fixture: configure(delay_jobs=False), then the app's own .delay() calls
    run at once."""
    monkeypatch.setattr("dj_daemon.api._default", None)
    dj_daemon.configure(config, delay_jobs=False)
    with pytest.raises(ValueError, match="fails"):
        lj.tomorrow_in_another_zone.delay()
    assert dj_daemon.enqueue(lj.noted, "via default") is None
    assert lj.EVENTS == ["perform:via default"] and store.jobs() == []
