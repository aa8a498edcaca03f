"""One worker host for the runbook's commands: its config file, database, daemon, journal and scratch root.

systemd is the one thing faked, because it is not PID 1 here (nor in CI) and
``systemctl`` cannot run without it. ``Unit`` reads systemd/delayed_job.service
and ``Site`` does with it what systemd would: run ``ExecStart`` with the
unit's ``Environment=``, ``WATCHDOG_USEC`` from ``WatchdogSec=``,
``JOURNAL_STREAM`` and a ``NOTIFY_SOCKET`` bound by the test
(``tests.process.daemon.Daemon``), and return on ``READY=1``; run
``ExecReload`` with ``$MAINPID``; send ``KillSignal=`` to the main process
only (``KillMode=mixed``) and wait up to ``TimeoutStopSec=``. ``User=`` and
the sandboxing directives are not applied (no such account, no namespaces
without systemd); ``systemd-analyze`` checks them in
tests/process/test_service_files.py. The journal is
what those daemons wrote to stderr, which is what journald would store.
The host's paths move to temporary ones: ``DJ_CONFIG`` names its config file
(a real host reads /etc/delayed_job.conf), and files the doc installs under
/etc and /var land in a scratch root.
"""
from __future__ import annotations

import configparser
import contextlib
import importlib.util
import itertools
import os
import re
import shlex
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dj_daemon.api import Queue
from dj_daemon.config import Config, load_config
from dj_daemon.daemonize import read_pid
from dj_daemon.processes import alive, children_of
from dj_daemon.store import open_store
from tests.conftest import ROOT, bin_path
from tests.process.daemon import Daemon, wait_for

UNIT = ROOT / "systemd" / "delayed_job.service"
JOURNAL_PREFIX = re.compile(r"<([0-7])>")  #: the syslog priority our lines start with under journald
EXAMPLE_CONFIG = ROOT / "etc" / "delayed_job.conf"
#: what this test host sets beyond the doc's edits, and why
TEST_HOST_SETTINGS = {
    "workers": "2",
    "graceful_timeout": "5",      # a stop with a job in hand stays quick
    "heartbeat_interval": "0.2",  # a dead daemon's job shows as stalled within seconds, not minutes
    "heartbeat_timeout": "2",
}
DEPLOYED = '''"""The application's job module, version {version}."""
from tests.jobs import record


def which_version(path: str) -> None:
    record(path, "{version}")
'''


@dataclass(frozen=True)
class Unit:
    """The directives of the unit file that systemd acts on when started, reloaded and stopped."""

    exec_start: tuple[str, ...]
    exec_reload: str
    environment: tuple[tuple[str, str], ...]
    watchdog_usec: int
    kill_mode: str
    kill_signal: signal.Signals
    timeout_stop_sec: float
    user: str
    group: str
    state_directory: str
    wanted_by: str

    @classmethod
    def read(cls, path: Path) -> "Unit":
        parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
        parser.optionxform = str  # directive names are case-sensitive
        parser.read(path)
        service = parser["Service"]
        environment = tuple(tuple(item.split("=", 1)) for item in shlex.split(service["Environment"]))
        return cls(tuple(shlex.split(service["ExecStart"])), service["ExecReload"], environment,
                   int(service["WatchdogSec"]) * 1_000_000, service["KillMode"],
                   signal.Signals[service["KillSignal"]], float(service["TimeoutStopSec"]), service["User"],
                   service["Group"], service["StateDirectory"], parser["Install"]["WantedBy"])


