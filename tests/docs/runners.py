"""A runner for every kind of command in docs/operations.md: it sets up what the command needs on a
``Site``, runs the command as the doc writes it, and checks what the doc says it does.

Each runner makes what it needs on the daemon and in the queue (a running
daemon, a failed job, a dead worker) instead of counting on the commands
before it; only what the doc installs (the tables, the unit, the init.d
script) must come first, as on a real host. Placeholders in the doc (``ID``,
``OLDHOST``) are filled in with what the runner made.
``key_flow`` runners also run on MariaDB; the rest run on SQLite only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from dj_daemon.config import load_config
from tests import jobs
from tests.docs.site import EXAMPLE_CONFIG, UNIT, Site, Unit
from tests.process.daemon import wait_for

Run = Callable[[Site, re.Match[str]], None]
#: a line of the daemon's stderr under journald: level, pid, logger, message, no timestamp
JOURNALD_LINE = re.compile(r"(DEBUG|INFO|WARNING|ERROR|CRITICAL) \[\d+\] dj_daemon\.\w+: \S")


@dataclass(frozen=True)
class Runner:
    pattern: re.Pattern[str]
    run: Run
    key_flow: bool


RUNNERS: list[Runner] = []


def runs(pattern: str, key_flow: bool = False) -> Callable[[Run], Run]:
    """Register the decorated function for the commands that ``pattern`` matches in full."""
    def register(run: Run) -> Run:
        RUNNERS.append(Runner(re.compile(pattern), run, key_flow))
        return run
    return register


def fill(command: str, **values: object) -> str:
    """``command`` with its placeholders (``ID``, ``OLDHOST``) replaced."""
    return re.sub(r"\b(" + "|".join(values) + r")\b", lambda m: str(values[m.group(1)]), command)


# -- installing a host ----------------------------------------------------------------------------
@runs(r"useradd --system --home-dir (\S+) --shell (\S+) (\S+)")
def useradd(site: Site, match: re.Match[str]) -> None:
    """Not run: it would add an account to this machine. The account is the unit's User= and Group=,
    its home the unit's StateDirectory, its shell one that exists."""
    home, shell, name = match.groups()
    assert name == site.unit.user == site.unit.group
    assert home == f"/var/lib/{site.unit.state_directory}"
    assert Path(shell).exists()


@runs(r"install -m 0644 systemd/delayed_job\.service /etc/systemd/system/")
def install_unit(site: Site, match: re.Match[str]) -> None:
    installed = site.install(match.string)
    assert installed.read_bytes() == UNIT.read_bytes() and installed.stat().st_mode & 0o777 == 0o644


@runs(r"install -m 0640 -g (\S+) etc/delayed_job\.conf /etc/delayed_job\.conf")
def install_config(site: Site, match: re.Match[str]) -> None:
    """The file is readable by the unit's group, and valid as shipped: ``check`` accepts it."""
    assert match.group(1) == site.unit.group
    installed = site.install(match.string)
    assert installed.stat().st_mode & 0o777 == 0o640
    scratch = site.tmp / "shipped"  # its sqlite:///delayed_job.sqlite3 is relative to here
    scratch.mkdir()
    out = site.sh(f"delayed_job --config {installed} db init && delayed_job --config {installed} check", cwd=scratch)
    assert "\nconfig ok; sqlite:///delayed_job.sqlite3: 0 waiting" in out.stdout


@runs(r"install -m 0755 init\.d/delayed_job /etc/init\.d/delayed_job")
def install_initd(site: Site, match: re.Match[str]) -> None:
    installed = site.install(match.string)
    assert installed.stat().st_mode & 0o777 == 0o755
    site.sh(f"bash -n {installed}")


@runs(r"install -d -m 0750 (\S+)")
def install_sentinel_dir(site: Site, match: re.Match[str]) -> None:
    """The folder made is the shipped config's sentinel_dir."""
    assert match.group(1) == load_config(EXAMPLE_CONFIG, env={}).sentinel_dir
    assert site.install(match.string).stat().st_mode & 0o777 == 0o750


@runs(r"update-rc\.d delayed_job defaults")
def update_rc_d(site: Site, match: re.Match[str]) -> None:
    """Not run: it would enable a service on this machine. It reads the installed script's LSB header."""
    header = site.at("/etc/init.d/delayed_job").read_text()
    assert "# Provides:          delayed_job" in header and "# Default-Start:" in header


@runs(r"delayed_job db init", key_flow=True)
def db_init(site: Site, match: re.Match[str]) -> None:
    assert site.sh(match.string).stdout == f"schema ready on {site.config.safe_url}\n"
    assert site.store.counts() == {"waiting": 0, "running": 0, "failed": 0}


@runs(r"delayed_job check", key_flow=True)
def check(site: Site, match: re.Match[str]) -> None:
    assert re.fullmatch(rf"config ok; {re.escape(site.config.safe_url)}: \d+ waiting, \d+ running, \d+ failed\n",
                        site.sh(match.string).stdout)


# -- systemd --------------------------------------------------------------------------------------
@runs(r"systemctl daemon-reload")
def daemon_reload(site: Site, match: re.Match[str]) -> None:
    """systemd rereads the unit files: from here on the site acts on the installed copy."""
    site.unit = Unit.read(site.at("/etc/systemd/system/delayed_job.service"))


