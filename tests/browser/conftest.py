"""Shared browser-test fixtures: the real app on a free port, headless Debian Chromium, axe-core."""
import os
import threading
import pytest
from werkzeug.serving import make_server

from tests.browser.helpers import AXE, ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture
def live_server(app_factory):
    """The real app (CSRF on, as in production) served by werkzeug in a background thread."""
    server_app = app_factory(WTF_CSRF_ENABLED=True)
    server = make_server("127.0.0.1", 0, server_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


@pytest.fixture
def browser():
    """Headless Debian Chromium, or a skip with the reason."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def axe_source():
    """axe-core's script (installed from npm for the tests: `npm ci`), or a skip with the reason."""
    if not AXE.exists():
        pytest.skip(f"{AXE.relative_to(ROOT)} is missing: run `npm ci` (needs node and npm) for the axe-core check")
    return AXE.read_text(encoding="utf-8")
