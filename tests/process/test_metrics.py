"""Prometheus metrics: the real daemon's endpoint scraped over HTTP, and its textfile.

Counters are written by the forked workers (prometheus-client's
multiprocess files) and summed by the supervisor's exporter, so what a
scrape shows must match what the workers did, and survive a worker's death.
"""
from __future__ import annotations

import os
import signal
import socket
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dj_daemon import sentinels
from dj_daemon.api import Queue
from tests import jobs
from tests.process.daemon import wait_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, sorted labels): value}`` from the exposition text."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def total(found: dict, name: str, **labels: str) -> float:
    """Sum of a sample over the label values not given."""
    return sum(value for (sample, keys), value in found.items()
               if sample == name and all(dict(keys).get(k) == v for k, v in labels.items()))


def scrape(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return samples(response.read().decode())


def test_scraped_counters_match_the_jobs_performed_and_failed(config, store, start_daemon, tmp_path: Path) -> None:
    side, port, textfile = str(tmp_path / "runs.txt"), free_port(), tmp_path / "delayed_job.prom"
    queue = Queue(config, store)
    queue.enqueue_many([queue.prepare(jobs.record, side, n, queue="mail") for n in range(20)]
                       + [queue.prepare(jobs.always_fails, side) for _ in range(3)])
    daemon = start_daemon("-n", "2", env={"DJ_METRICS_PORT": str(port), "DJ_METRICS_TEXTFILE": str(textfile),
                                          "DJ_MAX_ATTEMPTS": "2", "DJ_BACKOFF_SCALE": "0"})
    daemon.wait_ready()
    # nothing waiting and nothing running: the 20th job's row goes only after its metrics are counted
    wait_for(lambda: store.counts() == {"waiting": 0, "running": 0, "failed": 3}, what="all jobs done")
    wait_for(lambda: total(scrape(port), "delayed_job_jobs_failed_total") == 3, what="failures counted")
    found = scrape(port)
    assert total(found, "delayed_job_jobs_performed_total", queue="mail", job_class="tests.jobs:record") == 20
    assert total(found, "delayed_job_jobs_performed_total") == 20
    assert total(found, "delayed_job_jobs_retried_total", job_class="tests.jobs:always_fails") == 3
    assert total(found, "delayed_job_jobs_failed_total", queue="", job_class="tests.jobs:always_fails") == 3
    assert total(found, "delayed_job_job_duration_seconds_count") == 26  # 20 successes, 6 failed runs
    assert total(found, "delayed_job_workers", state="busy") + total(found, "delayed_job_workers", state="idle") == 2

    victim = daemon.worker_pids()[0]  # a dead worker's counts stay in the sums
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(daemon.worker_pids()) == 2 and victim not in daemon.worker_pids(), what="replacement")
    assert total(scrape(port), "delayed_job_jobs_performed_total") == 20

    os.makedirs(config.sentinel_dir, exist_ok=True)
    sentinels.touch(config.sentinel_dir, "testhost")
    queue.enqueue(jobs.replicate, side, 42)  # a deferrable tracked job: parked at its turn
    wait_for(lambda: total(scrape(port), "delayed_job_jobs_parked_total", queue="replication",
                           job_class="tests.jobs:replicate", state="deferred") == 1, what="parked")
    wait_for(lambda: total(scrape(port), "delayed_job_draining", sentinel="defer_jobs.txt") == 1,
             what="draining gauge (measured every 5 s)")
    wait_for(lambda: textfile.exists() and total(samples(textfile.read_text()), "delayed_job_draining") == 2,
             what="textfile for node_exporter")
    assert total(samples(textfile.read_text()), "delayed_job_jobs_performed_total") == 20


def test_queue_depth_and_oldest_age_are_measured_by_the_supervisor(config, store, start_daemon,
                                                                    tmp_path: Path) -> None:
    """Jobs the daemon's pools do not serve stay due: their queue's depth and age show it."""
    port = free_port()
    queue = Queue(config, store)
    queue.enqueue_many([queue.prepare(jobs.noop, queue="imports") for _ in range(4)])
    daemon = start_daemon("--pool", "mail:1", env={"DJ_METRICS_PORT": str(port)})
    daemon.wait_ready()
    wait_for(lambda: total(scrape(port), "delayed_job_queue_depth", queue="imports") == 4, what="depth")
    assert total(scrape(port), "delayed_job_queue_oldest_age_seconds", queue="imports") >= 0
    assert jobs.runs(str(tmp_path / "none")) == [] and store.counts()["waiting"] == 4


def test_without_metrics_settings_nothing_listens_or_is_imported(config, store, start_daemon) -> None:
    """Metrics are off by default: no prometheus_client in the workers, no multiprocess folder."""
    daemon = start_daemon("-n", "1")
    daemon.wait_ready()
    worker = daemon.worker_pids()[0]
    maps = Path(f"/proc/{worker}/maps").read_text()
    assert "delayed_job-metrics" not in maps and "PROMETHEUS_MULTIPROC_DIR" not in Path(
        f"/proc/{worker}/environ").read_text()


def test_a_taken_metrics_port_is_one_line_and_a_non_zero_exit(start_daemon) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        daemon = start_daemon("-n", "1", env={"DJ_METRICS_PORT": str(taken.getsockname()[1])})
        assert daemon.wait(20) == 1
    errors = daemon.log().strip().splitlines()
    assert errors[-1].startswith("delayed_job: error: metrics_port: cannot listen on 127.0.0.1:")
    assert "Traceback" not in daemon.log()


def listening_socket(port: int) -> str:
    """``socket:[inode]`` of the TCP socket listening on ``port`` (from /proc/net/tcp)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # 0A: LISTEN
            return f"socket:[{fields[9]}]"
    raise AssertionError(f"nothing listens on port {port}")


def open_sockets(pid: int) -> set[str]:
    folder = f"/proc/{pid}/fd"
    targets = set()
    for fd in os.listdir(folder):
        try:
            targets.add(os.readlink(f"{folder}/{fd}"))
        except FileNotFoundError:
            pass
    return {t for t in targets if t.startswith("socket:")}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no database involved
def test_workers_do_not_hold_the_exporters_listening_socket(start_daemon) -> None:
    """A worker that outlived its supervisor (killed -9) would keep the port, and the next
    supervisor could not listen on it."""
    port = free_port()
    daemon = start_daemon("-n", "2", env={"DJ_METRICS_PORT": str(port)})
    daemon.wait_ready()
    listener = listening_socket(port)
    assert listener in open_sockets(daemon.proc.pid)
    workers = daemon.worker_pids()
    assert len(workers) == 2 and all(listener not in open_sockets(pid) for pid in workers)
