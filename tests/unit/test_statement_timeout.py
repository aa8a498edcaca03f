"""The supervisor's bound on each database wait, derived from the watchdog (``upkeep.statement_timeout``)."""
from __future__ import annotations

import logging

import pytest

from dj_daemon.upkeep import TIMEOUT_MAX, WORST_TURN, statement_timeout


def test_the_units_watchdog_leaves_a_worst_turn_of_half_a_ping_interval() -> None:
    interval = 60 / 2  # WatchdogSec=60 in systemd/delayed_job.service: a ping every 30 s
    assert statement_timeout(interval) == 3.75
    assert statement_timeout(interval) * WORST_TURN == interval / 2


def test_without_a_watchdog_the_drivers_wait_ten_seconds_at_most() -> None:
    assert statement_timeout(None) == TIMEOUT_MAX
    assert statement_timeout(3600) == TIMEOUT_MAX


def test_a_watchdog_too_short_to_honour_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="dj_daemon.supervisor"):
        assert statement_timeout(1.0) == 1.0
    assert [r.getMessage() for r in caplog.records] == [
        "watchdog interval 1s is too short to bound a database stall; database waits are bounded to 1s, "
        "WatchdogSec should be at least 16s"]
