"""A chunk of inbound mail written together (one savepoint, the batch's read caches) ends exactly as
the same messages would one at a time."""
from datetime import timedelta

from sqlalchemy import func, select

from helpdesk.customers.models import CustomerEmail
from helpdesk.extensions import db
from helpdesk.mail import budget, services
from helpdesk.mail.models import AutoMailLog, OutboundMail
from helpdesk.tickets import services as ticket_services
from helpdesk.tickets.models import Ticket
from helpdesk.timeutil import utcnow
from tests.mailgen import dsn, mail


def process(*raws):
    """Store the messages, commit, then process them as one chunk."""
    ids = [services.store_file(raw, f"batch-{n}") for n, raw in enumerate(raws)]
    db.session.commit()
    return services.process_pending(ids=ids)


def count(model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_a_message_that_raises_makes_the_chunk_redo_message_by_message_with_the_same_results(
        app, queue, monkeypatch):
    real = ticket_services.create_ticket

    def explodes_on_one_subject(**kw):
        if kw["subject"] == "meledak":
            raise RuntimeError("boom")
        return real(**kw)

    monkeypatch.setattr(ticket_services, "create_ticket", explodes_on_one_subject)
    outs = process(mail(subject="satu", frm="Ani <ani@pelanggan.co.id>", message_id="<satu@pelanggan.co.id>"),
                   mail(subject="meledak", frm="Budi <budi@pelanggan.co.id>"),
                   mail(subject="dua", frm="Ani <ani@pelanggan.co.id>"),
                   mail(subject="Re: satu", frm="Ani <ani@pelanggan.co.id>", in_reply_to="<satu@pelanggan.co.id>"))
    assert [o.action for o in outs] == ["created", "quarantined", "created", "appended"]
    assert "RuntimeError: boom" in outs[1].error
    assert outs[3].ticket == outs[0].ticket
    numbers = sorted(db.session.execute(select(Ticket.number)).scalars())
    assert numbers == [outs[0].ticket, outs[2].ticket] and numbers[1] == numbers[0] + 1  # no number lost
    # what the rolled-back pass wrote is gone: one customer, one acknowledgement per ticket
    assert count(CustomerEmail, CustomerEmail.email == "ani@pelanggan.co.id") == 1
    assert count(OutboundMail, OutboundMail.kind == "ack") == 2
    assert count(AutoMailLog, AutoMailLog.recipient == "ani@pelanggan.co.id") == 2
    from helpdesk.mail.models import MailMessageId
    from helpdesk.tickets.models import AuditEvent
    from helpdesk.warranty.models import EligibilityDecision
    assert count(AuditEvent, AuditEvent.action == "created") == 2 and count(EligibilityDecision) == 2
    assert count(MailMessageId, MailMessageId.direction == "out") == 2


def test_on_sqlite_a_chunk_writes_its_write_only_rows_without_orm_objects(app, queue):
    """Audit events, eligibility decisions, the automatic-mail log and our outbound Message-IDs are
    read by nothing before the commit: the optimistic pass on SQLite writes them from plain values
    (helpdesk.bulkrows), with ids of their own, and they are all there afterwards."""
    from sqlalchemy import event

    from helpdesk.mail.models import MailMessageId
    from helpdesk.tickets.models import AuditEvent
    from helpdesk.warranty.models import EligibilityDecision

    first = process(mail(subject="Sebelumnya", frm="lama@pelanggan.co.id"))  # rows of these tables exist already
    models = (AuditEvent, EligibilityDecision, AutoMailLog, MailMessageId)
    built = []

    def init(target, _args, _kwargs):
        built.append(type(target).__name__)

    for m in models:
        event.listen(m, "init", init)
    try:
        outs = process(*(mail(subject=f"Hosting {n}", frm=f"p{n}@pelanggan.co.id") for n in range(6)))
    finally:
        for m in models:
            event.remove(m, "init", init)
    assert [o.action for o in outs] == ["created"] * 6
    if db.engine.dialect.name == "sqlite":
        assert built == []
    tickets = db.session.execute(select(Ticket).where(Ticket.number.in_([o.ticket for o in first + outs]))
                                 .order_by(Ticket.id)).scalars().all()
    for t in tickets:
        assert count(AuditEvent, AuditEvent.ticket_id == t.id, AuditEvent.action == "created") == 1
        decision = db.session.execute(select(EligibilityDecision).where(EligibilityDecision.ticket_id == t.id)
                                      ).scalar_one()
        assert decision.trigger == "intake" and decision.charge == t.charge and decision.snapshot["engine"]
        ack = db.session.execute(select(OutboundMail).where(OutboundMail.ticket_id == t.id)).scalar_one()
        key = db.session.get(MailMessageId, ack.message_id)
        assert (key.direction, key.ticket_id) == ("out", t.id)
        log = db.session.execute(select(AutoMailLog).where(AutoMailLog.outbound_id == ack.id)).scalar_one()
        assert log.ticket_id == t.id and log.recipient == t.customer.primary_email
    ids = db.session.execute(select(AuditEvent.id)).scalars().all()
    assert len(ids) == len(set(ids)) == count(AuditEvent)


def test_the_same_message_twice_in_one_chunk_is_one_ticket_and_a_duplicate(app, queue):
    again = mail(message_id="<dua-kali@pelanggan.co.id>", subject="Dua kali")
    bare = mail(message_id=None, subject="Tanpa Message-ID")
    outs = process(again, bare, again, bare)
    assert [o.action for o in outs] == ["created", "created", "duplicate", "duplicate"]
    assert (outs[2].ticket, outs[3].ticket) == (outs[0].ticket, outs[1].ticket)
    assert count(Ticket) == 2


def test_the_address_budget_counts_earlier_mail_and_the_chunks_own_acknowledgements(app, queue):
    app.config["MAIL_BUDGET_PER_ADDRESS_HOUR"] = 3
    now = utcnow()
    budget.record(["ani@pelanggan.co.id"], None, now=now - timedelta(minutes=30))  # inside the hour
    budget.record(["ani@pelanggan.co.id"], None, now=now - timedelta(hours=2))  # outside it
    db.session.commit()
    outs = process(*(mail(subject=f"Masalah {n}", frm="Ani <ani@pelanggan.co.id>") for n in range(4)))
    assert [o.action for o in outs] == ["created"] * 4
    acks = db.session.execute(select(OutboundMail.status).where(OutboundMail.kind == "ack")
                              .order_by(OutboundMail.id)).scalars().all()
    assert acks == ["queued", "queued", "held", "held"]  # 1 earlier + 2 = the limit of 3


def test_a_hard_bounce_flags_the_address_for_the_rest_of_its_chunk(app, queue, our_mail):
    _old, ours = our_mail("budi@pelanggan.co.id")
    bounce, new = process(dsn(original_message_id=ours, recipient="budi@pelanggan.co.id", status="5.1.1"),
                          mail(subject="Masih bermasalah", frm="Budi <budi@pelanggan.co.id>"))
    assert (bounce.action, bounce.reason, new.action) == ("ignored", "own_bounce", "created")
    ticket = db.session.execute(select(Ticket).where(Ticket.number == new.ticket)).scalar_one()
    assert count(OutboundMail, OutboundMail.ticket_id == ticket.id, OutboundMail.kind == "ack") == 0


def test_on_sqlite_a_chunk_writes_each_table_once_and_threads_within_itself(app, queue):
    """SQLite: the chunk's new rows get their ids before they are written (idalloc) and go out as one
    INSERT per table, not one per row; a reply to a ticket made earlier in the same chunk still finds
    it (and its SLA clocks), before any of it is written. PostgreSQL writes per message, alike."""
    counts, outs = _inserts_by_table(lambda: process(
        *(mail(subject=f"Hosting mati {n}", frm=f"Pelanggan {n} <p{n}@pelanggan.co.id>",
               message_id=f"<awal-{n}@pelanggan.co.id>") for n in range(12)),
        mail(subject="Re: Hosting mati 3", frm="Pelanggan 3 <p3@pelanggan.co.id>",
             in_reply_to="<awal-3@pelanggan.co.id>"),
        mail(subject="Re: [#x] lagi", frm="Pelanggan 5 <p5@pelanggan.co.id>",
             references="<awal-5@pelanggan.co.id>")))
    assert [o.action for o in outs] == ["created"] * 12 + ["appended", "appended"]
    assert (outs[12].ticket, outs[13].ticket) == (outs[3].ticket, outs[5].ticket)
    inserts = {t: counts.get(t, 0) for t in
               ("tickets", "messages", "customers", "sla_clocks", "audit_events", "outbound_mails", "outbox_jobs",
                "mail_message_ids")}
    if db.engine.dialect.name == "sqlite":
        assert inserts == dict.fromkeys(inserts, 1)  # the customers' Message-IDs and ours: one executemany
        assert counts.get("UPDATE mail_message_ids", 0) == 0  # each written with its ticket and message
    else:
        assert inserts["tickets"] == 12
    # what was written is whole: every ticket with its message, clocks, acknowledgement and search text
    t3 = db.session.execute(select(Ticket).where(Ticket.number == outs[3].ticket)).scalar_one()
    assert t3.message_count == 2 and t3.first_response_due is not None
    from helpdesk.sla.models import SlaClock
    from helpdesk.tickets.models import Message
    assert count(Message) == 14 and count(SlaClock, SlaClock.ticket_id == t3.id) == 2
    assert count(OutboundMail, OutboundMail.kind == "ack") == 12
    ack = db.session.execute(select(OutboundMail).where(OutboundMail.ticket_id == t3.id,
                                                        OutboundMail.kind == "ack")).scalar_one()
    assert ack.in_reply_to == "awal-3@pelanggan.co.id"  # threaded on the customer's mail, known in memory
    from helpdesk.tickets.search import match_clause
    assert db.session.execute(select(Ticket.number).where(match_clause(db.session, "p7@pelanggan.co.id"))
                              ).scalars().all() == [outs[7].ticket]


def _inserts_by_table(run):
    """run() with every INSERT counted by table: ({table: statements}, run's result)."""
    from sqlalchemy import event

    counts = {}

    def seen(_conn, _cursor, statement, _params, _context, _many):
        words = statement.split()
        if words[:2] == ["INSERT", "INTO"]:
            counts[words[2]] = counts.get(words[2], 0) + 1
        elif words[:1] == ["UPDATE"]:
            counts[f"UPDATE {words[1]}"] = counts.get(f"UPDATE {words[1]}", 0) + 1

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        return counts, run()
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)


