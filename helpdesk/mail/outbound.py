"""Outbound mail: decide who gets which mail, and record it in the caller's transaction.

Every mail is an OutboundMail row with its signed Message-ID (also in mail_message_ids, direction
"out"), its In-Reply-To and References, subject and recipients, written together with an outbox job
(queue "mail") that renders and sends it later (helpdesk.mail.jobs.send_outbound). Nothing is lost
while SMTP or Redis is down: the row and the job commit with the change that caused them, RQ
retries with backoff, and a row already sent is never sent again.

Public API (all only flush; the caller commits):

    queue_acknowledgement(ticket_id, to_addr=None)            -> OutboundMail | None
    queue_agent_reply(message_id)                              -> OutboundMail | None
    queue_new_ticket_notifications(ticket_id)                  -> list[OutboundMail]
    queue_customer_reply_notifications(message_id)             -> list[OutboundMail]
    queue_assignment_notification(ticket_id, user_id)          -> OutboundMail | None
    queue_refused_files(ticket_id, to_addr, refused)           -> OutboundMail | None
    queue_mail(kind, ticket=..., to=[...], ...)                -> OutboundMail | None  (SLA, announcements)
    release_held(outbound_id)                                  -> OutboundMail | None  (admin: send anyway)

Automatic mail goes through the budget (helpdesk.mail.budget): over budget it is stored "held"
and not sent; it never goes to a bouncing address, nor back to an automated sender.
"""
import functools
import logging
import re
from datetime import timedelta
from email.headerregistry import Address
from email.utils import make_msgid, parseaddr

from flask import current_app
from sqlalchemy import String, bindparam, cast, or_, select, union_all

from .. import batchcache, bulkrows, idalloc, jobs
from ..auth.models import User, UserRole
from ..customers.models import Customer
from ..extensions import db
from ..tickets.models import Message, QueueMember, Ticket
from ..timeutil import utcnow
from . import budget, tokens
from .models import Mailbox, MailMessageId, OutboundMail
from .threading import strip_prefixes

log = logging.getLogger(__name__)

SEND_JOB = "helpdesk.mail.jobs.send_outbound"
# kind -> the letter that starts the random part of its Message-ID (see tokens.make_message_id)
KIND_CODES = {"ack": "a", "reply": "m", "notify_new": "n", "notify_reply": "n", "notify_assign": "n",
              "refused": "r"}
AUTO_REPLIED_KINDS = ("ack", "refused")  # RFC 3834 answers to a sender; other automatic mail: auto-generated
MAX_REFERENCES = 20
SUBJECT_MAX = 400
LANGS = ("id", "en")  # bilingual mail: Indonesian first
# Reasons queue_refused_files understands (others are shown as given).
REFUSAL_REASONS = ("too_large", "blocked_type", "infected")

_DOMAIN_OK = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\Z")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


# ---------------------------------------------------------------- safe header values

def clean_header_text(value, limit=None):
    """One line of header text: CR, LF, NUL and every other control character become spaces,
    whitespace is collapsed. A subject or name can never add a header."""
    text = " ".join(_CONTROL_RE.sub(" ", str(value or "")).split())
    return text[:limit] if limit else text


def clean_address(value):
    """A bare, valid addr-spec (lower-cased domain), or None for anything unusable."""
    if not isinstance(value, str):
        return None
    return _clean_address(value)


@functools.lru_cache(maxsize=4096)  # the same agents and customers are written to again and again
def _clean_address(value):
    raw = value.strip()
    if not raw or _CONTROL_RE.search(raw) or any(c in raw for c in ' <>,;"()[]\\'):
        return None
    local, at, domain = raw.rpartition("@")
    if not at or not local or not domain or "@" in local or not local.isascii():
        return None  # (no SMTPUTF8: a non-ASCII local part could not be delivered anyway)
    try:
        domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    if domain == "invalid" or domain.endswith(".invalid"):  # anonymised customers' placeholders
        return None
    addr = f"{local}@{domain}"
    try:
        Address(addr_spec=addr)
    except (ValueError, IndexError, TypeError):
        return None
    return addr


def clean_addresses(values):
    out = []
    for v in values or ():
        a = clean_address(v)
        if a and a.lower() not in {x.lower() for x in out}:
            out.append(a)
    return out


# ---------------------------------------------------------------- sender, ids, thread

def token_secret():
    """The secret that signs our Message-IDs and plus-addresses (the app's SECRET_KEY)."""
    return current_app.config["SECRET_KEY"]


