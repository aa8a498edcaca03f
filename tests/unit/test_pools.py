"""Pool specs, as delayed_job's --pool."""
import pytest

from dj_daemon.config import Config
from dj_daemon.errors import ConfigError
from dj_daemon.pools import Pool, parse_pool, pools_of


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
