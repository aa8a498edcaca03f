"""MySQL and MariaDB: READ COMMITTED, and SKIP LOCKED where the server has it.

At REPEATABLE READ, InnoDB's gap locks made batched SKIP LOCKED reservations
deadlock on this project's MariaDB; READ COMMITTED does not take them.
``SKIP LOCKED`` exists from MySQL 8.0.1 and MariaDB 10.6; older servers use
the optimistic reservation.

Bulk enqueues on MariaDB 10.6+ send their rows as one JSON document read by
``JSON_TABLE``: PyMySQL's executemany escapes every value of every row in
Python (13 µs a row here, more than building the job), a JSON document is
one string. The cost: InnoDB holds its table-level AUTO-INC lock (at the
default ``innodb_autoinc_lock_mode=1``) through an ``INSERT ... SELECT``, so
other enqueues wait for such a statement (up to 30 ms here, against 22 ms
behind an executemany: docs/performance.md).
MySQL 8 has ``JSON_TABLE`` too, but no test here runs on it, so it keeps the
executemany.

PyMySQL 1.2 prefers TLS when no TLS option is given, and built a new default
``SSLContext`` for every connection to offer it, before it knew whether the
server has TLS: loading the system's CA bundle, 17-19 ms of CPU per connect
here against 1.4 ms without. ``connect`` gives such connections one context
per process, built at the first TLS handshake (forked workers inherit it).
"""
from __future__ import annotations

import functools
import json
import operator
from typing import Any, Callable, Iterator, Sequence

from sqlalchemy.engine import Dialect, Engine

from ..schema import delayed_jobs as dj
from . import common

#: Reserve in two steps, a plain read then a locking read by id (``common.reserve_by_id``):
#: InnoDB's locking reads through a secondary index slow down while purge lags.
LOCK_BY_ID = True
#: No explicit BEGIN: the driver opens a transaction before the first statement.
BEGIN = None

#: Deadlock found / lock wait timeout: the transaction is retried from its start.
RETRYABLE_CODES = frozenset({1213, 1205})
#: No such table (1146), unknown database (1049), access denied (1045; 1044 to a database;
#: 1698 without a password): no wait fixes these (``Store._error``).
PERMANENT_CODES = frozenset({1146, 1049, 1045, 1044, 1698})


def permanent(error: BaseException) -> bool:
    """Whether the driver's ``error`` is one that waiting cannot fix."""
    args = getattr(error, "args", ())
    return bool(args) and args[0] in PERMANENT_CODES


def engine_options(timeout: float | None = None) -> dict[str, Any]:
    """``timeout`` (the supervisor's) bounds connecting, and waiting for each read or write."""
    # No pre-ping and no rollback on return: each costs a round trip per transaction, and every
    # transaction here ends in its own COMMIT or ROLLBACK. A dropped connection is invalidated by
    # SQLAlchemy and the store retries the transaction on a fresh one.
    return {"isolation_level": "READ COMMITTED", "pool_recycle": 3600, "pool_reset_on_return": None,
            # By default a read or write timeout beyond InnoDB's 50 s lock wait, so that a silent
            # network partition or a frozen server fails a statement instead of hanging a worker forever.
            "connect_args": {"connect_timeout": timeout or 10, "read_timeout": timeout or 120,
                             "write_timeout": timeout or 120}}


def prepare(engine: Engine, timeout: float | None = None) -> None:
    """Nothing to install: the options above are enough."""