def test_a_desk_with_agents_still_writes_each_table_once_and_threads_their_notifications(app, queue, make):
    """Agents on the queue get a mail for each new ticket and each customer reply: reading their
    budget and the thread of a ticket from an earlier chunk must not write the chunk out message
    by message, and the notification of a reply is threaded on that reply, which is not written yet."""
    for n in range(3):
        make.user(email=f"agen{n}@helpdesk.test", roles=["customer_support"], queues=[queue])
    db.session.commit()
    (first,) = process(mail(subject="Email tidak masuk", frm="Ani <ani@pelanggan.co.id>",
                            message_id="<lama@pelanggan.co.id>"))
    counts, outs = _inserts_by_table(lambda: process(
        mail(subject="Re: Email tidak masuk", frm="Ani <ani@pelanggan.co.id>", message_id="<balas-1@pelanggan.co.id>",
             in_reply_to="<lama@pelanggan.co.id>"),
        *(mail(subject=f"Domain {n} tidak aktif", frm=f"Pelanggan {n} <p{n}@pelanggan.co.id>") for n in range(5)),
        mail(subject="Re: Email tidak masuk", frm="Ani <ani@pelanggan.co.id>", message_id="<balas-2@pelanggan.co.id>",
             in_reply_to="<balas-1@pelanggan.co.id>")))
    assert [o.action for o in outs] == ["appended"] + ["created"] * 5 + ["appended"]
    assert outs[0].ticket == outs[6].ticket == first.ticket
    tables = ("tickets", "messages", "customers", "outbound_mails", "auto_mail_log", "outbox_jobs", "audit_events")
    if db.engine.dialect.name == "sqlite":
        assert {t: counts.get(t) for t in tables} == dict.fromkeys(tables, 1)
    assert count(OutboundMail, OutboundMail.kind == "notify_new") == 3 * 6  # the first chunk's ticket too
    ticket = db.session.execute(select(Ticket).where(Ticket.number == first.ticket)).scalar_one()
    replies = db.session.execute(select(OutboundMail).where(OutboundMail.ticket_id == ticket.id,
                                                            OutboundMail.kind == "notify_reply")
                                 .order_by(OutboundMail.id)).scalars().all()
    assert len(replies) == 6
    assert {r.in_reply_to for r in replies[:3]} == {"balas-1@pelanggan.co.id"}
    assert {r.in_reply_to for r in replies[3:]} == {"balas-2@pelanggan.co.id"}
    assert all(r.references.split()[0] == "lama@pelanggan.co.id" and "balas-1@pelanggan.co.id" in r.references
               for r in replies[3:])


