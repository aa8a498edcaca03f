"""PostgreSQL: SKIP LOCKED at READ COMMITTED, its default."""
from __future__ import annotations

import math
import re
from typing import Any

from sqlalchemy.engine import Dialect, Engine

from . import common

#: One locking read reserves (``common.reserve_locking``); no two-step read measured here.
LOCK_BY_ID = False
#: No explicit BEGIN: the driver opens a transaction before the first statement.
BEGIN = None
#: Undefined table, unknown database, bad password, bad authorization: no wait fixes these
#: (``Store._error``).
PERMANENT_STATES = frozenset({"42P01", "3D000", "28P01", "28000"})
#: The same refused at connect, where psycopg's error carries no SQLSTATE, only libpq's text.
PERMANENT_AT_CONNECT = re.compile(r'FATAL: +(database "[^"]*" does not exist|password authentication failed'
                                  r'|role "[^"]*" does not exist|no pg_hba\.conf entry)')


def engine_options(timeout: float | None = None) -> dict[str, Any]:
    """``timeout`` (the supervisor's) bounds connecting, each statement on the server, and a peer
    gone silent (TCP keepalives, unacknowledged data). libpq has no read timeout: a server
    process that is frozen while its host still answers TCP is not detected."""
    if timeout is None:
        return {"pool_reset_on_return": None, "connect_args": {"connect_timeout": 10}}
    seconds, ms = max(2, math.ceil(timeout)), round(timeout * 1000)  # libpq: whole seconds, at least 2
    return {"pool_reset_on_return": None,
            "connect_args": {"connect_timeout": seconds, "options": f"-c statement_timeout={ms}",
                             "tcp_user_timeout": ms, "keepalives": 1, "keepalives_idle": seconds,
                             "keepalives_interval": 1, "keepalives_count": 2}}


def prepare(engine: Engine, timeout: float | None = None) -> None:
    """Nothing to install."""


def permanent(error: BaseException) -> bool:
    """Whether the driver's ``error`` is one that waiting cannot fix."""
    return getattr(error, "sqlstate", None) in PERMANENT_STATES or bool(PERMANENT_AT_CONNECT.search(str(error)))


def supports_skip_locked(engine: Engine) -> bool:
    return True


def bulk_insert(dialect: Dialect) -> None:
    """No statement of its own for many rows: the driver's executemany serves."""
    return None


def due_scan() -> common.Due:
    """The stored priorities as an array: the btree reads one range per value, in order."""
    return common.StoredPriorities(as_array=True)
