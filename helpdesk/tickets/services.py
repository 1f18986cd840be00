"""Ticket rules: create, reply, note, status, priority, assignment, transfer, tags, merge, bulk.

Services take ids and primitives (the acting user's id included), raise domain errors, and only
flush: the caller (a view, a job, the API) owns the commit.
"""
from contextlib import contextmanager
from datetime import timedelta

from flask import current_app, has_request_context
from flask_babel import pgettext
from sqlalchemy import or_, select, update

from .. import batchcache, bulkrows, idalloc
from ..auth.i18n import _
from ..auth.models import User
from ..customers.models import Customer
from ..errors import Conflict, DomainError, Forbidden, InvalidTransition, NotFound
from ..extensions import db
from ..mail import outbound as mail_outbound
from ..sla import csat
from ..sla import services as sla
from ..warranty import services as warranty
from ..timeutil import utcnow
from . import search, states, storage
from .html import html_to_text, preview, sanitize
from .models import (
    CHANNELS, PRIORITIES, Attachment, AuditEvent, CannedResponse, Counter, Message, Queue, QueueMember, Tag,
    Ticket,
)


# ---------------------------------------------------------------- who may see what

def get_user(user_id):
    """The acting agent, active, or Forbidden."""
    user = db.session.get(User, user_id) if user_id else None
    if user is None or not user.is_active:
        raise Forbidden(_("Unknown or inactive user."))
    return user


def queue_ids_of(user_id):
    """Ids of the queues an agent belongs to."""
    return set(db.session.execute(select(QueueMember.queue_id).where(QueueMember.user_id == user_id)).scalars())


def visibility_clause(user):
    """SQL condition: tickets this agent may see (None for admins: everything)."""
    if user.is_admin:
        return None
    qids = queue_ids_of(user.id)
    conds = [Ticket.assignee_id == user.id]
    if qids:
        conds.append(Ticket.queue_id.in_(sorted(qids)))
    if user.has_role("billing"):
        conds.append(Ticket.status == "pending_billing")
    return or_(*conds)


def can_see(user, ticket):
    """An agent sees tickets of their queues and tickets assigned to them; admins see all.

    Billing agents also see every ticket waiting for billing, whichever queue it is in.
    """
    if user.is_admin or ticket.assignee_id == user.id:
        return True
    if ticket.status == "pending_billing" and user.has_role("billing"):
        return True
    return ticket.queue_id in queue_ids_of(user.id)


def get_ticket_for(user_id, ticket_id):
    """A ticket the acting user may see, or NotFound (not Forbidden: do not reveal it exists)."""
    user = get_user(user_id)
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or not can_see(user, ticket):
        raise NotFound(_("Ticket not found."))
    return user, ticket


def resolve_number(number):
    """The ticket for a human number, following merges (an old number leads to the merged ticket)."""
    ticket = db.session.execute(select(Ticket).where(Ticket.number == number)).scalar_one_or_none()
    seen = set()
    while ticket is not None and ticket.merged_into_id and ticket.id not in seen:
        seen.add(ticket.id)
        ticket = db.session.get(Ticket, ticket.merged_into_id)
    return ticket


# ---------------------------------------------------------------- helpers

# Built once (its cache key is computed once), on the table: the session's Counter rows are not
# synchronised (none is read after it is created).
_COUNTERS = Counter.__table__
_NEXT_NUMBER = (update(_COUNTERS).where(_COUNTERS.c.name == "ticket").values(value=_COUNTERS.c.value + 1)
                .returning(_COUNTERS.c.value))


_NUMBERS = "ticket_numbers"  # session.info: the numbers a batch hands out in memory (numbers_in_memory)


@contextmanager
def numbers_in_memory(session):
    """In the block, ticket numbers come from the counter read once, counted on in memory, and
    `write_numbers` stores the last one: one statement per batch instead of one UPDATE per ticket.
    Only where idalloc hands out ids (a batch of inbound mail on SQLite: it holds the write lock, so
    nobody else takes a number meanwhile). An exception in the block forgets them (nothing was
    written); so does `forget_numbers`, after the caller rolled back what used them."""
    if not idalloc.active(session):
        yield
        return
    session.info[_NUMBERS] = None  # read at the first ticket
    try:
        yield
    except BaseException:
        forget_numbers(session)
        raise


