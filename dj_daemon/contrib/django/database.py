"""Where the backend's statements run: the Django project's own connection, or a dj-daemon queue.

On a Django connection, an SQLAlchemy Core statement is compiled for the
connection's vendor and executed on ``connections[alias].cursor()`` (every
Django backend takes ``%s`` parameters). An enqueue inside
``transaction.atomic()`` is then part of that transaction, with no second
connection. Values are converted by their column types as SQLAlchemy would,
so that on SQLite times are stored in the text form the daemon writes.
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from django.db import connections, transaction
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ClauseElement

from ...api import Queue
from ...job import NewJob, utcnow
from ...schema import delayed_jobs as dj

T = TypeVar("T")
DIALECTS: dict[str, Callable[..., Dialect]] = {
    "sqlite": sqlite.dialect, "mysql": mysql.dialect, "postgresql": postgresql.dialect}


def url_of(alias: str) -> str:
    """A URL naming the Django database ``alias`` (no user, no password): for messages and nudges."""
    connection = connections[alias]
    settings = connection.settings_dict
    return URL.create(connection.vendor, host=settings.get("HOST") or None,
                      port=int(settings["PORT"]) if settings.get("PORT") else None,
                      database=str(settings["NAME"])).render_as_string()


class Rows:
    """What ``CursorConnection.execute`` returns: the part of a SQLAlchemy result the store uses."""

    def __init__(self, rows: list[dict[str, Any]], rowcount: int, inserted_primary_key: tuple[Any, ...]) -> None:
        self.rows, self.rowcount, self.inserted_primary_key = rows, rowcount, inserted_primary_key

    def mappings(self) -> "Rows":
        return self

    def first(self) -> dict[str, Any] | None:
        return self.rows[0] if self.rows else None


class CursorConnection:
    """Runs Core statements on the Django connection ``alias``, in whatever transaction it is in."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        vendor = connections[alias].vendor
        if vendor not in DIALECTS:
            raise ValueError(f"Django database {alias!r} is {vendor}; dj-daemon supports {', '.join(DIALECTS)}")
        self.dialect = DIALECTS[vendor](paramstyle="format")

    def execute(self, statement: ClauseElement, parameters: dict[str, Any] | None = None) -> Rows:
        compiled = statement.compile(dialect=self.dialect, column_keys=list(parameters or ()),
                                     compile_kwargs={"render_postcompile": True})
        values = compiled.construct_params(parameters)
        params = [self._bound(compiled.binds.get(name), values[name]) for name in compiled.positiontup or ()]
        with connections[self.alias].cursor() as cursor:
            cursor.execute(str(compiled), params)
            rows = self._rows(statement, cursor) if cursor.description else []
            return Rows(rows, cursor.rowcount, self._inserted_key(compiled, rows, cursor))

    @staticmethod
    def _inserted_key(compiled: Any, rows: list[dict[str, Any]], cursor: Any) -> tuple[Any, ...]:
        """An INSERT's new key: RETURNING where the dialect adds it (PostgreSQL), else ``lastrowid``."""
        if not compiled.isinsert:
            return ()
        return tuple(rows[0].values()) if rows else (getattr(cursor, "lastrowid", None),)

    def _bound(self, bind: Any, value: Any) -> Any:
        process = bind.type.dialect_impl(self.dialect).bind_processor(self.dialect) if bind is not None else None
        return process(value) if process and value is not None else value

    def _rows(self, statement: ClauseElement, cursor: Any) -> list[dict[str, Any]]:
        names = [column[0] for column in cursor.description]
        types = [c.type for c in statement.selected_columns] if isinstance(statement, Select) else []
        converters = [self._converter(t) for t in types] or [None] * len(names)
        return [{name: convert(value) if convert and value is not None else value
                 for name, convert, value in zip(names, converters, row)} for row in cursor.fetchall()]

    def _converter(self, type_: Any) -> Callable[[Any], Any] | None:
        """The column type's result conversion, for drivers that did not already make the value."""
        process = type_.dialect_impl(self.dialect).result_processor(self.dialect, None)
        if process is None:
            return None
        python_type = type_.python_type
        return lambda value: value if isinstance(value, python_type) else process(value)


class DjangoDatabase:
    """The Django project's database ``alias``: enqueues join the caller's transaction."""

    def __init__(self, alias: str, nudge: Callable[[], None]) -> None:
        self.alias = alias
        self.connection = CursorConnection(alias)
        self._nudge = nudge

    def insert(self, new: NewJob) -> int:
        """One queue row; the local daemon is nudged once the caller's transaction commits."""
        job_id = self.connection.execute(dj.insert(), new.to_row(utcnow())).inserted_primary_key[0]
        transaction.on_commit(self._nudge, using=self.alias)
        return int(job_id)

    def transaction(self, work: Callable[[Any], T]) -> T:
        """``work`` in one transaction (or in the caller's, if one is open)."""
        with transaction.atomic(using=self.alias, savepoint=False):
            return work(self.connection)

    def read(self, work: Callable[[Any], T]) -> T:
        """``work`` as it comes: reads need no transaction of their own."""
        return work(self.connection)


class QueueDatabase:
    """A dj-daemon queue on its own URL (``OPTIONS["URL"]``), with its own connections."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    def insert(self, new: NewJob) -> int:
        return self.queue.insert([new])[0]

    def transaction(self, work: Callable[[Any], T]) -> T:
        return self.queue.store.transaction(work)

    read = transaction