def sender_for(ticket):
    """(from_address, from_name, mailbox or None): the ticket's mailbox, else IMAP_FROM, else
    MAIL_DEFAULT_SENDER. Worked out once per mailbox in a batch (helpdesk.batchcache)."""
    mailbox_id = ticket.mailbox_id if ticket is not None else None
    return batchcache.lookup("sender", mailbox_id, lambda: _sender_of_mailbox(mailbox_id))


def _sender_of_mailbox(mailbox_id):
    mailbox = db.session.get(Mailbox, mailbox_id) if mailbox_id else None
    if mailbox is not None and clean_address(mailbox.from_address):
        return clean_address(mailbox.from_address), clean_header_text(mailbox.from_name, 120), mailbox
    cfg = current_app.config
    for value in (cfg.get("IMAP_FROM"), cfg.get("MAIL_DEFAULT_SENDER")):
        if isinstance(value, (tuple, list)) and len(value) == 2:
            name, addr = value
        else:
            name, addr = parseaddr(value or "")
        if clean_address(addr):
            return clean_address(addr), clean_header_text(name, 120), None
    return "helpdesk@localhost", "", None


def message_id_domain(from_addr):
    """MAIL_MESSAGE_ID_DOMAIN, else the domain of the From address."""
    return current_app.config.get("MAIL_MESSAGE_ID_DOMAIN") or (from_addr or "").rpartition("@")[2] or "localhost"


def new_message_id(ticket_id, kind, from_addr):
    """A fresh signed Message-ID (without <>) for a mail of this ticket; unsigned without a ticket."""
    code = KIND_CODES.get(kind, "m")
    if not ticket_id:
        domain = message_id_domain(from_addr)
        return make_msgid(idstring=code, domain=domain if _DOMAIN_OK.match(domain) else "localhost").strip("<>")
    try:
        return tokens.make_message_id(ticket_id, token_secret(), message_id_domain(from_addr), kind=code)
    except ValueError:  # a domain that cannot follow "@" in a msg-id
        return tokens.make_message_id(ticket_id, token_secret(), "localhost", kind=code)


def reply_to_for(ticket, mailbox):
    """The per-ticket plus-address when the mailbox supports it, else None."""
    if mailbox is None or not mailbox.plus_addressing or ticket is None:
        return None
    try:
        return tokens.plus_address(mailbox.from_address, ticket.id, token_secret())
    except ValueError:
        return None


def _thread_ids_statement():
    """The three sources of a ticket's thread in one statement (each with its own newest-first
    limit), tickets merged into it included. Built once, so its cache key is computed once:
    parameters `ticket` and `limit`."""
    ticket, limit = bindparam("ticket"), bindparam("limit")
    merged = select(Ticket.id).where(Ticket.merged_into_id == ticket)

    def of_ticket(column):
        return or_(column == ticket, column.in_(merged))

    parts = [
        select(MailMessageId.created_at.label("created"), MailMessageId.message_id.label("mid"))
        .where(of_ticket(MailMessageId.ticket_id), MailMessageId.direction == "in")
        .order_by(MailMessageId.created_at.desc()).limit(limit).subquery(),
        select(Message.created_at.label("created"), Message.email_message_id.label("mid"))
        .where(of_ticket(Message.ticket_id), Message.email_message_id.is_not(None), Message.kind == "reply")
        .order_by(Message.id.desc()).limit(limit).subquery(),
        select(OutboundMail.created_at.label("created"), OutboundMail.message_id.label("mid"))
        .where(of_ticket(OutboundMail.ticket_id), OutboundMail.user_id.is_(None), OutboundMail.status != "held")
        .order_by(OutboundMail.id.desc()).limit(limit).subquery(),
    ]
    return union_all(*(select(p.c.created, p.c.mid) for p in parts))


_THREAD_IDS = _thread_ids_statement()


def thread_started(ticket_id):
    """A ticket created in this batch of inbound mail: its thread is kept in the batch (what
    `thread_add` records), so its first mails need not write and read the database for it."""
    batchcache.put("thread", ticket_id, [])


def thread_add(ticket_id, created, message_id):
    """A Message-ID joined the thread of a ticket whose thread the batch keeps."""
    known = batchcache.get("thread", ticket_id)
    if known is not None and message_id:
        known.append((created, message_id))


