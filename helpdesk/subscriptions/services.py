"""Subscriptions: who gets which announcements, and the consent record (issue #8 §1).

Public API (all only flush; the caller commits):

    state(kind, sid)                                   -> {topic: "subscribed" | "unsubscribed" | "pending"}
    receives(kind, sid, topic)                         -> bool  (what the senders check, also at send time)
    change(kind, sid, {topic: bool}, source=, method=) -> [topics changed]   (immediate; unsubscribing always is)
    request(kind, sid, topics, source=, method=)       -> OutboundMail | None (double opt-in: pending + mail)
    confirm(token)                                     -> (kind, sid, [topics confirmed])
    unsubscribe_token(token, method=, ip=)             -> (kind, sid, topic, changed)
    customer_audience(topic) / lead_audience(topic)    -> SELECT of (id, email, language, name)
    history(kind, sid)                                 -> [ConsentEvent], newest first

A subscriber is ("customer", id) or ("lead", id). Customers have the topic defaults of
helpdesk.subscriptions.topics until they change them; leads receive nothing until they confirm.
Whoever subscribes from a public form (support form, offer form) confirms by mail first (double
opt-in): a box ticked by a stranger for somebody else's address sends nothing but that one mail.
"""
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import and_, exists, select

from ..customers.models import Customer, CustomerEmail
from ..errors import DomainError, NotFound
from ..extensions import db
from ..leads.models import Lead
from ..timeutil import utcnow
from . import tokens, topics as T
from .models import ConsentEvent, Subscription

# sources whose word alone does not prove the address is the subscriber's: they confirm by mail
CONFIRM_BY_MAIL = ("support_form", "offer_form", "api", "agent", "import")


def _subscriber(kind, sid):
    model = Lead if kind == "lead" else Customer
    obj = db.session.get(model, sid) if kind in ("lead", "customer") else None
    if obj is None:
        raise NotFound(_("Unknown subscriber."))
    return obj


def address_of(kind, obj):
    """The address announcements go to: a lead's email, a customer's primary address."""
    return (obj.email if kind == "lead" else obj.primary_email) or None


def _rows(kind, sid):
    col = Subscription.lead_id if kind == "lead" else Subscription.customer_id
    return {r.topic: r for r in db.session.execute(select(Subscription).where(col == sid)).scalars()}


def state(kind, sid):
    """{topic: status} for every topic the subscriber can hold; a customer's default shows as the
    status it amounts to."""
    rows = _rows(kind, sid)
    out = {}
    for topic in T.topics_for(kind):
        row = rows.get(topic)
        if row is not None:
            out[topic] = row.status
        else:
            out[topic] = "subscribed" if T.is_subscribed(kind, topic, None) else "unsubscribed"
    return out


def receives(kind, sid, topic):
    """Does the subscriber receive this topic now (the send job asks again just before sending)? Never
    a deleted, anonymised or merged-away customer, nor a bouncing or converted lead."""
    model = Lead if kind == "lead" else Customer
    obj = db.session.get(model, sid)
    if obj is None:
        return False
    if kind == "customer" and (obj.anonymised_at is not None or obj.merged_into_id is not None):
        return False
    if kind == "lead" and (obj.bouncing_at is not None or obj.customer_id is not None):
        return False
    row = _rows(kind, sid).get(topic)
    return T.is_subscribed(kind, topic, row.status if row is not None else None)


def _event(kind, sid, topic, action, source, method, *, email=None, actor_id=None, ip=None, delivery_id=None,
           now=None):
    db.session.add(ConsentEvent(customer_id=sid if kind == "customer" else None, lead_id=sid if kind == "lead" else None,
                                topic=topic, action=action, source=source, method=method, email=email,
                                actor_user_id=actor_id, ip=(ip or None) and str(ip)[:64], delivery_id=delivery_id,
                                created_at=now or utcnow()))


def _set(kind, sid, topic, status, source, now, email=None, confirmed=False):
    row = _rows(kind, sid).get(topic)
    if row is None:
        row = Subscription(customer_id=sid if kind == "customer" else None, lead_id=sid if kind == "lead" else None,
                           topic=topic, status=status)
        db.session.add(row)
    row.status, row.source, row.updated_at = status, source, now
    if email:
        row.email = email
    if status == "pending":
        row.requested_at = now
    if confirmed:
        row.confirmed_at = now
    return row


def _check_topic(kind, topic):
    if topic not in T.topics_for(kind):
        raise DomainError(_("Unknown topic."), field="topic")