def start_and_see_a_job_run(site: Site) -> None:
    site.start()
    side = str(site.tmp / f"started-{site.identifier()}.txt")
    site.enqueue(jobs.record, side, "after-start")
    wait_for(lambda: jobs.runs(side) == ["after-start"], what="a job run after the start")


@runs(r"systemctl (enable --now|start) delayed_job", key_flow=True)
def systemctl_start(site: Site, match: re.Match[str]) -> None:
    """Back once READY=1 came (``enable`` adds the [Install] link to multi-user.target); jobs then run."""
    if match.group(1) == "enable --now":
        assert site.unit.wanted_by == "multi-user.target"
    start_and_see_a_job_run(site)


@runs(r"systemctl status delayed_job", key_flow=True)
def systemctl_status(site: Site, match: re.Match[str]) -> None:
    """The Status: line is the daemon's last STATUS=, in the form the doc quotes."""
    site.ensure_daemon()
    wait_for(lambda: site.daemon.sent("STATUS="), what="a STATUS= message")
    status = site.daemon.sent("STATUS=")[-1]
    assert re.fullmatch(r"STATUS=\d+ workers \(\d+ busy, \d+ idle\), \d+ jobs done, (\d+|\?) queued", status)


@runs(r"systemctl stop delayed_job", key_flow=True)
def systemctl_stop(site: Site, match: re.Match[str]) -> None:
    """The job in hand finishes; the daemon exits 0 with no worker left."""
    site.ensure_daemon()
    side = str(site.tmp / "stop.txt")
    site.enqueue(jobs.sleep_then_record, side, 0.5)
    wait_for(lambda: jobs.runs(side) == ["started"], what="a job running")
    site.stop()
    assert jobs.runs(side) == ["started", "done"]


@runs(r"systemctl restart delayed_job")
def systemctl_restart(site: Site, match: re.Match[str]) -> None:
    """A new supervisor: stop as above, then start."""
    site.ensure_daemon()
    before = site.daemon.proc.pid
    site.stop()
    start_and_see_a_job_run(site)
    assert site.daemon.proc.pid != before


@runs(r"systemctl reload delayed_job")
def systemctl_reload(site: Site, match: re.Match[str]) -> None:
    """HUP: the config is reread (3 workers), new workers run the new job code, the job in hand finishes."""
    site.start()
    side, busy = str(site.tmp / "versions.txt"), str(site.tmp / "busy.txt")
    site.enqueue(site.deploy("v1"), side)
    wait_for(lambda: jobs.runs(side) == ["v1"], what="the job of version 1")
    site.enqueue(jobs.sleep_then_record, busy, 1.0)
    wait_for(lambda: jobs.runs(busy) == ["started"], what="a job running")
    old_workers = set(site.daemon.worker_pids())
    job = site.deploy("v2-with-more")
    site.configure(daemon={"workers": "3"})
    site.reload()
    assert jobs.runs(busy) == ["started", "done"] and "reload complete" in site.journal()
    assert len(site.daemon.worker_pids()) == 3 and not old_workers & set(site.daemon.worker_pids())
    site.enqueue(job, side)
    wait_for(lambda: jobs.runs(side) == ["v1", "v2-with-more"], what="the job of version 2")


# -- the journal ----------------------------------------------------------------------------------
@runs(r"journalctl -u delayed_job -f")
def journal_follow(site: Site, match: re.Match[str]) -> None:
    """A line per job start and end, with no timestamp of our own (journald stamps each line)."""
    site.start()
    mark = len(site.journal())  # SQLite gives a deleted job's id to the next one: look at new lines only
    job_id = site.enqueue(jobs.noop)
    wait_for(lambda: f"job done id={job_id} tests.jobs:noop" in site.journal()[mark:], what="the job's end logged")
    assert f"job start id={job_id} tests.jobs:noop queue=- attempt=1" in site.journal()[mark:]
    assert all(JOURNALD_LINE.match(line) for line in site.journal().splitlines()), site.journal()


@runs(r'journalctl -u delayed_job -p warning --since "1 hour ago"')
def journal_problems(site: Site, match: re.Match[str]) -> None:
    """Filed at their priority, warnings and errors alone show the lines of the doc's table."""
    site.start()
    side, flag = str(site.tmp / "problems.txt"), str(site.tmp / "killed-once")
    mark = len(site.journal())
    failed = site.enqueue(jobs.flaky, side)
    wait_for(lambda: f"job failed for good id={failed} " in site.journal()[mark:], what="a failure logged")
    killed = site.enqueue(jobs.kill_own_worker_once, side, flag)  # alone, so its worker holds no other job
    wait_for(lambda: f"job done id={killed} " in site.journal()[mark:], what="a killed worker's job done again")
    lines = site.journal(priority=4).splitlines()
    assert lines and all(line.startswith(("WARNING ", "ERROR ")) for line in lines), lines
    for expected in (rf"job failed, retry at .* id={failed} ", rf"job failed for good id={failed} ",
                     r"released 1 job\(s\) of testhost:\d+: worker testhost:\d+ killed by SIGKILL"):
        assert any(re.search(expected, line) for line in lines), (expected, lines)
