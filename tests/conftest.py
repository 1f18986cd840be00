"""Test fixtures: a real database (SQLite by default, PostgreSQL with DATABASE_URL), a real Redis
(embedded when REDIS_URL is unset), an app per test, factories, and an RQ burst worker.

With HELPDESK_REQUIRE_SERVICES=1 (set by .ci/run) a skipped test fails the run instead.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import TestConfig  # noqa: E402
from helpdesk import create_app  # noqa: E402
from helpdesk.embedded_redis import EmbeddedRedis  # noqa: E402
from helpdesk.extensions import db  # noqa: E402

pytest_plugins = ["tests.require_services", "pytester"]


@pytest.fixture(autouse=True)
def _leave_the_garbage_collector_alone(monkeypatch):
    """`flask mail fetch` and `import` settle the collector for their own process (gc.freeze and
    thresholds: helpdesk.mail.cli.settle_gc). Run in-process by a test, they would do it to the
    shared pytest process for every test after it: here they do nothing. (Tests of settle_gc patch
    these themselves; a subprocess is unaffected.)"""
    import gc

    monkeypatch.setattr(gc, "freeze", lambda: None)
    monkeypatch.setattr(gc, "set_threshold", lambda *threshold: None)


def pytest_configure(config):
    config.addinivalue_line("markers", "postgres: needs PostgreSQL (DATABASE_URL)")
    config.addinivalue_line("markers", "browser: needs Chromium and Playwright")
    config.addinivalue_line("markers", "slow: large data sets")


# ---------------------------------------------------------------- servers

def _database_url(tmp_root):
    url = os.environ.get("DATABASE_URL")
    if url:
        from config import _normalise_db_url

        return _normalise_db_url(url)
    return f"sqlite:///{tmp_root}/test.db"


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory):
    return tmp_path_factory.mktemp("helpdesk")


@pytest.fixture(scope="session")
def redis_url(tmp_root):
    """The shared test Redis: REDIS_URL (database 15), else an embedded server for this run."""
    url = os.environ.get("REDIS_URL")
    if url:
        url = re.sub(r"/\d+$", "", url.rstrip("/")) + "/15"
        yield url
        return
    server = EmbeddedRedis(tmp_root / "redis", persist=False).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def database_url(tmp_root):
    """A database migrated from empty with `flask db upgrade` (the real migrations)."""
    url = _database_url(tmp_root)
    if url.startswith("postgresql"):
        from sqlalchemy import create_engine

        eng = create_engine(url)
        with eng.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        eng.dispose()
    env = {**os.environ, "DATABASE_URL": url, "HELPDESK_ENV": "dev", "FLASK_APP": "wsgi.py",
           "HELPDESK_INSTANCE": str(tmp_root / "instance")}
    proc = subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return url


def make_config(database_url, redis_url, tmp_root, **overrides):
    """TestConfig pointing at the test servers; CSRF off unless asked for."""
    base = dict(SQLALCHEMY_DATABASE_URI=database_url, REDIS_URL=redis_url,
                INSTANCE_PATH=str(tmp_root / "instance"), ATTACHMENT_DIR=str(tmp_root / "attachments"),
                RAW_MAIL_DIR=str(tmp_root / "raw-mail"),
                WTF_CSRF_ENABLED=False)
    base.update(overrides)
    return TestConfig(**base)


def _truncate(app):
    with app.app_context():
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE"))
            else:
                for name in tables:
                    conn.execute(text(f'DELETE FROM "{name}"'))
                conn.execute(text("DELETE FROM ticket_fts"))
                conn.execute(text("DELETE FROM sqlite_sequence")) if conn.execute(
                    text("SELECT 1 FROM sqlite_master WHERE name='sqlite_sequence'")).first() else None
            conn.execute(text("INSERT INTO counters (name, value) VALUES ('ticket', 1000)"))
        # As after `flask db upgrade`: the office calendar and the default SLA policy.
        from helpdesk.sla.services import ensure_default

        ensure_default()
        db.session.commit()
        db.session.remove()


class EnglishBrowserClient(FlaskClient):
    """A test client whose browser asks for English (Accept-Language: en), so tests can assert the
    English texts; the app itself defaults to Indonesian (tests/integration/test_i18n.py)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.environ_base.setdefault("HTTP_ACCEPT_LANGUAGE", "en")


@pytest.fixture
def app_factory(database_url, redis_url, tmp_root):
    """Build apps against the test servers; every table is emptied after the test."""
    apps = []

    def factory(**overrides):
        app = create_app(make_config(database_url, redis_url, tmp_root, **overrides))
        app.test_client_class = EnglishBrowserClient
        apps.append(app)
        return app

    yield factory
    if apps:
        _truncate(apps[0])
        import redis as _redis

        _redis.Redis.from_url(redis_url).flushdb()
        for a in apps:
            with a.app_context():
                db.engine.dispose()


@pytest.fixture
def app(app_factory):
    app = app_factory()
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def csrf_app(app_factory):
    """An app with CSRF protection on, as in production."""
    app = app_factory(WTF_CSRF_ENABLED=True)
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# ---------------------------------------------------------------- helpers

class AuthActions:
    """Log agents in and out of a test client."""

    def __init__(self, client):
        self.client = client

    def login(self, user_or_email, password="correct-horse-battery"):
        email = getattr(user_or_email, "email", user_or_email)
        resp = self.client.post("/login", data={"email": email, "password": password})
        assert resp.status_code == 302, resp.data[:500]
        return resp

    def logout(self):
        return self.client.post("/logout")


@pytest.fixture
def auth(client):
    return AuthActions(client)


def work_jobs(with_scheduler=False):
    """Run every queued RQ job of the current app in this process with a SimpleWorker in burst mode."""
    from rq import SimpleWorker

    from helpdesk.jobs import QUEUES, get_queue, get_redis

    worker = SimpleWorker([get_queue(q) for q in QUEUES], connection=get_redis())
    worker.work(burst=True, with_scheduler=with_scheduler)
    db.session.remove()


@pytest.fixture
def run_jobs(app):
    """work_jobs() as a fixture: `run_jobs()` runs every queued job."""
    return work_jobs


@pytest.fixture
def make(app):
    """Factories bound to the app's session (see tests/factories.py)."""
    from tests import factories

    return factories.Factories()


def extract_csrf(html):
    m = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or \
        re.search(r'name="csrf_token" value="([^"]+)"', html)
    return m.group(1) if m else None
