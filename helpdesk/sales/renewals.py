"""Renewals of domains, hosting and contracts (issue #7 §3).

A renewable product has `term_days` (the period one payment buys); the customer's item of it is paid
until `expires_on` (its last day, Asia/Jakarta). `rq cron` runs `cron_renewals` hourly; each sweep
(`sweep(now)`) reads the active items with an expiry day over the partial index ix_owned_items_expires,
in batches, and for each item and its current expiry day E (today = the day in Asia/Jakarta):

- the renewal invoice, once today >= E - RENEWAL_INVOICE_DAYS_BEFORE: billing's invoice (source_type
  "renewal", the product at its catalogue price, "renewal until <E + term>") mailed to the customer;
- a reminder D days before (D from RENEWAL_REMINDER_DAYS, default 30, 14 and 3), due while
  E - D <= today <= E: a mail (kind renewal_reminder) to the customer's primary address in their
  language, automatic, so the automatic-mail budget applies (over it the mail is "held");
- the expiry, once today > E + RENEWAL_GRACE_DAYS and the renewal invoice for E is not paid: the
  item becomes "expired" (audited, object_type "item") and the customer is told (kind
  renewal_expired, automatic). The open invoice stays: billing may void it.

Exactly once: every step is a RenewalNotice row, unique per (item, E, kind, days_before), claimed
by INSERT ... ON CONFLICT DO NOTHING RETURNING id; only the sweep whose insert returned the row does
the step, in the same transaction (one commit per batch), so two sweeps at once, or a sweep run
again, never repeat a step, and a crash before the commit leaves it for the next sweep.

When several reminders are due at once (the sweep was down, or an item was created late), only the
one with the smallest D is mailed; the larger ones are claimed silently (mail_id stays NULL), so the
customer gets one reminder, not three.

Paying the renewal invoice (billing.PAID_HOOKS["renewal"] → `on_invoice_paid`) moves the item's
expiry on by the product's term from the old expiry day (not from the payment day); an expired item
becomes active again. The notices of the new expiry day are new rows, so the next cycle starts
afresh. Items of one-off products (term_days None) have no expiry day and are never touched.
"""
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, tuple_

from ..customers.models import Customer
from ..dbutil import insert_fn
from ..extensions import db
from ..timeutil import utcnow
from ..warranty import rules
from ..warranty.models import OwnedItem, Product, RenewalNotice

BATCH = 200
DEFAULT_REMINDER_DAYS = (30, 14, 3)
DEFAULT_GRACE_DAYS = 7
DEFAULT_INVOICE_DAYS_BEFORE = 30


# ---------------------------------------------------------------- settings

def reminder_days():
    """The configured reminder days, largest first ("30,14,3" or a list; non-positive values ignored)."""
    raw = current_app.config.get("RENEWAL_REMINDER_DAYS", DEFAULT_REMINDER_DAYS)
    if isinstance(raw, str):
        raw = [p for p in raw.replace(";", ",").split(",") if p.strip()]
    days = set()
    for value in raw or ():
        try:
            d = int(str(value).strip())
        except ValueError:
            continue
        if d > 0:
            days.add(d)
    return tuple(sorted(days, reverse=True))


def grace_days():
    return max(0, int(current_app.config.get("RENEWAL_GRACE_DAYS", DEFAULT_GRACE_DAYS)))


def invoice_days_before():
    return max(0, int(current_app.config.get("RENEWAL_INVOICE_DAYS_BEFORE", DEFAULT_INVOICE_DAYS_BEFORE)))


def renewal_end(item):
    """The day the renewal would pay until: the current expiry day plus the product's term."""
    term = item.product.term_days if item.product is not None else None
    if item.expires_on is None or not term:
        return None
    return item.expires_on + timedelta(days=term)


def first_expiry(activation, term_days):
    """The last paid day of a new item of a renewable product activated on `activation`."""
    if activation is None or not term_days:
        return None
    return activation + timedelta(days=int(term_days) - 1)


# ---------------------------------------------------------------- the sweep

