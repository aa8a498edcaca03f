"""Experiment 6: no pickle/YAML/eval/exec in the code, the allow-list at run time, passwords never shown."""
from __future__ import annotations

import importlib
import io
import json
import signal
import subprocess
import tokenize
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dj_daemon.api import Queue
from dj_daemon.job import NewJob
from dj_daemon.worker import Worker
from tests import jobs
from tests.conftest import DIALECTS, bin_path
from tests.faults import jobs as fjobs
from tests.faults.conftest import Ledger, dialect_of, report_figure, wait_until
from tests.process.daemon import wait_for

PACKAGES = ("dj_daemon", "long_jobs")
YAML_LOADERS = {"load", "load_all", "unsafe_load", "full_load"}


def forbidden_tokens(source: str) -> list[str]:
    """``pickle``, ``yaml.load`` (or ``from yaml import load``), ``eval(`` and ``exec(`` as code tokens."""
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(source).readline)
              if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)]
    found = []
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        where = f"line {tok.start[0]}: {tok.line.strip()}"
        if tok.type != tokenize.NAME:
            continue
        if tok.string in ("pickle", "cPickle", "_pickle"):
            found.append(where)
        elif tok.string in ("eval", "exec") and nxt is not None and nxt.string == "(":
            found.append(where)
        elif tok.string == "yaml" and nxt is not None and nxt.string == "." and i + 2 < len(tokens) \
                and tokens[i + 2].string in YAML_LOADERS:
            found.append(where)
        elif tok.string == "yaml" and nxt is not None and nxt.string == "import" and i + 2 < len(tokens) \
                and tokens[i + 2].string in YAML_LOADERS:
            found.append(where)
    return found


def test_the_scanner_sees_code_and_ignores_comments_and_strings() -> None:
    assert forbidden_tokens("import pickle\n") and forbidden_tokens("x = yaml.load(s)\n")
    assert forbidden_tokens("from yaml import load\n") and forbidden_tokens("eval('1')\n")
    assert forbidden_tokens("exec(code)\n")
    assert not forbidden_tokens('"""never pickle or yaml.load or eval("x")"""\n# exec(x) pickle\n')
    assert not forbidden_tokens("conn.exec_driver_sql('x')\ncursor.execute('x')\nyaml.safe_load(s)\n")


def test_no_pickle_yaml_load_eval_or_exec_in_the_packages() -> None:
    files = sorted(f for package in PACKAGES
                   for f in Path(importlib.import_module(package).__file__).parent.rglob("*.py"))
    assert len(files) > 10
    offences = {str(f): hits for f in files if (hits := forbidden_tokens(f.read_text(encoding="utf-8")))}
    assert offences == {}


@pytest.mark.parametrize("db_url", DIALECTS, indirect=True)
def test_allow_list_is_enforced_when_the_job_runs(config, store, subprocess_env, tmp_path: Path) -> None:
    from tests import side_effect_module

    trace, side = tmp_path / "trace", str(tmp_path / "runs.txt")
    queue = Queue(config, store)  # permissive: allowed_modules = ("tests",)
    refused = queue.enqueue(side_effect_module.run)
    allowed = queue.enqueue(fjobs.timed, side, "allowed", 0)
    env = {**subprocess_env, "DJ_ALLOWED_MODULES": "tests.faults,tests.jobs", "DJ_TEST_IMPORT_TRACE": str(trace)}
    result = subprocess.run([bin_path("delayed_job"), "workoff"], env=env, capture_output=True, text=True, timeout=60)
    ledger = Ledger.read(side)
    report_figure("allow_list_at_run_time", dialect_of(store), 1, ledger.performed(["allowed"]), 0,
                  len(ledger.lost(["allowed"])), None, refused_jobs=1, imported=trace.exists())
    assert result.returncode == 1 and "1 job completed" in result.stdout and "1 failed" in result.stdout
    assert not trace.exists(), "tests.side_effect_module was imported by the worker"
    job = store.get(refused)
    assert job.failed_at is not None and job.attempts == 1 and job.locked_by is None
    assert job.last_error.startswith("DeserializationError: module of tests.side_effect_module:run is not in "
                                     "allowed_modules")
    assert ledger.ends["allowed"] and allowed not in [j.id for j in store.jobs()]


def hostile_handlers(folder: Path) -> dict[str, dict]:
    """Rows that name an allowed module, then walk to code it only imported; each would create a file."""
    proof = {name: str(folder / f"{name}.proof") for name in ("module", "imported", "partial", "attribute",
                                                              "dunder")}
    return {
        "module": {"target": "tests.jobs:os.system", "args": [f"touch {proof['module']}"]},
        "imported": {"target": "tests.reach:system", "args": [f"touch {proof['imported']}"]},
        "partial": {"target": "tests.reach:shell", "args": [f"touch {proof['partial']}"]},
        "attribute": {"target": "tests.reach:Helper.popen", "args": [["touch", proof["attribute"]]]},
        "dunder": {"target": "tests.reach:Helper.method.__globals__.get", "args": ["os"]},
    }