def write_numbers(session):
    """Store the last number handed out in memory (see numbers_in_memory)."""
    state = session.info.pop(_NUMBERS, None)
    if state is not None:
        session.connection().execute(update(_COUNTERS).where(_COUNTERS.c.name == "ticket")
                                     .values(value=state["last"]))


def forget_numbers(session):
    session.info.pop(_NUMBERS, None)


def next_number():
    """The next ticket number: an atomic UPDATE ... RETURNING on the counter row.

    On PostgreSQL the row lock serialises concurrent creators until their commit; on SQLite the
    write lock does. Numbers are therefore sequential and unique. (A batch of inbound mail on
    SQLite counts them in memory: numbers_in_memory.)
    """
    info = db.session.info
    if info.get(_NUMBERS, False) is not False:
        state = info[_NUMBERS]
        if state is None:
            last = db.session.connection().execute(
                select(_COUNTERS.c.value).where(_COUNTERS.c.name == "ticket")).scalar_one_or_none()
            if last is None:  # no counter row yet: made, and counted, as outside a batch
                info.pop(_NUMBERS)
                return next_number()
            state = info[_NUMBERS] = {"last": int(last)}
        state["last"] += 1
        return state["last"]
    # On the session's connection, Core: no autoflush (the counter row is never pending: nothing need
    # be written first) and no ORM bulk-update step.
    value = db.session.connection().execute(_NEXT_NUMBER).scalar_one_or_none()
    if value is None:
        db.session.add(Counter(name="ticket", value=1000))
        db.session.flush()
        return next_number()
    return int(value)


def audit(ticket_id, actor_id, action, old=None, new=None, note=None, object_type="ticket", object_id=None,
          actor_customer_id=None, at=None):
    """Record one change in the audit trail (at `at`, else now). Returns the row, or None in a batch
    of inbound mail, which writes its audit events together (helpdesk.bulkrows)."""
    values = dict(ticket_id=ticket_id, actor_user_id=actor_id, actor_customer_id=actor_customer_id,
                  created_at=at or utcnow(), action=action, object_type=object_type, object_id=object_id or ticket_id,
                  old_value=None if old is None else str(old)[:300],
                  new_value=None if new is None else str(new)[:300], note=note)
    if bulkrows.add(AuditEvent, **values):
        return None
    ev = AuditEvent(**values)
    db.session.add(ev)
    return ev


def _set_status(ticket, new, actor_id, now, actor_customer_id=None, note=None):
    old = ticket.status
    if old == new:
        return
    ticket.status = new
    if new == "resolved":
        ticket.resolved_at = now
    elif new == "closed":
        ticket.closed_at = now
        ticket.resolved_at = ticket.resolved_at or now
    elif old in ("resolved", "closed"):
        ticket.resolved_at = None
        ticket.closed_at = None
    if old == "pending_billing":
        ticket.customer_replied = False
    ticket.last_activity_at = now
    audit(ticket.id, actor_id, "status", old, new, note=note, actor_customer_id=actor_customer_id)
    sla.on_status(ticket, old, new, now)
    if new == "resolved":
        csat.on_resolved(ticket, now)  # "How did we do?" to the customer


def _status_name(status):
    """A status key in an error message, through the "status" context of the catalogs: the key itself
    in English (the API documents keys) and outside a request, the label in Indonesian ("Selesai")."""
    if not has_request_context():
        return status
    names = {"new": pgettext("status", "new"), "open": pgettext("status", "open"),
             "pending_customer": pgettext("status", "pending_customer"),
             "pending_billing": pgettext("status", "pending_billing"),
             "resolved": pgettext("status", "resolved"), "closed": pgettext("status", "closed")}
    return names.get(status, status)


def _illegal(exc):
    """InvalidTransition for a states.IllegalTransition, in the user's language."""
    return InvalidTransition(_("A ticket cannot go from '%(old)s' to '%(new)s'.",
                               old=_status_name(exc.old), new=_status_name(exc.new)))


def _check_billing(user, old, new):
    """Only the billing role releases a ticket from pending_billing (admin does not imply billing)."""
    if old == "pending_billing" and new != old and not user.has_role("billing"):
        raise Forbidden(_("Only the billing department can release a ticket that is pending billing."))


