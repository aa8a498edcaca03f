"""Prometheus metrics for the daemon, when ``metrics_port`` or ``metrics_textfile`` is set.

prometheus-client's multiprocess mode: every process (the supervisor and
each forked worker) writes its own memory-mapped files under
``metrics_dir``, and the supervisor's exporter sums them when scraped. A
worker counts its own jobs without telling anyone, and its counts outlive
it. The directory must be named before prometheus_client is first
imported, so ``start`` sets it in the supervisor before the first fork; the
workers inherit both the variable and the metric objects (the library
notices the new pid and opens files of the worker's own).

Queue depth and the oldest waiting job's age are measured by the
supervisor with one grouped query every few seconds, never by the workers;
it counts up to a cap (``store.counting``), and says when it stopped there.
With neither setting, ``Metrics`` is a no-op and prometheus_client is not
even imported.
"""
from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from datetime import datetime
from typing import Any, Iterable

from .config import Config
from .errors import ConfigError
from .pools import pools_of
from .sentinels import FILES

log = logging.getLogger("dj_daemon.metrics")
DURATION_BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10.0, 60.0, 300.0, 1800.0, 7200.0)


class Metrics:
    """The recording interface, doing nothing: what workers get when metrics are off."""

    def performed(self, queue: str | None, name: str, seconds: float) -> None:
        """A job ran and succeeded."""

    def failed(self, queue: str | None, name: str, seconds: float, retrying: bool) -> None:
        """A job raised: ``retrying`` when it was rescheduled, else it failed for good."""

    def parked(self, queue: str | None, name: str, state: str) -> None:
        """A drain sentinel parked a job at its turn."""

    def database_error(self, process: str) -> None:
        """A query failed (the caller retries); ``process`` is ``worker`` or ``supervisor``."""

    def supervisor_error(self, duty: str) -> None:
        """A periodic duty of the supervisor raised something other than a database error."""

    def workers(self, busy: int, idle: int) -> None:
        """The supervisor's count of its workers."""

    def queues(self, depths: dict[str, tuple[int, datetime | None]], now: datetime, draining: set[str]) -> None:
        """The supervisor's periodic reading: due jobs per queue, their age (None: the oldest one's
        run_at is no valid date), sentinels present."""

    def worker_gone(self, pid: int) -> None:
        """The supervisor reaped worker ``pid``."""

    def close(self) -> None:
        """Stop serving (the supervisor, at exit)."""

    def close_in_child(self) -> None:
        """In a forked worker: close its copy of the exporter's listening socket, which a worker
        outliving the supervisor would otherwise keep from the next one."""


