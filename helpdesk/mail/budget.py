"""The automatic-mail budget: no mail storms, whatever answers our mail.

Every automatic mail (acknowledgements, agent notifications, refused-file notices, and later the
SLA and announcement mails) asks `allow()` before it is queued and calls `record()` when it is.
Within any sliding hour at most MAIL_BUDGET_PER_ADDRESS_HOUR automatic mails go to one address,
and at most MAIL_BUDGET_PER_TICKET_HOUR automatic mails to people outside the desk go out about
one ticket. An out-of-office robot answering each of our mails therefore gets a handful of mails,
not a loop. Mail over budget is kept with status "held" (never sent) and shown to admins
(`held_count()`, `recent_held()`); an admin may send it anyway with `outbound.release_held()`.

The per-ticket window counts only mails to outside recipients (`internal=False`): notifying the
agents of a big queue about one ticket is not a loop, and each agent's address has its own window.

Separately from the budget, no automatic mail goes to an address flagged as bouncing
(customer_emails.bouncing_at), nor back to the sender of a ticket marked automated_sender:
`blocked_reason()` tells why a recipient is left out.

Agent replies are not automatic: they never ask the budget and are never held.
"""
from datetime import timedelta

from flask import current_app
from sqlalchemy import bindparam, func, select

from .. import batchcache, bulkrows
from ..customers.models import CustomerEmail
from ..extensions import db
from ..timeutil import utcnow
from .models import AutoMailLog, OutboundMail

WINDOW = timedelta(hours=1)


def _norm(addresses):
    out = []
    for a in addresses or ():
        a = (a or "").strip().lower()
        if a and a not in out:
            out.append(a)
    return out


def address_count(recipient, now=None):
    """Automatic mails to this address in the hour before `now`."""
    now = now or utcnow()
    return db.session.scalar(
        select(func.count()).select_from(AutoMailLog)
        .where(AutoMailLog.recipient == recipient.strip().lower(), AutoMailLog.sent_at > now - WINDOW)
    )


def ticket_count(ticket_id, now=None):
    """Automatic mails to outside recipients about this ticket in the hour before `now`."""
    now = now or utcnow()
    return db.session.scalar(
        select(func.count()).select_from(AutoMailLog)
        .where(AutoMailLog.ticket_id == ticket_id, AutoMailLog.sent_at > now - WINDOW)
    )


def _both_counts_statement():
    since = bindparam("since", type_=AutoMailLog.__table__.c.sent_at.type)
    return select(
        select(func.count()).select_from(AutoMailLog)
        .where(AutoMailLog.recipient == bindparam("recipient"), AutoMailLog.sent_at > since).scalar_subquery(),
        select(func.count()).select_from(AutoMailLog)
        .where(AutoMailLog.ticket_id == bindparam("ticket"), AutoMailLog.sent_at > since).scalar_subquery())


_BOTH_COUNTS = _both_counts_statement()  # built once: its cache key is computed once


def _both_counts(recipient, ticket_id, now):
    """(address_count, ticket_count) in one statement."""
    return tuple(db.session.execute(_BOTH_COUNTS, {"recipient": recipient.strip().lower(), "ticket": ticket_id,
                                                   "since": now - WINDOW}).one())


def allow(recipients, ticket_id=None, now=None, *, internal=False):
    """May an automatic mail to `recipients` (about `ticket_id`) go out now?

    Returns (allowed: bool, held_reason: str | None). The reason names the window that is full,
    e.g. "budget: 10 automatic mails to a@b.c in the last hour". `internal=True` (mail to agents)
    skips the per-ticket window. Only reads: call `record()` when the mail is queued.
    """
    now = now or utcnow()
    cfg = current_app.config
    per_address = cfg.get("MAIL_BUDGET_PER_ADDRESS_HOUR", 10)
    per_ticket = cfg.get("MAIL_BUDGET_PER_TICKET_HOUR", 20)
    rcpts = _norm(recipients)
    ticket_n = _batch_count("ticket", ticket_id, now) if ticket_id is not None and not internal else None
    for rcpt in rcpts:
        n = _batch_count("address", rcpt, now)
        if n is None and len(rcpts) == 1 and ticket_id is not None and not internal and ticket_n is None:
            n, ticket_n = _both_counts(rcpt, ticket_id, now)  # the common case: one round trip
        elif n is None:
            n = address_count(rcpt, now)
        if n >= per_address:
            return False, f"budget: {n} automatic mails to {rcpt} in the last hour (limit {per_address})"
    if ticket_id is not None and not internal:
        n = ticket_count(ticket_id, now) if ticket_n is None else ticket_n
        if n + len(_norm(recipients)) > per_ticket:
            return False, f"budget: {n} automatic mails about ticket id {ticket_id} in the last hour (limit {per_ticket})"
    return True, None