def thread_joined(ticket_id, created, message_id):
    """A Message-ID joined the ticket's thread in this transaction (a customer's message, a bounce).
    In a batch the thread is then kept there (read first if it was not), so that reading it later
    need not flush the batch; outside a batch the database is read every time."""
    if batchcache.is_open():
        # the thread is the surviving ticket's when this one was merged (a bounce of mail sent before)
        with db.session.no_autoflush:
            ticket = _ticket(ticket_id)
            while ticket is not None and ticket.merged_into_id:
                ticket_id = ticket.merged_into_id
                ticket = _ticket(ticket_id)
        _batch_thread(ticket_id)
        thread_add(ticket_id, created, message_id)


def _batch_thread(ticket_id, limit=200):
    """The thread of a ticket as the batch keeps it: read from the database the first time, without
    writing the batch first. Whatever joins a thread in a batch is recorded with `thread_add` (our
    mails, by queue_mail) or `thread_joined` (messages and bounces), so that read misses nothing."""
    known = batchcache.get("thread", ticket_id)
    if known is None:
        with db.session.no_autoflush:
            known = [tuple(r) for r in db.session.execute(_THREAD_IDS, {"ticket": ticket_id, "limit": limit})]
        batchcache.put("thread", ticket_id, known)
    return known


def thread_ids(ticket_id, limit=200, before=None):
    """The ticket's Message-IDs the customer side has seen, oldest first: what they sent (and
    tickets merged into this one), our mails to them. Agent notifications are not part of it.
    `before`: only ids known before that time."""
    found = {}
    # (each of the statement's three sources is limited, not their sum: nothing is cut from it here)
    rows = _batch_thread(ticket_id, limit) if batchcache.is_open() else \
        db.session.execute(_THREAD_IDS, {"ticket": ticket_id, "limit": limit}).all()
    for created, mid in rows:
        if mid and not mid.startswith("hash:") and (mid not in found or created < found[mid]):
            found[mid] = created
    return [mid for mid, created in sorted(found.items(), key=lambda kv: (kv[1], kv[0]))
            if before is None or created <= before]


def thread_headers(ticket_id, before=None, exclude=None):
    """(In-Reply-To, References) as stored: ids without <>; References space-separated, capped to
    the first id and the newest ones."""
    known = [m for m in thread_ids(ticket_id, before=before) if m != exclude] if ticket_id else []
    if not known:
        return None, None
    refs = known if len(known) <= MAX_REFERENCES else [known[0]] + known[-(MAX_REFERENCES - 1):]
    return known[-1], " ".join(refs)


def bare_subject(subject, number=None):
    """The ticket's subject without reply prefixes and without its own [#N] tag."""
    text = strip_prefixes(clean_header_text(subject))
    if number is not None:
        text = " ".join(text.replace(f"[#{number}]", " ").split())
    return text


def tagged_subject(number, text, reply=False):
    """"[#N] text" (the tag once), "Re: [#N] text" for replies; one safe line."""
    text = clean_header_text(text)
    text = " ".join(text.replace(f"[#{number}]", " ").split())
    out = f"[#{number}] {text}".strip()
    return clean_header_text(("Re: " if reply else "") + out, SUBJECT_MAX)


def mail_locale(language):
    """The locale of a customer's mail: theirs when known, None (bilingual) otherwise."""
    return language if language in LANGS else None


def agent_locale(user):
    """Agents get their own language, else the default locale."""
    loc = getattr(user, "locale", None)
    return loc if loc in LANGS else current_app.config.get("BABEL_DEFAULT_LOCALE", "id")


def render_subject(kind, locale, **ctx):
    """The subject line of a kind from templates/mail/<lang>/<kind>.subject.txt (bilingual: "id / en")."""
    langs = [locale] if locale else list(LANGS)
    # Straight from the Jinja environment (its globals, such as company()): a subject line uses no
    # request context, and render_template would run every context processor for each mail.
    env = current_app.jinja_env
    parts = [clean_header_text(env.get_template(f"mail/{lang}/{kind}.subject.txt").render(lang=lang, **ctx))
             for lang in langs]
    return " / ".join(p for p in parts if p)


# ---------------------------------------------------------------- the one way a mail is recorded

