"""The inbound pipeline from raw bytes: tickets, replies, ignores, duplicates and quarantine."""
import json

from sqlalchemy import func, select

from helpdesk.customers.models import CustomerEmail
from helpdesk.extensions import db
from helpdesk.mail import services, tokens
from helpdesk.mail.models import InboundMessage, Mailbox, MailMessageId, SenderBlock
from helpdesk.tickets import services as ticket_services
from helpdesk.tickets.models import Attachment, AuditEvent, Message, Ticket
from tests.mailgen import dsn, mail


def ingest(raw, mailbox_id=None, source="test"):
    """One message through the production path (store raw, commit, process)."""
    rid = services.store_file(raw, source, mailbox_id)
    db.session.commit()
    [outcome] = services.process_pending(ids=[rid])
    return outcome


def tickets_count():
    return db.session.scalar(select(func.count()).select_from(Ticket))


def test_a_new_mail_becomes_a_ticket_with_its_customer_cc_and_reply_to(app, queue):
    raw = mail(cc="Rina <rina@pelanggan.co.id>, support@helpdesk.test", reply_to="tagihan@pelanggan.co.id",
               subject="Website tidak bisa dibuka")
    out = ingest(raw)
    assert out.action == "created" and out.rule == "new"
    t = db.session.execute(select(Ticket).where(Ticket.number == out.ticket)).scalar_one()
    assert t.channel == "email" and t.subject == "Website tidak bisa dibuka" and t.queue_id == queue.id
    assert t.customer.primary_email == "budi@pelanggan.co.id" and t.customer.name == "Budi Santoso"
    assert t.cc_addresses == ["rina@pelanggan.co.id"]  # our own address is not a Cc
    assert t.reply_to == "tagihan@pelanggan.co.id"
    msg = db.session.execute(select(Message).where(Message.ticket_id == t.id)).scalar_one()
    assert "tidak bisa dibuka" in msg.body_text and msg.thread_rule == "new" and msg.email_message_id
    row = db.session.get(InboundMessage, out.inbound_id)
    assert (row.result, row.rule, row.ticket_id, row.message_row_id) == ("created", "new", t.id, msg.id)
    assert row.from_addr == "budi@pelanggan.co.id" and row.processed_at is not None
    # the outcome is one JSON line in the documented format
    line = json.loads(out.as_json())
    assert set(line) == {"source", "message_id", "action", "ticket", "rule", "subject", "from", "attachments", "error"}


def test_replies_thread_by_in_reply_to_references_and_subject_tag(app, queue):
    first = ingest(mail(message_id="<first@pelanggan.co.id>"))
    t = db.session.execute(select(Ticket).where(Ticket.number == first.ticket)).scalar_one()
    # In-Reply-To the customer's own first message
    a = ingest(mail(subject="Re: Website down", in_reply_to="<first@pelanggan.co.id>", body="Masih error."))
    # only References, subject rewritten completely
    b = ingest(mail(subject="something else", references="<nothing@x> <first@pelanggan.co.id>", body="Halo?"))
    # only the ticket tag, after foreign prefixes
    c = ingest(mail(subject=f"AW: Balas: [#{t.number}] Website down", body="Sudah bisa, terima kasih."))
    assert [(o.action, o.rule, o.ticket) for o in (a, b, c)] == [
        ("appended", "in_reply_to", t.number), ("appended", "references", t.number),
        ("appended", "subject_tag", t.number)]
    assert tickets_count() == 1
    rules = db.session.execute(select(Message.thread_rule).where(Message.ticket_id == t.id).order_by(Message.id)
                               ).scalars().all()
    assert rules == ["new", "in_reply_to", "references", "subject_tag"]


def test_a_reply_to_our_own_outbound_message_id_threads_even_with_a_new_subject(app, queue, make):
    t = make.ticket(queue=queue, customer=make.customer(email="budi@pelanggan.co.id"))
    ours = tokens.make_message_id(t.id, app.config["SECRET_KEY"], "helpdesk.test")
    db.session.add(MailMessageId(message_id=ours, ticket_id=t.id, direction="out"))
    db.session.commit()
    out = ingest(mail(subject="pertanyaan lain", in_reply_to=f"<{ours}>"))
    assert (out.action, out.rule, out.ticket) == ("appended", "in_reply_to", t.number)
    # a signed token in References resolves the ticket even when the stored row is gone
    other = tokens.make_message_id(t.id, app.config["SECRET_KEY"], "helpdesk.test")
    out2 = ingest(mail(subject="lagi", references=f"<{other}>"))
    assert (out2.action, out2.ticket) == ("appended", t.number)