class Site:
    """A worker host as the runbook sees it; ``close`` kills whatever it started."""

    config: Config  #: as read from the config file, after each edit (``configure``)

    def __init__(self, config: Config, env: dict[str, str], tmp: Path) -> None:
        self.tmp, self.root, self.app = tmp, tmp / "root", tmp / "app"
        self.app.mkdir()
        self.deployed = "deployed_jobs"  # loaded by path in this process, so never cached in sys.modules
        self.ini = tmp / "delayed_job.conf"
        self.configure(database={"url": config.url}, long_jobs={"sentinel_dir": config.sentinel_dir},
                       jobs={"allowed_modules": f"tests, {self.deployed}"},
                       daemon={**TEST_HOST_SETTINGS, "hostname": config.hostname, "pidfile": config.pidfile})
        Path(config.sentinel_dir).mkdir(parents=True, exist_ok=True)
        self.store = open_store(self.config)
        plain = {name: value for name, value in env.items() if not name.startswith("DJ_")}
        self.env = {**plain, "DJ_CONFIG": str(self.ini), "PYTHONPATH": f"{ROOT}{os.pathsep}{self.app}",
                    "PATH": f"{Path(bin_path('delayed_job')).parent}{os.pathsep}{plain['PATH']}",
                    "PYTHONDONTWRITEBYTECODE": "1"}  # a rewritten job module is never read from a stale .pyc
        self.unit = Unit.read(UNIT)
        self.daemon: Daemon | None = None
        self.started: list[Daemon] = []
        self.spawned: list[subprocess.Popen[str]] = []
        self.initd_log = tmp / "log" / "delayed_job.log"
        self._identifiers = itertools.count(1)

    # -- the operator's shell -----------------------------------------------------------
    def sh(self, command: str, expect: int = 0, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
        """Run ``command`` in bash, by default from a checkout (the doc's relative paths), with this host's config."""
        result = subprocess.run(["bash", "-c", command], env={**self.env, **env}, cwd=cwd, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == expect, f"{command}: exit {result.returncode}\n{result.stdout}{result.stderr}"
        return result

    def spawn(self, command: str, output: Path) -> subprocess.Popen[str]:
        """``command`` as ``sh`` runs it, left running, writing stdout and stderr to ``output``."""
        with output.open("w") as out:
            self.spawned.append(subprocess.Popen(["bash", "-c", command], env=self.env, cwd=ROOT, stdout=out,
                                                 stderr=subprocess.STDOUT, text=True))
        return self.spawned[-1]

    def configure(self, **sections: dict[str, str]) -> None:
        """Edit the config file as an operator would; the first edit starts from the shipped example."""
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(self.ini if self.ini.exists() else EXAMPLE_CONFIG)
        parser.read_dict(sections)  # a section the file lacks ([schedule:NAME]) is added
        with self.ini.open("w") as out:
            parser.write(out)
        self.config = load_config(self.ini, env={})

    def at(self, path: str) -> Path:
        """Where the doc's absolute ``path`` lands in the scratch root."""
        return self.root / path.lstrip("/")

    def install(self, command: str) -> Path:
        """Run the doc's ``install`` line into the scratch root, less -g/-o (that account does not
        exist here); returns what it installed."""
        *head, dest = _without_owner(shlex.split(command))
        target = self.at(dest)
        (target if dest.endswith("/") else target.parent).mkdir(parents=True, exist_ok=True)
        subprocess.run([*head, f"{target}/" if dest.endswith("/") else str(target)], cwd=ROOT, check=True)
        return target / Path(head[-1]).name if dest.endswith("/") else target

    # -- systemd, played by the test ----------------------------------------------------------
    def start(self) -> None:
        """``systemctl start``: ExecStart as systemd runs it, back once READY=1 came; nothing if running."""
        if self.systemd_running():
            return
        program, verb, *args = self.unit.exec_start
        assert (Path(program).name, verb) == ("delayed_job", "run"), self.unit.exec_start
        self.daemon = Daemon({**self.env, **dict(self.unit.environment)}, *args,
                             watchdog_usec=self.unit.watchdog_usec, journal=True)
        self.started.append(self.daemon)
        self.daemon.wait_ready()

    def stop(self) -> None:
        """``systemctl stop``: KillSignal to the main process only; it must exit 0 in time, no worker left."""
        if not self.systemd_running():
            return
        assert self.unit.kill_mode == "mixed"  # else systemd would signal every worker too
        workers = self.daemon.worker_pids()
        self.daemon.signal(self.unit.kill_signal)
        assert self.daemon.wait(self.unit.timeout_stop_sec) == 0, self.daemon.log()
        assert self.daemon.sent("STOPPING=1") and not [pid for pid in workers if alive(pid)]

    def reload(self) -> None:
        """``systemctl reload``: ExecReload with $MAINPID; back once the daemon says READY=1 again."""
        daemon = self.daemon
        readies = len(daemon.sent("READY=1"))
        self.sh(self.unit.exec_reload.replace("$MAINPID", str(daemon.proc.pid)))
        wait_for(lambda: len(daemon.sent("READY=1")) > readies, what="READY=1 after RELOADING=1")
        assert daemon.sent("RELOADING=1")

    def crash(self) -> None:
        """The whole daemon dies at once, as under the OOM killer or a kill -9 of its cgroup."""
        os.killpg(self.daemon.proc.pid, signal.SIGKILL)
        self.daemon.wait(10)

    def systemd_running(self) -> bool:
        return self.daemon is not None and self.daemon.proc.poll() is None

    def journal(self, priority: int = 7) -> str:
        """What ``journalctl -u delayed_job [-p N]`` shows: the stderr of every daemon started as the
        unit, each line's ``<N>`` priority prefix taken off and filtered on, as journald does."""
        lines = "".join(daemon.log() for daemon in self.started).splitlines(keepends=True)
        shown = []
        for line in lines:
            found = JOURNAL_PREFIX.match(line)
            level = int(found.group(1)) if found else 6  # journald's default: info
            if level <= priority:
                shown.append(line[found.end():] if found else line)
        return "".join(shown)

    # -- init.d ---------------------------------------------------------------------------------
    def initd(self, command: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        """The installed init.d script, with what it reads from the environment pointed here: DAEMON
        (this venv's delayed_job), PIDFILE ([daemon] pidfile, as the doc asks), LOGFILE, DEFAULTS_FILE."""
        return self.sh(command.replace("/etc/init.d/", f"{self.at('/etc/init.d')}/"), expect,
                       DAEMON=bin_path("delayed_job"), PIDFILE=self.config.pidfile, LOGFILE=str(self.initd_log),
                       DEFAULTS_FILE=str(self.tmp / "no-defaults"))

    def initd_pid(self) -> int | None:
        pid = read_pid(self.config.pidfile)
        return pid if pid is not None and alive(pid) else None

    # -- jobs -----------------------------------------------------------------------------------
    def ensure_daemon(self) -> None:
        """Some daemon works the queue on this host: the one running, else systemd's."""
        if not self.systemd_running() and self.initd_pid() is None:
            self.start()

    def identifier(self) -> int:
        """A tracked-job identifier no other runner uses."""
        return next(self._identifiers)

    def enqueue(self, target: Any, *args: Any, **options: Any) -> int:
        return Queue(self.config, self.store).enqueue(target, *args, **options)

    def tracked(self, identifier: int) -> dict[str, Any]:
        [row] = self.store.tracked(identifier=str(identifier))
        return row

    def wait_state(self, identifier: int, state: str, timeout: float = 20.0) -> dict[str, Any]:
        wait_for(lambda: self.tracked(identifier)["state"] == state, timeout, f"tracked job {identifier} {state}")
        return self.tracked(identifier)

    def deploy(self, version: str) -> Callable[[str], None]:
        """Write the application's job module at ``version``, as a deploy does; returns its job."""
        path = self.app / f"{self.deployed}.py"
        path.write_text(DEPLOYED.format(version=version))
        spec = importlib.util.spec_from_file_location(self.deployed, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.which_version

    def close(self) -> None:
        for process in self.spawned:
            process.kill()  # nothing to do once it has exited
            process.wait()
        for daemon in self.started:
            daemon.close()
        pid = self.initd_pid()
        for leftover in [pid, *children_of(pid)] if pid else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover, signal.SIGKILL)
        self.store.dispose()


def _without_owner(args: list[str]) -> list[str]:
    """``args`` less ``-g GROUP`` and ``-o OWNER``."""
    kept: list[str] = []
    skip = False
    for arg in args:
        if not skip and arg not in ("-g", "-o"):
            kept.append(arg)
        skip = arg in ("-g", "-o")
    return kept