def queue_mail(kind, *, ticket, to, subject, cc=(), locale=None, automatic=True, user_id=None,
               message_row_id=None, context=None, internal=False, to_sender=True, reply=False, now=None):
    """Record one mail and its outbox job in the current transaction. Returns the row, or None when
    no recipient may receive it.

    - `subject` is the text after the ticket tag; the tag [#N] is added once ("Re: " when `reply`
      and the thread already has mail).
    - `locale`: "id" / "en", None for bilingual (Indonesian first).
    - `automatic`: goes through the budget (held when over it), never to a bouncing address, and
      never back to an automated sender when `to_sender` (mail to the ticket's customer side).
      `internal`: mail to agents (the per-ticket window does not count it).
    - `context`: JSON-able extras for the templates (kept in the outbox job's arguments).
    Templates: templates/mail/<lang>/<kind>.txt and .html.
    """
    now = now or utcnow()
    to, cc = clean_addresses(to), clean_addresses(cc)
    cc = [c for c in cc if c.lower() not in {t.lower() for t in to}]
    status, held_reason = "queued", None
    if automatic:
        for addr in list(to) + list(cc):
            reason = budget.blocked_reason(addr, ticket, to_sender=to_sender and not internal)
            if reason:
                log.info("mail %s for ticket %s not sent to %s: %s", kind, ticket.id if ticket else None, addr, reason)
                to = [a for a in to if a != addr]
                cc = [a for a in cc if a != addr]
    if not to:
        return None
    if automatic:
        allowed, held_reason = budget.allow(to + cc, ticket.id if ticket else None, now, internal=internal)
        if not allowed:
            status = "held"
            log.warning("mail %s for ticket %s held: %s", kind, ticket.id if ticket else None, held_reason)
    from_addr, _name, _mailbox = sender_for(ticket)
    mid = new_message_id(ticket.id if ticket else None, kind, from_addr)
    number = ticket.number if ticket else None
    full_subject = tagged_subject(number, subject) if number else clean_header_text(subject, SUBJECT_MAX)
    row = OutboundMail(ticket_id=ticket.id if ticket else None, message_row_id=message_row_id, user_id=user_id,
                       kind=kind, message_id=mid, to_addrs=to, cc_addrs=cc, subject=full_subject, locale=locale,
                       automatic=automatic, status=status, last_error=held_reason, created_at=now)
    db.session.add(row)
    # The row's id is for the outbox job. Outside a batch of inbound mail one flush writes it and
    # what the caller wrote before (the thread the headers are read from); in a batch the id is
    # handed out and the thread of a ticket made in the batch is known without the database. The
    # headers leave this mail itself out (as the send job does when it fills them in).
    if not idalloc.assign(row):
        db.session.flush()
    if ticket is not None:
        in_reply_to, references = thread_headers(ticket.id, exclude=mid)
        if in_reply_to:
            row.in_reply_to, row.references = in_reply_to, references
            if reply:
                row.subject = tagged_subject(number, subject, reply=True)
        if user_id is None and status != "held":
            thread_add(ticket.id, now, mid)
    key = dict(message_id=mid, ticket_id=row.ticket_id, message_row_id=message_row_id if kind == "reply" else None,
               inbound_id=None, direction="out", created_at=now)  # (the columns of the customers' keys too)
    if not bulkrows.add(MailMessageId, **key):  # (a batch of inbound mail writes them together)
        db.session.add(MailMessageId(**key))
    args = [row.id, context] if context else [row.id]
    if status == "queued":
        if automatic:
            budget.record(to + cc, row.ticket_id, row.id, now, internal=internal)
        jobs.enqueue(SEND_JOB, *args, queue="mail", flush=False)
    elif context:
        # keep the context for release_held(): an outbox row that is already done
        db.session.add(jobs.OutboxJob(queue="mail", func=SEND_JOB, args=args, created_at=now, done_at=now,
                                      last_error="held"))
    return row  # its Message-ID, budget and outbox rows are written by the next flush (or autoflush)


def release_held(outbound_id, now=None):
    """Send a held mail anyway (an admin's decision). Returns the row, or None if not held."""
    row = db.session.get(OutboundMail, outbound_id)
    if row is None or row.status != "held":
        return None
    context = None
    parked = db.session.execute(
        select(jobs.OutboxJob.args).where(
            jobs.OutboxJob.func == SEND_JOB, jobs.OutboxJob.created_at >= row.created_at - timedelta(minutes=1),
            or_(cast(jobs.OutboxJob.args, String) == f"[{row.id}]",
                cast(jobs.OutboxJob.args, String).like(f"[{row.id},%")))
        .order_by(jobs.OutboxJob.id).limit(5)).scalars().all()
    for args in parked:
        if args and args[0] == row.id and len(args) > 1:
            context = args[1]
    row.status, row.last_error = "queued", None
    jobs.enqueue(SEND_JOB, *([row.id, context] if context else [row.id]), queue="mail")
    db.session.flush()
    return row


