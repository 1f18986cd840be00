"""Crash test: `flask mail fetch --once` in a subprocess, killed with SIGKILL at each step of the
pipeline and at random points, then restarted. Every message ends as exactly one ticket, reply or
ignored entry: never zero, never two."""
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from helpdesk.extensions import db
from helpdesk.mail.models import InboundMessage, Mailbox
from helpdesk.tickets.models import Message, Ticket
from tests.dovecot import dovecot, imap_user  # noqa: F401
from tests.mailgen import dsn, mail

ROOT = Path(__file__).resolve().parents[2]
STEPS = ["fetched", "stored_raw", "mid_ingest", "before_commit", "committed", "before_flag"]
N_NEW, N_REPLIES, N_AUTO, N_BOUNCE = 260, 90, 25, 25


def corpus():
    """(raw, message_id, expected kind) for a few hundred mails: new, replies, auto-replies, bounces."""
    rng = random.Random(4)
    out = []
    for i in range(N_NEW):
        out.append((mail(frm=f"Pelanggan {i} <p{i}@pelanggan.co.id>", subject=f"Masalah hosting {i}",
                         message_id=f"<new{i}@pelanggan.co.id>", body=f"Pesan nomor {i}. " * 20), f"new{i}@pelanggan.co.id"))
    for j in range(N_REPLIES):
        i = rng.randrange(N_NEW)
        out.append((mail(frm=f"p{i}@pelanggan.co.id", subject=f"Re: Masalah hosting {i}",
                         message_id=f"<rep{j}@pelanggan.co.id>", in_reply_to=f"<new{i}@pelanggan.co.id>",
                         body=f"Balasan {j}"), f"rep{j}@pelanggan.co.id"))
    for k in range(N_AUTO):
        out.append((mail(frm=f"p{k}@pelanggan.co.id", subject="Out of office", message_id=f"<ooo{k}@x>",
                         headers=[("Auto-Submitted", "auto-replied")]), f"ooo{k}@x"))
    for b in range(N_BOUNCE):
        out.append((dsn(original_message_id=f"unknown{b}@elsewhere", recipient=f"x{b}@pelanggan.co.id"), None))
    return out


@pytest.fixture
def crash_env(app, make, database_url, redis_url, tmp_root, imap_user, tmp_path):
    q = make.queue(slug="customer-support", name="Customer Support")
    db.session.add(Mailbox(name="support", host=imap_user.host, port=imap_user.port, security="plain",
                           username=imap_user.username, password_env="CRASH_TEST_IMAP_PASSWORD",
                           folder="INBOX", queue_id=q.id, from_address="support@helpdesk.test"))
    db.session.commit()
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "HELPDESK_ENV": "dev",
           "FLASK_APP": "wsgi.py", "HELPDESK_INSTANCE": str(tmp_root / "instance"),
           "RAW_MAIL_DIR": app.config["RAW_MAIL_DIR"], "ATTACHMENT_DIR": app.config["ATTACHMENT_DIR"],
           "SECRET_KEY": app.config["SECRET_KEY"], "MAIL_DEFAULT_SENDER": "support@helpdesk.test",
           "CRASH_TEST_IMAP_PASSWORD": imap_user.password, "MAIL_FETCH_BATCH": "20",
           "MAIL_PARSE_WORKERS": "2", "HELPDESK_CRASH_LOG": str(tmp_path / "steps.log")}
    env.pop("HELPDESK_CRASH_AT", None)
    return env


def fetch_once(env, crash_at=None):
    env = dict(env)
    if crash_at:
        env["HELPDESK_CRASH_AT"] = crash_at
    Path(env["HELPDESK_CRASH_LOG"]).unlink(missing_ok=True)
    proc = subprocess.run([sys.executable, "-m", "flask", "mail", "fetch", "--once"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    log = Path(env["HELPDESK_CRASH_LOG"]).read_text().split() if Path(env["HELPDESK_CRASH_LOG"]).exists() else []
    return proc, log


def test_kill_at_every_step_and_at_random_then_restart_ends_with_each_message_once(app, crash_env, imap_user):
    messages = corpus()
    imap_user.append_many("INBOX", [raw for raw, _mid in messages])

    for step in STEPS:  # deterministic: the first time each step is reached
        proc, log = fetch_once(crash_env, f"{step}:1")
        assert proc.returncode == -signal.SIGKILL, (step, proc.returncode, proc.stderr[-2000:])
        assert log and log[-1] == step, (step, log[-5:])
    rng = random.Random(11)
    for _ in range(4):  # random points
        step, nth = rng.choice(STEPS), rng.randint(1, 3)
        proc, log = fetch_once(crash_env, f"{step}:{nth}")
        assert proc.returncode in (0, -signal.SIGKILL), proc.stderr[-2000:]
    proc, _ = fetch_once(crash_env)  # the restart that finishes the job
    assert proc.returncode == 0, proc.stderr[-2000:]

    db.session.rollback()
    rows = db.session.execute(select(InboundMessage.message_id, InboundMessage.result)).all()
    final = Counter(result for _mid, result in rows if result != "duplicate")
    assert final["pending"] == 0 and final["quarantined"] == 0
    # each message ended exactly once as created, appended or ignored
    assert final["created"] + final["appended"] + final["ignored"] == len(messages)
    by_mid = Counter(mid for mid, result in rows if result in ("created", "appended", "ignored") and mid)
    assert max(by_mid.values()) == 1
    assert final["created"] == N_NEW and final["appended"] == N_REPLIES and final["ignored"] == N_AUTO + N_BOUNCE
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == N_NEW
    customer_messages = db.session.execute(
        select(Message.email_message_id).where(Message.author_customer_id.isnot(None))).scalars().all()
    assert len(customer_messages) == N_NEW + N_REPLIES == len(set(customer_messages))
    # and everything was flagged on the server, after the commit
    assert all(r"\Seen" in f for f in imap_user.flags("INBOX").values())


def test_concurrent_fetchers_on_one_mailbox_process_each_message_once(app, crash_env, imap_user):
    """Two `flask mail fetch --once` at the same time (two machines, or IDLE and the poll): the
    database's unique keys decide who stores and who processes each message."""
    messages = corpus()
    imap_user.append_many("INBOX", [raw for raw, _mid in messages])
    env = dict(crash_env, MAIL_FETCH_BATCH="25")
    procs = [subprocess.Popen([sys.executable, "-m", "flask", "mail", "fetch", "--once"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _out, err in results]
    db.session.rollback()
    rows = db.session.execute(select(InboundMessage.message_id, InboundMessage.result)).all()
    final = Counter(result for _mid, result in rows)
    assert final["pending"] == 0 and final["quarantined"] == 0 and final["duplicate"] == 0
    assert len(rows) == len(messages)  # each server message stored once, whoever fetched it
    assert (final["created"], final["appended"], final["ignored"]) == (N_NEW, N_REPLIES, N_AUTO + N_BOUNCE)
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == N_NEW
