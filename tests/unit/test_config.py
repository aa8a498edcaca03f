"""Config layering and validation, without a database."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from dj_daemon.config import DECADE, SETTINGS, Config, load_config, mask_url
from dj_daemon.errors import ConfigError
from dj_daemon.job import utcnow
from dj_daemon.retry import policy_for
from dj_daemon.timeouts import deadline


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dj.conf"
    path.write_text(text)
    return path


def test_defaults_without_any_file() -> None:
    config = load_config(env={})
    assert (config.max_attempts, config.max_run_time, config.workers) == (25, 14400.0, 1)


@settings(max_examples=100, deadline=None)
@given(file=st.none() | st.integers(1, 99), env=st.none() | st.integers(1, 99), flag=st.none() | st.integers(1, 99))
def test_precedence_file_then_env_then_flags(tmp_path_factory, file, env, flag) -> None:
    tmp = tmp_path_factory.mktemp("c")
    path = write(tmp, f"[jobs]\nmax_attempts = {file}\n" if file else "")
    config = load_config(path, env={"DJ_MAX_ATTEMPTS": str(env)} if env else {},
                         overrides={"max_attempts": flag})
    expected = next((v for v in (flag, env, file) if v is not None), 25)
    assert config.max_attempts == expected


def test_dj_config_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[worker]\nqueues = a, b\n[jobs]\nallowed_modules = app.jobs\n  app.mail\n")
    config = load_config(env={"DJ_CONFIG": str(path)})
    assert config.queues == ("a", "b") and config.allowed_modules == ("app.jobs", "app.mail")


@pytest.mark.parametrize("text, message", [
    ("[jobs]\nmax_attemps = 3\n", "unknown key 'max_attemps' in [jobs] (did you mean 'max_attempts'?)"),
    ("[wroker]\nqueues = a\n", "unknown section [wroker] (did you mean 'worker'?)"),
    ("[worker]\nmax_attempts = 3\n", "unknown key 'max_attempts' in [worker]"),
    ("[jobs]\nmax_attempts = many\n", "invalid value 'many' for max_attempts"),
    ("[jobs]\nmax_attempts = 0\n", "max_attempts must be at least 1"),
    ("no section header\n", "cannot parse"),
    ("[database]\nurl = ::nonsense::\n", "malformed database url"),
])
def test_bad_files_give_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.conf", env={})


def test_password_file_is_read_and_never_shown(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cr3t\n")
    path = write(tmp_path, f"[database]\nurl = mysql+pymysql://dj@db/app\npassword_file = {secret}\n")
    config = load_config(path, env={})
    assert "s3cr3t" in config.url and "s3cr3t" not in config.safe_url
    assert config.safe_url == "mysql+pymysql://dj:***@db/app"
    assert "s3cr3t" not in repr(mask_url(config.url))


def test_flags_are_validated_too() -> None:
    with pytest.raises(ConfigError, match="workers must be at least 1"):
        load_config(env={}, overrides={"workers": 0})
    assert Config().replace(sleep_delay=1).sleep_delay == 1


def test_example_config_documents_every_setting_with_its_default() -> None:
    from dj_daemon.config import SETTINGS

    example = Path(__file__).resolve().parents[2] / "etc" / "delayed_job.conf"
    text = example.read_text()
    for key, setting in SETTINGS.items():
        assert f"\n{key} =" in text or f"\n# {key} =" in text, key
        assert setting.env in text, setting.env
    loaded = load_config(example, env={})
    defaults = Config(hostname=loaded.hostname)
    assert loaded == defaults


def one_line_error(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(env=env)
    assert "\n" not in str(info.value)
    return str(info.value)


#: Values that passed ``check`` and then failed every job or the worker; tests/cli runs them through ``check``.
REFUSED = [
    ({"DJ_MAX_RUN_TIME": "inf"}, "max_run_time must be above 0 and at most 315360000 s (10 years), not inf"),
    ({"DJ_MAX_RUN_TIME": "1e10"}, "max_run_time must be above 0 and at most 315360000 s (10 years), not 10000000000"),
    ({"DJ_MAX_RUN_TIME": "nan"}, "max_run_time must be above 0"),
    ({"DJ_BACKOFF_SCALE": "inf"}, "backoff_scale must be finite and at least 0, not inf"),
    ({"DJ_BACKOFF_SCALE": "1e6"}, "backoff_scale 1e+06 with max_attempts 25 waits 3.32e+11 s before the last retry"),
    ({"DJ_MAX_ATTEMPTS": "1000"}, "lower max_attempts, or backoff_scale to at most"),
    ({"DJ_SLEEP_DELAY": "inf"}, "sleep_delay must be above 0 and at most 86400 s (1 day), not inf"),
    ({"DJ_HEARTBEAT_TIMEOUT": "inf"}, "heartbeat_timeout must be above 0 and at most 315360000 s (10 years)"),
    ({"DJ_GRACEFUL_TIMEOUT": "-1"}, "graceful_timeout must be at least 0"),
    ({"DJ_MIN_PRIORITY": "99999999999"}, "min_priority must be at least -2147483648 and at most 2147483647"),
    ({"DJ_MIN_PRIORITY": "5", "DJ_MAX_PRIORITY": "1"}, "min_priority 5 must not exceed max_priority 1"),
    ({"DJ_BATCH_SIZE": "100000"}, "batch_size must be at least 1 and at most 1000, not 100000"),
    ({"DJ_HOSTNAME": "h" * 300}, "hostname is 300 characters; at most 247 fit in a worker name host:pid"),
    ({"DJ_HOSTNAME": "web:1"}, "hostname 'web:1' must be letters, digits, '.', '-' or '_' only"),
    ({"DJ_HOSTNAME": "web 1"}, "hostname 'web 1' must be letters"),
    ({"DJ_HOSTNAME": ""}, "hostname '' must be letters"),
    ({"DJ_LOG_LEVEL": "LOUD"}, "log_level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, not 'LOUD'"),
]


@pytest.mark.parametrize("env, message", REFUSED)
def test_values_that_would_fail_later_are_refused_now(env: dict[str, str], message: str) -> None:
    assert message in one_line_error(env)


@pytest.mark.parametrize("key", [key for key, setting in SETTINGS.items() if setting.bounds])
def test_every_numeric_setting_refuses_non_finite_and_out_of_range(key: str) -> None:
    bounds, env = SETTINGS[key].bounds, SETTINGS[key].env
    outside = [bounds.low - 1, *([bounds.low] if bounds.above else []), *([bounds.high + 1] if bounds.high else [])]
    texts = [str(int(v)) if float(v).is_integer() else str(v) for v in outside] + ["inf", "-inf", "nan"]
    for text in texts:
        assert key in one_line_error({env: text}), text


def test_the_largest_accepted_values_work_where_they_are_used() -> None:
    """The bounds sit inside what setitimer, datetime arithmetic and the retry delay accept."""
    longest = DECADE / (24**4 + 5)
    config = load_config(env={"DJ_MAX_RUN_TIME": str(DECADE), "DJ_HEARTBEAT_TIMEOUT": str(DECADE),
                              "DJ_BACKOFF_SCALE": str(longest), "DJ_HOSTNAME": "h" * 247, "DJ_LOG_LEVEL": "debug"})
    with deadline(config.max_run_time):
        now = utcnow()
    assert now - timedelta(seconds=config.max_run_time) < now - timedelta(seconds=config.heartbeat_timeout / 2)
    last_retry = policy_for(object(), config).next_run_at(config.max_attempts - 1, now)
    assert timedelta(days=3649) < last_retry - now <= timedelta(seconds=DECADE)
    assert len(f"{config.hostname}:4194304") == 255


@pytest.mark.parametrize("text", [
    "[jobs]\nqueue_attributes = mail.priority = -5, reports.priority = 10\n",
    "[jobs]\nqueue_attributes =\n    mail.priority = -5\n    reports.priority=10\n",
])
def test_queue_attributes_ini_forms(tmp_path: Path, text: str) -> None:
    config = load_config(write(tmp_path, text), env={})
    assert config.queue_attributes == {"mail": {"priority": -5}, "reports": {"priority": 10}}


def test_queue_attributes_from_env_and_code_are_checked_and_read_only() -> None:
    config = load_config(env={"DJ_QUEUE_ATTRIBUTES": "a.b.priority=3", "DJ_DEFAULT_PRIORITY": "-2",
                              "DJ_DEFAULT_QUEUE_NAME": "general"})
    assert (dict(config.queue_attributes), config.default_priority, config.default_queue_name) == (
        {"a.b": {"priority": 3}}, -2, "general")  # a dotted queue name: the attribute follows the last dot
    coded = load_config(env={}, overrides={"queue_attributes": {"mail": {"priority": -5}}})
    assert coded.queue_attributes == {"mail": {"priority": -5}} and isinstance(hash(coded), int)
    with pytest.raises(TypeError):
        coded.queue_attributes["mail"] = {"priority": 1}  # type: ignore[index]
    assert Config().replace(queue_attributes={"q": {"priority": "7"}}).queue_attributes["q"]["priority"] == 7


@pytest.mark.parametrize("env, message", [
    ({"DJ_QUEUE_ATTRIBUTES": "mail"}, "DJ_QUEUE_ATTRIBUTES: invalid value 'mail' for queue_attributes (write "
                                      "QUEUE.priority = N"),
    ({"DJ_QUEUE_ATTRIBUTES": "mail.priority"}, "invalid value 'mail.priority' for queue_attributes"),
    ({"DJ_QUEUE_ATTRIBUTES": "priority=3"}, "invalid value 'priority=3' for queue_attributes"),
    ({"DJ_QUEUE_ATTRIBUTES": "mail.prio=3"}, "unknown attribute 'prio' of queue 'mail' (did you mean 'priority'?)"),
    ({"DJ_QUEUE_ATTRIBUTES": "mail.priority=high"}, "priority of queue 'mail' must be an integer at least "
                                                    "-2147483648 and at most 2147483647, not 'high'"),
    ({"DJ_QUEUE_ATTRIBUTES": "mail.priority=2147483648"}, "priority of queue 'mail' must be an integer"),
    ({"DJ_DEFAULT_PRIORITY": "soon"}, "invalid value 'soon' for default_priority"),
    ({"DJ_DEFAULT_QUEUE_NAME": "q" * 256}, "default_queue_name is 256 characters; the queue column holds 255"),
])
def test_bad_enqueue_defaults_give_one_line(env: dict[str, str], message: str) -> None:
    assert message in one_line_error(env)


@pytest.mark.parametrize("table, message", [
    ("mail.priority=1", "queue_attributes must map queue names to attributes"),
    ({"mail": 5}, "queue_attributes must map queue names to attributes, e.g. {'mail': {'priority': -5}}, not 'mail'"),
    ({"": {"priority": 1}}, "queue_attributes must map queue names"),
    ({"mail": {"priority": True}}, "priority of queue 'mail' must be an integer"),
])
def test_bad_queue_attributes_in_code_give_one_line(table: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config().replace(queue_attributes=table)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_library_reads_the_system_file_only_when_asked(tmp_path: Path, monkeypatch) -> None:
    from dj_daemon import config as config_module

    system = write(tmp_path, "[jobs]\ndefault_priority = 3\n")
    monkeypatch.setattr(config_module, "DEFAULT_PATH", system)
    assert load_config(env={}).default_priority == 3
    assert load_config(env={}, read_default=False).default_priority == 0
    assert load_config(env={"DJ_CONFIG": str(system)}, read_default=False).default_priority == 3
