"""A real Django project (``tests.django.settings``) set up by Django's own test machinery.

Django is set up once per session. Each dialect's module run gets its test
database from ``setup_databases`` (a file for SQLite: the daemon is another
process), dj-daemon's tables in it, and a real daemon working it. Without
Django 6 (Python 3.11) these tests skip with the reason, unless
``DJ_TEST_REQUIRE_DJANGO=1`` (as in CI), where that is a failure.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from typing import Any, Iterator

import pytest
from sqlalchemy.engine import make_url

from dj_daemon.config import Config
from dj_daemon.store import Store, open_store
from tests.conftest import MYSQL_URL, POSTGRESQL_URL, ROOT, bin_path
from tests.process.daemon import Daemon

REQUIRE_DJANGO = os.environ.get("DJ_TEST_REQUIRE_DJANGO") == "1"
ALLOWED = "dj_daemon.contrib.django,tests.django.taskapp"
ALIASES = {"sqlite": "default", "mysql": "mysql", **({"postgresql": "postgresql"} if POSTGRESQL_URL else {})}


def _django_missing() -> str | None:
    try:
        import django.tasks  # noqa: F401
    except ImportError as exc:
        return f"Django 6 (django.tasks) is not importable on Python {sys.version.split()[0]}: {exc}"
    return None


@pytest.fixture(scope="session")
def django_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Django set up in this process, on settings naming databases of this session."""
    missing = _django_missing()
    if missing:
        if REQUIRE_DJANGO:
            pytest.fail(missing + " (DJ_TEST_REQUIRE_DJANGO=1)")
        pytest.skip(missing)
    import django
    from django.test.utils import setup_test_environment, teardown_test_environment

    env = {"DJANGO_SETTINGS_MODULE": "tests.django.settings", "DJ_TEST_MYSQL_URL": MYSQL_URL,
           "DJ_TEST_DJANGO_SQLITE": str(tmp_path_factory.mktemp("django") / "project.sqlite3"),
           "DJ_TEST_DJANGO_MYSQL": f"dj_test_django_{uuid.uuid4().hex[:12]}"}
    if POSTGRESQL_URL:
        env.update(DJ_TEST_POSTGRESQL_URL=POSTGRESQL_URL,
                   DJ_TEST_DJANGO_POSTGRESQL=f"dj_test_django_{uuid.uuid4().hex[:12]}")
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    enabled = [logger for logger in logging.root.manager.loggerDict.values()
               if isinstance(logger, logging.Logger) and not logger.disabled]
    django.setup()  # reads the settings module now; other tests' subprocesses need not see these
    for logger in enabled:  # the settings' LOGGING silenced them, for the daemon to prove it survives
        logger.disabled = False  # that; in this process, later tests read those loggers' records
    for name, value in saved.items():
        if value is None:
            del os.environ[name]
        else:
            os.environ[name] = value
    setup_test_environment()
    yield env
    teardown_test_environment()


@dataclass
class Project:
    """One dialect's test database, as Django and as dj-daemon see it."""

    dialect: str
    alias: str  # the Django database, and the task backend on it
    url: str  # the same database's SQLAlchemy URL, for the daemon and for assertions
    env: dict[str, str]  # the environment of a daemon or ``delayed_job`` on it
    store: Store

    def task(self, task: Any, backend: str | None = None) -> Any:
        """``task`` on this project's backend (or on ``backend``)."""
        return task.using(backend=backend or self.alias)

    def workoff(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        """``delayed_job workoff``: a real worker, in a process of its own, until no job is ready."""
        return subprocess.run([bin_path("delayed_job"), "workoff", *args], env={**self.env, **env},
                              capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module", params=sorted(ALIASES))
def project(request: pytest.FixtureRequest, django_env: dict[str, str],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    from django.db import connections
    from django.test.utils import setup_databases, teardown_databases

    dialect, alias = request.param, ALIASES[request.param]
    if dialect != "sqlite":
        request.getfixturevalue(f"{dialect}_server")
    old = setup_databases(verbosity=0, interactive=False, aliases={alias})
    url = _url_of(dialect, connections[alias].settings_dict["NAME"])
    store = open_store(Config(url=url))
    store.create_schema()
    folder = tmp_path_factory.mktemp(f"daemon-{dialect}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJ_")}
    env.update(django_env, PYTHONPATH=str(ROOT), DJ_DATABASE_URL=url, DJ_ALLOWED_MODULES=ALLOWED,
               DJ_SLEEP_DELAY="0.05", DJ_POLL_INTERVAL="0.1", DJ_HOSTNAME="testhost",
               DJ_SENTINEL_DIR=str(folder / "sentinels"), DJ_PIDFILE=str(folder / "dj.pid"))
    try:
        yield Project(dialect, alias, url, env, store)
    finally:
        store.dispose()
        _close_task_backends()
        teardown_databases(old, verbosity=0)


def _close_task_backends() -> None:
    """The URL task backends' own stores let go of their sessions: PostgreSQL does not drop a
    database that sessions still use."""
    from django.tasks import task_backends

    for backend in task_backends.all(initialized_only=True):
        queue = getattr(backend, "queue", None)
        if queue is not None:
            queue.store.dispose()


def _url_of(dialect: str, name: str) -> str:
    if dialect == "sqlite":
        return f"sqlite:///{name}"
    server = POSTGRESQL_URL if dialect == "postgresql" else MYSQL_URL
    return make_url(server).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def daemon(project: Project) -> Iterator[Daemon]:
    """The real daemon on the project's database, one worker, queue ``default`` only."""
    daemon = Daemon({**project.env, "DJ_QUEUES": "default"}, "-n", "1")
    try:
        daemon.wait_ready()
        yield daemon
        assert "hook of job" not in daemon.log(), daemon.log()  # the runner's hooks all worked
    finally:
        daemon.close()


@pytest.fixture(scope="session")
def tasks(django_env: dict[str, str]) -> Any:
    """The test app's tasks module (importable only once Django is set up)."""
    from tests.django.taskapp import tasks

    return tasks
