"""Maintenance windows: create, edit, publish, cancel; who is affected; the notices' recipients and
mail context; linking tickets opened during a window (issue #8 §2).

Public API (services only flush; the caller commits):

    create_window(actor_id, **fields)             -> MaintenanceWindow (a draft)
    update_window(window_id, actor_id, **fields)  -> MaintenanceWindow (an announced window: a new revision)
    publish(window_id, actor_id)                  -> MaintenanceWindow (draft -> scheduled)
    cancel(window_id, actor_id, reason)           -> MaintenanceWindow
    affected(window_id)                           -> {"customers": [...], "counts": [...], "total": n}
    on_ticket_created(ticket, now)                -> TicketMaintenance rows made (called by create_ticket)

Fields: title_id, title_en, description_id, description_en, starts_at, ends_at (naive UTC; the
views convert what was typed in Asia/Jakarta), impact, announce_days, servers (names),
product_ids, item_ids, change_note (edits only).
"""
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import String, and_, cast, exists, false, func, literal, or_, select

from .. import batchcache
from ..customers.models import Customer
from ..errors import DomainError, NotFound
from ..extensions import db
from ..subscriptions import delivery as deliveries
from ..subscriptions import services as subs
from ..subscriptions.models import AnnouncementDelivery
from ..timeutil import utcnow
from ..warranty.models import OwnedItem, Product
from . import schedule
from .models import IMPACTS, MaintenanceTarget, MaintenanceWindow, TicketMaintenance

TOPIC = "maintenance"
ITEM_STATUSES = ("active", "suspended")  # the items a window can affect
TEXT_FIELDS = ("title_id", "title_en", "description_id", "description_en")
NOTICE_FIELDS = ("starts_at", "ends_at", "impact") + TEXT_FIELDS
# the deliveries that mean "this customer was told about the window"
NOTIFIED_KINDS = ("announce", "reminder", "updated", "extended")


def get(window_id):
    w = db.session.get(MaintenanceWindow, window_id)
    if w is None:
        raise NotFound(_("Maintenance window not found."))
    return w


# ---------------------------------------------------------------- validation

def _clean_servers(servers):
    out = []
    for s in servers or ():
        for part in str(s).replace(",", "\n").split():
            name = part.strip().lower()[:255]
            if name and name not in out:
                out.append(name)
    return out


def _clean_ids(values, field):
    out = []
    for v in values or ():
        if isinstance(v, str):
            parts = v.replace(",", " ").split()
        else:
            parts = [v]
        for p in parts:
            try:
                n = int(str(p).strip().lstrip("#"))
            except ValueError:
                raise DomainError(_("Enter item numbers, separated by commas."), field=field) from None
            if n not in out:
                out.append(n)
    return out