@pytest.mark.parametrize("db_url", DIALECTS, indirect=True)
def test_a_row_cannot_walk_out_of_the_allowed_modules(config, store, tmp_path: Path) -> None:
    """A real worker meets rows written straight into ``delayed_jobs``: none runs, each fails for good."""
    config = config.replace(allowed_modules=("tests.jobs", "tests.reach"), max_attempts=5)
    hostile = {name: store.insert([NewJob(json.dumps(handler), handler["target"])])[0]
               for name, handler in hostile_handlers(tmp_path).items()}
    side = str(tmp_path / "runs.txt")
    Queue(config, store).enqueue(jobs.record, side, "allowed")
    stats = Worker(config, store, name="testhost:1").run(exit_when_empty=True)
    assert (stats.succeeded, stats.failed) == (1, len(hostile)) and jobs.runs(side) == ["allowed"]
    assert sorted(p.name for p in tmp_path.glob("*.proof")) == []
    for name, job_id in hostile.items():
        job = store.get(job_id)
        assert job.failed_at is not None and job.attempts == 1 and job.locked_by is None, name
        assert job.last_error.startswith(f"DeserializationError: {job.name} is refused: "), job.last_error
        assert "\n" not in job.last_error, job.last_error


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_enqueue_command_refuses_a_path_that_walks_out(config, store, subprocess_env, tmp_path: Path) -> None:
    proof = tmp_path / "cli.proof"
    result = subprocess.run([bin_path("delayed_job"), "enqueue", "tests.jobs:os.system", f'["touch {proof}"]'],
                            env={**subprocess_env, "DJ_ALLOWED_MODULES": "tests.jobs"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr == ("delayed_job: error: Invalid value: tests.jobs:os.system is refused: os is a module "
                             "(name a module before the colon only)\n")
    assert store.jobs() == [] and not proof.exists()


PASSWORD = "S3cret-xyz"
USER = "dj_pw"
HOSTS = ("%", "127.0.0.1", "localhost")


@pytest.fixture
def password_url(mysql_server, config):
    """The test database reached as ``dj_pw`` with a password; the user is dropped afterwards."""
    database = make_url(config.url).database
    admin = create_engine(mysql_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for host in HOSTS:
            conn.execute(text(f"DROP USER IF EXISTS '{USER}'@'{host}'"))
            conn.execute(text(f"CREATE USER '{USER}'@'{host}' IDENTIFIED BY '{PASSWORD}'"))
            conn.execute(text(f"GRANT ALL ON {database}.* TO '{USER}'@'{host}'"))
    try:
        yield make_url(config.url).set(username=USER, password=PASSWORD).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            for host in HOSTS:
                conn.execute(text(f"DROP USER IF EXISTS '{USER}'@'{host}'"))
        admin.dispose()


@pytest.mark.parametrize("db_url", ["mysql"], indirect=True)
def test_password_never_appears_in_output_logs_or_status(config, store, subprocess_env, daemons, password_url,
                                                         tmp_path: Path) -> None:
    side = str(tmp_path / "runs.txt")
    failing = Queue(config, store).enqueue(fjobs.timed, side, "fails", "not-a-number")  # TypeError in sleep
    waiting = Queue(config, store).enqueue(fjobs.timed, side, "later", 0, run_at=datetime(9999, 1, 1))
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    bare_url = make_url(password_url).set(password=None).render_as_string(hide_password=False)
    envs = {"in the url": {**subprocess_env, "DJ_DATABASE_URL": password_url},
            "in password_file": {**subprocess_env, "DJ_DATABASE_URL": bare_url, "DJ_PASSWORD_FILE": str(password_file)}}
    outputs = []
    for how, env in envs.items():
        for args in (["check"], ["db", "init"], ["jobs", "show", str(waiting)], ["jobs", "show", "987654321"],
                     ["jobs", "list"], ["enqueue", "tests.faults.jobs:timed", f'["{side}", "cli-{len(outputs)}", 0]'],
                     ["workoff"], ["jobs", "show", str(failing)]):
            result = subprocess.run([bin_path("delayed_job"), *args], env={**env, "DJ_MAX_ATTEMPTS": "1"},
                                    capture_output=True, text=True, timeout=60)
            outputs.append((how, args, result.returncode, result.stdout + result.stderr))
    checked = [o for o in outputs if o[1] == ["check"]]
    assert all(code == 0 and f"{USER}:***@" in out for _, _, code, out in checked), checked
    assert all(code == 0 for _, args, code, _ in outputs if args[-1] != "987654321" and args != ["workoff"])
    daemon = daemons(envs["in the url"], "-n", "2")
    daemon.wait_ready()
    Queue(config, store).enqueue(fjobs.timed, side, "daemon", 0)
    wait_for(lambda: "daemon" in Ledger.read(side).ends, what="job run by the daemon")
    cmdlines = [Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                for pid in [daemon.proc.pid, *daemon.worker_pids()]]
    daemon.signal(signal.SIGUSR2)
    assert wait_until(lambda: "status: 2 workers" in daemon.log(), timeout=10)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    log = daemon.log()
    assert f"{USER}:***@" in log
    leaks = [(how, args) for how, args, _, out in outputs if PASSWORD in out]
    leaks += ["daemon log"] * (PASSWORD in log) + ["sd_notify"] * any(PASSWORD in m for _, m in daemon.messages)
    leaks += ["cmdline"] * any(PASSWORD in c for c in cmdlines)
    assert leaks == []