def test_a_long_thread_kept_by_a_batch_is_the_whole_thread(app, queue, make):
    """A batch keeps the thread of a ticket as read from the database: all of it (the statement
    limits each of its sources on its own), not cut to the newest rows of their sum."""
    from helpdesk import batchcache
    from helpdesk.mail import outbound
    from helpdesk.mail.models import MailMessageId

    ticket = make.ticket(queue=queue)
    start = utcnow() - timedelta(days=2)
    for n in range(150):
        db.session.add(MailMessageId(message_id=f"masuk-{n}@pelanggan.co.id", ticket_id=ticket.id, direction="in",
                                     created_at=start + timedelta(minutes=2 * n)))
        db.session.add(OutboundMail(ticket_id=ticket.id, kind="reply", message_id=f"keluar-{n}@helpdesk.test",
                                    to_addrs=["ani@pelanggan.co.id"], status="sent",
                                    created_at=start + timedelta(minutes=2 * n + 1)))
    db.session.commit()
    outside = outbound.thread_ids(ticket.id)
    with batchcache.opened():
        inside = outbound.thread_ids(ticket.id)
    assert len(outside) == 300 and outside[-1] == "keluar-149@helpdesk.test"
    assert inside == outside


def test_a_bounce_of_mail_on_a_merged_ticket_joins_the_thread_the_batch_keeps(app, queue, make):
    """A bounce of mail sent about a ticket before it was merged lands on that ticket's row, but in
    the surviving ticket's thread: a later mail of the same chunk about the survivor refers to it."""
    from helpdesk.mail import tokens
    from helpdesk.mail.models import MailMessageId

    make.user(email="agen@helpdesk.test", roles=["customer_support"], queues=[queue])
    admin = make.user(email="admin@helpdesk.test", roles=["admin"])
    db.session.commit()
    (first,) = process(mail(subject="Email tidak masuk", frm="Ani <ani@pelanggan.co.id>",
                            message_id="<b-awal@pelanggan.co.id>"))
    survivor = db.session.execute(select(Ticket).where(Ticket.number == first.ticket)).scalar_one()
    merged = make.ticket(queue=queue, customer=survivor.customer)
    ours = tokens.make_message_id(merged.id, app.config["SECRET_KEY"], "helpdesk.test")
    db.session.add(MailMessageId(message_id=ours, ticket_id=merged.id, direction="out"))
    db.session.commit()
    ticket_services.merge(merged.id, survivor.id, admin.id)
    db.session.commit()
    outs = process(
        mail(subject="Re: Email tidak masuk", frm="Ani <ani@pelanggan.co.id>", message_id="<b-1@pelanggan.co.id>",
             in_reply_to="<b-awal@pelanggan.co.id>"),
        dsn(original_message_id=ours, recipient="ani@pelanggan.co.id", status="4.2.2"),
        mail(subject="Re: Email tidak masuk", frm="Ani <ani@pelanggan.co.id>", message_id="<b-2@pelanggan.co.id>",
             in_reply_to="<b-1@pelanggan.co.id>"))
    assert [o.action for o in outs] == ["appended", "ignored", "appended"] and outs[1].reason == "own_bounce"
    last = db.session.execute(select(OutboundMail).where(OutboundMail.ticket_id == survivor.id,
                                                         OutboundMail.kind == "notify_reply")
                              .order_by(OutboundMail.id.desc()).limit(1)).scalar_one()
    assert last.in_reply_to == "b-2@pelanggan.co.id"
    assert outs[1].message_id.strip("<>") in last.references.split()


