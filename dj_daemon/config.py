"""One validated configuration object, built once and passed down.

Precedence: the INI file, then ``DJ_*`` environment variables, then
command-line flags, each overriding the one before. The file is the one
named by the caller (``--config``), else ``$DJ_CONFIG``, else
``/etc/delayed_job.conf`` when it exists (for the CLIs; not for the library's
``configure()``, see ``load_config``), else built-in defaults only.
Every setting is described once in ``SETTINGS``; ``etc/delayed_job.conf``
documents them for operators.
"""
from __future__ import annotations

import configparser
import dataclasses
import difflib
import math
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

from .errors import ConfigError
from .recurrence import Entry, from_text as schedule_entry

DEFAULT_PATH = Path("/etc/delayed_job.conf")


def _list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.replace("\n", ",").split(",") if part.strip())


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "yes", "true", "on"):
        return True
    if lowered in ("0", "no", "false", "off"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity mask, which taskset or a container's cpuset
    narrow below the host's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity mask on this platform
        return os.cpu_count() or 1


def workers_count(text: str) -> int:
    """A number of workers, or ``auto``: one per usable CPU, the count that drains a queue of
    short jobs fastest on the hosts measured (docs/performance.md, "-n auto")."""
    return usable_cpus() if text.strip().lower() == "auto" else int(text)


def _optional_int(text: str) -> int | None:
    return int(text) if text.strip() else None


def _queue_attributes(text: str) -> dict[str, dict[str, str]]:
    """``mail.priority = -5, reports.priority = 10`` (or one per line) as ``{"mail": {"priority":
    "-5"}, ...}``: the INI and environment form of delayed_job's ``queue_attributes``. The
    values are checked by ``validate``, with those of the code form."""
    table: dict[str, dict[str, str]] = {}
    for item in _list(text):
        key, equals, value = item.partition("=")
        queue, dot, attribute = key.strip().rpartition(".")
        if not equals or not dot or not queue.strip() or not attribute.strip() or not value.strip():
            raise ValueError(item)
        table.setdefault(queue.strip(), {})[attribute.strip()] = value.strip()
    return table


DAY = 86400.0
#: The longest duration a setting may name: ``setitimer`` refuses about 9.2e9 s and
#: ``now - timedelta`` leaves the calendar near 3e11 s; ten years is far inside both.
DECADE = 3650 * DAY
INT32 = 2**31 - 1  # attempts and priority are INTEGER columns
LONGTEXT = 2**32 - 1  # the largest handler MySQL stores
MAX_BATCH = 1000  # one bound parameter per id: SQLite takes 32766 at most, PostgreSQL 65535
MAX_WORKERS = 1000  # a fork and a database connection each
PID_DIGITS = 7  # Linux pid_max is at most 4194304
NAME_LENGTH = 255  # locked_by and delayed_job_workers.name are VARCHAR(255), holding "host:pid"
HOSTNAME = re.compile(r"[A-Za-z0-9_.-]+")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DISPLAY_ZONES = ("utc", "local")  # see ``display``


@dataclass(frozen=True)
class Bounds:
    """The finite values a numeric setting may take; ``above`` excludes ``low`` itself."""

    low: float
    high: float | None = None
    above: bool = False

    def admits(self, value: float) -> bool:
        if not math.isfinite(value) or value < self.low or (self.above and value == self.low):
            return False
        return self.high is None or value <= self.high

    def describe(self) -> str:
        low = f"above {number(self.low)}" if self.above else f"at least {number(self.low)}"
        if self.high is None:
            return f"finite and {low}" if isinstance(self.low, float) else low
        return f"{low} and at most {_amount(self.high)}"


def number(value: float) -> str:
    """A value as people write it: 315360000 and 0.5, not 3.1536e+08 and 0.500."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:g}"


def _amount(value: float) -> str:
    """``value``, with its length in days or years when it is one of the long durations."""
    return number(value) + {DECADE: " s (10 years)", DAY: " s (1 day)"}.get(value, "")


@dataclass(frozen=True)
class Setting:
    """Where a setting lives, how its text becomes a value, and (for numbers) its range."""

    section: str
    parse: Callable[[str], Any]
    env: str
    bounds: Bounds | None = None
    form: str = ""  # how to write a value whose shape is not obvious, for the error


SETTINGS: dict[str, Setting] = {
    "url": Setting("database", str, "DJ_DATABASE_URL"),
    "failover_urls": Setting("database", _list, "DJ_DATABASE_FAILOVER_URLS"),
    "password_file": Setting("database", str, "DJ_PASSWORD_FILE"),
    "database_patience": Setting("database", float, "DJ_DATABASE_PATIENCE", Bounds(0.0, DECADE)),
    "allowed_modules": Setting("jobs", _list, "DJ_ALLOWED_MODULES"),
    "max_attempts": Setting("jobs", int, "DJ_MAX_ATTEMPTS", Bounds(1, INT32)),
    "max_run_time": Setting("jobs", float, "DJ_MAX_RUN_TIME", Bounds(0, DECADE, above=True)),
    "backoff_scale": Setting("jobs", float, "DJ_BACKOFF_SCALE", Bounds(0.0)),
    "max_payload_bytes": Setting("jobs", int, "DJ_MAX_PAYLOAD_BYTES", Bounds(1, LONGTEXT)),
    "session_factory": Setting("jobs", str, "DJ_SESSION_FACTORY"),
    "default_priority": Setting("jobs", int, "DJ_DEFAULT_PRIORITY", Bounds(-INT32 - 1, INT32)),
    "default_queue_name": Setting("jobs", str, "DJ_DEFAULT_QUEUE_NAME"),
    "queue_attributes": Setting("jobs", _queue_attributes, "DJ_QUEUE_ATTRIBUTES",
                                form="QUEUE.priority = N, comma-separated: mail.priority = -5, reports.priority = 10"),
    "delay_jobs": Setting("jobs", _bool, "DJ_DELAY_JOBS"),
    "destroy_failed_jobs": Setting("jobs", _bool, "DJ_DESTROY_FAILED_JOBS"),
    "plugins": Setting("jobs", _list, "DJ_PLUGINS"),
    "schedule_modules": Setting("jobs", _list, "DJ_SCHEDULE_MODULES"),
    "queues": Setting("worker", _list, "DJ_QUEUES"),
    "min_priority": Setting("worker", _optional_int, "DJ_MIN_PRIORITY", Bounds(-INT32 - 1, INT32)),
    "max_priority": Setting("worker", _optional_int, "DJ_MAX_PRIORITY", Bounds(-INT32 - 1, INT32)),
    "sleep_delay": Setting("worker", float, "DJ_SLEEP_DELAY", Bounds(0, DAY, above=True)),
    "batch_size": Setting("worker", int, "DJ_BATCH_SIZE", Bounds(1, MAX_BATCH)),
    "max_jobs": Setting("worker", int, "DJ_MAX_JOBS", Bounds(0)),
    "max_rss": Setting("worker", int, "DJ_MAX_RSS", Bounds(0)),
    "workers": Setting("daemon", workers_count, "DJ_WORKERS", Bounds(1, MAX_WORKERS), form="a number, or auto"),
    "pools": Setting("daemon", _list, "DJ_POOLS"),
    "graceful_timeout": Setting("daemon", float, "DJ_GRACEFUL_TIMEOUT", Bounds(0.0, DECADE)),
    "cancel_grace": Setting("daemon", float, "DJ_CANCEL_GRACE", Bounds(0.0, DECADE)),
    "poll_interval": Setting("daemon", float, "DJ_POLL_INTERVAL", Bounds(0, DAY, above=True)),
    "heartbeat_interval": Setting("daemon", float, "DJ_HEARTBEAT_INTERVAL", Bounds(0, DAY, above=True)),
    "heartbeat_timeout": Setting("daemon", float, "DJ_HEARTBEAT_TIMEOUT", Bounds(0, DECADE, above=True)),
    "hostname": Setting("daemon", str, "DJ_HOSTNAME"),
    "pidfile": Setting("daemon", str, "DJ_PIDFILE"),
    "journal_dir": Setting("daemon", str, "DJ_JOURNAL_DIR"),
    "log_file": Setting("daemon", str, "DJ_LOG_FILE"),
    "log_level": Setting("daemon", str, "DJ_LOG_LEVEL"),
    "log_format": Setting("daemon", str, "DJ_LOG_FORMAT"),
    "display_timezone": Setting("daemon", str, "DJ_DISPLAY_TIMEZONE"),
    "metrics_port": Setting("metrics", int, "DJ_METRICS_PORT", Bounds(0, 65535)),
    "metrics_address": Setting("metrics", str, "DJ_METRICS_ADDRESS"),
    "metrics_textfile": Setting("metrics", str, "DJ_METRICS_TEXTFILE"),
    "metrics_dir": Setting("metrics", str, "DJ_METRICS_DIR"),
    "sentinel_dir": Setting("long_jobs", str, "DJ_SENTINEL_DIR"),
    "tracked_retention": Setting("long_jobs", float, "DJ_TRACKED_RETENTION", Bounds(0.0, DECADE / DAY)),
    "web_bind": Setting("web", str, "DJ_WEB_BIND"),
    "web_user": Setting("web", str, "DJ_WEB_USER"),
    "web_password": Setting("web", str, "DJ_WEB_PASSWORD"),
    "web_password_file": Setting("web", str, "DJ_WEB_PASSWORD_FILE"),
    "web_read_only": Setting("web", _bool, "DJ_WEB_READ_ONLY"),
}
SECTIONS = sorted({s.section for s in SETTINGS.values()})
#: A recurring entry's section: ``[schedule:NAME]``.
SCHEDULE = "schedule:"


@dataclass(frozen=True)
class Config:
    """Every setting with its default; see ``etc/delayed_job.conf`` for their meaning."""

    url: str = "sqlite:///delayed_job.sqlite3"
    #: The same database on other servers (Galera nodes), tried in order when ``url``'s does not answer
    failover_urls: tuple[str, ...] = ()
    password_file: str = ""
    database_patience: float = 60.0
    allowed_modules: tuple[str, ...] = ()
    max_attempts: int = 25
    max_run_time: float = 4 * 3600.0
    backoff_scale: float = 1.0
    max_payload_bytes: int = 1024 * 1024
    session_factory: str = ""
    default_priority: int = 0
    default_queue_name: str = ""
    #: Per-queue attributes applied at enqueue, delayed_job's ``queue_attributes``:
    #: ``{"mail": {"priority": -5}}``; read-only once validated, and left out of the hash.
    queue_attributes: Mapping[str, Mapping[str, int]] = field(default_factory=dict, hash=False)
    #: False runs each job inline at enqueue, storing no row (for tests); in code, also a callable
    #: of the job being enqueued deciding for each (delayed_job's ``Delayed::Worker.delay_jobs``)
    delay_jobs: bool | Callable[[Any], bool] = True
    destroy_failed_jobs: bool = False
    plugins: tuple[str, ...] = ()
    schedule_modules: tuple[str, ...] = ()  # modules whose ``@recurring`` entries the daemon keeps
    #: The ``[schedule:NAME]`` entries of the file (see ``recurrence``), in its order.
    schedule: tuple[Entry, ...] = ()
    queues: tuple[str, ...] = ()
    min_priority: int | None = None
    max_priority: int | None = None
    sleep_delay: float = 5.0
    batch_size: int = 50
    max_jobs: int = 0
    max_rss: int = 0
    workers: int = 1
    pools: tuple[str, ...] = ()
    graceful_timeout: float = 30.0
    cancel_grace: float = 30.0  #: seconds a cancelled running job has to stop before its worker is killed
    poll_interval: float = 0.5
    heartbeat_interval: float = 10.0
    heartbeat_timeout: float = 120.0
    hostname: str = field(default_factory=socket.gethostname)
    pidfile: str = "/run/delayed_job/delayed_job.pid"
    journal_dir: str = ""
    log_file: str = ""
    log_level: str = "INFO"
    log_format: str = "text"
    display_timezone: str = "utc"  # the zone of every time shown (logs, lists): utc or local
    metrics_port: int = 0
    metrics_address: str = "127.0.0.1"
    metrics_textfile: str = ""
    metrics_dir: str = ""
    sentinel_dir: str = "/var/lib/delayed_job"
    tracked_retention: float = 30.0  # days; 0 keeps completed tracked jobs for ever
    web_bind: str = "127.0.0.1:8080"
    web_user: str = ""
    web_password: str = field(default="", repr=False)  # never shown: see ``long_jobs.web.access``
    web_password_file: str = ""
    web_read_only: bool = False

    def replace(self, **changes: Any) -> "Config":
        """A copy with ``changes`` applied and validated."""
        return validate(dataclasses.replace(self, **changes))

    @property
    def safe_url(self) -> str:
        """The database URL (and any failover URLs) with passwords masked, for logs and errors."""
        return " or ".join(mask_url(url) for url in (self.url, *self.failover_urls))


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``; the text itself if unparsable."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database url>"


def load_config(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    read_default: bool = True,
) -> Config:
    """Layer defaults, the INI file, ``DJ_*`` variables and ``overrides`` (flags).

    ``read_default=False`` (the library's ``configure()``) reads a file only when
    ``path`` or ``$DJ_CONFIG`` names one, never ``/etc/delayed_job.conf`` unasked.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    file = config_file(path, env, read_default)
    if file is not None:
        values.update(_read_file(file))
    for key, setting in SETTINGS.items():
        if setting.env in env:
            values[key] = _parse(key, env[setting.env], setting.env)
    for key, value in (overrides or {}).items():
        if key not in SETTINGS:
            raise ConfigError(f"unknown setting {key!r}{_unknown(key, list(SETTINGS))}")
        if value is not None:
            values[key] = _parse(key, value, f"--{key.replace('_', '-')}") if isinstance(value, str) else value
    return validate(Config(**values))


def config_file(path: Any, env: Mapping[str, str], read_default: bool = True) -> Path | None:
    """The file ``load_config`` reads: ``path``, else ``$DJ_CONFIG``, else (when ``read_default``)
    ``/etc/delayed_job.conf`` if it exists; a named file that is missing is an error."""
    if path:
        chosen = Path(path)
    elif env.get("DJ_CONFIG"):
        chosen = Path(env["DJ_CONFIG"])
    else:
        return DEFAULT_PATH if read_default and DEFAULT_PATH.is_file() else None
    if not chosen.is_file():
        raise ConfigError(f"config file not found: {chosen}")
    return chosen


def _read_file(file: Path) -> dict[str, Any]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(file, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{file}: cannot parse: {first}") from None
    values: dict[str, Any] = {}
    schedule = [schedule_entry(section.partition(":")[2].strip(), dict(parser.items(section)),
                               f"{file}: [{section}]") for section in parser.sections() if section.startswith(SCHEDULE)]
    if schedule:
        values["schedule"] = tuple(schedule)
    for section in parser.sections():
        if section.startswith(SCHEDULE):
            continue
        if section not in SECTIONS:
            raise ConfigError(f"{file}: unknown section [{section}]{_suggest(section, SECTIONS)}")
        for key, text in parser.items(section):
            setting = SETTINGS.get(key)
            if setting is None or setting.section != section:
                known = [k for k, s in SETTINGS.items() if s.section == section]
                raise ConfigError(f"{file}: unknown key {key!r} in [{section}]{_unknown(key, known)}")
            values[key] = _parse(key, text, f"{file}: [{section}] {key}")
    return values


#: delayed_job's names for settings named otherwise here, or not needed: refused, saying what to use
DELAYED_JOB_NAMES = {
    "read_ahead": "use batch_size ([worker]): how many jobs a worker reserves at once",
    "raise_signal_exceptions": "not needed: a second TERM or Ctrl-C interrupts the job in hand, which is "
                               "released with an attempt counted",
    "logger": "use log_level and log_format ([daemon]), or Python's logging (logger dj_daemon)",
}


def _unknown(key: str, known: list[str]) -> str:
    """The end of an unknown setting's one-line error: what to use for a delayed_job name, or the
    closest known name."""
    hint = DELAYED_JOB_NAMES.get(key)
    return f" (delayed_job's {key}: {hint})" if hint else _suggest(key, known)


def _parse(key: str, text: str, where: str) -> Any:
    setting = SETTINGS[key]
    try:
        return setting.parse(text)
    except ValueError:
        form = f" (write {setting.form})" if setting.form else ""
        raise ConfigError(f"{where}: invalid value {text!r} for {key}{form}") from None


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def validate(config: Config) -> Config:
    """Check every value against what it later meets (timers, datetimes, columns, the host:pid
    form); return the config with its password read in. Each problem is one ``ConfigError`` line."""
    for key, setting in SETTINGS.items():
        value = getattr(config, key)
        if setting.bounds is not None and value is not None and not setting.bounds.admits(value):
            raise ConfigError(f"{key} must be {setting.bounds.describe()}, not {number(value)}")
    for ok, message in _relations(config):
        if not ok:
            raise ConfigError(message)
    _check_hostname(config.hostname)
    _check_url(config.url)
    _check_failover(config.url, config.failover_urls)
    config = dataclasses.replace(config, queue_attributes=checked_queue_attributes(config.queue_attributes))
    if config.password_file:
        return dataclasses.replace(config, url=_with_password(config.url, config.password_file), password_file="",
                                   failover_urls=tuple(_with_password(url, config.password_file)
                                                       for url in config.failover_urls))
    return config


def _relations(config: Config) -> list[tuple[bool, str]]:
    """The checks that involve more than one value's own range."""
    low, high = config.min_priority, config.max_priority
    longest = config.backoff_scale * ((config.max_attempts - 1) ** 4 + 5)  # the wait before the last retry
    return [
        (low is None or high is None or low <= high, f"min_priority {low} must not exceed max_priority {high}"),
        (longest <= DECADE, f"backoff_scale {config.backoff_scale:g} with max_attempts {config.max_attempts} "
                            f"waits {longest:.3g} s before the last retry, more than {_amount(DECADE)}: "
                            f"lower max_attempts, or backoff_scale to at most "
                            f"{DECADE / ((config.max_attempts - 1) ** 4 + 5):.4g}"),
        (len(config.default_queue_name) <= NAME_LENGTH,
         f"default_queue_name is {len(config.default_queue_name)} characters; the queue column holds {NAME_LENGTH}"),
        (config.heartbeat_timeout > config.heartbeat_interval,
         "heartbeat_timeout must exceed heartbeat_interval"),
        (isinstance(config.delay_jobs, bool) or callable(config.delay_jobs),
         f"delay_jobs must be true, false or a callable of the job, not {config.delay_jobs!r}"),
        (config.log_format in ("text", "json"), f"log_format must be text or json, not {config.log_format!r}"),
        (config.display_timezone in DISPLAY_ZONES,
         f"display_timezone must be {' or '.join(DISPLAY_ZONES)}, not {config.display_timezone!r}"),
        (config.log_level.upper() in LOG_LEVELS,
         f"log_level must be one of {', '.join(LOG_LEVELS)}, not {config.log_level!r}"),
    ]


#: What each per-queue attribute may hold (``queue_attributes``).
QUEUE_ATTRIBUTES: dict[str, Bounds] = {"priority": Bounds(-INT32 - 1, INT32)}


def checked_queue_attributes(table: Any) -> Mapping[str, Mapping[str, int]]:
    """``queue_attributes`` with every value an integer in its range, read-only; whether it came
    from the INI form (text values) or from code (``{"mail": {"priority": -5}}``)."""
    example = "e.g. {'mail': {'priority': -5}}"
    if not isinstance(table, Mapping):
        raise ConfigError(f"queue_attributes must map queue names to attributes, {example}")
    checked: dict[str, Mapping[str, int]] = {}
    for queue, attributes in table.items():
        if not isinstance(queue, str) or not queue or not isinstance(attributes, Mapping):
            raise ConfigError(f"queue_attributes must map queue names to attributes, {example}, not {queue!r}")
        checked[queue] = MappingProxyType({name: _queue_attribute(queue, name, value)
                                           for name, value in attributes.items()})
    return MappingProxyType(checked)


def _queue_attribute(queue: str, name: Any, value: Any) -> int:
    bounds = QUEUE_ATTRIBUTES.get(name) if isinstance(name, str) else None
    if bounds is None:
        known = ", ".join(QUEUE_ATTRIBUTES)
        raise ConfigError(f"queue_attributes: unknown attribute {name!r} of queue {queue!r}"
                          f"{_suggest(str(name), list(QUEUE_ATTRIBUTES))} (known: {known})")
    try:
        parsed = int(value) if isinstance(value, str) else value
    except ValueError:
        parsed = value
    if not isinstance(parsed, int) or isinstance(parsed, bool) or not bounds.admits(parsed):
        raise ConfigError(f"queue_attributes: {name} of queue {queue!r} must be an integer "
                          f"{bounds.describe()}, not {value!r}")
    return parsed


def _check_hostname(hostname: str) -> None:
    """The host names its workers ``host:pid`` in VARCHAR(255) columns (``locked_by``, the worker
    registry), read by people and logs as host and pid: so letters, digits, ``.``, ``-`` and ``_``
    only (no colon, space or control character), short enough to leave room for any pid."""
    limit = NAME_LENGTH - 1 - PID_DIGITS
    if not HOSTNAME.fullmatch(hostname):
        raise ConfigError(f"hostname {hostname!r} must be letters, digits, '.', '-' or '_' only "
                          "(set [daemon] hostname or DJ_HOSTNAME)")
    if len(hostname) > limit:
        raise ConfigError(f"hostname is {len(hostname)} characters; at most {limit} fit in a worker name "
                          "host:pid (set [daemon] hostname or DJ_HOSTNAME)")


def _check_url(url: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url)
    except ArgumentError:
        raise ConfigError(f"malformed database url: {mask_url(url)}") from None


def _check_failover(url: str, failover_urls: tuple[str, ...]) -> None:
    """Failover URLs name the same kind of server as ``url``: a connection from any of them must
    speak the engine's dialect (and SQLite has no server to fail over from)."""
    from sqlalchemy.engine import make_url

    backend = make_url(url).get_backend_name()
    for other in failover_urls:
        _check_url(other)
        if backend == "sqlite" or make_url(other).drivername != make_url(url).drivername:
            raise ConfigError(f"failover url {mask_url(other)} must use the same database driver as url "
                              f"{mask_url(url)} (a server, not SQLite)")


def _with_password(url: str, password_file: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        password = Path(password_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read password_file {password_file}: {exc.strerror}") from None
    return make_url(url).set(password=password).render_as_string(hide_password=False)