def connect(dialect: Dialect, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
    """A new DB-API connection (SQLAlchemy's ``do_connect``, given to ``failover.create``): through
    ``_shared_context_connection`` with PyMySQL, as the driver itself with any other."""
    if dialect.driver != "pymysql":
        return dialect.connect(*cargs, **cparams)
    return _shared_context_connection()(*cargs, **cparams)


#: What ``_create_ssl_ctx({})`` gives in place of a context: build the shared one on first use.
_PREFERRED = object()


@functools.cache
def _shared_context_connection() -> type:
    """PyMySQL's ``Connection``, whose preferred-TLS context (the one it builds when no TLS option
    is given: ``_create_ssl_ctx({})``, unverified, used only if the server offers TLS) is built on
    the first TLS handshake of this process, and shared: forked workers inherit it, and a server
    without TLS never costs one. Explicit TLS options build their own context at once, as before;
    a PyMySQL that never asks for that default context (1.1) is unchanged."""
    from pymysql.connections import Connection

    class SharedContextConnection(Connection):  # type: ignore[misc]
        preferred_context: Any = None
        _ctx: Any = None

        @property
        def ctx(self) -> Any:
            if self._ctx is not _PREFERRED:
                return self._ctx
            cls = SharedContextConnection
            if cls.preferred_context is None:
                cls.preferred_context = super()._create_ssl_ctx({})
            return cls.preferred_context

        @ctx.setter
        def ctx(self, value: Any) -> None:
            self._ctx = value

        def _create_ssl_ctx(self, sslp: Any) -> Any:
            return _PREFERRED if isinstance(sslp, dict) and not sslp else super()._create_ssl_ctx(sslp)
    return SharedContextConnection


def supports_skip_locked(engine: Engine) -> bool:
    """By the server's version, which the dialect learns at the engine's first connect: asked
    then (a connect) only if none was made yet. The first reservation asks this inside its
    transaction, and a connect there opened each worker a second connection before its first job."""
    dialect = engine.dialect
    if dialect.server_version_info is None:
        engine.connect().close()
    version = dialect.server_version_info or ()
    return version >= ((10, 6) if getattr(dialect, "is_mariadb", False) else (8, 0, 1))


#: The columns a bulk row carries, in its JSON array's order, run_at last. The times come from
#: ``now``, sent once, and run_at too when it is ``now`` (null in the JSON): a datetime in JSON
#: is a string to format and for the server to parse, the dearest value of a row.
JSON_COLUMNS = ("handler", "queue", "priority", "attempts", "strand", "strand_limit", "run_at")
#: Characters of handler per statement: at most 4 bytes each once JSON- and SQL-escaped, which
#: keeps a statement near 1 MB (PyMySQL's own cut), far below the default max_allowed_packet.
JSON_BATCH_CHARS = 250_000
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=lambda value: value.isoformat(" "))


def bulk_insert(dialect: Dialect) -> Callable[[Any, Sequence[dict[str, Any]]], None] | None:
    """``insert(cursor, rows)`` for the rows of one ``Store.insert`` (``NewJob.params``, one ``now``)
    on servers with ``JSON_TABLE`` tested here (MariaDB 10.6+), else None. Asked once the
    dialect has met the server."""
    if not getattr(dialect, "is_mariadb", False) or (dialect.server_version_info or ()) < (10, 6):
        return None
    fields = ", ".join(f"{name} {dj.c[name].type.compile(dialect=dialect)} PATH '$[{i}]' ERROR ON ERROR"
                       for i, name in enumerate(JSON_COLUMNS))
    sql = (f"INSERT INTO {dj.name} ({', '.join(JSON_COLUMNS)}, created_at, updated_at) "
           f"SELECT {', '.join('j.' + name for name in JSON_COLUMNS[:-1])}, COALESCE(j.run_at, %(now)s), "
           f"%(now)s, %(now)s FROM JSON_TABLE(%(rows)s, '$[*]' COLUMNS ({fields})) AS j")
    others = operator.itemgetter(*JSON_COLUMNS[:-1])

    def insert(cursor: Any, rows: Sequence[dict[str, Any]]) -> None:
        now = rows[0]["now"]
        for batch in _batches(rows):
            document = _ENCODER.encode([(*others(row), None if row["run_at"] is now else row["run_at"])
                                        for row in batch])
            cursor.execute(sql, {"now": now, "rows": document})
    return insert


def _batches(rows: Sequence[dict[str, Any]]) -> Iterator[Sequence[dict[str, Any]]]:
    start, size = 0, 0
    for end, row in enumerate(rows):
        weight = len(row["handler"] or "") + 64
        if size + weight > JSON_BATCH_CHARS and end > start:
            yield rows[start:end]
            start, size = end, 0
        size += weight
    yield rows[start:]


def due_scan() -> common.Due:
    """MariaDB's optimizer does not bound a recursive CTE of index probes (it read every row):
    the stored priorities are listed in the statement, read by a loose index scan."""
    return common.ListedPriorities()