def test_every_foreign_key_into_a_table_the_batch_writes_is_indexed(app, queue, make):
    """While SQLite's deferred foreign-key checks are outstanding (the batch's rows refer to rows it
    writes later in the same flush), each row inserted into a parent table looks up its child rows:
    through an index on the child's column, or by scanning the whole child table (all messages for
    every new customer). So every such column has an index, on both databases."""
    from sqlalchemy import inspect, text

    make.user(email="agen@helpdesk.test", roles=["customer_support"], queues=[queue])
    db.session.commit()
    counts, _outs = _inserts_by_table(lambda: process(
        mail(subject="Hosting lambat", frm="Ani <ani@pelanggan.co.id>", message_id="<awal@pelanggan.co.id>"),
        mail(subject="Re: Hosting lambat", frm="Ani <ani@pelanggan.co.id>", in_reply_to="<awal@pelanggan.co.id>",
             attachments=[("log.txt", "text/plain", b"error 500\n")])))
    written = {t for t in counts if not t.startswith("ticket_fts")}
    assert {"customers", "tickets", "messages", "attachments", "outbound_mails"} <= written
    insp = inspect(db.engine)
    missing = []
    for table in db.metadata.sorted_tables:
        led = {tuple(i["column_names"][:1]) for i in insp.get_indexes(table.name)}
        led |= {tuple(u["column_names"][:1]) for u in insp.get_unique_constraints(table.name)}
        led.add(tuple(insp.get_pk_constraint(table.name)["constrained_columns"][:1]))
        for fk in table.foreign_keys:
            if fk.column.table.name not in written:
                continue
            column = fk.parent.name
            if (column,) not in led:
                missing.append(f"{table.name}.{column} -> {fk.column.table.name}")
            elif db.engine.dialect.name == "sqlite":  # and the lookup uses it (a partial one too)
                plan = " ".join(r[-1] for r in db.session.execute(
                    text(f"EXPLAIN QUERY PLAN SELECT 1 FROM {table.name} WHERE {column} = 1")))
                if "INDEX" not in plan and "PRIMARY KEY" not in plan:
                    missing.append(f"{table.name}.{column}: {plan}")
    assert missing == []