def test_a_subject_tag_from_a_stranger_makes_a_new_ticket_linked_to_the_old_one(app, queue, make):
    t = make.ticket(queue=queue, customer=make.customer(email="budi@pelanggan.co.id"))
    db.session.commit()
    out = ingest(mail(frm="orang.lain@contoh.id", subject=f"Re: [#{t.number}] Website down"))
    assert out.action == "created" and out.rule == "subject_tag_foreign"
    new = db.session.execute(select(Ticket).where(Ticket.number == out.ticket)).scalar_one()
    assert new.id != t.id and new.linked_ticket_id == t.id


def test_a_reply_to_a_closed_ticket_opens_a_linked_one_and_a_merged_ticket_forwards(app, queue, make):
    agent = make.user(roles=["admin"], queues=[queue])
    cust = make.customer(email="budi@pelanggan.co.id")
    closed = make.ticket(queue=queue, customer=cust, subject="Lama")
    ticket_services.change_status(closed.id, agent.id, "resolved")
    ticket_services.change_status(closed.id, agent.id, "closed")
    src = make.ticket(queue=queue, customer=cust, subject="Dobel")
    dst = make.ticket(queue=queue, customer=cust, subject="Utama")
    ticket_services.merge(src.id, dst.id, agent.id)
    db.session.commit()
    a = ingest(mail(subject=f"Re: [#{closed.number}] Lama"))
    b = ingest(mail(subject=f"Re: [#{src.number}] Dobel", body="ke tiket yang digabung"))
    linked = db.session.execute(select(Ticket).where(Ticket.number == a.ticket)).scalar_one()
    assert a.action == "created" and linked.linked_ticket_id == closed.id
    assert (b.action, b.ticket) == ("appended", dst.number)


def test_a_reply_from_a_cc_participant_is_appended_and_recorded(app, queue):
    first = ingest(mail(message_id="<m1@pelanggan.co.id>", cc="rina@pelanggan.co.id"))
    out = ingest(mail(frm="Rina <rina@pelanggan.co.id>", subject="Re: Website down",
                      in_reply_to="<m1@pelanggan.co.id>", body="Saya juga mengalami hal yang sama."))
    assert (out.action, out.ticket) == ("appended", first.ticket)
    msg = db.session.get(Message, db.session.get(InboundMessage, out.inbound_id).message_row_id)
    assert msg.author_customer.primary_email == "rina@pelanggan.co.id"


def test_quoted_text_is_stripped_for_display_and_the_original_kept(app, queue):
    ingest(mail(message_id="<q1@pelanggan.co.id>"))
    body = ("Sudah saya coba, masih error.\n\n"
            "Pada Sen, 23 Nov 2026 pukul 10.00 Helpdesk <support@helpdesk.test> menulis:\n"
            "> Mohon coba hapus cache browser.\n")
    out = ingest(mail(subject="Re: Website down", in_reply_to="<q1@pelanggan.co.id>", body=body))
    msg = db.session.get(Message, db.session.get(InboundMessage, out.inbound_id).message_row_id)
    assert msg.body_text.strip() == "Sudah saya coba, masih error."
    assert "hapus cache" in msg.original_text


def test_auto_replies_and_bounces_are_ignored_and_make_no_ticket(app, queue):
    outs = [
        ingest(mail(subject="Out of Office: Website down", headers=[("Auto-Submitted", "auto-replied")])),
        ingest(mail(subject="Balasan otomatis: sedang cuti")),
        ingest(dsn(original_message_id="unknown@elsewhere", recipient="x@pelanggan.co.id")),
    ]
    assert [(o.action, o.reason) for o in outs] == [("ignored", "auto_reply"), ("ignored", "auto_reply"),
                                                    ("ignored", "bounce")]
    assert tickets_count() == 0


