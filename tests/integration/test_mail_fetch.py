"""Fetching from a real, private Dovecot: UID state, \\Seen or move after the commit, UIDVALIDITY
rescans, backoff of a failing mailbox, the environment mailbox and IDLE."""
import json
import threading
import time

from sqlalchemy import func, select

from helpdesk.extensions import db
from helpdesk.mail import crypto, fetch
from helpdesk.mail.models import InboundMessage, Mailbox, MailboxFolderState
from helpdesk.tickets.models import Message, Ticket
from tests.dovecot import dovecot, imap_user, imap_user_factory  # noqa: F401
from tests.mailgen import mail


def make_mailbox(app, user, queue, **kw):
    values = dict(name=kw.pop("name", "support"), host=user.host, port=user.port, security="plain",
                  username=user.username,
                  password_encrypted=crypto.encrypt(user.password, app.config["SECRET_KEY"]),
                  folder="INBOX", queue_id=queue.id, from_address="support@helpdesk.test")
    values.update(kw)
    mb = Mailbox(**values)
    db.session.add(mb)
    db.session.commit()
    return mb


def run_fetch(app, *args):
    result = app.test_cli_runner().invoke(args=["mail", "fetch", "--once", *args])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.strip().splitlines()]
    assert lines[-1]["summary"] is True
    return lines[:-1], lines[-1]


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_fetch_once_makes_tickets_and_flags_seen_only_after_the_commit(app, queue, imap_user):
    mb = make_mailbox(app, imap_user, queue)
    imap_user.append("INBOX", mail(subject="Satu", message_id="<f1@x>"))
    imap_user.append("INBOX", mail(subject="Re: Satu", message_id="<f2@x>", in_reply_to="<f1@x>"))
    # a person already opened this one in another mail client: it is fetched all the same
    imap_user.append("INBOX", mail(subject="Dua", message_id="<f3@x>"), flags=[r"\Seen"])
    lines, summary = run_fetch(app)
    assert [line["action"] for line in lines] == ["created", "appended", "created"]
    assert (summary["created"], summary["appended"], summary["messages"]) == (2, 1, 3)
    assert all(r"\Seen" in f for f in imap_user.flags("INBOX").values())
    rows = db.session.execute(select(InboundMessage).order_by(InboundMessage.id)).scalars().all()
    assert all(r.server_done_at is not None and r.processed_at <= r.server_done_at for r in rows)
    state = db.session.get(MailboxFolderState, (mb.id, "INBOX"))
    assert state.last_uid == max(imap_user.uids("INBOX"))
    # nothing new: nothing fetched again; a new mail: only that one
    assert run_fetch(app)[1]["messages"] == 0
    imap_user.append("INBOX", mail(subject="Tiga", message_id="<f4@x>"))
    lines, _ = run_fetch(app)
    assert [line["subject"] for line in lines] == ["Tiga"]
    assert count(Ticket) == 3


def test_move_to_the_processed_folder_and_quarantine_folder(app, queue, imap_user):
    make_mailbox(app, imap_user, queue, after_fetch="move", processed_folder="Processed",
                 quarantine_folder="Quarantine")
    imap_user.append("INBOX", mail(subject="OK", message_id="<m1@x>"))
    imap_user.append("INBOX", b"\x00\x01 this is not an email at all\r\n")
    lines, summary = run_fetch(app)
    assert sorted(line["action"] for line in lines) == ["created", "quarantined"]
    assert imap_user.uids("INBOX") == []
    assert len(imap_user.uids("Processed")) == 1 and len(imap_user.uids("Quarantine")) == 1


def test_a_changed_uidvalidity_rescans_without_duplicates(app, queue, imap_user):
    make_mailbox(app, imap_user, queue, folder="Support")
    raws = [mail(subject=f"Pesan {i}", message_id=f"<uv{i}@x>") for i in range(3)]
    for raw in raws:
        imap_user.append("Support", raw)
    assert run_fetch(app)[1]["created"] == 3
    # the folder is recreated (a server migration): new UIDVALIDITY, same messages, plus a new one
    conn = imap_user.connect()
    conn.delete("Support")
    conn.logout()
    time.sleep(1.1)  # Dovecot derives UIDVALIDITY from the clock
    for raw in raws + [mail(subject="Baru", message_id="<uv9@x>")]:
        imap_user.append("Support", raw)
    lines, summary = run_fetch(app)
    assert (summary["duplicate"], summary["created"]) == (3, 1)
    assert count(Ticket) == 4


def test_a_failing_mailbox_backs_off_and_the_others_still_fetch(app, queue, imap_user_factory):
    good, bad = imap_user_factory(), imap_user_factory()
    make_mailbox(app, good, queue, name="good")
    broken = make_mailbox(app, bad, queue, name="bad",
                          password_encrypted=crypto.encrypt("wrong", app.config["SECRET_KEY"]))
    good.append("INBOX", mail(subject="Masuk", message_id="<g1@x>"))
    app.config["MAILBOX_BACKOFF_AFTER"] = 2
    lines, summary = run_fetch(app)
    assert [line["action"] for line in lines] == ["created"]
    assert summary["mailbox_errors"][0]["mailbox"] == "bad"
    run_fetch(app)
    db.session.refresh(broken)
    assert broken.consecutive_failures == 2 and broken.backoff_until is not None and broken.last_error
    # backing off: the poll leaves it alone
    assert [c.name for c in fetch.due_mailboxes()] == ["good"]


