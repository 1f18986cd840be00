"""Sending one announcement mail to one recipient, exactly once (maintenance notices and marketing
announcements share it).

`claim(key, ...)` inserts the AnnouncementDelivery row with INSERT ... ON CONFLICT DO NOTHING on
its unique dedupe_key and returns its id only to the caller whose insert made it: a sweep or job
run twice, or two workers at once, can only send once. `send()` then records the mail (an
automatic mail: the budget applies, never to a bouncing address) with its unsubscribe context, in
the same transaction; a crash before the commit leaves both for the next run.

The send job checks the subscription again just before sending (`still_wanted`): an unsubscribe
takes effect before the next message even when that message is already queued.
"""
from sqlalchemy import select

from ..dbutil import insert_fn
from ..extensions import db
from ..timeutil import utcnow
from . import services
from .models import AnnouncementDelivery


def claim(dedupe_key, *, now=None, **fields):
    """The new delivery's id, or None when that key was claimed before."""
    insert = insert_fn(db.session)
    stmt = (insert(AnnouncementDelivery).values(dedupe_key=dedupe_key, created_at=now or utcnow(), status="queued",
                                               **fields)
            .on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(AnnouncementDelivery.id))
    return db.session.execute(stmt).scalar_one_or_none()


def send(delivery_id, mail_kind, *, topic, kind, sid, to, locale, subject, context, ticket=None, now=None):
    """Queue the mail of a claimed delivery. Returns the OutboundMail row, or None when nothing could
    go (the address bounces, or none is valid): the delivery is then "skipped" with the reason."""
    from ..mail import outbound

    now = now or utcnow()
    context = dict(context or {}, delivery_id=delivery_id, unsub=[kind, sid, topic])
    row = outbound.queue_mail(mail_kind, ticket=ticket, to=[to], subject=subject, locale=locale, automatic=True,
                              to_sender=False, context=context, now=now)
    delivery = db.session.get(AnnouncementDelivery, delivery_id)
    if row is None:
        delivery.status, delivery.error = "skipped", "no deliverable address"
    else:
        delivery.outbound_id = row.id
        if row.status == "held":
            delivery.error = (row.last_error or "")[:300]
    return row


def still_wanted(context):
    """At send time: does the recipient still receive this topic? (False after an unsubscribe.)"""
    unsub = (context or {}).get("unsub")
    if not unsub:
        return True
    kind, sid, topic = unsub
    try:
        return services.receives(kind, sid, topic)
    except Exception:  # the subscriber is gone (deleted, anonymised)
        return False


def mail_context(context):
    """The template and header context of an announcement: its unsubscribe link (one-click URL and
    mailto) and the preference page."""
    from ..mail import outbound

    unsub = (context or {}).get("unsub")
    if not unsub:
        return {}
    kind, sid, topic = unsub
    url = services.unsubscribe_url(kind, sid, topic, context.get("delivery_id"))
    token = url.rsplit("/", 1)[1]
    from_addr, _name, _mailbox = outbound.sender_for(None)
    return {"unsubscribe_url": url, "unsubscribe_mailto": f"mailto:{from_addr}?subject=unsubscribe%20{token}",
            "preferences_url": services.preferences_url(kind, sid), "topic": topic}


def mark_bounced(message_ids, hard, now=None):
    """A bounce of announcement mail: the deliveries are marked bounced; a hard bounce flags the
    address (a customer's address, or the lead's) so nothing automatic goes to it again. Returns the
    deliveries found."""
    from ..customers.services import customer_email_row
    from ..leads.models import Lead
    from ..mail.models import OutboundMail

    now = now or utcnow()
    ids = [m.strip("<>") for m in message_ids or () if m]
    if not ids:
        return []
    # No autoflush: in a batch of inbound mail the deliveries are read, never written, before this
    # (a delivery an earlier bounce of the batch marked is the same object, in the session).
    with db.session.no_autoflush:
        found = db.session.execute(
            select(AnnouncementDelivery).join(OutboundMail, OutboundMail.id == AnnouncementDelivery.outbound_id)
            .where(OutboundMail.message_id.in_(ids))).scalars().all()
    for d in found:
        if d.bounced_at is None:
            d.bounced_at, d.status = now, "bounced"
        if hard and d.email:
            addr = d.email.lower()
            if d.lead_id:
                lead = db.session.get(Lead, d.lead_id)
                if lead is not None and lead.bouncing_at is None:
                    lead.bouncing_at = now
            ce = customer_email_row(addr)
            if ce is not None and ce.bouncing_at is None:
                ce.bouncing_at, ce.bounce_reason = now, "hard bounce of an announcement"
    return found
