"""`make run` end to end: the supervisor (python -m workers.dev) on a temporary instance/.

It migrates and seeds, serves the desk, runs jobs through the embedded Redis, the RQ worker and
`rq cron`, and on SIGINT/SIGTERM, or when a child dies, leaves no process behind. A second run
reuses the data; a concurrent one on the same instance/ is refused.
"""
import http.cookiejar
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

import psutil
import pytest

from helpdesk.embedded_redis import free_port
from tests.conftest import ROOT, extract_csrf

START_TIMEOUT = 180
# Settings of the test run that must not leak into the laptop deployment under test.
SCRUB = ("DATABASE_URL", "REDIS_URL", "HELPDESK_ENV", "SECRET_KEY", "MAIL_SERVER", "MAIL_SUPPRESS_SEND", "FLASK_APP")


class Run:
    """One `python -m workers.dev` in its own session, its output in a file."""

    def __init__(self, instance, log_path):
        self.instance, self.log_path, self.port = instance, log_path, free_port()
        env = {k: v for k, v in os.environ.items() if k not in SCRUB}
        env.update(HELPDESK_INSTANCE=str(instance), PORT=str(self.port))
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "workers.dev"], cwd=ROOT, env=env,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def output(self):
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, text, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        pytest.fail(f"{text!r} did not appear (exit code {self.proc.poll()}):\n{self.output()[-6000:]}")

    def processes(self):
        """Every live process of this run's session except the supervisor itself."""
        found = []
        for p in psutil.process_iter(["pid", "cmdline", "status"]):
            try:
                if os.getsid(p.pid) == self.proc.pid and p.pid != self.proc.pid \
                        and p.info["status"] != psutil.STATUS_ZOMBIE:
                    found.append(" ".join(p.info["cmdline"] or []))
            except (ProcessLookupError, PermissionError, psutil.Error):
                pass
        return found

    def child_pid(self, needle):
        for p in psutil.Process(self.proc.pid).children():
            if needle in " ".join(p.cmdline()):
                return p.pid
        raise AssertionError(f"no child process matching {needle!r}")

    def wait_exit(self, timeout=60):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the supervisor did not exit:\n{self.output()[-4000:]}")

    def assert_nothing_left(self):
        deadline = time.monotonic() + 5
        while self.processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert self.processes() == []
        assert not (self.instance / "redis.sock").exists()

    def kill_all(self):
        """Cleanup after a failed test: nothing of this session may survive it."""
        for p in psutil.process_iter(["pid"]):
            try:
                if os.getsid(p.pid) == self.proc.pid:
                    p.kill()
            except (ProcessLookupError, PermissionError, psutil.Error):
                pass
        self.proc.wait()


@pytest.fixture
def runs():
    started = []
    yield lambda instance, log: started.append(Run(instance, log)) or started[-1]
    for run in started:
        if run.proc.poll() is None or run.processes():
            run.kill_all()


class Browser:
    """A cookie-keeping HTTP client for the running desk."""

    def __init__(self, base):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path):
        with self.opener.open(self.base + path, timeout=30) as resp:
            return resp.status, resp.geturl(), resp.read().decode()

    def post(self, path, data):
        body = urllib.parse.urlencode(data).encode()
        with self.opener.open(self.base + path, data=body, timeout=30) as resp:
            return resp.status, resp.geturl(), resp.read().decode()

    def login(self, email, password):
        status, _url, html = self.get("/login")
        assert status == 200
        return self.post("/login", {"csrf_token": extract_csrf(html), "email": email, "password": password})


