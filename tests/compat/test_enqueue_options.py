"""delayed_job's enqueue options, each as delayed_job documents it, on SQLite and MariaDB.

Covers issue 15's points 1 (default queue and priority), 2 (queue
attributes), 5b (max_attempts stored with the job) and 9 (nothing accepted
and ignored: queue_name, run_at forms, priority on a class, perform-objects,
string targets, configure() and /etc/delayed_job.conf). Each test's
docstring names the delayed_job behaviour it matches.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from dj_daemon import api, config as config_module
from dj_daemon.api import Queue
from dj_daemon.config import Config
from dj_daemon.errors import EnqueueError
from dj_daemon.job import utcnow
from dj_daemon.schema import delayed_jobs as dj
from dj_daemon.store import Store
from tests import jobs
from tests.worker.test_worker import side, work_off  # noqa: F401 (side is a fixture)

HERE = __name__  # "tests.compat.test_enqueue_options": inside the fixtures' allow-list ("tests")


# -- jobs these tests enqueue ---------------------------------------------------------------------

def plain(path: str, token: str) -> None:
    jobs.record(path, token)


def fails(path: str) -> None:
    jobs.record(path, "ran")
    raise ValueError("fails on purpose")


@api.job(queue="mail")
def mailer(path: str, token: str) -> None:
    jobs.record(path, token)


@api.job(max_attempts=2, backoff=0)
def fails_twice_at_most(path: str) -> None:
    fails(path)


class Newsletter:
    """A perform class: delayed_job's ``NewsletterJob``, with its queue and priority as attributes."""

    queue = "newsletters"
    priority = 4

    def __init__(self, path: str, text: str) -> None:
        self.path, self.text = path, text

    def perform(self) -> None:
        jobs.record(self.path, f"newsletter:{self.text}")

    def success(self, job: Any) -> None:
        jobs.record(self.path, "success")


class Named:
    """delayed_job's ``queue_name`` method on a payload object."""

    def __init__(self, path: str) -> None:
        self.path = path

    def queue_name(self) -> str:
        return "named"

    def perform(self) -> None:
        jobs.record(self.path, "named")