def _validate(fields):
    title_id, title_en = (fields.get("title_id") or "").strip(), (fields.get("title_en") or "").strip()
    if not title_id:
        raise DomainError(_("Enter the title in Indonesian."), field="title_id")
    if not title_en:
        raise DomainError(_("Enter the title in English."), field="title_en")
    starts_at, ends_at = fields.get("starts_at"), fields.get("ends_at")
    if starts_at is None:
        raise DomainError(_("Enter the start."), field="start_date")
    if ends_at is None:
        raise DomainError(_("Enter the end."), field="end_date")
    if ends_at <= starts_at:
        raise DomainError(_("The end must be after the start."), field="end_date")
    impact = fields.get("impact") or "downtime"
    if impact not in IMPACTS:
        raise DomainError(_("Unknown impact."), field="impact")
    days = fields.get("announce_days")
    if days is None:
        days = current_app.config.get("MAINTENANCE_ANNOUNCE_DAYS", 3)
    if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= schedule.MAX_ANNOUNCE_DAYS:
        raise DomainError(_("Announce between 0 and %(n)s days before.", n=schedule.MAX_ANNOUNCE_DAYS),
                          field="announce_days")
    servers = _clean_servers(fields.get("servers"))
    product_ids = _clean_ids(fields.get("product_ids"), "product_ids")
    item_ids = _clean_ids(fields.get("item_ids"), "item_ids")
    if product_ids:
        known = set(db.session.execute(select(Product.id).where(Product.id.in_(product_ids))).scalars())
        if set(product_ids) - known:
            raise DomainError(_("Unknown product."), field="product_ids")
    if item_ids:
        known = set(db.session.execute(select(OwnedItem.id).where(OwnedItem.id.in_(item_ids))).scalars())
        missing = [i for i in item_ids if i not in known]
        if missing:
            raise DomainError(_("Unknown item #%(id)s.", id=missing[0]), field="item_ids")
    if not (servers or product_ids or item_ids):
        raise DomainError(_("Choose what is affected: a server, a product or items."), field="servers")
    return {"title_id": title_id[:200], "title_en": title_en[:200],
            "description_id": (fields.get("description_id") or "").strip(),
            "description_en": (fields.get("description_en") or "").strip(),
            "starts_at": starts_at, "ends_at": ends_at, "impact": impact, "announce_days": days,
            "servers": servers, "product_ids": product_ids, "item_ids": item_ids}


def _set_targets(w, servers, product_ids, item_ids):
    w.targets.clear()
    db.session.flush()
    for s in servers:
        w.targets.append(MaintenanceTarget(kind="server", server=s))
    for p in product_ids:
        w.targets.append(MaintenanceTarget(kind="product", product_id=p))
    for i in item_ids:
        w.targets.append(MaintenanceTarget(kind="item", owned_item_id=i))


def targets_of(w):
    """(servers, product ids, item ids) of a window."""
    return ([t.server for t in w.targets if t.kind == "server"],
            [t.product_id for t in w.targets if t.kind == "product"],
            [t.owned_item_id for t in w.targets if t.kind == "item"])


# ---------------------------------------------------------------- create, edit, publish, cancel

def create_window(actor_id, *, now=None, **fields):
    now = now or utcnow()
    v = _validate(fields)
    w = MaintenanceWindow(**{k: v[k] for k in NOTICE_FIELDS + ("announce_days",)}, status="draft", revision=0,
                          notified_revision=0, original_ends_at=v["ends_at"], created_by_id=actor_id,
                          created_at=now, updated_at=now)
    db.session.add(w)
    db.session.flush()
    _set_targets(w, v["servers"], v["product_ids"], v["item_ids"])
    db.session.flush()
    return w


def announce_started(w):
    """Has any announcement of the window gone out (or started to)?"""
    if w.announced_at is not None:
        return True
    return db.session.execute(select(exists().where(AnnouncementDelivery.window_id == w.id,
                                                    AnnouncementDelivery.kind == "announce"))).scalar()