def test_a_row_that_fails_its_foreign_key_loses_only_its_own_message(app, queue, monkeypatch):
    """A bug that writes a row referring to nothing: on SQLite the chunk's checks wait for its COMMIT,
    which fails; the chunk is then done again message by message, where that message is quarantined
    and the others are kept (on PostgreSQL the check fails at once, with the same end)."""
    from helpdesk.tickets.models import AuditEvent

    real = ticket_services.create_ticket

    def writes_a_dangling_row(**kw):
        ticket = real(**kw)
        if kw["subject"] == "rusak":
            db.session.add(AuditEvent(ticket_id=987654, object_type="ticket", object_id=987654,
                                      action="dangling", created_at=utcnow()))
        return ticket

    monkeypatch.setattr(ticket_services, "create_ticket", writes_a_dangling_row)
    outs = process(mail(subject="satu", frm="Ani <ani@pelanggan.co.id>"),
                   mail(subject="rusak", frm="Budi <budi@pelanggan.co.id>"),
                   mail(subject="dua", frm="Citra <citra@pelanggan.co.id>"))
    assert [o.action for o in outs] == ["created", "quarantined", "created"]
    assert "IntegrityError" in outs[1].error
    assert count(Ticket) == 2 and count(AuditEvent, AuditEvent.ticket_id == 987654) == 0
    assert count(CustomerEmail, CustomerEmail.email == "budi@pelanggan.co.id") == 0