def test_the_environment_mailbox_is_used_when_none_is_configured(app, queue, imap_user):
    app.config.update(IMAP_HOST=imap_user.host, IMAP_PORT=imap_user.port, IMAP_USER=imap_user.username,
                      IMAP_PASSWORD=imap_user.password, IMAP_SSL="false", IMAP_QUEUE="customer-support")
    imap_user.append("INBOX", mail(subject="Dari env", message_id="<e1@x>"))
    imap_user.append("INBOX", mail(subject="Dari env 2", message_id="<e2@x>"))
    lines, _ = run_fetch(app)
    assert [line["action"] for line in lines] == ["created", "created"]
    assert run_fetch(app)[1]["messages"] == 0  # its state is kept (in the inbound log)


def test_idle_turns_a_new_mail_into_a_ticket_within_seconds(app, queue, imap_user):
    from workers.mail_idle import run_idle

    make_mailbox(app, imap_user, queue)
    stop = threading.Event()
    worker = threading.Thread(target=run_idle, kwargs={"app": app, "stop": stop}, daemon=True)
    worker.start()
    try:
        time.sleep(1.5)  # the worker connects and enters IDLE
        sent = time.monotonic()
        imap_user.append("INBOX", mail(subject="Lewat IDLE", message_id="<idle1@x>"))
        ticket = None
        while time.monotonic() - sent < 10 and ticket is None:
            time.sleep(0.2)
            db.session.rollback()
            ticket = db.session.execute(select(Ticket).where(Ticket.subject == "Lewat IDLE")).scalar_one_or_none()
        elapsed = time.monotonic() - sent
    finally:
        stop.set()
        worker.join(timeout=15)
    assert ticket is not None and elapsed < 5, elapsed
    assert db.session.execute(select(func.count()).select_from(Message)).scalar() == 1


def test_idle_catches_mail_that_arrives_while_it_is_draining(app, queue, imap_user):
    """A burst: later mails land while the worker is busy with the first (not idling then)."""
    from workers.mail_idle import run_idle

    make_mailbox(app, imap_user, queue)
    stop = threading.Event()
    worker = threading.Thread(target=run_idle, kwargs={"app": app, "stop": stop}, daemon=True)
    worker.start()
    try:
        time.sleep(1.5)
        for i in range(12):
            imap_user.append("INBOX", mail(subject=f"Burst {i}", message_id=f"<burst{i}@x>"))
            time.sleep(0.05)
        sent = time.monotonic()
        n = 0
        while time.monotonic() - sent < 8 and n < 12:
            time.sleep(0.2)
            db.session.rollback()
            n = db.session.scalar(select(func.count()).select_from(Ticket))
    finally:
        stop.set()
        worker.join(timeout=15)
    assert n == 12


def test_batches_left_unstored_leave_no_temporary_raw_files(app, queue, imap_user, monkeypatch, tmp_path):
    """The parse pool writes each fetched message under a temporary name; a batch that is not
    stored (here the fetch fails while the next batch is already parsed) has those files removed,
    and what was stored is in place. The next fetch then takes every message, once."""
    from pathlib import Path

    from helpdesk.mail import services

    app.config["RAW_MAIL_DIR"] = str(tmp_path / "raw")  # its own (the session's may hold a killed run's files)
    make_mailbox(app, imap_user, queue)
    for n in range(40):
        imap_user.append("INBOX", mail(subject=f"Pesan {n}", message_id=f"<t{n}@x>", body=f"isi {n} " * 50))
    app.config.update(MAIL_FETCH_BATCH=16, MAIL_PARSE_WORKERS=2)
    real, calls = services.store_batch, []

    def fails_the_second_time(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk trouble")
        return real(*args, **kw)

    monkeypatch.setattr(services, "store_batch", fails_the_second_time)
    _lines, summary = run_fetch(app)
    assert "disk trouble" in summary["mailbox_errors"][0]["error"]
    raw = Path(app.config["RAW_MAIL_DIR"])
    assert not list(raw.rglob(".tmp-*"))
    stored = db.session.execute(select(InboundMessage.raw_sha256)).scalars().all()
    assert stored and all((raw / s[:2] / s[2:4] / s).is_file() for s in stored)
    monkeypatch.setattr(services, "store_batch", real)
    lines, summary = run_fetch(app)
    assert not summary["mailbox_errors"]
    assert count(Ticket) == 40 and not list(raw.rglob(".tmp-*"))


def test_the_same_raw_mail_written_again_before_the_first_is_in_place_gets_its_own_file(app, tmp_path):
    """A parse worker can write the same bytes (the next batch) while the fetcher is still putting
    the first copy in place: each write has its own temporary file, so neither is cut short."""
    from helpdesk.mail import rawstore

    base = str(tmp_path / "raw")
    data = b"From: a@b.c\r\nSubject: sama\r\n\r\n" + b"x" * 200_000
    first = rawstore.write_pending([data], base)
    second = rawstore.write_pending([data], base)
    assert first[0][1] != second[0][1] and first[0][0] == second[0][0]
    rawstore.put_in_place(first, base)
    rawstore.put_in_place(second, base)
    assert rawstore.load(first[0][0], base) == data
    assert not list((tmp_path / "raw").rglob(".tmp-*"))
