"""Pool specs, as delayed_job's --pool, and when a pool whose workers died may fork again."""
import time

import pytest

from dj_daemon.cancel import KILL_REASON
from dj_daemon.config import Config
from dj_daemon.errors import ConfigError
from dj_daemon.pools import BACKOFF_MAX, EARLY_DEATH, Pool, Respawns, parse_pool, pools_of, pools_text
from dj_daemon.reports import Slot


@pytest.mark.parametrize("spec, pool", [
    ("zenodo:1", Pool(("zenodo",), 1)), ("mail,sms:2", Pool(("mail", "sms"), 2)),
    ("*:3", Pool((), 3)), ("zenodo", Pool(("zenodo",), 1)),
])
def test_parse(spec, pool) -> None:
    assert parse_pool(spec) == pool


@pytest.mark.parametrize("spec, message", [("a:x", "not a number"), ("a:0", "at least 1"), (":2", "name the queues")])
def test_bad_specs(spec, message) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_pool(spec)


def test_without_pools_workers_take_the_configs_queues() -> None:
    assert pools_of(Config(workers=3, queues=("a",))) == [Pool(("a",), 3)]
    assert pools_of(Config(pools=("a:1", "*:2"))) == [Pool(("a",), 1), Pool((), 2)]



def died(respawns: Respawns, lived: float = 1.0, done: int = 0, kill_reason: str = "") -> tuple[float, float]:
    """One worker of pool 0 ended abnormally after ``lived`` seconds: the bounds of the delay
    planned, from the clock read after and before (no timing assumed)."""
    before = time.monotonic()
    slot = Slot(1, "h:1", 0, 0, 0.0, kill_reason=kill_reason)
    for _ in range(done):
        slot.board.ended(True)
    respawns.plan(slot, abnormal=True, lived=lived)
    after = time.monotonic()
    return respawns.next_spawn[0] - after, respawns.next_spawn[0] - before


def test_workers_dying_young_back_off_doubling_up_to_the_cap() -> None:
    respawns = Respawns([Pool(("a",), 1)])
    for delay in [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, BACKOFF_MAX, BACKOFF_MAX, BACKOFF_MAX]:
        low, high = died(respawns)
        assert low <= delay <= high
    assert respawns.failures == [9]
    now = time.monotonic()
    assert not respawns.due(0, now)
    assert respawns.waiting(now).startswith("; pool a: 9 worker(s) died young, respawning in ")


def test_a_worker_that_worked_or_was_cancelled_is_replaced_at_once() -> None:
    respawns = Respawns([Pool((), 2)])
    for how in ({"done": 1}, {"lived": EARLY_DEATH + 1}, {"kill_reason": f"{KILL_REASON} 7"}):
        died(respawns)
        assert respawns.failures == [1]
        low, high = died(respawns, **how)
        assert low <= 0.0 <= high and respawns.failures == [0]
    assert respawns.due(0, time.monotonic()) and respawns.waiting(time.monotonic()) == ""


def test_a_survivor_or_a_finished_job_makes_the_pool_healthy_again() -> None:
    respawns = Respawns([Pool(("a",), 1), Pool(("b",), 1)])
    respawns.failures = [3, 3]
    respawns.note_survivors([Slot(1, "h:1", 0, 0, started=0.0), Slot(2, "h:2", 1, 0, started=5.0)], now=EARLY_DEATH + 1)
    assert respawns.failures == [0, 3]
    respawns.healthy(1)
    respawns.healthy(7)  # a worker of pools a reload replaced
    assert respawns.failures == [0, 0]


def test_pools_text() -> None:
    assert pools_text([Pool(("mail", "sms"), 2), Pool((), 1)]) == "2 worker(s) on mail,sms, 1 worker(s) on *"