def change(kind, sid, wanted, *, source, method, actor_id=None, ip=None, delivery_id=None, now=None):
    """Set topics on (True) or off (False) at once. Returns the topics whose state changed.

    Unsubscribing is always immediate. Subscribing is immediate for a customer acting as
    themselves (portal, preference page) or confirming; from a source in CONFIRM_BY_MAIL, and for
    every lead, it goes through `request()` (double opt-in) instead."""
    now = now or utcnow()
    obj = _subscriber(kind, sid)
    current = state(kind, sid)
    rows = _rows(kind, sid)
    changed, to_confirm = [], []
    for topic, on in wanted.items():
        _check_topic(kind, topic)
        if on and current[topic] == "subscribed" or not on and current[topic] in ("unsubscribed", "pending"):
            continue  # (an unticked box leaves an unconfirmed request alone: it sends nothing anyway)
        if on and (source in CONFIRM_BY_MAIL or kind == "lead" and source != "confirmation"):
            if current[topic] != "pending" or _request_expired(rows.get(topic), now):
                to_confirm.append(topic)
            continue
        _set(kind, sid, topic, "subscribed" if on else "unsubscribed", source, now, email=address_of(kind, obj),
             confirmed=on)
        _event(kind, sid, topic, "subscribe" if on else "unsubscribe", source, method, email=address_of(kind, obj),
               actor_id=actor_id, ip=ip, delivery_id=delivery_id, now=now)
        changed.append(topic)
    if to_confirm:
        request(kind, sid, to_confirm, source=source, method=method, actor_id=actor_id, ip=ip, now=now)
        changed.extend(to_confirm)
    db.session.flush()
    return changed


def _request_expired(row, now):
    """Is the confirmation link of this pending subscription too old to work (so a new one may go)?"""
    from datetime import timedelta

    if row is None or row.requested_at is None:
        return True
    max_age = current_app.config.get("SUBSCRIBE_CONFIRM_MAX_AGE", 7 * 24 * 3600)
    return now - row.requested_at > timedelta(seconds=max_age)


def request(kind, sid, topics, *, source, method, actor_id=None, ip=None, now=None):
    """Double opt-in: the topics become "pending" and one confirmation mail goes to the subscriber's
    address with a signed link (`confirm`). Until confirmed nothing of those topics is sent.
    Returns the mail row (None when there is no address or nothing to ask)."""
    from ..mail import outbound

    now = now or utcnow()
    obj = _subscriber(kind, sid)
    email = address_of(kind, obj)
    current = state(kind, sid)
    asked = [t for t in topics if t in T.topics_for(kind) and current.get(t) != "subscribed"]
    if not asked or not email:
        return None
    for topic in asked:
        _set(kind, sid, topic, "pending", source, now, email=email)
        _event(kind, sid, topic, "request", source, method, email=email, actor_id=actor_id, ip=ip, now=now)
    db.session.flush()
    locale = outbound.mail_locale(getattr(obj, "language", None))
    subject = outbound.render_subject("subscribe_confirm", locale)
    return outbound.queue_mail("subscribe_confirm", ticket=None, to=[email], subject=subject, locale=locale,
                               automatic=True, now=now,
                               context={"confirm_url": confirm_url(kind, sid, asked), "topics": asked,
                                        "subscriber_name": obj.name})


def confirm_url(kind, sid, topics):
    return current_app.config["BASE_URL"].rstrip("/") + "/subscriptions/confirm/" + \
        tokens.make_confirm_token(kind, sid, topics)


def confirm(token, *, ip=None, now=None):
    """The confirmation link of a double opt-in: its pending topics become subscribed.
    Returns (kind, sid, [topics confirmed now]); InvalidToken for a bad or expired link."""
    now = now or utcnow()
    kind, sid, asked = tokens.load_confirm_token(token)
    obj = _subscriber(kind, sid)
    rows = _rows(kind, sid)
    done = []
    for topic in asked:
        row = rows.get(topic)
        if row is None or row.status != "pending":
            continue  # confirmed already, or unsubscribed since: the newer choice stands
        _set(kind, sid, topic, "subscribed", "confirmation", now, email=address_of(kind, obj), confirmed=True)
        _event(kind, sid, topic, "confirm", "confirmation", "link", email=address_of(kind, obj), ip=ip, now=now)
        done.append(topic)
    db.session.flush()
    return kind, sid, done


def unsubscribe_token(token, *, method, ip=None, now=None):
    """The unsubscribe link of an announcement (one-click POST, the confirmation page's button, or
    the mailto). Returns (kind, sid, topic, changed); InvalidToken for a bad link."""
    kind, sid, topic, delivery_id = tokens.load_unsubscribe_token(token)
    _subscriber(kind, sid)
    if topic not in T.topics_for(kind):
        raise tokens.InvalidToken()
    source = "mailto" if method == "mailto" else "one_click"
    changed = change(kind, sid, {topic: False}, source=source, method=method, ip=ip, delivery_id=delivery_id, now=now)
    # the same person under another record: the customer a lead became, the customer a duplicate was
    # merged into; their "no" holds there too
    other = current_record(kind, sid)
    if other is not None and topic in T.topics_for("customer"):
        changed += change("customer", other, {topic: False}, source=source, method=method, ip=ip,
                          delivery_id=delivery_id, now=now)
    return kind, sid, topic, bool(changed)