def _store_attachments(ticket, message, files):
    """files: iterable of (filename, content_type, bytes). Enforces the size limit."""
    limit = current_app.config["MAX_ATTACHMENT_BYTES"]
    out = []
    for filename, content_type, data in files or ():
        if not filename and not data:
            continue
        if len(data) > limit:
            raise DomainError(_("The file %(filename)s is larger than the limit of %(mb)d MB.",
                                filename=repr(filename), mb=limit // (1024 * 1024)), field="attachments")
        digest = storage.save_bytes(data)
        att = Attachment(ticket_id=ticket.id, message_id=message.id, sha256=digest,
                         filename=(filename or "attachment")[:255], size=len(data),
                         content_type=(content_type or "application/octet-stream")[:127])
        db.session.add(att)
        out.append(att)
    if out:  # virus scanning before agents can open them, when a ClamAV daemon is configured
        from ..mail.services import scan_attachments

        scan_attachments(out)
    return out


def _message_parts(body_text, body_html):
    """(text, sanitised HTML) of a message as stored."""
    html = sanitize(body_html) if body_html else None
    return (body_text if body_text else html_to_text(html)), html


def _add_message(ticket, *, kind, body_text, body_html, author_user_id=None, author_customer_id=None,
                 channel=None, files=None, now, first=None, columns=None):
    """first: (text, html) of a new ticket's first message, whose count, activity and preview the
    ticket row was inserted with (no second write of the ticket, no read of its messages).
    columns: other columns of the message row (the mail ingest's Message-ID, thread rule, inbound
    row), written with its INSERT rather than by an UPDATE after it."""
    text, html = first or _message_parts(body_text, body_html)
    msg = Message(ticket_id=ticket.id, kind=kind, author_user_id=author_user_id,
                  author_customer_id=author_customer_id, channel=channel, body_text=text or "",
                  body_html=html, created_at=now, **(columns or {}))
    db.session.add(msg)
    if (files or first is None) and not idalloc.assign(msg):
        # the attachments, and the callers of a later message, need its id at once (in a batch of
        # inbound mail it is handed out, and the row written by the batch's flush); a new ticket's
        # first message without files is written by the next flush, with what follows it
        db.session.flush()
    msg.stored_attachments = _store_attachments(ticket, msg, files)  # (the mail ingest marks inline ones)
    if first is None:
        ticket.message_count = (ticket.message_count or 0) + 1
        ticket.last_activity_at = now
        if kind == "reply":
            ticket.last_message_preview = preview(text)
            mail_outbound.thread_joined(ticket.id, now, msg.email_message_id)
    search.reindex(db.session, ticket.id, bodies=[msg.body_text] if first is not None else None)
    return msg


# ---------------------------------------------------------------- create

def create_ticket(*, customer_id, subject, body_text, channel, queue_id, actor_id=None, priority="normal",
                  body_html=None, files=None, tags=(), assignee_id=None, linked_ticket_id=None, now=None,
                  columns=None, message_columns=None):
    """Open a ticket with its first message.

    actor_id is the agent creating it on the customer's behalf (phone, walk-in), or None when the
    customer wrote it (web, email). The first message is always the customer's words.
    columns / message_columns: other columns of the ticket row (an email ticket's mailbox, Cc list,
    Reply-To) and of its first message, written with their INSERTs rather than by UPDATEs after them.
    """
    now = now or utcnow()
    if channel not in CHANNELS:
        raise DomainError(_("Unknown channel %(channel)s.", channel=repr(channel)), field="channel")
    if priority not in PRIORITIES:
        raise DomainError(_("Unknown priority %(priority)s.", priority=repr(priority)), field="priority")
    subject = (subject or "").strip()
    if not subject:
        raise DomainError(_("A subject is required."), field="subject")
    if not (body_text or "").strip() and not body_html:
        raise DomainError(_("A message is required."), field="body")
    # (a batch keeps the row: the session holds rows weakly, and would read it again for each ticket)
    if batchcache.lookup("queue", queue_id, lambda: db.session.get(Queue, queue_id)) is None:
        raise DomainError(_("Unknown queue."), field="queue")
    customer = idalloc.get(Customer, customer_id)  # (in a batch of mail, maybe not written yet)
    if customer is None:
        raise DomainError(_("Unknown customer."), field="customer")
    if actor_id is not None:
        user = get_user(actor_id)
        if not user.is_admin and queue_id not in queue_ids_of(user.id):
            raise Forbidden(_("You can only create tickets in your own queues."))
    first = _message_parts(body_text, body_html)
    ticket = Ticket(number=next_number(), subject=subject[:300], channel=channel, status="new", priority=priority,
                    queue_id=queue_id, customer_id=customer.id, created_at=now, last_activity_at=now,
                    last_customer_message_at=now, linked_ticket_id=linked_ticket_id,
                    message_count=1, last_message_preview=preview(first[0]), **(columns or {}))
    db.session.add(ticket)
    if not idalloc.assign(ticket):  # in a batch of inbound mail: written by the batch's flush
        db.session.flush()
    # created in this batch: nothing was sent about it yet, and its thread is what the batch adds to
    # it; and the batch keeps the row for a reply later in it (the session holds rows weakly)
    batchcache.put("new_ticket", ticket.id, ticket)
    mail_outbound.thread_started(ticket.id)
    audit(ticket.id, actor_id, "created", None, ticket.number, note=f"channel={channel}",
          actor_customer_id=None if actor_id else customer.id, at=now)
    warranty.on_created(ticket, now, first[0])
    from ..maintenance import services as maintenance

    maintenance.on_ticket_created(ticket, now)  # linked to an ongoing window; one auto-reply per window
    sla.on_created(ticket, now, customer)
    ticket.first_message = _add_message(ticket, kind="reply", body_text=body_text, body_html=body_html,
                                        author_customer_id=customer.id, channel=channel, files=files, now=now,
                                        first=first, columns=message_columns)
    mail_outbound.thread_add(ticket.id, now, ticket.first_message.email_message_id)
    if tags:
        _apply_tags(ticket, tags, actor_id, now)
    if assignee_id:
        assign(ticket.id, actor_id, assignee_id, now=now)
    mail_outbound.queue_new_ticket_notifications(ticket.id, now=now)
    return ticket


# ---------------------------------------------------------------- messages

def add_agent_message(ticket_id, actor_id, *, body_text, kind="reply", body_html=None, files=None, status=None,
                      seen_last_message_id=None, force=False, now=None):
    """An agent's public reply or internal note.

    When `seen_last_message_id` is given and someone else added a message since, Conflict is
    raised (unless force) so the agent can read it before sending.
    """
    now = now or utcnow()
    user, ticket = get_ticket_for(actor_id, ticket_id)
    if kind not in ("reply", "note"):
        raise DomainError(_("Unknown message kind."))
    if not (body_text or "").strip() and not body_html and not files:
        raise DomainError(_("The message is empty."), field="body")
    if ticket.merged_into_id:
        raise DomainError(_("This ticket was merged; reply on the ticket it was merged into."))
    if seen_last_message_id is not None and not force:
        newer = db.session.execute(
            select(Message).where(Message.ticket_id == ticket.id, Message.id > seen_last_message_id,
                                  or_(Message.author_user_id.is_(None), Message.author_user_id != user.id))
            .order_by(Message.id)
        ).scalars().all()
        if newer:
            raise Conflict(_("Someone else added a message since you opened this ticket."),
                           new_message_ids=[m.id for m in newer])
    new_status = None
    if kind == "reply":
        if ticket.status == "closed":
            raise InvalidTransition(_("This ticket is closed. Open a new ticket to contact the customer."))
        try:
            new_status = states.on_agent_reply(ticket.status, status)
        except states.IllegalTransition as exc:
            raise _illegal(exc) from exc
        _check_billing(user, ticket.status, new_status)
    elif status and status != ticket.status:
        try:
            new_status = states.check_transition(ticket.status, status)
        except states.IllegalTransition as exc:
            raise _illegal(exc) from exc
        _check_billing(user, ticket.status, new_status)
    msg = _add_message(ticket, kind=kind, body_text=body_text, body_html=body_html, author_user_id=user.id,
                       files=files, now=now)
    if kind == "reply":
        ticket.last_agent_message_at = now
        if ticket.first_response_at is None:
            ticket.first_response_at = now
        sla.on_agent_reply(ticket, now)
        mail_outbound.queue_agent_reply(msg.id, now=now)
    if new_status and new_status != ticket.status:
        _set_status(ticket, new_status, user.id, now)
    return msg


def add_customer_message(ticket_id, customer_id, *, body_text, body_html=None, files=None, channel="web",
                         now=None, author_customer_id=None, message_columns=None):
    """A customer's message on their ticket, applying the workflow rule for its status.

    `author_customer_id`: another participant writing on the ticket (an email reply from a Cc'd
    address); ownership is still checked against `customer_id`. `message_columns`: other columns
    of the message row (see create_ticket).
    Returns (ticket, message): the ticket is a new linked one when the original was closed.
    """
    now = now or utcnow()
    ticket = idalloc.get(Ticket, ticket_id)  # (in a batch of mail, maybe not written yet)
    if ticket is None:
        raise NotFound(_("Ticket not found."))
    while ticket.merged_into_id:
        ticket = db.session.get(Ticket, ticket.merged_into_id)
    if ticket.customer_id != customer_id:
        raise NotFound(_("Ticket not found."))
    outcome = states.on_customer_message(ticket.status)
    if outcome.effect == "new_linked_ticket":
        new = create_ticket(customer_id=customer_id, subject=ticket.subject, body_text=body_text,
                            body_html=body_html, files=files, channel=channel, queue_id=ticket.queue_id,
                            priority=ticket.priority, linked_ticket_id=ticket.id, now=now,
                            message_columns=message_columns)
        audit(ticket.id, None, "follow_up", None, new.number, actor_customer_id=customer_id)
        return new, new.first_message
    msg = _add_message(ticket, kind="reply", body_text=body_text, body_html=body_html,
                       author_customer_id=author_customer_id or customer_id, channel=channel, files=files, now=now,
                       columns=message_columns)
    ticket.last_customer_message_at = now
    if outcome.new_status:
        _set_status(ticket, outcome.new_status, None, now, actor_customer_id=customer_id, note=outcome.effect)
    if outcome.effect == "flag_billing":
        ticket.customer_replied = True
        audit(ticket.id, None, "customer_replied", None, "pending_billing", actor_customer_id=customer_id)
    sla.on_customer_message(ticket, now)
    mail_outbound.queue_customer_reply_notifications(msg.id, now=now)
    return ticket, msg


CUSTOMER_STATUSES = ("resolved", "open")  # "this is solved" and reopen, from the customer portal


def customer_change_status(ticket_id, customer_id, new_status, now=None):
    """The customer marks their ticket solved (resolved) or reopens it (open). Audited as the customer."""
    now = now or utcnow()
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or ticket.customer_id != customer_id or ticket.merged_into_id:
        raise NotFound(_("Ticket not found."))
    if new_status not in CUSTOMER_STATUSES or (new_status == "open" and ticket.status != "resolved") \
            or (new_status == "resolved" and ticket.status in ("resolved", "closed")):
        raise InvalidTransition(_("A ticket cannot go from '%(old)s' to '%(new)s'.",
                                  old=_status_name(ticket.status), new=_status_name(new_status)))
    if ticket.status == "pending_billing":
        ticket.customer_replied = False
    _set_status(ticket, new_status, None, now, actor_customer_id=customer_id, note="customer portal")
    return ticket


def last_contact_channel(customer_id):
    """How the customer last reached us: the channel of their latest message (else latest ticket)."""
    channel = db.session.execute(
        select(Message.channel).where(Message.author_customer_id == customer_id, Message.channel.is_not(None))
        .order_by(Message.id.desc()).limit(1)).scalar_one_or_none()
    return channel or db.session.execute(select(Ticket.channel).where(Ticket.customer_id == customer_id)
                                         .order_by(Ticket.id.desc()).limit(1)).scalar_one_or_none()


# ---------------------------------------------------------------- changes

def change_status(ticket_id, actor_id, new_status, now=None, note=None):
    """Move a ticket along the workflow (checked in tickets/states.py)."""
    now = now or utcnow()
    user, ticket = get_ticket_for(actor_id, ticket_id)
    if new_status == ticket.status:
        return ticket
    try:
        states.check_transition(ticket.status, new_status)
    except states.IllegalTransition as exc:
        raise _illegal(exc) from exc
    _check_billing(user, ticket.status, new_status)
    _set_status(ticket, new_status, user.id, now, note=note)
    return ticket


def change_priority(ticket_id, actor_id, priority, now=None):
    """Set the priority (low, normal, high, urgent)."""
    now = now or utcnow()
    user, ticket = get_ticket_for(actor_id, ticket_id)
    if priority not in PRIORITIES:
        raise DomainError(_("Unknown priority %(priority)s.", priority=repr(priority)), field="priority")
    if priority != ticket.priority:
        audit(ticket.id, user.id, "priority", ticket.priority, priority)
        ticket.priority = priority
        ticket.last_activity_at = now
        sla.on_priority(ticket, now)
    return ticket


def assign(ticket_id, actor_id, assignee_id, now=None):
    """Assign to an active agent of the ticket's queue (None unassigns)."""
    now = now or utcnow()
    user, ticket = get_ticket_for(actor_id, ticket_id) if actor_id else (None, db.session.get(Ticket, ticket_id))
    if assignee_id:
        assignee = db.session.get(User, assignee_id)
        if assignee is None or not assignee.is_active:
            raise DomainError(_("That agent does not exist or is inactive."), field="assignee")
        if not assignee.is_admin and ticket.queue_id not in queue_ids_of(assignee.id):
            raise DomainError(_("%(name)s is not a member of this queue.", name=assignee.name), field="assignee")
    if assignee_id != ticket.assignee_id:
        old = ticket.assignee.name if ticket.assignee else None
        new = db.session.get(User, assignee_id).name if assignee_id else None
        ticket.assignee_id = assignee_id
        ticket.last_activity_at = now
        audit(ticket.id, user.id if user else None, "assignee", old, new)
        if assignee_id and assignee_id != (user.id if user else None):
            mail_outbound.queue_assignment_notification(ticket.id, assignee_id, now=now)
    return ticket


def take(ticket_id, actor_id, now=None):
    """Assign the ticket to the acting agent."""
    return assign(ticket_id, actor_id, actor_id, now=now)


def transfer(ticket_id, actor_id, queue_id, note, now=None):
    """Move to another queue with a required handover note (kept as an internal note)."""
    now = now or utcnow()
    user, ticket = get_ticket_for(actor_id, ticket_id)
    if not (note or "").strip():
        raise DomainError(_("A handover note is required to transfer a ticket."), field="note")
    target = db.session.get(Queue, queue_id)
    if target is None:
        raise DomainError(_("Unknown queue."), field="queue")
    if target.id == ticket.queue_id:
        raise DomainError(_("The ticket is already in that queue."), field="queue")
    old = ticket.queue.name
    ticket.queue_id = target.id
    if ticket.assignee_id and not db.session.get(User, ticket.assignee_id).is_admin \
            and target.id not in queue_ids_of(ticket.assignee_id):
        audit(ticket.id, user.id, "assignee", ticket.assignee.name, None, note="not a member of the new queue")
        ticket.assignee_id = None
    audit(ticket.id, user.id, "queue", old, target.name, note=note.strip())
    _add_message(ticket, kind="note", body_text=f"Handover {old} → {target.name}: {note.strip()}",
                 body_html=None, author_user_id=user.id, now=now)
    return ticket


def _apply_tags(ticket, names, actor_id, now):
    clean = sorted({n.strip().lower()[:60] for n in names if n and n.strip()})
    old = ticket.tag_names
    if clean == sorted(old):
        return
    tags = []
    for name in clean:
        tag = db.session.execute(select(Tag).where(Tag.name == name)).scalar_one_or_none()
        if tag is None:
            tag = Tag(name=name)
            db.session.add(tag)
            db.session.flush()
        tags.append(tag)
    ticket.tags = tags
    ticket.last_activity_at = now
    audit(ticket.id, actor_id, "tags", ", ".join(sorted(old)), ", ".join(clean))


def set_tags(ticket_id, actor_id, names, now=None):
    """Replace the ticket's tags."""
    now = now or utcnow()
    user, ticket = get_ticket_for(actor_id, ticket_id)
    _apply_tags(ticket, names, user.id, now)
    return ticket


def merge(source_id, target_id, actor_id, now=None):
    """Merge source into target (same customer): messages and attachments move, the old number
    redirects, and later replies to the old ticket land in the target."""
    now = now or utcnow()
    user, source = get_ticket_for(actor_id, source_id)
    _, target = get_ticket_for(actor_id, target_id)
    if source.id == target.id:
        raise DomainError(_("A ticket cannot be merged into itself."))
    if source.customer_id != target.customer_id:
        raise DomainError(_("Only tickets of the same customer can be merged."))
    if target.merged_into_id:
        raise DomainError(_("The target ticket was itself merged."))
    moved = db.session.execute(update(Message).where(Message.ticket_id == source.id)
                               .values(ticket_id=target.id)).rowcount
    db.session.execute(update(Attachment).where(Attachment.ticket_id == source.id).values(ticket_id=target.id))
    db.session.execute(update(Ticket).where(Ticket.merged_into_id == source.id).values(merged_into_id=target.id))
    target.message_count = (target.message_count or 0) + (source.message_count or 0)
    target.last_activity_at = now
    for field in ("last_customer_message_at", "last_agent_message_at"):
        a, b = getattr(source, field), getattr(target, field)
        if a and (b is None or a > b):
            setattr(target, field, a)
    if source.first_response_at and (target.first_response_at is None
                                     or source.first_response_at < target.first_response_at):
        target.first_response_at = source.first_response_at
    _apply_tags(target, set(target.tag_names) | set(source.tag_names), user.id, now)
    source.merged_into_id = target.id
    source.message_count = 0
    if source.status != "closed":
        old = source.status
        source.status = "closed"
        source.closed_at = now
        audit(source.id, user.id, "status", old, "closed", note=f"merged into #{target.number}")
    sla.on_merged(source, now)
    audit(source.id, user.id, "merge", source.number, target.number, note=f"{moved} message(s) moved")
    audit(target.id, user.id, "merge", source.number, target.number, note=f"{moved} message(s) moved")
    db.session.flush()
    db.session.expire(target)
    search.reindex(db.session, target.id)
    search.reindex(db.session, source.id)
    return target


BULK_ACTIONS = ("assign", "status", "close")


def bulk(ticket_ids, actor_id, action, value=None, now=None):
    """Apply one action to many tickets. Returns (done ids, {id: error message})."""
    now = now or utcnow()
    if action not in BULK_ACTIONS:
        raise DomainError(_("Unknown bulk action %(action)s.", action=repr(action)))
    done, errors = [], {}
    for tid in ticket_ids:
        try:
            with db.session.begin_nested():
                if action == "assign":
                    assign(tid, actor_id, int(value) if value else None, now=now)
                elif action == "status":
                    change_status(tid, actor_id, value, now=now)
                else:
                    change_status(tid, actor_id, "closed", now=now)
            done.append(tid)
        except DomainError as exc:
            errors[tid] = exc.message
    return done, errors


def auto_close_resolved(now, days=None, batch=1000):
    """Close tickets resolved more than AUTO_CLOSE_DAYS ago (an indexed sweep). Returns the count."""
    days = current_app.config["AUTO_CLOSE_DAYS"] if days is None else days
    cutoff = now - timedelta(days=days)
    ids = db.session.execute(
        select(Ticket.id).where(Ticket.status == "resolved", Ticket.resolved_at <= cutoff).limit(batch)
    ).scalars().all()
    for tid in ids:
        ticket = db.session.get(Ticket, tid)
        _set_status(ticket, "closed", None, now, note=f"auto-closed after {days} days resolved")
    return len(ids)


# ---------------------------------------------------------------- canned responses

def render_canned(body, *, customer_name, ticket_number, agent_name):
    """Fill {customer_name}, {ticket_number} and {agent_name} placeholders (others stay as typed)."""
    values = {"customer_name": customer_name or "", "ticket_number": str(ticket_number), "agent_name": agent_name or ""}
    out = body
    for key, val in values.items():
        out = out.replace("{" + key + "}", val)
    return out


def canned_for(ticket, user):
    """Canned responses for the ticket's queue (and global ones), filled in for this ticket."""
    rows = db.session.execute(
        select(CannedResponse).where(or_(CannedResponse.queue_id == ticket.queue_id, CannedResponse.queue_id.is_(None)))
        .order_by(CannedResponse.title)
    ).scalars().all()
    return [(c, render_canned(c.body, customer_name=ticket.customer.name, ticket_number=ticket.number,
                              agent_name=user.name)) for c in rows]
