"""Fixtures: a fresh real database per test on every dialect, and a config for it.

SQLite gets a new file under ``tmp_path``. MariaDB gets a database of its
own on the server named by ``DJ_TEST_MYSQL_URL`` (default
``mysql+pymysql://root@127.0.0.1:3306``), dropped afterwards. When the
server is unreachable the MySQL cases are skipped with the reason, unless
``DJ_TEST_REQUIRE_MYSQL=1`` (as in CI), where that is an error.
PostgreSQL runs where ``DJ_TEST_POSTGRESQL_URL`` is set and reachable, for the
store contract and the in-process worker tests (``POSTGRESQL_SCOPE``): the
process-level suites run on SQLite and MariaDB, the two CI requires, and
PostgreSQL's cases elsewhere are deselected (listed by pytest as deselected).
"""
from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dj_daemon.config import Config
from dj_daemon.store import Store, open_store

ROOT = Path(__file__).resolve().parent.parent
MYSQL_URL = os.environ.get("DJ_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
POSTGRESQL_URL = os.environ.get("DJ_TEST_POSTGRESQL_URL", "")
REQUIRE_MYSQL = os.environ.get("DJ_TEST_REQUIRE_MYSQL") == "1"
DIALECTS = ["sqlite", "mysql"] + (["postgresql"] if POSTGRESQL_URL else [])
POSTGRESQL_SCOPE = ("tests/store/", "tests/schedule/test_runs.py", "tests/worker/test_worker.py", "tests/worker/test_records.py",
                    "tests/worker/test_batches.py", "tests/long_jobs/test_tracking.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep PostgreSQL to the modules in ``POSTGRESQL_SCOPE`` (see the module docstring)."""
    outside = [item for item in items if "[postgresql" in item.nodeid
               and not item.nodeid.startswith(POSTGRESQL_SCOPE)]
    if outside:
        config.hook.pytest_deselected(items=outside)
        items[:] = [item for item in items if item not in outside]


def _server_error(url: str) -> str | None:
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 5})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to connect is reported, not hidden
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"


@pytest.fixture(scope="session")
def mysql_server() -> str:
    """The server URL (no database), or a skip/failure saying why there is none."""
    error = _server_error(MYSQL_URL)
    if error:
        message = f"MariaDB/MySQL at {make_url(MYSQL_URL).render_as_string(hide_password=True)} unreachable: {error}"
        if REQUIRE_MYSQL:
            pytest.fail(message + " (DJ_TEST_REQUIRE_MYSQL=1)")
        pytest.skip(message)
    return MYSQL_URL


def _server_database(server: str, dialect: str) -> Iterator[str]:
    name = f"dj_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            if dialect == "postgresql":
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


def make_db_url(request: pytest.FixtureRequest, dialect: str, tmp_path: Path) -> Iterator[str]:
    if dialect == "sqlite":
        yield f"sqlite:///{tmp_path / 'queue.sqlite3'}"
    elif dialect == "mysql":
        yield from _server_database(request.getfixturevalue("mysql_server"), "mysql")
    else:
        error = _server_error(POSTGRESQL_URL)
        if error:
            pytest.skip(f"PostgreSQL at DJ_TEST_POSTGRESQL_URL unreachable: {error}")
        yield from _server_database(POSTGRESQL_URL, "postgresql")


@pytest.fixture(params=DIALECTS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each dialect in turn."""
    yield from make_db_url(request, request.param, tmp_path)


@pytest.fixture
def config(db_url: str, tmp_path: Path) -> Config:
    return Config(url=db_url, allowed_modules=("tests",), sleep_delay=0.05, hostname="testhost",
                  sentinel_dir=str(tmp_path / "sentinels"), pidfile=str(tmp_path / "dj.pid"))


@pytest.fixture
def store(config: Config) -> Iterator[Store]:
    store = open_store(config)
    store.create_schema()
    yield store
    store.dispose()


@pytest.fixture
def subprocess_env(config: Config, tmp_path: Path) -> dict[str, str]:
    """Environment for a ``delayed_job`` subprocess on the test's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJ_")}
    env.update(
        PYTHONPATH=str(ROOT), DJ_DATABASE_URL=config.url, DJ_ALLOWED_MODULES="tests",
        DJ_SLEEP_DELAY="0.05", DJ_HOSTNAME="testhost", DJ_SENTINEL_DIR=config.sentinel_dir,
        DJ_PIDFILE=config.pidfile,
    )
    return env


def bin_path(name: str) -> str:
    """An installed console script of this venv."""
    return str(Path(sys.executable).with_name(name))


@pytest.fixture
def start_daemon(subprocess_env):
    """``start_daemon("-n", "2", env={...})`` runs the real daemon; all are killed at the end of the test."""
    from tests.process.daemon import Daemon

    started = []

    def start(*args: str, env: dict[str, str] | None = None, watchdog_usec: int | None = None):
        daemon = Daemon({**subprocess_env, **(env or {})}, *args, watchdog_usec=watchdog_usec)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.close()