def query(instance, sql, *args):
    conn = sqlite3.connect(instance / "helpdesk.db", timeout=30)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def eventually(check, timeout=180, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def ticket_count(instance):
    return query(instance, "SELECT count(*) FROM tickets")[0][0]


def test_make_run_serves_the_desk_runs_jobs_and_stops_cleanly(runs, tmp_path):
    instance = tmp_path / "instance"

    # ---- first run: migrate, seed, serve
    first = runs(instance, tmp_path / "run1.log")
    first.wait_for_output(f"Helpdesk is running at {first.url}/")
    out = first.output()
    assert "admin@example.com" in out and "demo-password-123" in out
    assert '"tickets": 60' in out
    procs = first.processes()
    assert sum("redis-server" in p for p in procs) == 1
    assert sum("rq.cli worker" in p for p in procs) >= 1
    assert sum("rq.cli cron" in p for p in procs) == 1
    assert any("gunicorn" in p for p in procs)
    assert (instance / "redis.sock").exists() and (instance / "secret_key").exists()

    browser = Browser(first.url)
    status, url, html = browser.login("admin@example.com", "demo-password-123")
    assert status == 200 and not url.endswith("/login")
    status, _url, html = browser.get("/")
    assert status == 200 and "Website tidak bisa dibuka sejak pagi" in html

    # ---- a job end to end: a phone ticket created in the web app is notified by the worker
    status, _url, html = browser.get("/calls/new")
    queue_id = re.search(r'<option value="(\d+)">Technical Support</option>', html).group(1)
    status, url, html = browser.post("/calls/new", {
        "csrf_token": extract_csrf(html), "channel": "phone", "queue_id": queue_id, "priority": "high",
        "customer_email": "joko.santoso@example.net", "customer_name": "Joko Santoso",
        "subject": "Telepon: website toko offline", "body": "Pelanggan menelepon, toko online tidak bisa dibuka."})
    assert status == 200 and re.search(r"/tickets/\d+$", url)
    [(ticket_id,)] = query(instance, "SELECT id FROM tickets WHERE subject = ?", "Telepon: website toko offline")
    eventually(lambda: query(instance, "SELECT 1 FROM outbound_mails WHERE ticket_id = ? AND kind = 'notify_new' "
                                       "AND status = 'sent'", ticket_id),
               what="the worker to send the new ticket's notification")
    eventually(lambda: query(instance, "SELECT count(*) FROM outbox_jobs WHERE done_at IS NULL")[0][0] == 0,
               what="the worker to run every seeded job")

    # ---- rq cron ran the auto-close sweep at start-up: no ticket stays resolved past 7 days
    week_ago = (datetime.now(timezone.utc) - timedelta(days=7, minutes=5)).replace(tzinfo=None).isoformat(" ")
    eventually(lambda: query(instance, "SELECT count(*) FROM tickets WHERE status = 'resolved' AND resolved_at < ?",
                             week_ago)[0][0] == 0, what="rq cron's auto-close")
    assert query(instance, "SELECT count(*) FROM audit_events WHERE note LIKE 'auto-closed%'")[0][0] > 0
    tickets = ticket_count(instance)
    assert tickets == 61  # the 60 seeded and the one made in the browser

    # ---- Ctrl-C: the children stop, then the embedded Redis; nothing is left
    first.proc.send_signal(signal.SIGINT)
    assert first.wait_exit() == 0
    assert "Stopped." in first.output()
    first.assert_nothing_left()

    # ---- second run on the same instance/: same data, no error; a concurrent one is refused
    second = runs(instance, tmp_path / "run2.log")
    second.wait_for_output(f"Helpdesk is running at {second.url}/")
    assert '"tickets": 0' in second.output() and "Traceback" not in second.output()
    assert ticket_count(instance) == tickets
    assert Browser(second.url).login("admin@example.com", "demo-password-123")[0] == 200

    third = runs(instance, tmp_path / "run3.log")
    assert third.wait_exit(30) == 1
    assert "is already running on" in third.output()
    assert third.processes() == []
    assert (instance / "redis.sock").exists()

    second.proc.send_signal(signal.SIGTERM)
    assert second.wait_exit() == 0
    second.assert_nothing_left()
    assert ticket_count(instance) == tickets


def test_make_run_stops_everything_when_a_child_dies(runs, tmp_path):
    instance = tmp_path / "instance"
    run = runs(instance, tmp_path / "run.log")
    run.wait_for_output(f"Helpdesk is running at {run.url}/")
    os.kill(run.child_pid("rq.cli worker"), signal.SIGKILL)
    assert run.wait_exit() == 1
    assert "The rq worker process" in run.output() and "exited unexpectedly" in run.output()
    run.assert_nothing_left()