class PrometheusMetrics(Metrics):
    """Metrics recorded through prometheus_client in multiprocess mode."""

    def __init__(self, directory: str, owns_directory: bool, queues: Iterable[str] = ()) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.directory = directory
        self._owns_directory = owns_directory
        labels = ("queue", "job_class")
        self._performed = Counter("delayed_job_jobs_performed", "Jobs that ran and succeeded", labels)
        self._failed = Counter("delayed_job_jobs_failed", "Jobs that failed for good (no retry left)", labels)
        self._retried = Counter("delayed_job_jobs_retried", "Job runs that failed and were rescheduled", labels)
        self._parked = Counter("delayed_job_jobs_parked", "Jobs parked by a drain sentinel", labels + ("state",))
        self._duration = Histogram("delayed_job_job_duration_seconds", "Time a job ran, success or failure",
                                   labels, buckets=DURATION_BUCKETS)
        self._db_errors = Counter("delayed_job_database_errors", "Failed queries (retried)", ("process",))
        self._supervisor_errors = Counter("delayed_job_supervisor_errors",
                                          "Periodic duties of the supervisor that failed, not on the database",
                                          ("duty",))
        self._workers = Gauge("delayed_job_workers", "Worker processes by state", ("state",),
                              multiprocess_mode="mostrecent")
        self._depth = Gauge("delayed_job_queue_depth", "Jobs due and waiting, counted up to a cap (a lower "
                            "bound while delayed_job_queue_depth_capped is 1)", ("queue",),
                            multiprocess_mode="mostrecent")
        self._capped = Gauge("delayed_job_queue_depth_capped", "1 when more jobs were due than the reading "
                             "counts: the depths are lower bounds, the oldest ages too", multiprocess_mode="mostrecent")
        self._age = Gauge("delayed_job_queue_oldest_age_seconds", "How long the oldest due job has waited",
                          ("queue",), multiprocess_mode="mostrecent")
        self._draining = Gauge("delayed_job_draining", "1 while the drain sentinel file is present",
                               ("sentinel",), multiprocess_mode="mostrecent")
        self._known_queues = {"", *queues}  # served or default queues read 0 when empty, not absent
        self._last_workers: tuple[int, int] | None = None
        self._children: dict[tuple[Any, ...], Any] = {}
        self._server: Any = None
        self._textfile = ""
        self.registry: Any = None

    def _child(self, metric: Any, *labels: str) -> Any:
        """The labelled child, cached: ``labels()`` costs a lookup per job otherwise."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def performed(self, queue: str | None, name: str, seconds: float) -> None:
        self._child(self._performed, queue or "", name).inc()
        self._child(self._duration, queue or "", name).observe(seconds)

    def failed(self, queue: str | None, name: str, seconds: float, retrying: bool) -> None:
        self._child(self._retried if retrying else self._failed, queue or "", name).inc()
        self._child(self._duration, queue or "", name).observe(seconds)

    def parked(self, queue: str | None, name: str, state: str) -> None:
        self._child(self._parked, queue or "", name, state).inc()

    def database_error(self, process: str) -> None:
        self._child(self._db_errors, process).inc()

    def supervisor_error(self, duty: str) -> None:
        self._child(self._supervisor_errors, duty).inc()

    def workers(self, busy: int, idle: int) -> None:
        if self._last_workers != (busy, idle):  # a file write per change, not per loop turn
            self._last_workers = (busy, idle)
            self._workers.labels("busy").set(busy)
            self._workers.labels("idle").set(idle)

    def queues(self, depths: dict[str, tuple[int, datetime | None]], now: datetime, draining: set[str]) -> None:
        self._known_queues |= set(depths)
        for queue in self._known_queues:  # a queue that emptied reads 0, not its last value
            count, oldest = depths.get(queue, (0, now))
            self._depth.labels(queue).set(count)
            self._age.labels(queue).set(math.nan if oldest is None else max(0.0, (now - oldest).total_seconds()))
        self._capped.set(1 if getattr(depths, "at_least", False) else 0)
        for sentinel in FILES.values():
            self._draining.labels(sentinel).set(1 if sentinel in draining else 0)
        self._write_textfile()

    def serve(self, config: Config) -> None:
        """Start the exporter the config asks for: an HTTP endpoint and/or a textfile."""
        from prometheus_client import CollectorRegistry, start_http_server
        from prometheus_client.multiprocess import MultiProcessCollector

        self.registry = CollectorRegistry()
        MultiProcessCollector(self.registry, path=self.directory)
        self._textfile = config.metrics_textfile
        if config.metrics_port:
            try:
                self._server, _ = start_http_server(config.metrics_port, config.metrics_address, self.registry)
            except OSError as exc:
                raise ConfigError(f"metrics_port: cannot listen on {config.metrics_address}:"
                                  f"{config.metrics_port}: {exc.strerror or exc}") from None
            log.info("metrics on http://%s:%d/metrics", config.metrics_address, config.metrics_port)

    def _write_textfile(self) -> None:
        """For node_exporter's textfile collector: written whole, then renamed into place."""
        if self._textfile:
            from prometheus_client import write_to_textfile

            try:
                write_to_textfile(self._textfile, self.registry)
            except OSError as exc:
                log.error("cannot write metrics_textfile %s: %s", self._textfile, exc.strerror)

    def worker_gone(self, pid: int) -> None:
        """Drop a dead worker's live-gauge files; its counters stay and keep counting in the sums."""
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, self.directory)

    def close_in_child(self) -> None:
        if self._server is not None:
            self._server.socket.close()  # only the fd: the serving thread is the supervisor's
            self._server = None

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)


def enabled(config: Config) -> bool:
    return bool(config.metrics_port or config.metrics_textfile)


def require_client(config: Config) -> None:
    """A one-line ``ConfigError`` naming the pip extra when metrics are on and prometheus_client
    cannot be imported. It imports it, as a spec lookup would pass an installed but broken one;
    the daemon calls this only once ``PROMETHEUS_MULTIPROC_DIR`` is set (see the module docstring)."""
    if not enabled(config):
        return
    try:
        import prometheus_client  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"metrics_port/metrics_textfile is set but prometheus_client cannot be imported ({exc}): "
                          "pip install 'dj-daemon[metrics]'") from None


def start(config: Config) -> Metrics:
    """In the supervisor, before any fork: a fresh multiprocess directory, the metrics, the exporter.

    Counters restart from zero with the daemon, as Prometheus expects of a
    restarted target, so files left by an earlier run are removed.
    """
    if not enabled(config):
        return Metrics()
    directory = config.metrics_dir or tempfile.mkdtemp(prefix="delayed_job-metrics-")
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.unlink(os.path.join(directory, name))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        require_client(config)
    except ConfigError:
        if not config.metrics_dir:
            os.rmdir(directory)  # the fresh, still empty, temporary folder
        raise
    served = [queue for pool in pools_of(config) for queue in pool.queues] + list(config.queues)
    metrics = PrometheusMetrics(directory, owns_directory=not config.metrics_dir, queues=served)
    try:
        metrics.serve(config)
    except ConfigError:
        metrics.close()
        raise
    return metrics
