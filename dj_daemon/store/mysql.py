"""MySQL and MariaDB: READ COMMITTED, and SKIP LOCKED where the server has it.

At REPEATABLE READ, InnoDB's gap locks made batched SKIP LOCKED reservations
deadlock on this project's MariaDB; READ COMMITTED does not take them.
``SKIP LOCKED`` exists from MySQL 8.0.1 and MariaDB 10.6; older servers use
the optimistic reservation.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

#: Deadlock found / lock wait timeout: the transaction is retried from its start.
RETRYABLE_CODES = frozenset({1213, 1205})


def engine_options() -> dict[str, Any]:
    # No pre-ping and no rollback on return: each costs a round trip per transaction, and every
    # transaction here ends in its own COMMIT or ROLLBACK. A dropped connection is invalidated by
    # SQLAlchemy and the store retries the transaction on a fresh one.
    return {"isolation_level": "READ COMMITTED", "pool_recycle": 3600, "pool_reset_on_return": None,
            # A read or write timeout beyond InnoDB's 50 s lock wait, so that a silent network
            # partition fails a statement instead of hanging a worker forever.
            "connect_args": {"connect_timeout": 10, "read_timeout": 120, "write_timeout": 120}}


def prepare(engine: Engine) -> None:
    """Nothing to install: the options above are enough."""


def supports_skip_locked(engine: Engine) -> bool:
    """Ask the server its version (the dialect caches it after the first connect)."""
    with engine.connect() as conn:
        version = conn.dialect.server_version_info or ()
        is_mariadb = bool(getattr(conn.dialect, "is_mariadb", False))
    return version >= ((10, 6) if is_mariadb else (8, 0, 1))
