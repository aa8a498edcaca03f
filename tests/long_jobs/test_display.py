"""What long_jobs shows day to day: ``drain --wait``'s progress on a terminal and elsewhere, and
times marked in the one display zone."""
from __future__ import annotations

import re
import subprocess
import threading
import time
from pathlib import Path

from dj_daemon.api import Queue
from dj_daemon.worker import Worker
from tests import jobs
from tests.conftest import bin_path
from tests.long_jobs.conftest import long_jobs
from tests.process.daemon import wait_for
from tests.terminal import run_on_terminal

DRAIN = ["drain", "--wait", "--timeout", "60"]
DRAINED = "drained: no tracked job runs on this host"


def two_gated_jobs(config, store, start_daemon, tmp_path: Path) -> tuple[Path, Path]:
    """Two tracked long jobs running in a real daemon, each until its flag file exists."""
    side, flags = str(tmp_path / "runs.txt"), (tmp_path / "first", tmp_path / "second")
    queue = Queue(config, store)
    for identifier, flag in enumerate(flags, 1):
        queue.enqueue(jobs.tracked_until_flag, side, identifier, str(flag))
    start_daemon("-n", "2")
    wait_for(lambda: jobs.runs(side).count("started") == 2, what="both running")
    return flags


def test_drain_wait_elsewhere_writes_a_line_per_change(config, store, sentinel_dir, start_daemon, subprocess_env,
                                                       tmp_path) -> None:
    """Piped to a file (a log, cron's mail): a line when what runs changes, not one a second."""
    first, second = two_gated_jobs(config, store, start_daemon, tmp_path)
    out = tmp_path / "drain.out"
    with open(out, "w") as sink:
        drain = subprocess.Popen([bin_path("long_jobs"), *DRAIN], env=subprocess_env, stdout=sink,
                                 stderr=subprocess.STDOUT)
    wait_for(lambda: "\nwaiting: 2 tracked jobs" in out.read_text(), what="drain waiting for both")
    time.sleep(3.5)  # three polls or more, with nothing changed but the durations
    first.touch()
    wait_for(lambda: "\nwaiting: 1 tracked job running" in out.read_text(), what="one left")
    time.sleep(2.5)
    second.touch()
    assert drain.wait(30) == 0, out.read_text()
    lines = out.read_text().splitlines()
    assert len(lines) == 4, lines
    assert lines[0] == "draining testhost: defer_jobs.txt, hold-submissions.txt written"
    started = re.fullmatch(r"waiting: 2 tracked jobs running on this host: tests\.jobs:tracked_until_flag (\d) "
                           r"\(\dm\d\ds\), tests\.jobs:tracked_until_flag (\d) \(\dm\d\ds\)", lines[1])
    assert started and set(started.groups()) == {"1", "2"}, lines[1]  # the longest-running first: either
    assert lines[2].startswith("waiting: 1 tracked job running on this host: tests.jobs:tracked_until_flag 2 (")
    assert lines[3] == DRAINED and "\r" not in out.read_text()


def test_drain_wait_on_a_terminal_rewrites_one_line(config, store, sentinel_dir, start_daemon, subprocess_env,
                                                    tmp_path) -> None:
    """On a terminal: one live line, rewritten in place each second, ended with a newline."""
    first, second = two_gated_jobs(config, store, start_daemon, tmp_path)
    first.touch()
    wait_for(lambda: store.get_tracked(1)["state"] == "completed", what="the first done")

    def finish_later() -> None:
        time.sleep(3.5)
        second.touch()
    threading.Thread(target=finish_later, daemon=True).start()
    code, text = run_on_terminal([bin_path("long_jobs"), *DRAIN], subprocess_env, columns=80)
    assert code == 0, text
    lines = text.split("\r\n")  # the terminal turns each newline into CR LF
    assert lines[0] == "draining testhost: defer_jobs.txt, hold-submissions.txt written" and lines[-1] == ""
    assert len(lines) == 3, lines  # the header, the one live line, and nothing after its newline
    rewrites = lines[1].split("\r")[1:]
    assert len(rewrites) >= 3, rewrites  # one a second while the job ran
    for shown in rewrites[:-1]:
        assert shown.startswith("waiting: 1 tracked job running on this host: tests.jobs:tracked_until_flag 2 (")
        assert shown.endswith("\x1b[K") and len(shown) - 3 <= 79  # cut to the terminal: it never wraps
    assert rewrites[-1] == DRAINED + "\x1b[K"


def test_lists_show_times_in_the_display_zone_marked(config, store, sentinel_dir, subprocess_env, tmp_path) -> None:
    """UTC marked Z by default; ``display_timezone = local``: the host's zone, with its offset."""
    Queue(config, store).enqueue(jobs.replicate, str(tmp_path / "x"), 1)
    Worker(config, store, name="testhost:1").run(exit_when_empty=True)
    updated = store.get_tracked(1)["updated_at"]
    utc = f"{updated:%Y-%m-%d %H:%M:%S}Z"
    listed, shown = long_jobs(subprocess_env, "list"), long_jobs(subprocess_env, "show", "1")
    assert utc in listed.stdout.splitlines()[1] and f"updated: {utc}" in shown.stdout, listed.stdout + shown.stdout
    assert "(UTC)" not in listed.stdout + shown.stdout  # each time says its zone itself
    tokyo = {**subprocess_env, "TZ": "Asia/Tokyo", "DJ_DISPLAY_TIMEZONE": "local"}
    local = f"{updated.replace(hour=(updated.hour + 9) % 24):%H:%M:%S}+09:00"
    listed, shown = long_jobs(tokyo, "list"), long_jobs(tokyo, "show", "1")
    assert listed.stdout.splitlines()[0].split()[6:8] == ["updated", "last"], listed.stdout
    assert local in listed.stdout.splitlines()[1] and local in shown.stdout, listed.stdout + shown.stdout
    history = shown.stdout.split("history:\n")[1].splitlines()
    assert history and all(re.match(r"  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+09:00  ", line) for line in history)
    long_jobs(tokyo, "drain")
    status = long_jobs(tokyo, "status")
    assert re.search(r"DRAINING: defer_jobs\.txt since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+09:00", status.stdout), \
        status.stdout
    refused = long_jobs({**subprocess_env, "DJ_DISPLAY_TIMEZONE": "mars"}, "list")
    assert refused.returncode != 0 and refused.stderr.strip().splitlines() == [
        "long_jobs: error: display_timezone must be utc or local, not 'mars'"], refused.stderr
