"""Headless Chromium for the end-to-end test: Debian's ``chromium`` and ``chromium-driver``, installed
once if missing, driven by Selenium with a fresh profile and nothing that reaches the network."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

PACKAGES = ("chromium", "chromium-driver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         "--window-size=1280,1500")


def ensure_chromium() -> tuple[str, str]:
    """Paths of chromium and chromedriver; ``apt-get install``s them (as root) when missing, or fails saying how."""
    found = shutil.which("chromium"), shutil.which("chromedriver")
    if all(found):
        return found  # type: ignore[return-value]
    if os.geteuid() != 0:
        pytest.fail(f"chromium or chromedriver missing: apt-get install -y {' '.join(PACKAGES)} (as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed ({done.returncode}); the browser test needs "
                        f"{' '.join(PACKAGES)}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    found = shutil.which("chromium"), shutil.which("chromedriver")
    assert all(found), f"apt-get installed {PACKAGES} but chromium/chromedriver are not on PATH"
    return found  # type: ignore[return-value]


def start_browser(profile: str | None = None):
    """A headless Chromium driven by Selenium (its driver found on PATH, never downloaded)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = ensure_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile or tempfile.mkdtemp(prefix='dj-chromium-')}")
    return webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
