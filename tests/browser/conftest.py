"""Shared browser-test fixtures: the real app on a free port, headless Debian Chromium, axe-core."""
import os
import threading
import pytest
from werkzeug.serving import make_server

from tests.browser.helpers import AXE, ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


class _Served:
    """An app served by werkzeug in a background thread on a free port."""

    def __init__(self, server_app):
        self.app = server_app
        self.server = make_server("127.0.0.1", 0, server_app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name="live-server", daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def stop(self):
        self.server.shutdown()
        self.thread.join(10)
        self.server.server_close()


@pytest.fixture
def live_server(app_factory):
    """The real app (CSRF on, as in production) served by werkzeug in a background thread."""
    served = _Served(app_factory(WTF_CSRF_ENABLED=True))
    try:
        yield served.url
    finally:
        served.stop()


@pytest.fixture
def mail_live_server(app_factory):
    """`mail_live_server(smtp_server, sender, **config)`: the real app (CSRF on) that sends real mail
    to that SMTP test server from `sender`, served like live_server; returns (app, base URL)."""
    started = []

    def start(smtp, sender, **config):
        served = _Served(app_factory(WTF_CSRF_ENABLED=True, MAIL_DEFAULT_SENDER=sender, **smtp.mail_config(),
                                     **config))
        started.append(served)
        return served.app, served.url

    try:
        yield start
    finally:
        for served in started:
            served.stop()


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
