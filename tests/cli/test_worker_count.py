"""``-n auto`` (and ``workers = auto``): one worker per CPU the daemon may run on; anything else that
is not a count of 1 or more is refused with one line."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from dj_daemon.config import load_config, usable_cpus
from dj_daemon.errors import ConfigError
from dj_daemon.processes import children_of
from tests.cli.test_delayed_job_cli import assert_one_line_error, dj
from tests.conftest import bin_path

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def workers_of(daemon) -> int:
    """The daemon's worker processes, once READY=1 said every first worker is up."""
    daemon.wait_ready()
    return len(children_of(daemon.proc.pid))


def test_auto_runs_one_worker_per_cpu_of_the_affinity_mask(store, start_daemon) -> None:
    one_cpu = start_daemon("-n", "auto", program=["taskset", "-c", "0", bin_path("delayed_job")])
    every_cpu = start_daemon("-n", "auto")
    assert workers_of(one_cpu) == 1
    assert workers_of(every_cpu) == len(os.sched_getaffinity(0)) == usable_cpus()
    for daemon in (one_cpu, every_cpu):
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, daemon.log()


def test_auto_in_the_config_and_the_environment(tmp_path: Path, db_url: str) -> None:
    conf = tmp_path / "dj.conf"
    conf.write_text("[daemon]\nworkers = auto\n")
    assert load_config(str(conf), env={}).workers == usable_cpus()
    assert load_config(str(conf), env={"DJ_WORKERS": "3"}).workers == 3
    assert load_config(None, read_default=False, env={"DJ_WORKERS": " AUTO "}).workers == usable_cpus()
    with pytest.raises(ConfigError, match="invalid value 'some' for workers \\(write a number, or auto\\)"):
        load_config(None, read_default=False, env={"DJ_WORKERS": "some"})


@pytest.mark.parametrize("value", ["autox", "0", "-2", "two", ""])
def test_a_malformed_count_is_one_line(subprocess_env, store, value: str) -> None:
    result = dj(subprocess_env, "run", "-n", value)
    assert_one_line_error(result, "is not a number of workers (1 or more) or auto")
    assert result.returncode == 2


def test_a_malformed_count_in_the_environment_is_one_line(subprocess_env, store) -> None:
    result = dj({**subprocess_env, "DJ_WORKERS": "lots"}, "check")
    assert_one_line_error(result, "DJ_WORKERS: invalid value 'lots' for workers (write a number, or auto)")