def _claim(item_id, expires_on, kind, days_before, now):
    """The notice's id when this sweep claimed the step, None when it was already claimed."""
    insert = insert_fn(db.session)
    stmt = (insert(RenewalNotice).values(owned_item_id=item_id, expires_on=expires_on, kind=kind,
                                         days_before=days_before, created_at=now)
            .on_conflict_do_nothing(index_elements=["owned_item_id", "expires_on", "kind", "days_before"])
            .returning(RenewalNotice.id))
    return db.session.execute(stmt).scalar_one_or_none()


def _due_items(horizon, after, batch):
    """(expires_on, id) of the next batch of active items expiring on or before `horizon`, in index order."""
    q = (select(OwnedItem.expires_on, OwnedItem.id)
         .where(OwnedItem.expires_on.isnot(None), OwnedItem.status == "active", OwnedItem.expires_on <= horizon))
    if after is not None:
        q = q.where(tuple_(OwnedItem.expires_on, OwnedItem.id) > tuple_(*after))
    return db.session.execute(q.order_by(OwnedItem.expires_on, OwnedItem.id).limit(batch)).all()


def _notices(items):
    """{(item id, kind, days_before): notice} of the items' current expiry days."""
    if not items:
        return {}
    rows = db.session.execute(select(RenewalNotice).where(
        tuple_(RenewalNotice.owned_item_id, RenewalNotice.expires_on).in_([(i.id, i.expires_on) for i in items])
    )).scalars().all()
    return {(n.owned_item_id, n.kind, n.days_before): n for n in rows}


def _open_invoice(notice):
    """The renewal invoice of an invoice notice while it can still be paid, else None."""
    from ..billing.models import Invoice

    if notice is None or notice.invoice_id is None:
        return None
    invoice = db.session.get(Invoice, notice.invoice_id)
    return invoice if invoice is not None and invoice.status in ("unpaid", "partially_paid") else None


def _mail(kind, item, notice, now, invoice=None, **subject_context):
    """An automatic mail about the item to its customer (primary address, their language); the row or None."""
    from ..mail import outbound

    customer = db.session.get(Customer, item.customer_id)
    if customer is None or customer.anonymised_at is not None or not customer.primary_email:
        return None
    locale = outbound.mail_locale(customer.language)
    subject = outbound.render_subject(kind, locale, item=item, notice=notice, invoice=invoice, **subject_context)
    context = {"item_id": item.id, "notice_id": notice.id}
    if invoice is not None:
        context["invoice_id"] = invoice.id
    return outbound.queue_mail(kind, ticket=None, to=[customer.primary_email], subject=subject, locale=locale,
                               automatic=True, context=context, now=now)


def _renewal_invoice(item, notice_id, now):
    """Create and mail the renewal invoice of the item's current expiry day (the notice is claimed)."""
    from ..billing import services as billing

    product = item.product
    until = renewal_end(item)
    name = " ".join(p for p in (product.name, item.identifier) if p)
    description = f"{name} — renewal until {until.isoformat()}"
    # due on the expiry day (today when the invoice comes late)
    due_days = max(0, (item.expires_on - rules.complaint_day(now)).days)
    invoice = billing.create_invoice(
        customer_id=item.customer_id, source_type="renewal", source_id=item.id, now=now, due_days=due_days,
        lines=[{"kind": "product", "description": description, "product_id": product.id, "quantity": 1,
                "unit_price": int(product.price or 0)}])
    notice = db.session.get(RenewalNotice, notice_id)
    notice.invoice_id = invoice.id
    if invoice.status == "paid":  # a free renewal: nothing to pay, the item renews at once
        on_invoice_paid(invoice, None, now)
        return invoice, notice
    mail = billing.mail_invoice(invoice, now)
    notice.mail_id = mail.id if mail is not None else None
    return invoice, notice


def _expire(item, now):
    from ..tickets.services import audit
    from ..warranty.services import item_label

    item.status = "expired"
    audit(None, None, "item_expired", "active", "expired", note=f"{item_label(item)} {item.expires_on.isoformat()}",
          object_type="item", object_id=item.id, at=now)