def test_machine_mail_makes_a_ticket_marked_automated(app, queue):
    out = ingest(mail(frm="monitor@uptime.example", subject="ALERT: web01 down",
                      headers=[("Auto-Submitted", "auto-generated"), ("Precedence", "bulk")]))
    t = db.session.execute(select(Ticket).where(Ticket.number == out.ticket)).scalar_one()
    assert out.action == "created" and t.automated_sender is True


def test_a_hard_bounce_of_our_mail_lands_on_its_ticket_and_flags_the_address(app, queue, our_mail):
    t, ours = our_mail("budi@pelanggan.co.id")
    delay = ingest(dsn(original_message_id=ours, recipient="budi@pelanggan.co.id", status="4.4.1"))
    addr = db.session.execute(select(CustomerEmail).where(CustomerEmail.email == "budi@pelanggan.co.id")).scalar_one()
    assert (delay.action, delay.reason, delay.ticket) == ("ignored", "own_bounce", t.number)
    assert addr.bouncing_at is None  # a delay notice does not flag the address
    hard = ingest(dsn(original_message_id=ours, recipient="budi@pelanggan.co.id", status="5.1.1"))
    db.session.refresh(addr)
    assert (hard.action, hard.reason, hard.ticket) == ("ignored", "own_bounce", t.number)
    assert addr.bouncing_at is not None and "5.1.1" in addr.bounce_reason
    notes = db.session.execute(select(Message).where(Message.ticket_id == t.id, Message.kind == "note")).scalars().all()
    assert len(notes) == 2 and "5.1.1" in notes[1].body_text


def test_spam_is_ignored_and_one_click_makes_it_a_ticket(app, queue, make):
    admin = make.user(roles=["admin"])
    db.session.add(SenderBlock(pattern="@spam.example"))
    db.session.commit()
    flagged = ingest(mail(subject="Cheap pills", headers=[("X-Spam-Flag", "YES")]))
    blocked = ingest(mail(frm="promo@news.spam.example", subject="Diskon"))
    assert [(o.action, o.reason) for o in (flagged, blocked)] == [("ignored", "spam"), ("ignored", "spam")]
    assert tickets_count() == 0
    row = services.reprocess(flagged.inbound_id, admin.id, force_ticket=True)
    db.session.commit()
    assert row.result == "created" and tickets_count() == 1


def test_duplicates_by_message_id_across_mailboxes_and_by_hash_without_one(app, queue):
    mb1 = Mailbox(name="cs", host="127.0.0.1", username="cs", queue_id=queue.id, from_address="cs@helpdesk.test")
    mb2 = Mailbox(name="tech", host="127.0.0.1", username="tech", queue_id=queue.id, from_address="tech@helpdesk.test")
    db.session.add_all([mb1, mb2])
    db.session.commit()
    raw = mail(message_id="<same@pelanggan.co.id>", to="cs@helpdesk.test, tech@helpdesk.test")
    a, b = ingest(raw, mb1.id), ingest(raw, mb2.id)
    assert (a.action, b.action) == ("created", "duplicate") and a.ticket == b.ticket
    assert db.session.execute(select(Ticket.mailbox_id)).scalar_one() == mb1.id
    bare = mail(message_id=None, subject="Tanpa Message-ID")
    c, d = ingest(bare), ingest(bare)
    assert (c.action, d.action) == ("created", "duplicate")
    assert tickets_count() == 2


def test_one_broken_message_is_quarantined_and_the_others_still_process(app, queue):
    good1 = services.store_file(mail(subject="satu"), "a")
    broken = services.store_file(b"\x00\x01\x02 this is not an email at all\r\n", "b")
    good2 = services.store_file(mail(subject="dua"), "c")
    db.session.commit()
    outs = services.process_pending(ids=[good1, broken, good2])
    assert [o.action for o in outs] == ["created", "quarantined", "created"]
    assert "not an email" in outs[1].error
    row = db.session.get(InboundMessage, broken)
    assert row.result == "quarantined" and row.error