def test_a_rolled_back_message_leaves_nothing_in_the_search_index(app, queue, monkeypatch):
    """A message whose ticket was made and then rolled back (it raised afterwards) is quarantined;
    its words must not end up in the search document of the ticket that gets its id next."""
    from helpdesk.tickets.search import match_clause

    real = ticket_services.create_ticket

    def raises_after_creating(**kw):
        ticket = real(**kw)
        if kw["subject"] == "meledak":
            raise RuntimeError("boom")
        return ticket

    monkeypatch.setattr(ticket_services, "create_ticket", raises_after_creating)
    outs = process(mail(subject="satu", frm="Ani <ani@pelanggan.co.id>", body="server kopimerapi lambat"),
                   mail(subject="meledak", frm="Budi <budi@pelanggan.co.id>", body="kembanggula rahasia"),
                   mail(subject="dua", frm="Citra <citra@pelanggan.co.id>", body="domain tidak aktif"))
    db.session.commit()
    assert [o.action for o in outs] == ["created", "quarantined", "created"]

    def found(q):
        return db.session.execute(select(Ticket.number).where(match_clause(db.session, q))).scalars().all()

    assert found("kembanggula") == []
    assert found("kopimerapi") == [outs[0].ticket] and found("aktif") == [outs[2].ticket]


