"""The schema loads only the configured database's SQLAlchemy dialect, and its DDL stays as it was
(issue 17).

Dialect options given to a ``Table`` or ``Index`` as keywords (``postgresql_where=``) make
SQLAlchemy import that dialect to check them: ``import dj_daemon.cli`` imported PostgreSQL's
(asyncpg's too, ~18 ms) and MySQL's (~9 ms) whatever the database. ``schema_ddl/<dialect>.sql``
pins what ``create_all`` sends on each dialect, its statements sorted (SQLAlchemy walks a table's
indexes in no set order); ``python -m tests.store.test_startup_schema`` writes them anew.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import DateTime, Text, create_mock_engine, select
from sqlalchemy.engine import make_url

from dj_daemon import schema
from dj_daemon.schema import metadata
from tests.conftest import DIALECTS, ROOT, make_db_url

PINNED = Path(__file__).with_name("schema_ddl")
DIALECT_NAMES = ("sqlite", "mysql", "postgresql")
OTHERS = {"sqlite": {"mysql", "postgresql"}, "mysql": {"postgresql", "sqlite"}, "postgresql": {"mysql", "sqlite"}}


def ddl(dialect: str) -> str:
    """What ``metadata.create_all`` sends to an empty database of ``dialect``, statements sorted."""
    statements: list[str] = []
    engine = create_mock_engine(f"{dialect}://", lambda sql, *args, **kw: statements.append(
        str(sql.compile(dialect=engine.dialect)).strip()))
    metadata.create_all(engine, checkfirst=False)
    return ";\n\n".join(sorted(statements)) + ";\n"


@pytest.mark.parametrize("dialect", DIALECT_NAMES + ("mariadb",))
def test_the_ddl_of_each_dialect_is_the_pinned_one(dialect: str) -> None:
    """MariaDB's is MySQL's."""
    assert ddl(dialect) == (PINNED / f"{dialect.replace('mariadb', 'mysql')}.sql").read_text()


@pytest.mark.filterwarnings("error")
def test_statements_over_every_column_are_cached() -> None:
    """The schema's own types (``schema._Time``, ``schema._LongText``) give a cache key."""
    for table in metadata.sorted_tables:
        assert select(table).where(*(column.is_not(None) for column in table.columns))._generate_cache_key()


def test_the_schemas_types_are_still_sqlalchemys_generic_ones() -> None:
    """The store reads ``DateTime`` columns leniently (``store.common.leniently``): a time column
    that is not one would fail a whole result over one bad stored value (tests/faults/test_bad_rows)."""
    assert isinstance(schema.Time, DateTime) and isinstance(schema.LongText, Text)


def loaded_dialects(script: str) -> set[str]:
    """The SQLAlchemy dialects that ``script`` (given a ``store`` opener) leaves imported."""
    code = (f"import sys, dj_daemon.cli\n{script}\n"
            "import json; print(json.dumps(sorted({m.split('.')[2] for m in sys.modules "
            "if m.startswith('sqlalchemy.dialects.')})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_importing_the_daemon_loads_no_dialect() -> None:
    assert not loaded_dialects("") & {"mysql", "postgresql"}


@pytest.fixture(params=DIALECTS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from make_db_url(request, request.param, tmp_path)


def test_a_store_at_work_loads_its_own_dialect_only(store_url: str) -> None:
    """Schema, enqueue (with a unique key), reservation: no other dialect comes in."""
    script = ("from dj_daemon.api import Queue\nfrom dj_daemon.config import Config\n"
              "from dj_daemon.store import Filters, open_store\n"
              f"config = Config(url={store_url!r}, allowed_modules=('tests',))\n"
              "store = open_store(config)\nstore.create_schema()\n"
              "Queue(config, store=store, plugins=False).enqueue('tests.jobs:noop', unique_key='k')\n"
              "assert store.reserve('w:1', Filters()).jobs\nstore.dispose()")
    dialect = make_url(store_url).get_backend_name()
    loaded = loaded_dialects(script)
    assert dialect in loaded and not loaded & OTHERS[dialect], loaded


if __name__ == "__main__":
    PINNED.mkdir(exist_ok=True)
    for name in DIALECT_NAMES:
        (PINNED / f"{name}.sql").write_text(ddl(name))