def update_window(window_id, actor_id, *, change_note=None, now=None, **fields):
    """Edit a window. Once announced, a change of start, end, impact or text makes a new revision:
    the end moving later (only) is an "extended" notice, anything else an "updated" one, sent by the
    sweep to those already notified."""
    now = now or utcnow()
    w = get(window_id)
    if w.status == "cancelled":
        raise DomainError(_("A cancelled window cannot be changed."))
    if w.completed_at is not None or (w.status == "scheduled" and now >= w.ends_at):
        raise DomainError(_("This window is over and cannot be changed."))
    v = _validate(fields)
    old = {k: getattr(w, k) for k in NOTICE_FIELDS}
    new = {k: v[k] for k in NOTICE_FIELDS}
    old_targets = tuple(sorted(map(str, t)) for t in targets_of(w))
    kind = schedule.revision_kind(old, new)
    if w.status == "scheduled" and kind and announce_started(w):
        pending = (w.revision or 0) > (w.notified_revision or 0)
        w.revision_kind = "extended" if kind == "extended" and (not pending or w.revision_kind == "extended") \
            else "updated"
        w.revision = (w.revision or 0) + 1
        w.change_note = (change_note or "").strip()[:500] or None
        if new["starts_at"] != old["starts_at"] and w.reminded_at is not None and \
                now < schedule.reminder_time(new["starts_at"], current_app.config["MAINTENANCE_REMINDER_HOURS"]):
            w.reminded_at = None  # the start moved: remind again before the new start
            w.reminder_round = (w.reminder_round or 0) + 1
    elif w.status == "draft":
        w.original_ends_at = v["ends_at"]
    for k in NOTICE_FIELDS + ("announce_days",):
        setattr(w, k, v[k])
    w.updated_at = now
    _set_targets(w, v["servers"], v["product_ids"], v["item_ids"])
    new_targets = tuple(sorted(map(str, t)) for t in (v["servers"], v["product_ids"], v["item_ids"]))
    if w.status == "scheduled" and w.announced_at is not None and new_targets != old_targets:
        w.announced_at = None  # the sweep announces to the newly affected (nobody gets it twice)
    db.session.flush()
    return w


def publish(window_id, actor_id, now=None):
    now = now or utcnow()
    w = get(window_id)
    if w.status != "draft":
        raise DomainError(_("Only a draft can be published."))
    if w.ends_at <= now:
        raise DomainError(_("This window is already over."))
    w.status, w.published_at, w.updated_at = "scheduled", now, now
    w.original_ends_at = w.ends_at
    db.session.flush()
    return w


def cancel(window_id, actor_id, reason, now=None):
    now = now or utcnow()
    w = get(window_id)
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_("Give the reason for the cancellation."), field="reason")
    if w.status == "cancelled":
        raise DomainError(_("This window is already cancelled."))
    if w.completed_at is not None or (w.status == "scheduled" and now >= w.ends_at):
        raise DomainError(_("This window is over and cannot be cancelled."))
    w.status, w.cancelled_at, w.cancel_reason, w.updated_at = "cancelled", now, reason[:500], now
    db.session.flush()
    return w


# ---------------------------------------------------------------- who is affected

def _item_condition(servers, product_ids, item_ids):
    conds = []
    if servers:
        conds.append(OwnedItem.server.in_(servers))
    if product_ids:
        conds.append(OwnedItem.product_id.in_(product_ids))
    if item_ids:
        conds.append(OwnedItem.id.in_(item_ids))
    if not conds:
        return false()
    return and_(OwnedItem.status.in_(ITEM_STATUSES), or_(*conds))


def affected_items_condition(w):
    """SQL: an owned item the window affects."""
    return _item_condition(*targets_of(w))


def affected_customer_ids(w):
    return select(OwnedItem.customer_id).where(affected_items_condition(w))


def audience(w):
    """SELECT (customer id, email, language, name) of the affected, subscribed, mailable customers."""
    return subs.customer_audience(TOPIC).where(Customer.id.in_(affected_customer_ids(w)))


def items_by_customer(w, customer_ids):
    """{customer id: [OwnedItem]} of the window's affected items of these customers."""
    out = {}
    if not customer_ids:
        return out
    rows = db.session.execute(select(OwnedItem).where(affected_items_condition(w),
                                                      OwnedItem.customer_id.in_(list(customer_ids)))
                              .order_by(OwnedItem.customer_id, OwnedItem.id)).scalars().all()
    for item in rows:
        out.setdefault(item.customer_id, []).append(item)
    return out


def item_label(item):
    return " · ".join(p for p in ((item.product.name if item.product else ""), item.identifier) if p)