def record(recipients, ticket_id=None, outbound_id=None, now=None, *, internal=False):
    """Count one automatic mail to each recipient in the budget windows (in the caller's transaction).

    Internal mail (to agents) is logged without its ticket, so it counts for the address only.
    """
    now = now or utcnow()
    for rcpt in _norm(recipients):
        row = dict(recipient=rcpt, ticket_id=None if internal else ticket_id, outbound_id=outbound_id, sent_at=now)
        if not bulkrows.add(AutoMailLog, **row):  # (a batch of inbound mail writes them together)
            db.session.add(AutoMailLog(**row))
        _batch_note("address", rcpt, now)
        if ticket_id is not None and not internal:
            _batch_note("ticket", ticket_id, now)


# ---------------------------------------------------------------- the windows of a batch
# A batch (helpdesk.batchcache) reads the recent sends of all its recipients at once (`prefetch`)
# and keeps them, with what it records itself, as (since, [sent_at]): every send after `since`
# (None: all of them, for a ticket the batch created). A count whose window starts before
# `since` is not answered from it, but read as outside a batch.

def prefetch(recipients, now=None):
    """Read the recent automatic mails to these addresses for a batch, in one statement."""
    rcpts = _norm(recipients)
    if not batchcache.is_open() or not rcpts:
        return
    since = (now or utcnow()) - WINDOW
    times = {r: [] for r in rcpts}
    for rcpt, sent_at in db.session.execute(
            select(AutoMailLog.recipient, AutoMailLog.sent_at)
            .where(AutoMailLog.recipient.in_(rcpts), AutoMailLog.sent_at > since)):
        times[rcpt].append(sent_at)
    for rcpt, sent in times.items():
        batchcache.put("budget_address", rcpt, (since, sent))


def _batch_entry(kind, key, now):
    """The batch's (since, [sent_at]) of an address / a ticket, read when first asked for (without
    flushing the batch: its own sends are noted here from then on). None outside a batch."""
    if not batchcache.is_open():
        return None
    entry = batchcache.get(f"budget_{kind}", key)
    if entry is None:
        if kind == "ticket" and batchcache.get("new_ticket", key):
            entry = (None, [])  # created in this batch: nothing was sent about it before
        else:
            since = now - WINDOW
            column = AutoMailLog.recipient if kind == "address" else AutoMailLog.ticket_id
            with db.session.no_autoflush:
                entry = (since, list(db.session.execute(
                    select(AutoMailLog.sent_at).where(column == key, AutoMailLog.sent_at > since)).scalars()))
        batchcache.put(f"budget_{kind}", key, entry)
    return entry


def _batch_count(kind, key, now):
    """Sends to an address / about a ticket in the hour before `now`, from the batch; None when it
    does not hold them."""
    entry = _batch_entry(kind, key, now)
    start = now - WINDOW
    if entry is None or (entry[0] is not None and entry[0] > start):
        return None
    return sum(1 for t in entry[1] if t > start)


def _batch_note(kind, key, now):
    entry = _batch_entry(kind, key, now)
    if entry is not None:
        entry[1].append(now)


def bouncing(addresses):
    """The subset of these addresses flagged as bouncing (a hard bounce was received)."""
    addrs = _norm(addresses)
    if not addrs:
        return set()

    def load(todo):
        found = set(db.session.execute(
            select(CustomerEmail.email).where(CustomerEmail.email.in_(todo), CustomerEmail.bouncing_at.is_not(None))
        ).scalars())
        return {a: a in found for a in todo}

    # a batch asks once for all its senders (helpdesk.batchcache); a hard bounce updates the entry
    return {a for a, flagged in batchcache.lookup_many("bouncing", addrs, load).items() if flagged}


def blocked_reason(recipient, ticket=None, *, to_sender=True):
    """Why no automatic mail may go to this recipient at all (not a budget matter), or None.

    - the address bounces (customer_emails.bouncing_at);
    - the mail would go back to the sender of a ticket marked automated_sender (`to_sender`).
    """
    if ticket is not None and to_sender and ticket.automated_sender:
        return "automated sender"
    if bouncing([recipient]):
        return "address bouncing"
    return None


def held_count(since=None):
    """How many mails are held (over budget, not sent); only those created after `since` if given."""
    q = select(func.count()).select_from(OutboundMail).where(OutboundMail.status == "held")
    if since is not None:
        q = q.where(OutboundMail.created_at >= since)
    return db.session.scalar(q)


def recent_held(limit=20):
    """The newest held mails (OutboundMail rows, newest first), for the admin pages."""
    return db.session.execute(
        select(OutboundMail).where(OutboundMail.status == "held").order_by(OutboundMail.id.desc()).limit(limit)
    ).scalars().all()
