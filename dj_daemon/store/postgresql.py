"""PostgreSQL: SKIP LOCKED at READ COMMITTED, its default."""
from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Dialect, Engine

#: One locking read reserves (``common.reserve_locking``); no two-step read measured here.
LOCK_BY_ID = False
#: No explicit BEGIN: the driver opens a transaction before the first statement.
BEGIN = None


def engine_options() -> dict[str, Any]:
    return {"pool_reset_on_return": None, "connect_args": {"connect_timeout": 10}}


def prepare(engine: Engine) -> None:
    """Nothing to install."""


def supports_skip_locked(engine: Engine) -> bool:
    return True


def bulk_insert(dialect: Dialect) -> None:
    """No statement of its own for many rows: the driver's executemany serves."""
    return None
