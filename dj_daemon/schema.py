"""The tables, in SQLAlchemy Core: the work queue, tracked states, worker heartbeats, kept results,
per-minute counts, unique keys, cancel requests, recurring runs.

Times are naive UTC with microseconds (``DATETIME(6)`` on MySQL), so that
ordering by ``run_at`` and comparing lock ages agree on every dialect.

Nothing here imports a SQLAlchemy dialect: MySQL's names for two types are
given by ``compiles``, and a dialect's options are set (``_at_create``) only
when that dialect creates a table or index. SQLAlchemy imports a dialect at
once to check an option given as a keyword (``postgresql_where=``), and so the
daemon imported all three, whatever its database (PostgreSQL's with asyncpg's
18 ms, MySQL's 9 ms: issue 17).
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from sqlalchemy import (
    BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, Text, event, inspect, text,
)
from sqlalchemy.engine import Engine, Inspector
from sqlalchemy.ext.compiler import compiles

T = TypeVar("T")

metadata = MetaData()

MYSQL = ("mysql", "mariadb")


class _Time(DateTime):
    """Microsecond timestamps: MySQL's plain DATETIME would drop the fraction (``DATETIME(6)``)."""


class _LongText(Text):
    """Handlers and tracebacks can exceed MySQL's 64 KiB TEXT (``MEDIUMTEXT``)."""


@compiles(_Time, *MYSQL)
def _datetime6(type_: _Time, compiler: Any, **kw: Any) -> str:
    return "DATETIME(6)"


@compiles(_LongText, *MYSQL)
def _mediumtext(type_: _LongText, compiler: Any, **kw: Any) -> str:
    return "MEDIUMTEXT"


#: BIGINT ids on the servers, INTEGER on SQLite where only that autoincrements.
Id = BigInteger().with_variant(Integer(), "sqlite")
Time = _Time()
LongText = _LongText()


def _at_create(item: Table | Index, dialects: tuple[str, ...], **options: Any) -> None:
    """``item`` takes the dialect ``options`` (as SQLAlchemy's keywords ``<dialect>_<option>=``
    would give them) when it is created on one of ``dialects``, whose DDL reads them."""
    def give(target: Table | Index, connection: Any, **kw: Any) -> None:
        if connection.dialect.name in dialects:
            target.dialect_options[connection.dialect.name].update(options)
    event.listen(item, "before_create", give)

delayed_jobs = Table(
    "delayed_jobs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("priority", Integer, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    Column("handler", LongText, nullable=False),
    Column("last_error", LongText),
    Column("run_at", Time, nullable=False),
    Column("locked_at", Time),
    Column("locked_by", String(255)),
    Column("failed_at", Time),
    Column("queue", String(255)),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
    # Jobs of one strand run in id order, at most ``strand_limit`` of them at once: tracked jobs
    # of one class and identifier (NULL: one), or jobs of one ``concurrency_key`` (``concurrency``).
    Column("strand", String(255)),
    Column("strand_limit", Integer),
    Index("ix_delayed_jobs_locked_by", "locked_by"),
    Index("ix_delayed_jobs_queue", "queue"),
    Index("ix_delayed_jobs_strand", "strand", "id"),
)

#: The ready queries' index (``store.common``, "Stored rows" in docs/performance.md): per stored
#: priority, a range of rows not failed and due by now, read in the reservation's order. MySQL has
#: no partial index, so ``failed_at`` is its second column there (NULL first, and a range on
#: ``run_at`` can follow it); elsewhere the index holds no failed row. It replaces
#: ``ix_delayed_jobs_ready`` (priority, run_at, id), which older tables keep until dropped.
_SERVERS_WITHOUT_PARTIAL = MYSQL


def _only(index: Index, applies: Callable[[str], bool]) -> Index:
    """``index`` created on the dialects whose name ``applies``, and looked for only there."""
    index.info["applies"] = applies
    return index.ddl_if(callable_=lambda ddl, target, bind, dialect, **kw: applies(dialect.name))


def _partial(index: Index, where: Any) -> Index:
    """``index`` over the rows where ``where`` holds (on SQLite and PostgreSQL, ``_at_create``)."""
    _at_create(index, ("sqlite", "postgresql"), where=where)
    return index


