"""The shared real-world corpora through the production pipeline (raw store, inbound log, parse on
every core, classify, thread, tickets), read back from the database.

The parser-level expectations (and their allow-lists) are in tests/unit/test_corpora_parse.py; here
the point is that what the parser yields is what ends up on the ticket, for every message.
"""
import hashlib
from collections import Counter

from sqlalchemy import delete, select

from helpdesk.customers import services as customers
from helpdesk.extensions import db
from helpdesk.mail import quotes, services
from helpdesk.mail.models import InboundMessage, MailMessageId
from helpdesk.tickets import storage
from helpdesk.tickets.models import Attachment, Message, Ticket
from tests import corpora_util as cu
from tests.mailgen import mail
from tests.unit.test_corpora_parse import ZAMMAD_ALLOW

pytestmark = cu.needs_corpora


def ingest_all(paths):
    ids = {}
    for p in paths:
        raw = p.read_bytes()
        if raw.startswith(b"From ") and b"\n" in raw:  # an mbox separator line
            raw = raw.split(b"\n", 1)[1]
        ids[p] = services.store_file(raw, str(p))
    db.session.commit()
    outcomes = {o.inbound_id: o for o in services.process_pending(ids=list(ids.values()))}
    return {p: outcomes[i] for p, i in ids.items()}


def test_every_corpus_message_ends_as_a_ticket_reply_or_deliberate_log_entry(app, queue):
    results = ingest_all(cu.all_messages())
    assert len(results) >= 249
    actions = Counter(o.action for o in results.values())
    assert actions["pending"] == 0 and sum(actions.values()) == len(results)
    # an exception is always a failure: a quarantine must be a reason, not a traceback
    crashed = {str(p): o.error for p, o in results.items() if o.action == "quarantined"
               and o.error and ("Error:" in o.error or "Exception" in o.error)}
    assert not crashed
    # Stalwart's well-formed folders: nothing quarantined
    stalwart = {str(p): o.error for p, o in results.items() if "stalwart-mail-parser" in str(p)
                and "/malformed/" not in str(p) and o.action == "quarantined"}
    assert not stalwart
    rows = db.session.execute(select(InboundMessage)).scalars().all()
    assert all(r.processed_at and r.raw_sha256 for r in rows)


def _md5s_of_message(message_row_id):
    atts = db.session.execute(select(Attachment).where(Attachment.message_id == message_row_id)).scalars().all()
    return {hashlib.md5(storage.path_for(a.sha256).read_bytes()).hexdigest(): a for a in atts}


def test_zammad_messages_on_their_tickets(app, queue):
    pairs = [p for p in cu.files("zammad", "test/data/mail/*.box") if p.with_suffix(".yml").exists()]
    checked = 0
    for path in pairs:
        # one message at a time, each as if into an empty helpdesk: the corpus reuses Message-IDs
        # across unrelated test mails, which would rightly be deduplicated or threaded here
        db.session.execute(delete(MailMessageId))
        db.session.commit()
        [outcome] = ingest_all([path]).values()
        exp = cu.load_zammad_yml(path.with_suffix(".yml"))
        if outcome.action not in ("created", "appended"):
            db.session.rollback()
            continue
        checked += 1
        row = db.session.get(InboundMessage, outcome.inbound_id)
        msg = db.session.get(Message, row.message_row_id)
        ticket = db.session.get(Ticket, row.ticket_id)
        if f"{path.name}#from_email" not in ZAMMAD_ALLOW:
            # as a customer record stores it (normalised: lower case, no trailing dot)
            want_from = customers.clean_email(exp.get("from_email") or "")
            assert want_from in {e.email for e in msg.author_customer.emails}, path.name
        if outcome.action == "created" and f"{path.name}#subject" not in ZAMMAD_ALLOW and exp.get("subject"):
            assert cu.norm(ticket.subject) == cu.norm(exp["subject"])[:300], path.name
        if f"{path.name}#attachments" not in ZAMMAD_ALLOW:
            stored = _md5s_of_message(msg.id)
            for att in exp.get("attachments") or []:
                if att.get("filename") == "message.html":
                    continue
                data = att["data"].encode() if isinstance(att["data"], str) else att["data"]
                md5 = hashlib.md5(data).hexdigest()
                assert md5 in stored, (path.name, att.get("filename"))
                cid = (att.get("preferences") or {}).get("Content-ID")
                if cid and msg.body_html and f"cid:{cid.strip('<>')}".lower() in msg.body_html.lower():
                    assert stored[md5].inline and stored[md5].content_id == cid.strip("<>"), path.name
    assert checked == len(pairs) - 11  # 8 bounces and 3 spam are logged as ignored


def test_reply_corpora_thread_onto_the_ticket_with_the_visible_text_shown(app, queue, make):
    """talon and email-reply-parser bodies as replies to an existing ticket: threaded by In-Reply-To,
    shown stripped of quotes (the stripper's expectations are checked in the unit corpus test) and
    with the full original one click away."""
    first = services.store_file(mail(message_id="<start@pelanggan.co.id>"), "start")
    db.session.commit()
    [start] = services.process_pending(ids=[first])
    bodies = cu.files("email-reply-parser", "**/*.txt")
    assert bodies
    for n, path in enumerate(bodies):
        text = cu.decode_text(path) if hasattr(cu, "decode_text") else path.read_text(encoding="utf-8", errors="replace")
        raw = mail(subject="Re: Website down", message_id=f"<r{n}@pelanggan.co.id>",
                   in_reply_to="<start@pelanggan.co.id>", body=text or "(kosong)")
        rid = services.store_file(raw, str(path))
        db.session.commit()
        [out] = services.process_pending(ids=[rid])
        assert (out.action, out.ticket, out.rule) == ("appended", start.ticket, "in_reply_to"), path.name
        msg = db.session.get(Message, db.session.get(InboundMessage, rid).message_row_id)
        shown = quotes.visible_text(msg.original_text if msg.original_text is not None else msg.body_text)
        assert cu.norm(msg.body_text) == cu.norm(shown) or not shown.strip(), path.name
        if msg.original_text is not None:
            assert cu.norm(msg.original_text) != cu.norm(msg.body_text)
