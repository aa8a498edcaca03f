"""Statements compiled once by SQLAlchemy and run on the driver's own cursor: the hot path's.

SQLAlchemy writes each statement for the engine's dialect once (its SQL text,
its parameters' order and type processors, its columns' result processors);
each run is then the driver's ``execute`` and little else. The enqueue path's
INSERT runs so on a connection of its own (``driver``), and a reservation's
few statements (``store.common``: the ready rows, the stamp, the delete of
finished jobs, each over one id per job) on the cursor of the transaction's
own ``Connection`` (``execute``), whose other, rarer statements still go
through SQLAlchemy in the same transaction.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, Sequence

from sqlalchemy import Select
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError


class Prepared:
    """One statement compiled for one dialect, to run on a DB-API cursor: its SQL, how to turn
    values into its parameters (positional or named, through the types' bind processors; a
    value the statement holds itself, as a literal it compares with, taken from it), and its
    rows through the types' result processors."""

    def __init__(self, statement: Any, dialect: Dialect, column_keys: Sequence[str] | None = None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(column_keys) if column_keys else None)
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError(f"cannot prepare a statement whose SQL is rendered at execution: {compiled.string}")
        self.sql = compiled.string
        by_type: dict[Any, Callable[[Any], Any] | None] = {}  # one processor per type: see ``params``
        for bind in compiled.binds.values():
            if bind.type not in by_type:
                by_type[bind.type] = bind.type.dialect_impl(dialect).bind_processor(dialect)
        processors = {name: by_type[bind.type] for name, bind in compiled.binds.items()}
        self.order = [(name, processors[name]) for name in compiled.positiontup or ()] if compiled.positional else None
        self.named = [(name, p) for name, p in processors.items() if p is not None]
        self.held = {name: bind.effective_value for name, bind in compiled.binds.items()
                     if not bind.required and bind.effective_value is not None}
        columns = statement.selected_columns if isinstance(statement, Select) else ()
        self.results = [(index, processor) for index, column in enumerate(columns)
                        if (processor := column.type.dialect_impl(dialect).result_processor(dialect, None))]

    def params(self, row: Mapping[str, Any]) -> Any:
        """The row's values as the driver takes them. A value bound more than once with one type
        (a new job's ``now``, and its ``run_at`` unless set) is converted once."""
        if self.held:
            row = {**self.held, **row}
        if self.order is None and not self.named:
            return row  # named parameters, nothing to convert: the row as it is
        converted: dict[tuple[int, Any], Any] = {}
        values = []
        for name, process in self.order if self.order is not None else self.named:
            value = row[name]
            if process is not None:
                key = (id(value), process)
                if key not in converted:
                    converted[key] = process(value)
                value = converted[key]
            values.append(value)
        return values if self.order is not None else {**row, **dict(zip((n for n, _ in self.named), values))}

    def rows(self, cursor: Any) -> list[Any]:
        """The rows ``cursor`` holds (none for a statement that returns none), processed."""
        if cursor.description is None:
            return []
        rows = cursor.fetchall()
        if not self.results:
            return rows
        processed = []
        for row in rows:
            values = list(row)
            for index, process in self.results:
                values[index] = process(values[index])
            processed.append(values)
        return processed


@functools.lru_cache(maxsize=256)
def prepare(statement: Any, dialect: Dialect) -> Prepared:
    """``statement`` prepared for ``dialect``, once (the hot path's statements are built once
    each: ``store.common``)."""
    return Prepared(statement, dialect)


def execute(conn: Connection, statement: Any, values: Mapping[str, Any]) -> list[Any]:
    """Run ``statement`` with ``values`` on the DB-API cursor of ``conn``, in its transaction; its
    rows, as sequences (processed as SQLAlchemy would). For the reservation's statements: through
    ``conn.execute`` each cost 25-40 µs more than the driver's own work, and its parameters one
    more lookup per id; 3.6 of 17.7 µs a job of a SQLite reservation (docs/performance.md).

    Listeners of ``before_cursor_execute`` and ``after_cursor_execute`` hear of it as of any
    statement (tests watch and steer reservations by them). Driver errors come out as
    SQLAlchemy's ``DBAPIError``, and a connection found dead is invalidated, as from
    ``conn.execute``.
    """
    dialect = conn.dialect
    compiled = prepare(statement, dialect)
    parameters = compiled.params(values)
    raw = conn.connection
    cursor = raw.cursor()
    dispatch = conn.dispatch
    try:
        if dispatch.before_cursor_execute:
            dispatch.before_cursor_execute(conn, cursor, compiled.sql, parameters, None, False)
        cursor.execute(compiled.sql, parameters)
        if dispatch.after_cursor_execute:
            dispatch.after_cursor_execute(conn, cursor, compiled.sql, parameters, None, False)
        return compiled.rows(cursor)
    except dialect.loaded_dbapi.Error as exc:
        gone = bool(dialect.is_disconnect(exc, raw.dbapi_connection, cursor))
        if gone:
            conn.invalidate(exc)
        raise DBAPIError.instance(compiled.sql, parameters, exc, dialect.loaded_dbapi.Error,
                                  connection_invalidated=gone, dialect=dialect) from exc
    finally:
        cursor.close()