# ---------------------------------------------------------------- the mails of the desk

def customer_address(ticket, customer):
    """Where mail to the ticket's customer goes: the Reply-To they gave, else their primary address."""
    return getattr(ticket, "reply_to", None) or (customer.primary_email if customer else None)


def refusal_code(reason):
    """One of REFUSAL_REASONS for the reasons the ingest gives ("larger than 25 MB", "file type .exe
    is not accepted", "infected: ..."), else the text itself."""
    text = clean_header_text(reason, 300)
    low = text.lower()
    if low in REFUSAL_REASONS:
        return low
    if low.startswith(("larger than", "too large")):
        return "too_large"
    if low.startswith("file type") or "not accepted" in low or "blocked" in low:
        return "blocked_type"
    if "virus" in low or "infected" in low:
        return "infected"
    return text


def _ticket(ticket_id):
    return idalloc.get(Ticket, ticket_id) if ticket_id else None  # (a row of the batch not written yet too)


_ACK_OF = select(OutboundMail).where(OutboundMail.ticket_id == bindparam("ticket"), OutboundMail.kind == "ack").limit(1)


def queue_acknowledgement(ticket_id, to_addr=None, now=None):
    """The acknowledgement of a new ticket to its customer (or `to_addr`, e.g. the address typed in
    the web form or the From of the mail): number, what happens next, the signed portal link.
    Automatic (Auto-Submitted: auto-replied). Once per ticket: a second call returns the first row."""
    ticket = _ticket(ticket_id)
    if ticket is None:
        return None
    def load():
        # No autoflush: outside a batch queue_mail writes its row at once; in a batch an ack is only
        # queued for a ticket the batch made, known below ("ack", "new_ticket") without this read.
        with db.session.no_autoflush:
            return db.session.execute(_ACK_OF, {"ticket": ticket.id}).scalar_one_or_none()

    # in a batch, a ticket it created is known to have none yet (tickets.create_ticket notes it)
    existing = batchcache.get("ack", ticket.id)
    if existing is None and not batchcache.get("new_ticket", ticket.id):
        existing = load()
    if existing is not None:
        return existing
    customer = idalloc.get(Customer, ticket.customer_id)
    to = to_addr or customer_address(ticket, customer)
    locale = mail_locale(customer.language if customer else None)
    subject = render_subject("ack", locale, ticket=ticket, subject=bare_subject(ticket.subject, ticket.number))
    row = queue_mail("ack", ticket=ticket, to=[to], subject=subject, locale=locale, automatic=True, now=now)
    batchcache.put("ack", ticket.id, row)
    return row


def queue_agent_reply(message_id, now=None):
    """An agent's public reply, with its attachments, to the customer with the ticket's Cc list.
    Not automatic: never held. Its Message-ID is also stored on the message."""
    msg = idalloc.get(Message, message_id)
    if msg is None or msg.kind != "reply" or msg.author_user_id is None:
        return None
    ticket = _ticket(msg.ticket_id)
    customer = idalloc.get(Customer, ticket.customer_id)
    to = customer_address(ticket, customer)
    row = queue_mail("reply", ticket=ticket, to=[to], cc=list(ticket.cc_addresses or []),
                     subject=bare_subject(ticket.subject, ticket.number),
                     locale=mail_locale(customer.language if customer else None), automatic=False,
                     message_row_id=msg.id, reply=True, now=now)
    if row is not None:
        msg.email_message_id = row.message_id
    return row


def _active_users(query):
    return db.session.execute(query.where(User.active.is_(True)).order_by(User.id)).scalars().all()


def _queue_members(queue_id):
    return batchcache.lookup("queue_members", queue_id, lambda: _active_users(
        select(User).join(QueueMember, QueueMember.user_id == User.id).where(QueueMember.queue_id == queue_id)))


def notify_agents(kind, ticket, users, message_row_id=None, context=None, now=None):
    """One internal mail of `kind` about the ticket to each user (once each, in their language)."""
    out = []
    seen = set()
    subjects = {}  # by language: the same line for every agent who reads it
    for user in users:
        if user.id in seen:
            continue
        seen.add(user.id)
        locale = agent_locale(user)
        if locale not in subjects:
            subjects[locale] = render_subject(kind, locale, ticket=ticket,
                                              subject=bare_subject(ticket.subject, ticket.number))
        subject = subjects[locale]
        row = queue_mail(kind, ticket=ticket, to=[user.email], subject=subject, locale=locale, automatic=True,
                         internal=True, user_id=user.id, message_row_id=message_row_id, context=context, now=now)
        if row is not None:
            out.append(row)
    return out


