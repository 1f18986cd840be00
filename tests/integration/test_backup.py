"""`flask backup PATH` while the app writes, and `flask restore PATH` for the embedded deployment.

The SQLite tests use a private, migrated SQLite database, so they run whatever DATABASE_URL says;
the last test backs up the configured database (SQLite or PostgreSQL) and checks what it reports.
"""
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from helpdesk.extensions import db
from helpdesk.runlock import RunLock
from helpdesk.tickets import services
from helpdesk.tickets.models import Attachment, Ticket
from tests.factories import Factories

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory):
    """A SQLite database of this module, migrated from empty with `flask db upgrade`."""
    path = tmp_path_factory.mktemp("backup-src") / "helpdesk.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}", "HELPDESK_ENV": "dev", "FLASK_APP": "wsgi.py",
           "HELPDESK_INSTANCE": str(path.parent)}
    proc = subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return path


def stores(base):
    return {"ATTACHMENT_DIR": str(base / "attachments"), "RAW_MAIL_DIR": str(base / "raw-mail")}


@pytest.fixture
def sqlite_app(app_factory, sqlite_db, tmp_path):
    return app_factory(SQLALCHEMY_DATABASE_URI=f"sqlite:///{sqlite_db}", INSTANCE_PATH=str(tmp_path / "instance"),
                       **stores(tmp_path / "instance"))


def seed(app, tickets=5):
    """Tickets with one attachment each, and two raw mails. Returns (queue id, customer id)."""
    with app.app_context():
        make = Factories()
        q, cust = make.queue(), make.customer()
        for i in range(tickets):
            services.create_ticket(customer_id=cust.id, subject=f"Invoice {i}", body_text="See attached.",
                                   channel="web", queue_id=q.id,
                                   files=[(f"invoice-{i}.pdf", "application/pdf", b"%%PDF-1.4 invoice %d" % i)])
        db.session.commit()
        ids = q.id, cust.id
        db.session.remove()
    raw = Path(app.config["RAW_MAIL_DIR"]) / "2026" / "11"
    raw.mkdir(parents=True, exist_ok=True)
    for i in range(2):
        (raw / f"{i}.eml").write_bytes(b"From: budi@example.net\r\nSubject: test %d\r\n\r\nHalo\r\n" % i)
    return ids


def run_cli(app, *args):
    result = app.test_cli_runner().invoke(args=list(args))
    return result


def check_sums(dest):
    """Every line of SHA256SUMS matches its file (as `sha256sum -c` would)."""
    lines = (dest / "SHA256SUMS").read_text().splitlines()
    for line in lines:
        digest, rel = line.split("  ", 1)
        assert hashlib.sha256((dest / rel).read_bytes()).hexdigest() == digest, rel
    return {line.split("  ", 1)[1] for line in lines}


