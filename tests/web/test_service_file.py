"""systemd/long_jobs-web.service: systemd's own parser accepts it, and its hardening scores OK or better."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.conftest import ROOT, bin_path
from tests.process.test_service_files import _systemd_analyze

UNIT = ROOT / "systemd" / "long_jobs-web.service"


def for_this_machine(tmp_path: Path) -> Path:
    """The unit with ExecStart naming this venv's long_jobs (verify checks the binary exists)."""
    text = UNIT.read_text()
    assert text.count("\nExecStart=/usr/local/bin/long_jobs web\n") == 1
    copy = tmp_path / "long_jobs-web.service"
    copy.write_text(text.replace("/usr/local/bin/long_jobs", bin_path("long_jobs")))
    return copy


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SYSTEMD_")}, "SYSTEMD_COLORS": "0",
           "SYSTEMD_PAGER": ""}
    return subprocess.run([_systemd_analyze(), *args], env=env, capture_output=True, text=True, timeout=120)


def test_verify_passes_without_warnings(tmp_path: Path) -> None:
    proc = analyze("verify", str(for_this_machine(tmp_path)))
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stdout + proc.stderr


def test_hardened_as_the_daemon_or_better(tmp_path: Path) -> None:
    proc = analyze("security", "--offline=true", str(for_this_machine(tmp_path)))
    verdict = proc.stdout.strip().splitlines()[-1]
    match = re.search(r"exposure level for long_jobs-web.service: ([0-9.]+) (\w+)", verdict)
    assert match and match.group(2) in ("SAFE", "OK") and float(match.group(1)) <= 2.0, proc.stdout + proc.stderr
    text = UNIT.read_text()
    for line in ("User=delayed_job", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "ReadWritePaths=/var/lib/delayed_job", "CapabilityBoundingSet=\n"):
        assert line in text, line
