"""Config layering and validation, without a database."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from dj_daemon.config import Config, load_config, mask_url
from dj_daemon.errors import ConfigError


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
