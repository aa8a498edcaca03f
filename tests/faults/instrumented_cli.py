"""``python -m tests.faults.instrumented_cli ARGS``: the ``delayed_job`` CLI with test knobs, for lock experiments.

Environment knobs (each optional; without them this is exactly ``delayed_job``):

- ``DJ_FAULTS_ISOLATION``: the isolation level the MySQL engine uses instead of the
  store's READ COMMITTED (e.g. ``REPEATABLE READ``), to provoke InnoDB gap-lock deadlocks;
- ``DJ_FAULTS_LOCK_WAIT_TIMEOUT``: ``SET SESSION innodb_lock_wait_timeout`` on every
  connection, so that a lock held a few seconds raises 1205 (the server default is 50 s and
  ``SET GLOBAL`` stays untouched on a shared server);
- ``DJ_FAULTS_RETRY_LOG``: a file that gets one line ``<code> <pid>`` for every InnoDB
  1213/1205 error the store sees (and retries, except on its last attempt).

Nothing in ``dj_daemon`` is edited: two module attributes are wrapped before the CLI runs.
"""
from __future__ import annotations

import importlib
import os


def install() -> None:
    database = importlib.import_module("dj_daemon.store.database")
    mysql = importlib.import_module("dj_daemon.store.mysql")
    isolation = os.environ.get("DJ_FAULTS_ISOLATION")
    lock_wait = os.environ.get("DJ_FAULTS_LOCK_WAIT_TIMEOUT")
    retry_log = os.environ.get("DJ_FAULTS_RETRY_LOG")
    original_options = mysql.engine_options

    def engine_options(timeout: float | None = None) -> dict:
        options = original_options(timeout)
        if isolation:
            options["isolation_level"] = isolation
        if lock_wait:
            options["connect_args"] = {**options.get("connect_args", {}),
                                       "init_command": f"SET SESSION innodb_lock_wait_timeout={int(lock_wait)}"}
        return options

    mysql.engine_options = engine_options
    if retry_log:
        original_retryable = database._retryable

        def retryable(exc: BaseException) -> bool:
            args = getattr(getattr(exc, "orig", None), "args", ())
            if args and args[0] in (1213, 1205):
                fd = os.open(retry_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, f"{args[0]} {os.getpid()}\n".encode())
                finally:
                    os.close(fd)
            return original_retryable(exc)

        database._retryable = retryable


if __name__ == "__main__":
    install()
    from dj_daemon.cli import main

    main()