def test_refused_attachments_are_named_on_the_ticket_and_the_rest_is_kept(app, queue):
    app.config["MAIL_MAX_ATTACHMENT_BYTES"] = 1000
    raw = mail(attachments=[("invoice.pdf", "application/pdf", b"%PDF-1.4 ok"),
                            ("setup.exe", "application/octet-stream", b"MZ" + b"\0" * 10),
                            ("big.zip", "application/zip", b"x" * 2000)])
    out = ingest(raw)
    t = db.session.execute(select(Ticket).where(Ticket.number == out.ticket)).scalar_one()
    names = db.session.execute(select(Attachment.filename).where(Attachment.ticket_id == t.id)).scalars().all()
    assert names == ["invoice.pdf"]
    ev = db.session.execute(select(AuditEvent).where(AuditEvent.ticket_id == t.id,
                                                     AuditEvent.action == "attachment_refused")).scalar_one()
    assert "setup.exe" in ev.note and "big.zip" in ev.note


def test_inline_images_keep_their_content_id(app, queue):
    from email.message import EmailMessage

    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Message-ID"] = "budi@pelanggan.co.id", "support@helpdesk.test", "Logo", "<img1@x>"
    m.set_content("see image")
    m.add_alternative('<p>see <img src="cid:logo123"></p>', subtype="html")
    m.get_payload()[1].add_related(b"\x89PNG fake", maintype="image", subtype="png", cid="<logo123>")
    out = ingest(bytes(m))
    att = db.session.execute(select(Attachment)).scalar_one()
    assert out.action == "created" and att.content_id == "logo123" and att.inline is True


def test_import_command_reads_eml_folders_mbox_and_maildir(app, queue, tmp_path, monkeypatch):
    import gc
    import mailbox

    settled = []  # the garbage collector is settled before the batch (helpdesk.mail.cli.settle_gc)
    monkeypatch.setattr(gc, "get_freeze_count", lambda: 0)
    monkeypatch.setattr(gc, "freeze", lambda: settled.append("freeze"))
    monkeypatch.setattr(gc, "set_threshold", lambda *t: settled.append(t))

    folder = tmp_path / "eml"
    folder.mkdir()
    (folder / "a.eml").write_bytes(mail(subject="Satu", message_id="<imp1@x>"))
    (folder / "b.eml").write_bytes(mail(subject="Re: Satu", message_id="<imp2@x>", in_reply_to="<imp1@x>"))
    box = mailbox.mbox(str(tmp_path / "old.mbox"))
    box.add(mail(subject="Dua", message_id="<imp3@x>"))
    box.add(mail(subject="Out of office", message_id="<imp4@x>", headers=[("Auto-Submitted", "auto-replied")]))
    box.flush()
    md = mailbox.Maildir(str(tmp_path / "Maildir"))
    md.add(mail(subject="Tiga", message_id="<imp5@x>"))
    md.add(mail(subject="Satu lagi", message_id="<imp1@x>"))  # already imported above
    md.flush()
    result = app.test_cli_runner().invoke(args=["mail", "import", str(folder), str(tmp_path / "old.mbox"),
                                                str(tmp_path / "Maildir")])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.strip().splitlines()]
    actions = sorted(line["action"] for line in lines[:-1])
    assert actions == ["appended", "created", "created", "created", "duplicate", "ignored"]
    assert lines[-1]["summary"] is True and lines[-1]["created"] == 3 and lines[-1]["messages"] == 6
    assert all(line["source"] for line in lines[:-1])
    assert settled[0] == "freeze" and settled[1][0] > 700  # (700: Python's default young generation)