def users_with_role(role):
    """The active agents with a role (billing, technical_support, ...)."""
    return _active_users(select(User).join(UserRole, UserRole.user_id == User.id).where(UserRole.role == role))


def queue_customer_mail(kind, *, customer_id, ticket=None, context=None, reply=True, now=None, **subject_context):
    """A mail of `kind` to a customer in their language, after a person's action (not automatic):
    on the ticket's thread, to its Reply-To, when there is a ticket; else to the customer's primary
    address. None for an anonymised customer or one without an address."""
    customer = db.session.get(Customer, customer_id) if customer_id else None
    if customer is None or customer.anonymised_at is not None:
        return None
    to = customer_address(ticket, customer) if ticket is not None else customer.primary_email
    if not to:
        return None
    locale = mail_locale(customer.language)
    subject = render_subject(kind, locale, ticket=ticket, **subject_context,
                             subject=bare_subject(ticket.subject, ticket.number) if ticket is not None else "")
    return queue_mail(kind, ticket=ticket, to=[to], subject=subject, locale=locale, automatic=False,
                      context=context, reply=reply and ticket is not None, now=now)


def queue_new_ticket_notifications(ticket_id, now=None):
    """Tell the agents of the ticket's queue that a new ticket arrived (one mail each, in their language)."""
    ticket = _ticket(ticket_id)
    if ticket is None:
        return []
    members = _queue_members(ticket.queue_id)
    if not members:  # nobody to tell: no need to look up the first message
        return []
    made = getattr(ticket, "first_message", None)  # (tickets.create_ticket: in a batch, not written yet)
    if made is not None and idalloc.assign(made):
        first = made.id
    else:
        first = db.session.execute(select(Message.id).where(Message.ticket_id == ticket.id)
                                   .order_by(Message.id).limit(1)).scalar_one_or_none()
    return notify_agents("notify_new", ticket, members, message_row_id=first, now=now)


def queue_customer_reply_notifications(message_id, now=None):
    """The customer replied: tell the assignee, else the queue's agents; on a ticket pending billing,
    the billing agents too."""
    msg = idalloc.get(Message, message_id)
    if msg is None:
        return []
    ticket = _ticket(msg.ticket_id)
    if ticket.assignee_id:
        users = _active_users(select(User).where(User.id == ticket.assignee_id))
    else:
        users = _queue_members(ticket.queue_id)
    if ticket.status == "pending_billing":
        users = list(users) + list(_active_users(
            select(User).join(UserRole, UserRole.user_id == User.id).where(UserRole.role == "billing")))
    return notify_agents("notify_reply", ticket, users, message_row_id=msg.id, now=now)


def queue_assignment_notification(ticket_id, user_id, now=None):
    """Tell an agent a ticket was assigned to them."""
    ticket = _ticket(ticket_id)
    user = db.session.get(User, user_id) if user_id else None
    if ticket is None or user is None or not user.active:
        return None
    rows = notify_agents("notify_assign", ticket, [user], now=now)
    return rows[0] if rows else None


def queue_refused_files(ticket_id, to_addr, refused, now=None):
    """Tell the sender which attachments were refused and why. `refused`: [(filename, reason)], the
    reason one of REFUSAL_REASONS ("too_large", "blocked_type", "infected") or a text shown as is.
    Automatic (Auto-Submitted: auto-replied)."""
    ticket = _ticket(ticket_id)
    items = [[clean_header_text(name, 255) or "attachment", refusal_code(reason)] for name, reason in refused or ()]
    if ticket is None or not items:
        return None
    customer = idalloc.get(Customer, ticket.customer_id)
    to = clean_address(to_addr)
    own = to is not None and customer is not None and (
        to.lower() in {e.email.lower() for e in customer.emails} or to.lower() == (ticket.reply_to or "").lower())
    language = customer.language if own else None
    locale = mail_locale(language)
    subject = render_subject("refused", locale, ticket=ticket, subject=bare_subject(ticket.subject, ticket.number))
    return queue_mail("refused", ticket=ticket, to=[to], subject=subject, locale=locale, automatic=True,
                      context={"refused": items, "own": own}, now=now)