class Photo:
    """A receiver for ``delay(photo).resize(...)``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def resize(self, size: int) -> None:
        jobs.record(self.path, f"resize:{size}")
        raise ValueError("resize fails on purpose")


# -- fixtures and helpers -------------------------------------------------------------------------

def work_until_failed(config: Config, store: Store, job_id: int, passes: int = 10) -> int:
    """Work (backoff 0) until the job is failed for good; the attempts it took."""
    for _ in range(passes):
        work_off(config, store)
        job = store.get(job_id)
        if job.failed_at is not None:
            return job.attempts
    raise AssertionError(f"job {job_id} not failed after {passes} passes")


def one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert text and "\n" not in text
    return text


# -- 1. default queue and priority ----------------------------------------------------------------

def test_default_queue_name_and_priority_apply_to_a_job_given_none(config, store, side) -> None:
    """delayed_job: ``Delayed::Worker.default_queue_name`` and ``default_priority`` fill a job
    enqueued without ``:queue`` or ``:priority``."""
    queue = Queue(config.replace(default_queue_name="general", default_priority=7), store)
    job = store.get(queue.enqueue(plain, side, "a"))
    assert (job.queue, job.priority) == ("general", 7)
    assert (store.get(Queue(config, store).enqueue(plain, side, "b")).queue) is None  # empty: no queue


def test_a_job_that_declares_its_queue_gets_it_when_none_is_passed(config, store, side) -> None:
    """delayed_job: ``set_queue_name`` takes the payload object's ``queue_name`` when no ``:queue``
    is passed, before ``default_queue_name``; here a decorator option, a class attribute and a
    ``queue_name`` method alike."""
    queue = Queue(config.replace(default_queue_name="general"), store)
    assert store.get(queue.enqueue(mailer, side, "a")).queue == "mail"
    newsletter = store.get(queue.enqueue(Newsletter(side, "hi")))
    assert (newsletter.queue, newsletter.priority) == ("newsletters", 4)  # priority on a class works
    assert store.get(queue.enqueue(Named(side))).queue == "named"
    assert store.get(queue.enqueue_call(mailer, (side, "c"), {}, queue="urgent")).queue == "urgent"
    assert work_off(config, store) == (4, 0)
    assert sorted(jobs.runs(side)) == ["a", "c", "named", "newsletter:hi", "success"]


def test_an_explicit_argument_beats_the_jobs_own_and_the_defaults(config, store, side) -> None:
    """delayed_job: ``enqueue(job, queue: 'x', priority: 1)`` wins over the payload's
    ``queue_name``, ``queue_attributes`` and the worker defaults."""
    queue = Queue(config.replace(default_queue_name="general", default_priority=7,
                                 queue_attributes={"mail": {"priority": -5}}), store)
    job = store.get(queue.enqueue(mailer, side, "a", queue="urgent", priority=1))
    assert (job.queue, job.priority) == ("urgent", 1)
    job = store.get(queue.enqueue(Newsletter(side, "hi"), queue="mail", priority=0))
    assert (job.queue, job.priority) == ("mail", 0)
    job = store.get(queue.delay(Photo(side), queue="mail", priority=2).resize(1))
    assert (job.queue, job.priority) == ("mail", 2)


# -- 2. queue attributes --------------------------------------------------------------------------

def test_queue_attributes_give_a_queues_jobs_their_priority(config, store, side) -> None:
    """delayed_job: ``Delayed::Worker.queue_attributes = {mail: {priority: -5}}`` sets the priority
    of a job of that queue enqueued without one, before ``default_priority``; an explicit
    priority beats it (and, ours, so does the job's own priority)."""
    queue = Queue(config.replace(default_priority=7, queue_attributes={"mail": {"priority": -5}},
                                 default_queue_name="mail"), store)
    assert store.get(queue.enqueue(plain, side, "a", queue="mail")).priority == -5
    assert store.get(queue.enqueue(mailer, side, "b")).priority == -5  # the decorator's queue
    assert store.get(queue.enqueue(plain, side, "c")).priority == -5  # the default queue
    assert store.get(queue.enqueue(plain, side, "d", queue="other")).priority == 7
    assert store.get(queue.enqueue(plain, side, "e", queue="mail", priority=3)).priority == 3
    assert store.get(queue.enqueue(Newsletter(side, "hi"), queue="mail")).priority == 4


def test_queue_attributes_from_the_config_file(config, store, side, tmp_path, monkeypatch) -> None:
    """delayed_job sets ``queue_attributes`` in an initializer; ours is the INI file's
    ``[jobs] queue_attributes`` (read through ``configure(path=...)``), one queue per line."""
    monkeypatch.setattr(api, "_default", None)
    ini = tmp_path / "app.conf"
    ini.write_text(f"[database]\nurl = {config.url}\n[jobs]\nallowed_modules = tests\n"
                   "default_priority = 9\nqueue_attributes =\n    mail.priority = -5\n    reports.priority = 10\n")
    monkeypatch.delenv("DJ_CONFIG", raising=False)
    default = api.configure(path=ini)
    assert store.get(api.enqueue(plain, side, "a", queue="reports")).priority == 10
    assert store.get(api.enqueue(mailer, side, "b")).priority == -5
    assert store.get(api.enqueue(plain, side, "c")).priority == 9
    default.store.dispose()


# -- 5b. max_attempts stored with the job ---------------------------------------------------------

@pytest.mark.parametrize("stored, worker_max", [(2, 10), (3, 1)], ids=["fewer", "more"])
def test_max_attempts_given_at_enqueue_is_honoured_by_a_worker_configured_otherwise(
        config, store, side, stored, worker_max) -> None:
    """delayed_job: a job's own ``max_attempts`` beats ``Delayed::Worker.max_attempts``; ours is
    stored with the job, so whichever worker runs it honours it, whatever its config says."""
    job_id = Queue(config, store).enqueue(fails, side, max_attempts=stored)
    assert json.loads(store.get(job_id).handler)["options"] == {"max_attempts": stored}
    worker_config = config.replace(max_attempts=worker_max, backoff_scale=0)
    assert work_until_failed(worker_config, store, job_id) == stored
    assert jobs.runs(side) == ["ran"] * stored


def test_max_attempts_of_delay_enqueue_call_and_the_decorator_are_stored(
        config, store, side, monkeypatch) -> None:
    """delayed_job: ``max_attempts`` on the payload object (``handle_asynchronously``'s job, a
    ``delay``ed method) decides when it gives up; ours is stored at enqueue, so a worker whose
    code says otherwise (the decorator changed since) still honours what was enqueued."""
    queue = Queue(config, store)
    delayed = queue.delay(Photo(side), max_attempts=2).resize(9)
    called = queue.enqueue_call(fails, (side,), {}, max_attempts=2)
    decorated = queue.enqueue(fails_twice_at_most, side)
    monkeypatch.setattr(fails_twice_at_most, "max_attempts", 20)  # the code changed after enqueue
    worker_config = config.replace(max_attempts=25, backoff_scale=0)
    for job_id in (delayed, called, decorated):
        assert json.loads(store.get(job_id).handler)["options"] == {"max_attempts": 2}
        assert work_until_failed(worker_config, store, job_id) == 2


def test_stored_max_attempts_fails_an_exhausted_job_unrun_at_reservation(config, store, side) -> None:
    """delayed_job: a job whose ``attempts`` reached ``max_attempts`` is not run again; ours also
    fails for good, unrun, a job whose workers died on it (attempts counted by the supervisor),
    against the stored limit, not the worker's config."""
    job_id = Queue(config, store).enqueue(plain, side, "never", max_attempts=2)
    with store.engine.begin() as conn:
        conn.execute(update(dj).where(dj.c.id == job_id).values(attempts=2, last_error="worker killed by SIGKILL"))
    assert work_off(config.replace(max_attempts=25), store) == (0, 1)
    job = store.get(job_id)
    assert job.failed_at is not None and "gave up after 2 attempts (max_attempts 2)" in job.last_error
    assert jobs.runs(side) == []


@pytest.mark.parametrize("options", ['{"max_attempts": 0}', '{"max_attempts": "many"}', '{"max_attempts": true}',
                                     '{"attempts": 3}', '[3]'])
def test_malformed_stored_options_fail_the_job_for_good_with_one_line(config, store, side, options) -> None:
    """delayed_job: a handler that cannot be loaded fails the job for good
    (``DeserializationError``) and the worker goes on; a malformed ``options`` object is such a
    handler here: never a crash, never a silent fallback to the worker's max_attempts."""
    queue = Queue(config, store)
    good = json.loads(queue.prepare(plain, side, "bad").handler)
    bad = queue.prepare(plain, side, "bad")
    bad = bad.__class__(**{**vars(bad), "handler": json.dumps({**good, "options": json.loads(options)})})
    bad_id = queue.insert([bad])[0]
    queue.enqueue(plain, side, "good")
    assert work_off(config, store) == (1, 1)
    job = store.get(bad_id)
    assert job.failed_at is not None and job.attempts == 1 and "\n" not in job.last_error
    assert job.last_error.startswith("DeserializationError: malformed handler: options")
    assert jobs.runs(side) == ["good"]


def test_a_job_without_options_keeps_its_handler_as_before(config, store, side) -> None:
    """delayed_job stores nothing extra for a job without options; ours adds no ``options`` key, so
    a handler without one decodes as before (and costs the worker nothing more)."""
    handler = json.loads(store.get(Queue(config, store).enqueue(plain, side, "a")).handler)
    assert handler == {"target": f"{HERE}:plain", "args": [side, "a"], "kwargs": {}}


# -- 9. nothing accepted and ignored --------------------------------------------------------------

def test_run_at_forms(config, store, side) -> None:
    """delayed_job: ``run_at: 5.minutes.from_now`` (a time), any zone; ours also takes a delay and
    a callable (``handle_asynchronously``'s ``run_at: Proc.new { 1.day.from_now }``)."""
    queue = Queue(config, store)
    at = datetime(2100, 1, 2, 3, 4, 5)
    aware = datetime(2100, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert store.get(queue.enqueue(plain, side, "a", run_at=at)).run_at == at
    assert store.get(queue.enqueue(plain, side, "b", run_at=aware)).run_at == at
    for later in (timedelta(hours=1), lambda: timedelta(hours=1), lambda: utcnow() + timedelta(hours=1)):
        run_at = store.get(queue.enqueue(plain, side, "c", run_at=later)).run_at
        assert timedelta(minutes=59) < run_at - utcnow() <= timedelta(hours=1)
    for wrong in (3600, "tomorrow", lambda: 5):
        with pytest.raises(EnqueueError, match="run_at must be a datetime, a timedelta or a callable"):
            queue.enqueue(plain, side, "d", run_at=wrong)
    assert work_off(config, store) == (0, 0)  # none is due


@pytest.mark.parametrize("value, message", [
    ({"priority": "high"}, "priority must be an integer"),
    ({"priority": 2**31}, "priority must be an integer"),
    ({"queue": 5}, "queue must be text of at most 255 characters, not int"),
    ({"queue": "q" * 256}, "queue must be text of at most 255 characters, not 256 characters"),
    ({"max_attempts": 0}, "max_attempts must be an integer from 1 to 2147483647, not 0"),
    ({"max_attempts": 2.5}, "max_attempts must be an integer"),
    ({"run_at": "tomorrow"}, "run_at must be a datetime, a timedelta or a callable returning one, not str"),
])
def test_bad_option_values_are_refused_at_enqueue_with_one_line(value, message) -> None:
    """delayed_job would store whatever it is given and fail later; ours refuses at enqueue."""
    queue = Queue(Config(allowed_modules=("tests",)))
    with pytest.raises(EnqueueError) as error:
        queue.prepare(plain, "p", "x", **value)
    assert message in one_line(error)
    with pytest.raises(EnqueueError) as error:
        api.JobFunction(plain, **value)
    assert message in one_line(error)


def test_delayed_job_option_names_are_refused_naming_ours() -> None:
    """delayed_job: ``delay(queue: 'x')``, ``handle_asynchronously :m, queue: 'x'``; its
    ``queue_name`` (ActiveJob's, a payload method) passed as an option says to use ``queue=``."""
    queue = Queue(Config(allowed_modules=("tests",)))
    for call in (lambda: queue.delay(Photo("p"), queue_name="x"),
                 lambda: api.job(queue_name="x")(plain),
                 lambda: queue.enqueue_call(plain, ("p", "x"), {}, queue_name="x")):
        with pytest.raises(TypeError) as error:
            call()
        assert "queue_name (use queue=)" in one_line(error)
    for target, args in ((plain, ("p", "x")), (Newsletter("p", "hi"), ())):
        with pytest.raises(EnqueueError) as error:
            queue.enqueue(target, *args, queue_name="x")
        assert "use queue= for the job's queue" in one_line(error)


def test_enqueue_a_perform_object(config, store, side) -> None:
    """delayed_job: ``Delayed::Job.enqueue NewsletterJob.new(text, emails)`` stores the object and
    calls its ``perform`` (and its hooks) in the worker."""
    queue = Queue(config, store)
    queue.enqueue(Newsletter(side, "hi"), run_at=timedelta(seconds=-1))
    with pytest.raises(EnqueueError, match="a perform-object takes no extra arguments"):
        queue.enqueue(Newsletter(side, "hi"), "extra")
    assert work_off(config, store) == (1, 0)
    assert jobs.runs(side) == ["newsletter:hi", "success"]


def test_string_targets_name_functions_and_perform_classes(config, store, side) -> None:
    """delayed_job enqueues an object or method of code the app has loaded; ours also takes
    ``"pkg.mod:name"`` for an app that does not import the job: a function is called, a
    perform class is built from the arguments and performed (hooks included), and the
    allow-list applies before anything is imported."""
    queue = Queue(config, store)
    queue.enqueue(f"{HERE}:plain", side, "by-name", queue="strings")
    queue.enqueue(f"{HERE}:Newsletter", side, "by-name", max_attempts=1)
    queue.enqueue(Newsletter, side, "class")  # the class itself: performed too, not only built
    assert work_off(config, store) == (3, 0)
    assert sorted(jobs.runs(side)) == ["by-name", "newsletter:by-name", "newsletter:class", "success", "success"]
    for target, message in (("os:system", "not in allowed_modules"), ("tests.jobs", "is not an import path"),
                            ("tests.jobs:_private", "is private"), ("tests.jobs:a b", "is not an import path")):
        with pytest.raises(EnqueueError) as error:
            queue.enqueue(target)
        assert message in one_line(error)


def test_a_string_target_whose_class_cannot_be_built_fails_for_good(config, store, side) -> None:
    """delayed_job: a payload that cannot be loaded fails the job for good
    (``DeserializationError``); a perform class whose constructor refuses the arguments is one."""
    job_id = Queue(config, store).enqueue(f"{HERE}:Newsletter", side)  # text is missing
    assert work_off(config, store) == (0, 1)
    job = store.get(job_id)
    assert job.failed_at is not None and job.last_error.startswith(f"DeserializationError: cannot build {HERE}:Newsletter")


def test_configure_reads_a_file_only_when_asked(tmp_path, monkeypatch, caplog) -> None:
    """delayed_job reads no config file; ours: an application's ``configure()`` reads
    ``/etc/delayed_job.conf`` (the daemon's) never unasked, and logs the file it reads when
    named by ``path=`` or ``$DJ_CONFIG``."""
    monkeypatch.setattr(api, "_default", None)
    system = tmp_path / "system.conf"
    system.write_text("[jobs]\ndefault_queue_name = from-etc\n")
    monkeypatch.setattr(config_module, "DEFAULT_PATH", system)
    monkeypatch.delenv("DJ_CONFIG", raising=False)
    monkeypatch.delenv("DJ_DEFAULT_QUEUE_NAME", raising=False)
    assert api.configure().config.default_queue_name == ""
    assert config_module.load_config(env={}).default_queue_name == "from-etc"  # the CLIs still read it
    with caplog.at_level(logging.INFO, logger="dj_daemon.api"):
        assert api.configure(path=system).config.default_queue_name == "from-etc"
        monkeypatch.setenv("DJ_CONFIG", str(system))
        assert api.configure().config.default_queue_name == "from-etc"
    assert [r.getMessage() for r in caplog.records] == [f"dj_daemon configured from {system}"] * 2