_only(Index("ix_delayed_jobs_due", delayed_jobs.c.priority, delayed_jobs.c.failed_at, delayed_jobs.c.run_at,
            delayed_jobs.c.id), lambda name: name in _SERVERS_WITHOUT_PARTIAL)
_only(_partial(Index("ix_delayed_jobs_due", delayed_jobs.c.priority, delayed_jobs.c.run_at, delayed_jobs.c.id),
               delayed_jobs.c.failed_at.is_(None)),
      lambda name: name not in _SERVERS_WITHOUT_PARTIAL)
#: The failed rows, for their capped count (``store.counting``): a partial index, written only when a
#: job fails for good, so no insert, reservation or delete of a job that succeeds touches it.
#: MariaDB counts them along ``ix_delayed_jobs_due`` instead, where ``failed_at`` is a column.
_only(_partial(Index("ix_delayed_jobs_failed", delayed_jobs.c.failed_at), delayed_jobs.c.failed_at.is_not(None)),
      lambda name: name not in _SERVERS_WITHOUT_PARTIAL)

tracked_jobs = Table(
    "delayed_job_states",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job_class", String(255), nullable=False),
    Column("identifier", String(255), nullable=False),
    Column("gate", String(16), nullable=False, default="none"),
    Column("state", String(32), nullable=False),
    Column("hostname", String(255)),
    Column("delayed_job_id", Id),
    Column("queue", String(255)),
    Column("priority", Integer, nullable=False, default=0),
    Column("payload", LongText, nullable=False),
    Column("last_error", LongText),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
    Column("started_at", Time),
    Column("finished_at", Time),
    Index("ix_delayed_job_states_state", "state"),
    Index("ix_delayed_job_states_identifier", "job_class", "identifier"),
    Index("ix_delayed_job_states_job", "delayed_job_id"),
)

#: One row per state a tracked job entered, written in the transaction that moved it (see
#: ``store.history``): what ``long_jobs show`` lists. Pruned with its tracked row.
state_history = Table(
    "delayed_job_state_history",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("state_id", Id, nullable=False),  # delayed_job_states.id
    Column("state", String(32), nullable=False),
    Column("at", Time, nullable=False),
    Column("hostname", String(255)),
    Column("note", Text),  # the error's first line, or what an operator did
    Index("ix_delayed_job_state_history_state", "state_id", "id"),
)
# ids are never given again (SQLite reuses the highest one otherwise): logs, results and tracked
# states name jobs by id long after their rows are gone
for _table in (delayed_jobs, tracked_jobs, state_history):
    _at_create(_table, ("sqlite",), autoincrement=True)

workers = Table(
    "delayed_job_workers",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", Time, nullable=False),
    Column("last_seen", Time, nullable=False),
    Column("current_job_id", Id),
    Index("ix_delayed_job_workers_host", "hostname"),
)

#: Outcomes of jobs whose caller keeps one (Django tasks; see ``store.results``). A row appears when
#: its job first starts, is finished with its return value or errors, and goes at ``expires_at``.
results = Table(
    "delayed_job_results",
    metadata,
    Column("id", String(64), primary_key=True),  # "<delayed_jobs id>.<random token>"
    Column("status", String(16), nullable=False),
    Column("handler", LongText, nullable=False),  # the job's handler: what ran, with which arguments
    Column("worker_ids", Text, nullable=False),  # JSON list, one worker name per attempt
    Column("return_value", LongText),  # JSON
    Column("errors", LongText),  # JSON list of {"exception_class_path", "traceback"}
    Column("enqueued_at", Time, nullable=False),
    Column("started_at", Time),
    Column("last_attempted_at", Time),
    Column("finished_at", Time),
    Column("expires_at", Time),
    Index("ix_delayed_job_results_expires", "expires_at"),
)