def current_record(kind, sid):
    """The customer that now stands for this subscriber, when it is another record: the customer a
    lead was converted to, or the customer a merged-away customer was merged into (followed to the
    end). None when the subscriber is its own current record."""
    if kind == "lead":
        lead = db.session.get(Lead, sid)
        cid = lead.customer_id if lead is not None else None
    else:
        cid = sid
    seen = set()
    while cid is not None and cid not in seen:
        seen.add(cid)
        customer = db.session.get(Customer, cid)
        if customer is None or customer.merged_into_id is None:
            break
        cid = customer.merged_into_id
    return cid if cid is not None and (kind == "lead" or cid != sid) else None


def merge(source_id, target_id, now=None):
    """Customers merged: the merged-away customer's choices (subscriptions and unsubscribes) become
    the surviving customer's for every topic the survivor has not chosen on, with consent events
    (source "merge"). Returns the topics carried over."""
    return _carry("customer", source_id, target_id, "merge", now)


def unsubscribe_url(kind, sid, topic, delivery_id=None):
    return current_app.config["BASE_URL"].rstrip("/") + "/subscriptions/unsubscribe/" + \
        tokens.make_unsubscribe_token(kind, sid, topic, delivery_id)


def preferences_url(kind, sid):
    return current_app.config["BASE_URL"].rstrip("/") + "/subscriptions/preferences/" + \
        tokens.make_preferences_token(kind, sid)


def carry_over(lead_id, customer_id, now=None):
    """A lead became a customer: the lead's own choices (a confirmed subscription, or an
    unsubscribe) become the customer's for every topic the customer has not chosen on yet, each
    with a consent event (source "lead_conversion"). Returns the topics carried over."""
    return _carry("lead", lead_id, customer_id, "lead_conversion", now)


def _carry(kind, sid, customer_id, source, now=None):
    now = now or utcnow()
    customer = _subscriber("customer", customer_id)
    mine = _rows("customer", customer_id)
    done = []
    for topic, row in _rows(kind, sid).items():
        if row.status not in ("subscribed", "unsubscribed") or topic in mine:
            continue  # an unconfirmed request is not consent; the customer's own choice stands
        _set("customer", customer_id, topic, row.status, source, now, email=customer.primary_email,
             confirmed=row.status == "subscribed")
        _event("customer", customer_id, topic, "subscribe" if row.status == "subscribed" else "unsubscribe",
               source, "carried over", email=customer.primary_email, now=now)
        done.append(topic)
    db.session.flush()
    return done


def history(kind, sid, limit=200):
    col = ConsentEvent.lead_id if kind == "lead" else ConsentEvent.customer_id
    return db.session.execute(select(ConsentEvent).where(col == sid).order_by(ConsentEvent.id.desc())
                              .limit(limit)).scalars().all()


# ---------------------------------------------------------------- audiences (SQL)

def _customer_receives(topic):
    """SQL: the customer (Customer row of the outer query) receives the topic."""
    own = select(Subscription.id).where(Subscription.customer_id == Customer.id, Subscription.topic == topic)
    if T.CUSTOMER_DEFAULTS.get(topic):
        return ~exists(own.where(Subscription.status != "subscribed"))
    return exists(own.where(Subscription.status == "subscribed"))


def customer_address_id():
    """SQL: the id of the customer's announcement address: the primary one, else the oldest, of
    those that do not bounce."""
    return (select(CustomerEmail.id).where(CustomerEmail.customer_id == Customer.id,
                                           CustomerEmail.bouncing_at.is_(None))
            .order_by(CustomerEmail.is_primary.desc(), CustomerEmail.id).limit(1).correlate(Customer)
            .scalar_subquery())


def customer_audience(topic):
    """SELECT (customer id, address, language, name) of every customer who receives the topic and can
    be mailed: not anonymised, not merged away, with an address that is not bouncing. Callers add
    their own WHERE (who is affected, the segment) and ORDER BY."""
    return (select(Customer.id, CustomerEmail.email, Customer.language, Customer.name)
            .join(CustomerEmail, CustomerEmail.id == customer_address_id())
            .where(Customer.anonymised_at.is_(None), Customer.merged_into_id.is_(None), _customer_receives(topic)))


def lead_audience(topic):
    """SELECT (lead id, email, None, name) of every lead with a confirmed subscription to the topic
    and a usable address (not bouncing), that has not become a customer."""
    from sqlalchemy import null

    return (select(Lead.id, Lead.email, null().label("language"), Lead.name)
            .join(Subscription, and_(Subscription.lead_id == Lead.id, Subscription.topic == topic,
                                     Subscription.status == "subscribed"))
            .where(Lead.email.is_not(None), Lead.bouncing_at.is_(None),
                   Lead.customer_id.is_(None)))  # a converted lead is reached as the customer it became
