"""Fixtures: a fresh real database per test on every dialect, and a config for it.

SQLite gets a new file under ``tmp_path``. MariaDB gets a database of its
own on the server named by ``DJ_TEST_MYSQL_URL`` (default
``mysql+pymysql://root@127.0.0.1:3306``), dropped afterwards. When the
server is unreachable the MySQL cases are skipped with the reason, unless
``DJ_TEST_REQUIRE_MYSQL=1`` (as in CI), where that is an error.
PostgreSQL runs the whole suite where ``DJ_TEST_POSTGRESQL_URL`` is set (a
database on the server; each test gets a fresh one beside it): an unreachable
server skips its cases, unless ``DJ_TEST_REQUIRE_POSTGRESQL=1`` (as in CI).
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
REQUIRE_POSTGRESQL = os.environ.get("DJ_TEST_REQUIRE_POSTGRESQL") == "1"
if REQUIRE_POSTGRESQL and not POSTGRESQL_URL:
    raise pytest.UsageError("DJ_TEST_REQUIRE_POSTGRESQL=1 needs DJ_TEST_POSTGRESQL_URL")
DIALECTS = ["sqlite", "mysql"] + (["postgresql"] if POSTGRESQL_URL else [])
#: The dialects with a server (a connection over TCP that can be cut, sessions, users).
SERVERS = [d for d in DIALECTS if d != "sqlite"]


def _server_error(url: str) -> str | None:
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 5})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to connect is reported, not hidden
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"


def _reachable(url: str, shown: str, required: bool, knob: str) -> str:
    """``url`` if its server answers; else a failure under ``knob`` (CI), a skip saying why elsewhere."""
    error = _server_error(url)
    if error:
        message = f"{shown} unreachable: {error}"
        if required:
            pytest.fail(f"{message} ({knob}=1)")
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def mysql_server() -> str:
    """The server URL (no database), or a skip/failure saying why there is none."""
    shown = f"MariaDB/MySQL at {make_url(MYSQL_URL).render_as_string(hide_password=True)}"
    return _reachable(MYSQL_URL, shown, REQUIRE_MYSQL, "DJ_TEST_REQUIRE_MYSQL")


@pytest.fixture(scope="session")
def postgresql_server() -> str:
    """``DJ_TEST_POSTGRESQL_URL``, or a skip/failure saying why it does not answer."""
    return _reachable(POSTGRESQL_URL, "PostgreSQL at DJ_TEST_POSTGRESQL_URL", REQUIRE_POSTGRESQL,
                      "DJ_TEST_REQUIRE_POSTGRESQL")


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
        yield from _server_database(request.getfixturevalue("postgresql_server"), "postgresql")


@pytest.fixture(params=DIALECTS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each dialect in turn."""
    yield from make_db_url(request, request.param, tmp_path)


def config_for(url: str, tmp_path: Path) -> Config:
    """The tests' config on ``url``, its files under ``tmp_path``."""
    return Config(url=url, allowed_modules=("tests",), sleep_delay=0.05, hostname="testhost",
                  sentinel_dir=str(tmp_path / "sentinels"), pidfile=str(tmp_path / "dj.pid"))


@pytest.fixture
def config(db_url: str, tmp_path: Path) -> Config:
    return config_for(db_url, tmp_path)


@pytest.fixture
def store(config: Config) -> Iterator[Store]:
    store = open_store(config)
    store.create_schema()
    yield store
    store.dispose()


@pytest.fixture
def subprocess_env(config: Config) -> dict[str, str]:
    """Environment for a ``delayed_job`` subprocess on the test's database."""
    return env_for(config)


def env_for(config: Config) -> dict[str, str]:
    """Environment for a ``delayed_job`` subprocess on ``config``'s database."""
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

    def start(*args: str, env: dict[str, str] | None = None, watchdog_usec: int | None = None,
              program: list[str] | None = None):
        daemon = Daemon({**subprocess_env, **(env or {})}, *args, watchdog_usec=watchdog_usec, program=program)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.close()