def affected(window_id):
    """What an agent sees before sending: every affected subscriber (with their affected items), the
    count per target and the total."""
    w = get(window_id)
    rows = db.session.execute(audience(w).order_by(Customer.name, Customer.id)).all()
    items = items_by_customer(w, [r[0] for r in rows])
    customers = [{"id": r[0], "email": r[1], "language": r[2], "name": r[3], "items": items.get(r[0], [])}
                 for r in rows]
    counts = []
    products = {p.id: p for p in db.session.execute(
        select(Product).where(Product.id.in_([t.product_id for t in w.targets if t.product_id]))).scalars()}
    for t in w.targets:
        cond = _item_condition([t.server] if t.kind == "server" else [],
                               [t.product_id] if t.kind == "product" else [],
                               [t.owned_item_id] if t.kind == "item" else [])
        n_items = db.session.execute(select(func.count(OwnedItem.id)).where(cond)).scalar_one()
        n = db.session.execute(select(func.count()).select_from(
            subs.customer_audience(TOPIC).where(Customer.id.in_(select(OwnedItem.customer_id).where(cond)))
            .subquery())).scalar_one()
        if t.kind == "server":
            label = t.server
        elif t.kind == "product":
            label = products[t.product_id].name if t.product_id in products else f"#{t.product_id}"
        else:
            label = f"#{t.owned_item_id}"
        counts.append({"kind": t.kind, "label": label, "items": n_items, "subscribers": n})
    all_customers = db.session.execute(select(func.count(func.distinct(OwnedItem.customer_id)))
                                       .where(affected_items_condition(w))).scalar_one()
    return {"customers": customers, "counts": counts, "total": len(customers), "customers_with_items": all_customers}


# ---------------------------------------------------------------- the notices' mail

def status_url(window_id):
    return current_app.config["BASE_URL"].rstrip("/") + f"/status/{window_id}"


def mail_context(w, kind, items):
    """The JSON-able context of a notice (both languages; the template picks its own)."""
    from ..sla.calendar import format_local

    return {"window_id": w.id, "notice": kind,
            "title": {"id": w.title_id, "en": w.title_en},
            "description": {"id": w.description_id or "", "en": w.description_en or ""},
            "starts": {lang: format_local(w.starts_at, "Asia/Jakarta", lang) for lang in ("id", "en")},
            "ends": {lang: format_local(w.ends_at, "Asia/Jakarta", lang) for lang in ("id", "en")},
            "impact": w.impact, "items": [item_label(i) for i in items], "status_url": status_url(w.id),
            "change_note": w.change_note or "", "cancel_reason": w.cancel_reason or ""}


def mail_kind(kind):
    return f"maint_{kind}"


def subject(kind, locale, w):
    from ..mail import outbound

    return outbound.render_subject(mail_kind(kind), locale, title={"id": w.title_id, "en": w.title_en})


def dedupe_key(w, kind, customer_id, revision=0):
    return f"w{w.id}:{kind}:{revision}:c{customer_id}"


def notice_revision(w, kind):
    """The number a notice's dedupe key carries: updates are per revision, the reminder per reminder
    round (a moved start reminds again; a typo fix does not), the others once per window."""
    if kind == "reminder":
        return w.reminder_round or 0
    return w.revision or 0 if kind in ("updated", "extended") else 0


def recipients(w, kind, limit, reminder_hours=None):
    """SELECT of the next `limit` recipients of a notice who have no delivery of it yet."""
    D = AnnouncementDelivery
    rev = notice_revision(w, kind)
    if kind in ("announce", "reminder"):
        q = audience(w)
    else:
        notified = select(D.customer_id).where(D.window_id == w.id, D.kind.in_(NOTIFIED_KINDS), D.status != "skipped",
                                               D.customer_id.is_not(None))
        if kind in ("updated", "extended"):
            notified = notified.where(D.revision < (w.revision or 0))
        q = subs.customer_audience(TOPIC).where(Customer.id.in_(notified))
    if kind in ("updated", "extended"):
        done = select(D.id).where(D.window_id == w.id, D.customer_id == Customer.id, D.kind.in_(("updated", "extended")),
                                  D.revision == rev)
    elif kind == "reminder":  # this round's reminder (its dedupe key names the round)
        done = select(D.id).where(D.window_id == w.id, D.customer_id == Customer.id, D.kind == "reminder",
                                  D.dedupe_key == literal(f"w{w.id}:reminder:{rev}:c").concat(
                                      cast(Customer.id, String)))
    else:
        done = select(D.id).where(D.window_id == w.id, D.customer_id == Customer.id, D.kind == kind)
    q = q.where(~exists(done))
    if kind == "reminder":
        since = schedule.reminder_time(w.starts_at, reminder_hours)
        q = q.where(~exists(select(D.id).where(D.window_id == w.id, D.customer_id == Customer.id,
                                               D.kind == "announce", D.created_at >= since)))
    return q.order_by(Customer.id).limit(limit)