def test_two_writers_storing_the_same_raw_mail_at_once_both_succeed_with_whole_files(app, tmp_path):
    """Two fetchers may fetch and store the same UID at the same moment: each writes its own
    temporary file, and the file in place is always the whole message."""
    import threading

    from helpdesk.mail import rawstore

    app.config["RAW_MAIL_DIR"] = str(tmp_path / "raw")
    errors = []
    for round_ in range(15):
        data = [bytes([65 + round_ % 26]) * (600_000 + n) + f"{round_}-{n}".encode() for n in range(3)]
        start = threading.Barrier(2)

        def store():
            with app.app_context():
                try:
                    start.wait()
                    rawstore.save_many(data)
                except Exception as exc:  # noqa: BLE001 - collected for the assertion
                    errors.append(exc)

        threads = [threading.Thread(target=store) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with app.app_context():
            assert [rawstore.load(__import__("hashlib").sha256(d).hexdigest()) == d for d in data] == [True] * 3
    assert errors == []
    assert not list((tmp_path / "raw").rglob(".tmp-*"))


def test_attachment_files_of_a_batch_are_in_place_only_after_finish_and_gone_after_discard(app, tmp_path):
    from helpdesk import batchcache
    from helpdesk.tickets import storage

    app.config["ATTACHMENT_DIR"] = str(tmp_path / "att")
    with batchcache.opened():
        kept = storage.save_bytes(b"invoice scan " * 1000)
        assert not storage.path_for(kept).exists()  # not at its final name before the batch commits
        assert storage.read_bytes(kept) == b"invoice scan " * 1000  # but readable (virus scan)
    storage.finish_batch(db.session)
    assert storage.path_for(kept).read_bytes() == b"invoice scan " * 1000
    with batchcache.opened():
        dropped = storage.save_bytes(b"never committed")
    storage.discard_batch(db.session)
    assert not storage.path_for(dropped).exists()
    assert not list((tmp_path / "att").rglob(".tmp-*"))


def test_the_parse_pool_writes_raw_mail_and_the_fetcher_puts_it_in_place_before_its_commit(app, tmp_path):
    """The pool's workers write each fetched message under a temporary name while they parse it;
    store_batch syncs and renames them before committing the rows. A message a worker could not
    write is written by the fetcher itself."""
    import hashlib
    import os

    from helpdesk.mail import rawstore
    from helpdesk.mail.models import InboundMessage

    app.config["RAW_MAIL_DIR"] = str(tmp_path / "raw")
    raws = [mail(subject=f"Domain {n}", frm=f"p{n}@pelanggan.co.id") for n in range(10)]
    items = list(enumerate(raws, start=1))
    with services.ParsePool(workers=2) as pool:
        parsing = services.start_parse_fetched(items, pool)
        written = parsing.written()
    shas = [hashlib.sha256(r).hexdigest() for r in raws]
    assert [w[0] for w in written] == shas
    assert all(w[1] and ".tmp-" in w[1] for w in written)
    assert not any(rawstore.path_for(s).exists() for s in shas)  # nothing at its final name yet
    os.unlink(written[3][1])
    written[3] = None  # as if that worker's disk write had failed (it removes its partial file)
    ids = services.store_batch(None, "INBOX", 7, items, written=written)
    assert len(ids) == 10
    assert [rawstore.load(s) for s in shas] == raws
    assert set(db.session.execute(select(InboundMessage.raw_sha256).where(InboundMessage.id.in_(ids)))
               .scalars()) == set(shas)
    assert not list((tmp_path / "raw").rglob(".tmp-*"))
    assert [type(p).__name__ for p in parsing.job_for(ids).results().values()] == ["tuple"] * 10
    assert [m.subject for _raw, m in parsing.job_for(ids).results().values()] == [f"Domain {n}" for n in range(10)]


def test_a_chunk_reads_its_senders_items_at_once_and_still_links_the_item_a_mail_names(app, queue, make):
    """The items of the chunk's known senders are read in one statement (not one per sender), and a
    mail naming one of its sender's domains still gets that item on its ticket."""
    from datetime import date

    from helpdesk.warranty import services as warranty
    from helpdesk.warranty.models import Product

    hosting = Product(code="HOST-1G", name="Hosting 1 GB", product_line="domain_hosting", price=600_000,
                      warranty_days=30, cashback_days=30)
    db.session.add(hosting)
    db.session.flush()
    owners = [make.customer(email=f"pemilik{n}@toko{n}.co.id") for n in range(4)]
    items = [warranty.create_item(customer_id=c.id, product_id=hosting.id, purchase_date=date(2026, 11, 1),
                                  identifier=f"toko{n}.co.id") for n, c in enumerate(owners)]
    db.session.commit()
    reads = []

    def seen(_conn, _cursor, statement, _params, _context, _many):
        if statement.lstrip().startswith("SELECT") and "FROM owned_items" in statement:
            reads.append(statement)

    from sqlalchemy import event
    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        outs = process(*(mail(subject=f"Situs mati {n}", frm=f"pemilik{n}@toko{n}.co.id",
                              body=f"Situs www.toko{n}.co.id tidak bisa dibuka." if n % 2 else "Tolong dibantu.")
                         for n in range(4)),
                       mail(subject="Pertanyaan", frm="baru@pelanggan.co.id"))
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert [o.action for o in outs] == ["created"] * 5
    assert len(reads) == 1
    linked = [db.session.execute(select(Ticket.owned_item_id).where(Ticket.number == o.ticket)).scalar_one()
              for o in outs]
    assert linked == [None, items[1].id, None, items[3].id, None]


def test_replies_to_older_tickets_are_searchable_and_their_documents_read_together(app, queue):
    """A chunk of replies to tickets of an earlier chunk: each ticket's search document gets the
    reply's words, and the tickets, customers and texts it is rebuilt from are read in a few
    statements for the chunk, not a few per reply."""
    from sqlalchemy import event

    from helpdesk.tickets.search import match_clause

    firsts = process(*(mail(subject=f"Server {n} lambat", frm=f"p{n}@pelanggan.co.id",
                            message_id=f"<awal{n}@pelanggan.co.id>") for n in range(6)))
    db.session.expire_all()
    reads = []

    def seen(_conn, _cursor, statement, _params, _context, _many):
        if statement.startswith("SELECT") and "FROM tickets" in " ".join(statement.split("WHERE")[0].split()):
            reads.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        outs = process(*(mail(subject=f"Re: Server {n} lambat", frm=f"p{n}@pelanggan.co.id",
                              in_reply_to=f"<awal{n}@pelanggan.co.id>", body=f"Sudah dicoba kodeunik{n} tetap lambat.")
                         for n in range(6)))
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert [o.action for o in outs] == ["appended"] * 6
    assert len(reads) <= 6 + 2  # the threading's own lookup of each ticket, and the rebuild's one read
    for n, first in enumerate(firsts):
        found = db.session.execute(select(Ticket.number).where(match_clause(db.session, f"kodeunik{n}"))).scalars()
        assert list(found) == [first.ticket]
        both = db.session.execute(select(Ticket.number).where(match_clause(db.session, f"kodeunik{n} Server"))
                                  ).scalars()
        assert list(both) == [first.ticket]  # the older text is still in the document


def test_on_sqlite_a_chunk_counts_its_ticket_numbers_in_memory_and_stores_the_last(app, queue, make):
    """The chunk reads the ticket counter once and writes it once; the numbers are consecutive, and
    the next ticket made anywhere else continues after them."""
    from sqlalchemy import event

    from helpdesk.tickets.models import Counter

    (before,) = process(mail(subject="Pertama", frm="a@pelanggan.co.id"))
    writes = []

    def seen(_conn, _cursor, statement, _params, _context, _many):
        if statement.startswith("UPDATE counters"):
            writes.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        outs = process(*(mail(subject=f"Tiket {n}", frm=f"p{n}@pelanggan.co.id") for n in range(7)),
                       mail(subject=f"[#{before.ticket}] lagi", frm="a@pelanggan.co.id"))
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert [o.action for o in outs] == ["created"] * 7 + ["appended"]
    assert [o.ticket for o in outs[:7]] == list(range(before.ticket + 1, before.ticket + 8))
    assert len(writes) == (1 if db.engine.dialect.name == "sqlite" else 7)
    assert db.session.execute(select(Counter.value).where(Counter.name == "ticket")).scalar_one() == before.ticket + 7
    t = make.ticket(queue=queue)
    db.session.commit()
    assert t.number == before.ticket + 8


def test_the_parse_pool_leaves_one_core_to_the_process_writing_the_tickets(app, monkeypatch):
    import os

    raws = [mail(subject=f"Domain {n}", frm=f"p{n}@pelanggan.co.id") for n in range(10)]
    app.config["MAIL_PARSE_WORKERS"] = 0
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert services.ParsePool().workers == 3
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    with services.ParsePool() as pool:  # one worker process, not none: the writer keeps its core
        assert pool.workers == 1
        assert [m.subject for m in pool.map(raws)] == [f"Domain {n}" for n in range(10)]
        assert pool._pool is not None
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    with services.ParsePool() as pool:  # one CPU: this process parses too
        assert [m.subject for m in pool.map(raws)] == [f"Domain {n}" for n in range(10)]
        assert pool._pool is None
    app.config["MAIL_PARSE_WORKERS"] = 2
    assert services.ParsePool().workers == 2
    app.config["MAIL_PARSE_WORKERS"] = -1  # none: the fetcher parses itself
    assert services.ParsePool().workers == 0
