"""PostgreSQL: SKIP LOCKED at READ COMMITTED, its default."""
from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine


def engine_options() -> dict[str, Any]:
    return {"pool_reset_on_return": None, "connect_args": {"connect_timeout": 10}}


def prepare(engine: Engine) -> None:
    """Nothing to install."""


def supports_skip_locked(engine: Engine) -> bool:
    return True