def send_batch(w, kind, limit, now, reminder_hours=None):
    """Claim and queue the next batch of a notice. Returns (mails queued, candidates seen): fewer
    candidates than `limit` means the fan-out is complete."""
    from ..mail import outbound

    rows = db.session.execute(recipients(w, kind, limit, reminder_hours)).all()
    if not rows:
        return 0, 0
    items = items_by_customer(w, [r[0] for r in rows])
    rev = w.revision or 0  # the revision the customer read (an update goes to those who read an older one)
    sent = 0
    for cid, email, language, name in rows:
        did = deliveries.claim(dedupe_key(w, kind, cid, notice_revision(w, kind)), now=now, window_id=w.id, kind=kind,
                               revision=rev, customer_id=cid, email=email)
        if did is None:
            continue  # another sweep has it
        locale = outbound.mail_locale(language)
        ctx = dict(mail_context(w, kind, items.get(cid, [])), customer_name=name)
        if deliveries.send(did, mail_kind(kind), topic=TOPIC, kind="customer", sid=cid, to=email, locale=locale,
                           subject=subject(kind, locale, w), context=ctx, now=now) is not None:
            sent += 1
    return sent, len(rows)


# ---------------------------------------------------------------- lists (agent pages, status page)

def windows(now, *, published_only=False, past_days=None, past_limit=100):
    """{"upcoming": [...], "ongoing": [...], "past": [...]}: every window not over yet, and the latest
    `past_limit` past ones (within `past_days`). The public sees published windows only (a draft
    never, also once cancelled); agents also see drafts."""
    from datetime import timedelta

    W = MaintenanceWindow
    where = [W.published_at.is_not(None)] if published_only else []
    current = db.session.execute(select(W).where(W.ends_at > now, *where).order_by(W.starts_at, W.id)).scalars().all()
    past_q = select(W).where(W.ends_at <= now, *where)
    if past_days is not None:
        past_q = past_q.where(W.ends_at >= now - timedelta(days=past_days))
    past = db.session.execute(past_q.order_by(W.ends_at.desc(), W.id.desc()).limit(past_limit)).scalars().all()
    out = {"upcoming": [], "ongoing": [], "past": list(past)}
    for w in current:
        ph = schedule.phase(w, now)
        if w.status == "cancelled" and ph == "ongoing":
            ph = "past" if published_only else "upcoming"
        out[ph].append(w)
    return out


def delivery_log(window_id):
    """[(AnnouncementDelivery, OutboundMail | None, customer name)] of a window, newest first, with
    the shown status: bounced, skipped, else the mail's (queued, sent, failed, held, skipped)."""
    from ..mail.models import OutboundMail

    rows = db.session.execute(
        select(AnnouncementDelivery, OutboundMail, Customer.name)
        .outerjoin(OutboundMail, OutboundMail.id == AnnouncementDelivery.outbound_id)
        .outerjoin(Customer, Customer.id == AnnouncementDelivery.customer_id)
        .where(AnnouncementDelivery.window_id == window_id)
        .order_by(AnnouncementDelivery.id.desc()).limit(2000)).all()
    out = []
    for d, mail, name in rows:
        if d.status in ("bounced", "skipped"):
            status = d.status
        elif mail is not None:
            status = mail.status
        else:
            status = d.status
        out.append({"delivery": d, "mail": mail, "name": name, "status": status})
    return out


