"""Fixtures for tests that run the real daemon."""
from __future__ import annotations

from typing import Callable, Iterator

import pytest

from tests.process.daemon import Daemon


@pytest.fixture
def start_daemon(subprocess_env) -> Iterator[Callable[..., Daemon]]:
    """``start_daemon("-n", "2", env={...})``; every daemon is killed at the end of the test."""
    started: list[Daemon] = []

    def start(*args: str, env: dict[str, str] | None = None, watchdog_usec: int | None = None) -> Daemon:
        daemon = Daemon({**subprocess_env, **(env or {})}, *args, watchdog_usec=watchdog_usec)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.close()
