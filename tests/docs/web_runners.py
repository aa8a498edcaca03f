"""The runner for the doc's web page command (``long_jobs web``)."""
from __future__ import annotations

import re
import urllib.request

from tests.docs.runners import runs
from tests.docs.site import Site
from tests.process.daemon import wait_for
from tests.web.test_command import answers, free_port


@runs(r"long_jobs web")
def web(site: Site, match: re.Match[str]) -> None:
    """Serves the page on [web] web_bind of the config, on loopback, until stopped."""
    port = free_port()
    site.configure(web={"web_bind": f"127.0.0.1:{port}"})
    output = site.tmp / "web.out"
    server = site.spawn(match.string, output)
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/tracked") or server.poll() is not None, 30, "the page")
        assert server.poll() is None, output.read_text()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert f"This host: {site.config.hostname}" in page.read().decode()
    finally:
        server.terminate()
        server.wait(10)
