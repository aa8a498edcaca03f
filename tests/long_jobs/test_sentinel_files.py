"""``long_jobs`` over sentinels that are not regular files: real links and FIFOs, the real entry point."""
from __future__ import annotations

import json
import os
from pathlib import Path

from tests.long_jobs.conftest import long_jobs


def test_drain_refuses_a_link_status_flags_it_restart_removes_it(store, sentinel_dir, subprocess_env,
                                                                   tmp_path: Path) -> None:
    target = tmp_path / "nowhere.txt"
    (sentinel_dir / "defer_jobs.txt").symlink_to(target)
    drained = long_jobs(subprocess_env, "drain")
    lines = drained.stderr.strip().splitlines()
    assert drained.returncode == 1 and len(lines) == 1, drained.stderr
    assert lines[0] == (f"long_jobs: error: {sentinel_dir / 'defer_jobs.txt'} is a symlink, not a regular file: "
                        "refusing to write through it (it already closes its gate; remove it, then drain again)")
    assert not target.exists() and not (sentinel_dir / "hold-submissions.txt").exists()  # nothing written

    status = long_jobs(subprocess_env, "status")
    assert status.returncode == 4  # draining (3), and no daemon runs here: trouble wins
    assert ("DRAINING: defer_jobs.txt (a symlink, not a file drain wrote: it still drains; "
            "`long_jobs restart` removes it)") in status.stdout
    snapshot = json.loads(long_jobs(subprocess_env, "status", "--json").stdout)
    assert list(snapshot["draining"]) == ["defer_jobs.txt"] and snapshot["odd_sentinels"] == {
        "defer_jobs.txt": "symlink"}

    restarted = long_jobs(subprocess_env, "restart")
    assert restarted.returncode == 0 and restarted.stdout.startswith("removed: defer_jobs.txt\n")
    assert not os.path.lexists(sentinel_dir / "defer_jobs.txt") and not target.exists()
    assert long_jobs(subprocess_env, "drain").returncode == 0
    assert all((sentinel_dir / name).is_file() and not (sentinel_dir / name).is_symlink()
               for name in ("defer_jobs.txt", "hold-submissions.txt"))


def test_drain_refuses_a_fifo_without_blocking_on_it(store, sentinel_dir, subprocess_env) -> None:
    os.mkfifo(sentinel_dir / "hold-submissions.txt")
    drained = long_jobs(subprocess_env, "drain")
    assert drained.returncode == 1 and "hold-submissions.txt is a fifo, not a regular file" in drained.stderr
    assert not (sentinel_dir / "defer_jobs.txt").exists()
    assert "hold-submissions.txt (a fifo" in long_jobs(subprocess_env, "status").stdout