def linked_tickets(window_id):
    from ..tickets.models import Ticket

    return db.session.execute(select(Ticket).join(TicketMaintenance, TicketMaintenance.ticket_id == Ticket.id)
                              .where(TicketMaintenance.window_id == window_id)
                              .order_by(Ticket.id.desc()).limit(500)).scalars().all()


def windows_of_ticket(ticket_id):
    return db.session.execute(select(MaintenanceWindow).join(TicketMaintenance,
                                                             TicketMaintenance.window_id == MaintenanceWindow.id)
                              .where(TicketMaintenance.ticket_id == ticket_id)
                              .order_by(MaintenanceWindow.starts_at)).scalars().all()


def known_servers(limit=500):
    return db.session.execute(select(OwnedItem.server).where(OwnedItem.server.is_not(None))
                              .group_by(OwnedItem.server).order_by(OwnedItem.server).limit(limit)).scalars().all()


# ---------------------------------------------------------------- during a window

def _ongoing_ids(now):
    """Ids of the published windows going on now (one indexed query; once per batch of mail)."""
    def load():
        with db.session.no_autoflush:  # (windows are not written by a batch of mail: no need to flush it)
            return db.session.execute(select(MaintenanceWindow.id).where(
                MaintenanceWindow.status == "scheduled", MaintenanceWindow.ends_at > now,
                MaintenanceWindow.starts_at <= now)).scalars().all()

    return batchcache.lookup("maintenance", "ongoing", load)


def on_ticket_created(ticket, now=None):
    """A new ticket during a window: linked when its customer has affected items and the ticket is
    about one of them (or about no item); the customer gets one auto-reply per window."""
    from ..mail import outbound

    now = now or utcnow()
    ids = _ongoing_ids(now)
    if not ids:
        return []
    made = []
    for w in db.session.execute(select(MaintenanceWindow).where(MaintenanceWindow.id.in_(ids))
                                .order_by(MaintenanceWindow.id)).scalars():
        item_ids = db.session.execute(select(OwnedItem.id).where(OwnedItem.customer_id == ticket.customer_id,
                                                                 affected_items_condition(w))
                                      .order_by(OwnedItem.id)).scalars().all()
        if not item_ids:
            continue
        if ticket.owned_item_id is not None and ticket.owned_item_id not in item_ids:
            continue  # about another item, one this window does not touch
        link = TicketMaintenance(ticket_id=ticket.id, window_id=w.id, owned_item_id=ticket.owned_item_id,
                                 created_at=now)
        db.session.add(link)
        db.session.flush()
        made.append(link)
        customer = db.session.get(Customer, ticket.customer_id)
        to = outbound.customer_address(ticket, customer)
        if not to:
            continue
        did = deliveries.claim(f"w{w.id}:autoreply:c{ticket.customer_id}", now=now, window_id=w.id, kind="autoreply",
                               revision=w.revision or 0, customer_id=ticket.customer_id, email=to)
        if did is None:
            continue  # this customer had the auto-reply of this window already
        locale = outbound.mail_locale(customer.language if customer else None)
        items = db.session.execute(select(OwnedItem).where(OwnedItem.id.in_(item_ids))).scalars().all()
        ctx = dict(mail_context(w, "autoreply", items), customer_name=customer.name if customer else "")
        row = outbound.queue_mail(mail_kind("autoreply"), ticket=ticket, to=[to],
                                  subject=subject("autoreply", locale, w), locale=locale, automatic=True,
                                  context=ctx, reply=True, now=now)
        d = db.session.get(AnnouncementDelivery, did)
        if row is None:
            d.status, d.error = "skipped", "no deliverable address"
        else:
            d.outbound_id = row.id
    return made