def _sweep_item(item, notices, today, now, stats):
    E = item.expires_on
    days_left = (E - today).days
    grace = grace_days()
    invoice_notice = notices.get((item.id, "invoice", 0))

    # 1. the renewal invoice (first, so the reminders name it)
    if invoice_notice is None and days_left <= invoice_days_before() and today <= E + timedelta(days=grace):
        claimed = _claim(item.id, E, "invoice", 0, now)
        if claimed is not None:
            _invoice, invoice_notice = _renewal_invoice(item, claimed, now)
            stats["invoices"] += 1
            if item.expires_on != E:  # renewed at once (free)
                return
    invoice = _open_invoice(invoice_notice)

    # 2. the reminders: only the smallest due one is mailed, larger ones are claimed silently
    due = [d for d in reminder_days() if 0 <= days_left <= d]
    if due:
        smallest = min(due)
        for d in sorted(due):
            if (item.id, "reminder", d) in notices:
                continue
            claimed = _claim(item.id, E, "reminder", d, now)
            if claimed is None:
                continue
            if d != smallest:
                stats["skipped"] += 1
                continue
            notice = db.session.get(RenewalNotice, claimed)
            mail = _mail("renewal_reminder", item, notice, now, invoice=invoice, days_left=days_left)
            notice.mail_id = mail.id if mail is not None else None
            stats["reminders"] += 1

    # 3. the expiry, after the grace period, when the renewal invoice was not paid
    if days_left < -grace and (item.id, "expired", 0) not in notices:
        from ..billing.models import Invoice

        paid = invoice_notice is not None and invoice_notice.invoice_id is not None and \
            db.session.get(Invoice, invoice_notice.invoice_id).status == "paid"
        if not paid:
            claimed = _claim(item.id, E, "expired", 0, now)
            if claimed is not None:
                _expire(item, now)
                notice = db.session.get(RenewalNotice, claimed)
                mail = _mail("renewal_expired", item, notice, now, invoice=invoice)
                notice.mail_id = mail.id if mail is not None else None
                stats["expired"] += 1


def sweep(now=None, batch=BATCH):
    """One pass over the renewable items (see the module doc). Returns counts of what it did."""
    now = now or utcnow()
    today = rules.complaint_day(now)
    horizon = today + timedelta(days=max(reminder_days() + (invoice_days_before(),)))
    stats = {"items": 0, "invoices": 0, "reminders": 0, "skipped": 0, "expired": 0, "batches": 0}
    after = None
    while True:
        keys = _due_items(horizon, after, batch)
        if not keys:
            break
        stats["batches"] += 1
        after = tuple(keys[-1])
        items = db.session.execute(select(OwnedItem).where(OwnedItem.id.in_([k[1] for k in keys]))
                                   .order_by(OwnedItem.expires_on, OwnedItem.id)).scalars().all()
        notices = _notices(items)
        for item in items:
            if item.status != "active" or item.expires_on is None or not (item.product and item.product.term_days):
                continue
            stats["items"] += 1
            _sweep_item(item, notices, today, now, stats)
        db.session.commit()
        if len(keys) < batch:
            break
    return stats


# ---------------------------------------------------------------- payment

def on_invoice_paid(invoice, actor_id, now):
    """billing.PAID_HOOKS["renewal"]: the item is paid for one more term, counted from the expiry day
    the invoice renewed (not from today); an expired item is active again."""
    from ..tickets.services import audit

    item = db.session.get(OwnedItem, invoice.source_id) if invoice.source_id else None
    if item is None:
        return
    notice = db.session.execute(select(RenewalNotice).where(
        RenewalNotice.invoice_id == invoice.id, RenewalNotice.kind == "invoice")).scalar_one_or_none()
    product = db.session.get(Product, item.product_id)
    if notice is None or product is None or not product.term_days or item.expires_on != notice.expires_on:
        return  # not a renewal invoice of this item's current term (already moved on by hand)
    old_end, old_status = item.expires_on, item.status
    item.expires_on = old_end + timedelta(days=product.term_days)
    if item.status == "expired":
        item.status = "active"
    audit(None, actor_id, "item_renewed", old_end.isoformat(), item.expires_on.isoformat(),
          note=f"{invoice.number}" + (" (expired → active)" if old_status == "expired" else ""),
          object_type="item", object_id=item.id, at=now)


def cron_renewals():
    """rq cron (queue "default", hourly): the renewal sweep."""
    from ..jobs import app_context

    with app_context():
        try:
            return sweep(utcnow())
        finally:
            db.session.remove()