def test_mail_without_a_usable_sender_becomes_a_ticket_of_the_unknown_sender(app, queue):
    from helpdesk.mail.models import OutboundMail

    no_from = b"To: support@helpdesk.test\r\nSubject: Tanpa pengirim\r\nMessage-ID: <nf1@x>\r\n\r\nTolong.\r\n"
    only_return_path = (b"From: Whomever\r\nReturn-Path: <budi@pelanggan.co.id>\r\nSubject: Lewat Return-Path\r\n"
                        b"Message-ID: <nf2@x>\r\n\r\nHalo.\r\n")
    a, b = ingest(no_from), ingest(only_return_path)
    assert (a.action, b.action) == ("created", "created")
    ta = db.session.execute(select(Ticket).where(Ticket.number == a.ticket)).scalar_one()
    tb = db.session.execute(select(Ticket).where(Ticket.number == b.ticket)).scalar_one()
    assert ta.customer.primary_email == services.UNKNOWN_SENDER and ta.customer.name == "Unknown sender"
    assert tb.customer.primary_email == "budi@pelanggan.co.id"
    # no acknowledgement to nobody; the Return-Path sender gets one
    kinds = db.session.execute(select(OutboundMail.ticket_id).where(OutboundMail.kind == "ack")).scalars().all()
    assert ta.id not in kinds and tb.id in kinds


# ---------------------------------------------------------------- fuzzing the whole pipeline

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

HEADER_NAMES = ["From", "To", "Cc", "Subject", "Message-ID", "In-Reply-To", "References", "Content-Type",
                "Content-Transfer-Encoding", "Auto-Submitted", "Precedence", "Reply-To", "Return-Path", "X-Spam-Flag"]
header_value = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["=?utf-8?b?QnVkaQ==?= <budi@pelanggan.co.id>", "<a@b>", "multipart/mixed; boundary=x",
                     "text/plain; charset=ks_c_5601-1987", "base64", "auto-replied", "bulk", "[#1001] Re:",
                     "=?gb2312?b?1tDOxA==?=", "YES", "\x00"]))
raw_mail = st.one_of(
    st.binary(max_size=400),
    st.builds(lambda hs, body: b"".join(f"{n}: {v}".encode("utf-8", "surrogateescape") + b"\r\n" for n, v in hs)
              + b"\r\n" + body,
              st.lists(st.tuples(st.sampled_from(HEADER_NAMES), header_value), max_size=8),
              st.binary(max_size=300)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=raw_mail)
def test_any_bytes_end_as_a_result_or_a_quarantine_never_an_exception(app, queue, raw):
    rid = services.store_file(raw, "fuzz")
    db.session.commit()
    [out] = services.process_pending(ids=[rid])
    row = db.session.get(InboundMessage, rid)
    assert out.action in ("created", "appended", "ignored", "duplicate", "quarantined")
    assert row.result == out.action and row.processed_at is not None
    if out.action == "quarantined":
        assert row.error  # always with its reason


def test_an_email_reply_follows_the_workflow_rules(app, queue, make):
    agent = make.user(roles=["admin", "billing"], queues=[queue])
    cust = make.customer(email="budi@pelanggan.co.id")
    waiting = make.ticket(queue=queue, customer=cust, subject="Menunggu")
    billing = make.ticket(queue=queue, customer=cust, subject="Tagihan")
    ticket_services.change_status(waiting.id, agent.id, "pending_customer")
    ticket_services.change_status(billing.id, agent.id, "pending_billing")
    db.session.commit()
    ingest(mail(subject=f"Re: [#{waiting.number}] Menunggu", body="Ini datanya."))
    ingest(mail(subject=f"Re: [#{billing.number}] Tagihan", body="Sudah transfer."))
    db.session.expire_all()
    assert db.session.get(Ticket, waiting.id).status == "open"  # resumed
    b = db.session.get(Ticket, billing.id)
    assert b.status == "pending_billing" and b.customer_replied is True  # stays, flagged for Billing


def test_the_poll_processes_messages_left_pending_by_a_dead_process(app, queue):
    """A killed `flask mail import` leaves stored, pending rows: the minute poll finishes them."""
    from datetime import timedelta

    from helpdesk.mail import fetch
    from helpdesk.timeutil import utcnow

    old = services.store_file(mail(subject="Ditinggal", message_id="<orphan@x>"), "import",
                              now=utcnow() - timedelta(minutes=10))
    fresh = services.store_file(mail(subject="Baru saja", message_id="<fresh@x>"), "import")
    db.session.commit()
    assert fetch.cron_poll() == 1  # no mailbox to fetch; the old pending row is processed
    db.session.expire_all()
    assert db.session.get(InboundMessage, old).result == "created"
    assert db.session.get(InboundMessage, fresh).result == "pending"  # maybe still in a live process's hands
