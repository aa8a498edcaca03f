"""``long_jobs web`` as an operator runs it: served by waitress on loopback, a clear line without
the extra or with a bad --bind, and the templates in what ``pip install`` builds."""
from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

from tests.conftest import ROOT, bin_path
from tests.process.daemon import wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_long_jobs_web_serves_the_page_with_waitress(subprocess_env, store, tmp_path) -> None:
    Path(subprocess_env["DJ_SENTINEL_DIR"]).mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = open(tmp_path / "web.log", "w")
    server = subprocess.Popen([bin_path("long_jobs"), "web", "--bind", f"127.0.0.1:{port}"], env=subprocess_env,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/tracked") or server.poll() is not None, 30, "the page")
        assert server.poll() is None, (tmp_path / "web.log").read_text()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            assert response.headers["Server"] == "long_jobs" and b"<h1>Overview</h1>" in response.read()
    finally:
        server.terminate()
        server.wait(10)
        log.close()
    said = (tmp_path / "web.log").read_text()
    assert f"long_jobs web on http://127.0.0.1:{port}/" in said and "Serving on" in said  # waitress's own line


def run_web(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([bin_path("long_jobs"), "web", *args], env=env, capture_output=True, text=True, timeout=60)


def test_a_bad_bind_is_one_line(subprocess_env) -> None:
    Path(subprocess_env["DJ_SENTINEL_DIR"]).mkdir(parents=True, exist_ok=True)
    done = run_web(subprocess_env, "--bind", "nowhere")
    assert done.returncode == 1 and done.stderr == (
        "long_jobs: error: web_bind must be HOST:PORT (for example 127.0.0.1:8080), not 'nowhere'\n")


def test_without_the_extra_it_says_how_to_install_it(subprocess_env, tmp_path) -> None:
    """Flask made unimportable, as on a host installed without ``[web]``."""
    hidden = tmp_path / "no-flask" / "flask"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'flask'\", name='flask')\n")
    env = {**subprocess_env, "PYTHONPATH": f"{hidden.parent}:{subprocess_env['PYTHONPATH']}"}
    done = run_web(env)
    assert done.returncode == 1
    assert done.stderr == "long_jobs: error: the web page needs flask: pip install 'dj-daemon[web]'\n"


def test_the_built_package_ships_the_templates(tmp_path) -> None:
    """What ``pip install .`` installs: the wheel it builds holds every template."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=300)
    [wheel] = tmp_path.glob("dj_daemon-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.name for p in (ROOT / "long_jobs" / "web" / "templates").glob("*.html")}
    assert shipped and {f"long_jobs/web/templates/{name}" for name in shipped} <= names
