"""The retry policy as pure functions."""
from __future__ import annotations

from datetime import datetime, timedelta

from dj_daemon.config import Config
from dj_daemon.retry import LONGEST_WAIT, default_backoff, policy_for

NOW = datetime(2026, 1, 1)


def test_delayed_job_backoff() -> None:
    assert [default_backoff(n) for n in (1, 2, 3, 4)] == [6, 21, 86, 261]


def test_wait_is_capped_for_huge_counts_and_infinite_backoffs() -> None:
    later = NOW + timedelta(seconds=LONGEST_WAIT)
    assert policy_for(object(), Config(max_attempts=2**40)).next_run_at(2**31, NOW) == later  # no OverflowError
    class Owner:
        backoff = float("inf")

    assert policy_for(Owner(), Config()).next_run_at(1, NOW) == later


def test_config_policy_and_scale() -> None:
    policy = policy_for(object(), Config(max_attempts=3, backoff_scale=0.5))
    assert policy.next_run_at(2, NOW) == NOW + timedelta(seconds=10.5)
    assert not policy.gives_up(2) and policy.gives_up(3)


def test_owner_overrides_and_run_time_is_capped() -> None:
    class Owner:
        max_attempts = 2
        max_run_time = 10 * 3600
        backoff = staticmethod(lambda n: 60 * n)

    policy = policy_for(Owner(), Config(max_run_time=3600))
    assert policy.max_attempts == 2 and policy.max_run_time == 3600
    assert policy.next_run_at(3, NOW) == NOW + timedelta(minutes=3)