def test_backup_is_consistent_while_another_connection_writes(sqlite_app, tmp_path):
    q_id, cust_id = seed(sqlite_app)
    stop, written, errors = threading.Event(), [], []

    def writer():
        with sqlite_app.app_context():
            try:
                while not stop.is_set():
                    t = services.create_ticket(customer_id=cust_id, subject="written during the backup",
                                               body_text="Masih error.", channel="email", queue_id=q_id)
                    db.session.commit()
                    written.append(t.id)
            except Exception as exc:  # noqa: BLE001 — reported by the main thread
                errors.append(exc)
            finally:
                db.session.remove()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 3 and not errors:
            time.sleep(0.01)
        dest = tmp_path / "backup"
        result = run_cli(sqlite_app, "backup", str(dest))
        at_end_of_backup = len(written)
        deadline = time.monotonic() + 10
        while len(written) < at_end_of_backup + 3 and not errors and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert result.exit_code == 0, result.output
    with sqlite_app.app_context():
        live = db.session.scalar(select(func.count()).select_from(Ticket))
        attachments = db.session.execute(select(Attachment.sha256)).scalars().all()

    manifest = json.loads((dest / "manifest.json").read_text())
    conn = sqlite3.connect(dest / "helpdesk.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        copied = conn.execute("SELECT count(*) FROM tickets").fetchone()[0]
        # A snapshot, not a torn copy: every ticket has its first message and its message count.
        assert conn.execute("SELECT count(*) FROM tickets t WHERE NOT EXISTS "
                            "(SELECT 1 FROM messages m WHERE m.ticket_id = t.id)").fetchone()[0] == 0
        assert conn.execute("SELECT sum(message_count) FROM tickets").fetchone()[0] == \
            conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        backed_up_attachments = conn.execute("SELECT sha256 FROM attachments").fetchall()
    finally:
        conn.close()
    assert 5 + 3 <= copied < live  # writes went on before, during and after the backup
    assert manifest["database"]["counts"]["tickets"] == copied
    assert manifest["database"]["sha256"] == hashlib.sha256((dest / "helpdesk.db").read_bytes()).hexdigest()
    assert f"database: helpdesk.db" in result.output and f'"tickets": {copied}' in result.output

    assert len(backed_up_attachments) == len(attachments) == 5
    for (digest,) in backed_up_attachments:
        copy = dest / "attachments" / digest[:2] / digest[2:4] / digest
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == digest
    assert manifest["attachments"]["files"] == 5 and manifest["attachments"]["mismatched"] == []
    assert manifest["raw_mail"]["files"] == 2
    assert (dest / "raw-mail" / "2026" / "11" / "1.eml").read_bytes().startswith(b"From: budi@example.net")
    assert len(check_sums(dest)) == 1 + 5 + 2

    # A second backup into the same directory copies only what is new.
    again = run_cli(sqlite_app, "backup", str(dest))
    assert again.exit_code == 0 and "attachments: 5 files" in again.output and "0 copied" in again.output


def test_restore_puts_a_backup_back_into_a_stopped_deployment(sqlite_app, app_factory, tmp_path):
    seed(sqlite_app, tickets=3)
    dest = tmp_path / "backup"
    assert run_cli(sqlite_app, "backup", str(dest)).exit_code == 0

    target = tmp_path / "restored"
    restored_app = app_factory(SQLALCHEMY_DATABASE_URI=f"sqlite:///{target}/helpdesk.db", INSTANCE_PATH=str(target),
                               **stores(target))
    lock = RunLock(target)
    assert lock.acquire()  # `make run` is running on that instance
    try:
        refused = run_cli(restored_app, "restore", "--yes", str(dest))
        assert refused.exit_code != 0 and "The app is running" in refused.output
    finally:
        lock.release()

    result = run_cli(restored_app, "restore", "--yes", str(dest))
    assert result.exit_code == 0, result.output
    with restored_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Ticket)) == 3
        for digest in db.session.execute(select(Attachment.sha256)).scalars():
            assert (target / "attachments" / digest[:2] / digest[2:4] / digest).exists()
        db.session.remove()
        db.engine.dispose()
    assert (target / "raw-mail" / "2026" / "11" / "0.eml").exists()

    again = run_cli(restored_app, "restore", "--yes", str(dest))
    assert again.exit_code == 0 and "previous database kept as" in again.output
    assert list(target.glob("helpdesk.db.before-restore-*"))

    (dest / "helpdesk.db").write_bytes(b"damaged")
    damaged = run_cli(restored_app, "restore", "--yes", str(dest))
    assert damaged.exit_code != 0 and "damaged" in damaged.output


def test_backup_of_the_configured_database(app_factory, tmp_path):
    app = app_factory(**stores(tmp_path / "stores"))
    seed(app, tickets=2)
    dest = tmp_path / "backup"
    result = run_cli(app, "backup", str(dest))
    assert result.exit_code == 0, result.output
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["attachments"]["files"] == 2 and manifest["raw_mail"]["files"] == 2
    with app.app_context():
        dialect = db.engine.dialect.name
    if dialect == "postgresql":
        assert "is NOT copied by this command. Use pg_dump" in result.output
        assert "pg_dump --format=custom" in result.output
        assert manifest["database"]["file"] is None and manifest["database"]["counts_live"]["tickets"] == 2
        assert not (dest / "helpdesk.db").exists()
        refused = run_cli(app, "restore", "--yes", str(dest))
        assert refused.exit_code != 0 and "pg_restore" in refused.output
    else:
        assert manifest["database"]["counts"]["tickets"] == 2
    assert len(check_sums(dest)) == (0 if dialect == "postgresql" else 1) + 2 + 2

    inside = run_cli(app, "backup", str(tmp_path / "stores" / "attachments" / "backup"))
    assert inside.exit_code != 0 and "inside the store" in inside.output