#: Jobs done and failed, and the queue's depth, per host per minute: what the web page's charts draw.
#: The supervisor writes one row a minute from what its workers report (see ``minutes``) and
#: prunes rows older than ``minutes.KEEP``; the key is also the index the charts read by.
minutes = Table(
    "delayed_job_minutes",
    metadata,
    Column("hostname", String(255), primary_key=True),
    Column("minute", Integer, primary_key=True, autoincrement=False),  # minutes since 1970-01-01 00:00 UTC
    Column("done", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("depth", Integer),  # jobs due and waiting at the last reading; None: not measured
    Index("ix_delayed_job_minutes_minute", "minute"),
)


#: Keys of jobs enqueued with ``unique_key`` (see ``store.unique``): the primary key is what makes
#: a second enqueue of a key find the first job instead of inserting, on every dialect. A row is
#: written in the transaction of its job's INSERT and deleted with its job's end.
unique_keys = Table(
    "delayed_job_unique_keys",
    metadata,
    Column("name", String(255), primary_key=True),  # the key (a longer one is hashed: ``unique.key_of``)
    Column("job_id", Id),  # the job holding the key; NULL only inside the transaction inserting it
    Column("scope", String(16), nullable=False),  # "waiting" or "running": while the job holds the key
    Column("expires_at", Time),  # ``unique_for``: the key holds no longer than this; NULL: no limit
    Index("ix_delayed_job_unique_keys_job", "job_id"),
)

#: Requests to stop running jobs (``delayed_job jobs cancel``; see ``store.cancels``): read by the
#: supervisor of the host named in ``worker`` (``host:pid``), which signals that worker.
cancel_requests = Table(
    "delayed_job_cancel_requests",
    metadata,
    Column("job_id", Id, primary_key=True, autoincrement=False),
    Column("worker", String(255), nullable=False),  # the job's locked_by when it was asked to stop
    Column("requested_at", Time, nullable=False),
    Index("ix_delayed_job_cancel_requests_worker", "worker"),
)

#: One row per occurrence of a recurring entry that some host enqueued (see ``store.recurring``):
#: the primary key makes a second insert of the same occurrence impossible, on any dialect, so
#: hosts that race on it enqueue it once. Pruned to the recent rows of each entry.
recurring_runs = Table(
    "delayed_job_recurring_runs",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("occurrence", Time, primary_key=True),  # naive UTC, as every time here
    Column("job_id", Id),  # the delayed_jobs row it enqueued (gone once the job ran)
    Column("hostname", String(255), nullable=False),
    Column("enqueued_at", Time, nullable=False),
)

def create_all(engine: Engine) -> None:
    """Create missing tables, and the columns and indexes missing on tables that exist (added in a
    later version: ``create_all`` adds them only with their table); the rest is left as it is."""
    metadata.create_all(engine, checkfirst=True)
    for column in missing_columns(engine):
        with engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {column.table.name} ADD COLUMN {_column_ddl(column, engine)}"))
    for index in missing_indexes(engine):
        index.create(engine)


def missing_columns(engine: Engine) -> list[Column]:
    """The columns that the database's existing tables lack (``delayed_job check``). Each is
    nullable with no default, which every server here adds without rewriting the table."""
    def lacks(inspector: Inspector, table: Table) -> list[Column]:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        return [column for column in table.columns if column.name not in present]
    return _lacking(engine, lacks)


def _column_ddl(column: Column, engine: Engine) -> str:
    """``name TYPE`` of a nullable column, as ``ALTER TABLE ... ADD COLUMN`` takes it."""
    assert column.nullable and column.default is None and column.server_default is None, column
    return f"{column.name} {column.type.compile(dialect=engine.dialect)}"


def missing_indexes(engine: Engine) -> list[Index]:
    """The indexes of this dialect that the database's existing tables lack (``delayed_job check``)."""
    def lacks(inspector: Inspector, table: Table) -> list[Index]:
        present = {index["name"] for index in inspector.get_indexes(table.name)}
        return [index for index in table.indexes if index.name not in present and _applies(index, engine)]
    return _lacking(engine, lacks)


def _lacking(engine: Engine, lacks: Callable[[Inspector, Table], list[T]]) -> list[T]:
    """What ``lacks`` finds missing on each table of ours that the database has."""
    inspector = inspect(engine)
    existing = set(inspector.get_table_names())
    return [item for table in metadata.sorted_tables if table.name in existing for item in lacks(inspector, table)]


def _applies(index: Index, engine: Engine) -> bool:
    """Whether ``index`` belongs on ``engine``'s dialect (``_only``)."""
    return bool(index.info.get("applies", lambda name: True)(engine.dialect.name))
