"""Offers and orders.

Offers (marketing and admins):
- `create_offer` for a lead or a customer (a draft numbered OFR/<year>/<000001>), `save_lines`
  (catalogue products or free text, quantity, unit price, a discount typed as rupiah or "10%", a
  voucher code, tax), totals through helpdesk.sales.pricing.
- `send`: the offer goes by mail with a signed link (GET shows, POST accepts or declines; the link
  names the offer's version); a lead moves to "offer sent".
- `customer_decide`: accept (while valid: the lead becomes a customer and is won, the voucher is
  used, and an order is placed from the offer) or decline with an optional reason.
- `expire_offers(now)`: sent offers past their validity become expired (rq cron, hourly).

Orders (marketing, customer support and admins enter them; billing confirms their payments):
placed → confirmed (the invoice is created, with the order's discounts and tax) → paid (the invoice
is paid: billing.PAID_HOOKS) → fulfilled (the customer's owned items are created, with their
activation dates and bundles), or cancelled with a reason (its unpaid invoice is voided).
`repeat` re-orders a previous order's lines for the same customer at today's catalogue prices.

Every change is audited (object_type "offer" / "order").
"""
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from ..auth.i18n import _
from ..auth.models import User
from ..billing import services as billing
from ..customers.models import Customer
from ..errors import Conflict, DomainError, Forbidden, NotFound
from ..extensions import db
from ..tickets.models import Counter
from ..timeutil import utcnow
from ..warranty import rules
from ..warranty.models import Product
from . import pricing
from .models import ORDER_CHANNELS, Offer, OfferLine, Order, OrderLine, Voucher, VoucherUse

OFFER_ROLES = ("marketing", "admin")
ORDER_ROLES = ("marketing", "customer_support", "admin")
LINK_SALT = "helpdesk.sales.offer"
MAX_LINES = 50
DEFAULT_VALID_DAYS = 14


# ---------------------------------------------------------------- helpers

def _user_with(actor_id, roles, message):
    user = db.session.get(User, actor_id) if actor_id else None
    if user is None or not user.active or not any(user.has_role(r) for r in roles):
        raise Forbidden(message)
    return user


def _audit(kind, row, actor_id, action, old=None, new=None, note=None, actor_customer_id=None):
    from ..tickets.services import audit

    return audit(None, actor_id, action, old, new, note=note, object_type=kind, object_id=row.id,
                 actor_customer_id=actor_customer_id)


def next_number(prefix, year):
    """"OFR/2026/000001": a per-year counter row (UPDATE ... RETURNING, the row lock serialises)."""
    name = f"{prefix}/{year}"
    bump = (update(Counter).where(Counter.name == name).values(value=Counter.value + 1)
            .returning(Counter.value).execution_options(synchronize_session=False))
    value = db.session.execute(bump).scalar_one_or_none()
    if value is None:
        from ..dbutil import insert_fn

        db.session.execute(insert_fn(db.session)(Counter).values(name=name, value=0)
                           .on_conflict_do_nothing(index_elements=["name"]))
        value = db.session.execute(bump).scalar_one()
    return f"{prefix}/{year:04d}/{int(value):06d}"


def tax_rate_default():
    return int(current_app.config.get("SALES_TAX_RATE_BP", 0) or 0)


def find_voucher(code):
    code = (code or "").strip().upper()
    if not code:
        return None
    voucher = db.session.execute(select(Voucher).where(Voucher.code == code)).scalar_one_or_none()
    if voucher is None or not voucher.active:
        raise DomainError(_("Unknown voucher code."), field="voucher")
    return voucher


def voucher_terms(voucher):
    return pricing.VoucherTerms(code=voucher.code, kind=voucher.kind, value=int(voucher.value),
                                valid_from=voucher.valid_from, valid_until=voucher.valid_until,
                                usage_limit=voucher.usage_limit, used=voucher.used_count,
                                one_per_customer=voucher.one_per_customer, min_subtotal=int(voucher.min_subtotal or 0))


def customer_key(customer_id=None, lead_id=None):
    return f"c:{customer_id}" if customer_id else f"l:{lead_id}"


def uses_of(voucher_id, key):
    return db.session.execute(select(func.count()).select_from(VoucherUse).where(
        VoucherUse.voucher_id == voucher_id, VoucherUse.customer_key == key)).scalar_one()


VOUCHER_PROBLEMS = {
    "not_yet_valid": "This voucher is not valid yet.", "expired": "This voucher has expired.",
    "used_up": "This voucher has been used up.", "already_used": "This customer has already used this voucher.",
    "below_minimum": "The order is below this voucher's minimum.",
}


def _voucher_error(code):
    message = VOUCHER_PROBLEMS.get(code)
    return DomainError(_(message) if message else _("This voucher cannot be used."), field="voucher")


def price_lines(raw_lines):
    """[{"product_id"?, "description"?, "quantity", "unit_price"?, "discount"? (int or text),
    "identifier"?}] -> [(dict of clean columns, pricing.Line)]; a catalogue product fills in its
    name and price when they are left out."""
    if not raw_lines:
        raise DomainError(_("Add at least one line."), field="lines")
    if len(raw_lines) > MAX_LINES:
        raise DomainError(_("At most %(n)s lines.", n=MAX_LINES), field="lines")
    out = []
    for n, raw in enumerate(raw_lines, start=1):
        product = None
        if raw.get("product_id"):
            product = db.session.get(Product, int(raw["product_id"]))
            if product is None or not product.active:
                raise DomainError(_("Line %(n)s: unknown product.", n=n), field="lines")
        description = (raw.get("description") or (product.name if product else "") or "").strip()[:300]
        if not description:
            raise DomainError(_("Line %(n)s: describe it.", n=n), field="lines")
        try:
            quantity = raw.get("quantity")  # 0, 2.5 or True are refused by check_line, not made 1 or 2
            quantity = 1 if quantity in (None, "") else int(quantity.strip()) if isinstance(quantity, str) else quantity
            unit_price = raw.get("unit_price")
            if unit_price in (None, ""):
                unit_price = int(product.price) if product else 0
            elif isinstance(unit_price, str):
                unit_price = pricing.parse_rupiah(unit_price) or 0
            discount = raw.get("discount") or 0
            if isinstance(discount, str):
                discount = pricing.parse_discount(discount, quantity * unit_price)
            line = pricing.check_line(quantity, unit_price, discount)
        except (pricing.PricingError, pricing.MoneyError, ValueError, TypeError) as exc:
            raise DomainError(_("Line %(n)s: %(error)s", n=n, error=str(exc)), field="lines") from None
        out.append(({"position": n, "product_id": product.id if product else None, "description": description,
                     "quantity": line.quantity, "unit_price": line.unit_price, "discount": line.discount,
                     "amount": line.amount, "identifier": (raw.get("identifier") or "").strip()[:255] or None},
                    line))
    return out


def _apply_totals(row, priced, voucher, tax_rate_bp, today=None, key=None):
    terms = voucher_terms(voucher) if voucher is not None else None
    uses = uses_of(voucher.id, key) if voucher is not None and key else 0
    try:
        t = pricing.totals([line for _c, line in priced], terms, tax_rate_bp, today=today, customer_uses=uses)
    except pricing.PricingError as exc:
        if exc.code in VOUCHER_PROBLEMS:
            raise _voucher_error(exc.code) from None
        raise DomainError(str(exc), field="tax_rate" if exc.code == "tax" else "lines") from None
    row.subtotal, row.voucher_discount, row.discount_total = t.subtotal, t.voucher_discount, t.discount
    row.tax_rate_bp, row.tax, row.total = tax_rate_bp, t.tax, t.total
    row.voucher_id = voucher.id if voucher is not None else None
    return t


# ---------------------------------------------------------------- offers

def get_offer(offer_id):
    offer = db.session.get(Offer, offer_id)
    if offer is None:
        raise NotFound(_("Offer not found."))
    return offer


def create_offer(actor_id, *, lead_id=None, customer_id=None, valid_days=DEFAULT_VALID_DAYS, notes=None,
                 tax_rate_bp=None, locale=None, now=None):
    """A draft offer for a lead or a customer."""
    from ..leads.models import Lead

    now = now or utcnow()
    user = _user_with(actor_id, OFFER_ROLES, _("Only marketing can make offers."))
    lead = db.session.get(Lead, lead_id) if lead_id else None
    customer = db.session.get(Customer, customer_id) if customer_id else None
    if lead_id and lead is None:
        raise NotFound(_("Lead not found."))
    if customer_id and customer is None:
        raise NotFound(_("Customer not found."))
    if lead is None and customer is None:
        raise DomainError(_("An offer is for a lead or a customer."), field="lead_id")
    if customer is None and lead is not None and lead.customer_id:
        customer = db.session.get(Customer, lead.customer_id)
    if not 1 <= int(valid_days or 0) <= 365:
        raise DomainError(_("An offer is valid for 1 to 365 days."), field="valid_days")
    today = rules.complaint_day(now)
    offer = Offer(number=next_number("OFR", today.year), lead_id=lead.id if lead else None,
                  customer_id=customer.id if customer else None, status="draft", version=1,
                  locale=locale or (customer.language if customer else None) or "id",
                  valid_until=today + timedelta(days=int(valid_days)), notes=(notes or "").strip() or None,
                  tax_rate_bp=tax_rate_default() if tax_rate_bp is None else tax_rate_bp,
                  created_by_id=user.id, created_at=now, updated_at=now)
    db.session.add(offer)
    db.session.flush()
    _audit("offer", offer, user.id, "offer", None, "draft", note=offer.number)
    return offer


def save_lines(offer_id, actor_id, lines, voucher_code=None, tax_rate_bp=None, notes=None, now=None):
    """Marketing sets a draft offer's lines, voucher and tax (totals computed here)."""
    now = now or utcnow()
    user = _user_with(actor_id, OFFER_ROLES, _("Only marketing can make offers."))
    offer = get_offer(offer_id)
    if offer.status != "draft":
        raise Conflict(_("Only a draft offer can be changed."))
    priced = price_lines(lines)
    voucher = find_voucher(voucher_code)
    rate = offer.tax_rate_bp if tax_rate_bp is None else tax_rate_bp
    _apply_totals(offer, priced, voucher, rate, today=rules.complaint_day(now),
                  key=customer_key(offer.customer_id, offer.lead_id))
    offer.lines.clear()
    db.session.flush()
    for cols, _line in priced:
        cols = dict(cols)
        cols.pop("identifier", None)
        offer.lines.append(OfferLine(**cols))
    if notes is not None:
        offer.notes = notes.strip() or None
    offer.updated_at = now
    _audit("offer", offer, user.id, "offer_lines", None, str(offer.total))
    return offer


def recipient(offer):
    """(email, name, locale) the offer goes to: the customer's primary address, else the lead's."""
    from ..leads.models import Lead

    customer = db.session.get(Customer, offer.customer_id) if offer.customer_id else None
    if customer is not None and customer.primary_email:
        return customer.primary_email, customer.name, customer.language or offer.locale
    lead = db.session.get(Lead, offer.lead_id) if offer.lead_id else None
    if lead is not None and lead.email:
        return lead.email, lead.name, offer.locale
    return None, None, offer.locale


def send(offer_id, actor_id, now=None):
    """The offer goes to the customer by mail with its signed link; a lead moves to offer sent."""
    from ..leads.models import Lead
    from ..leads.services import set_stage
    from ..mail import outbound

    now = now or utcnow()
    user = _user_with(actor_id, OFFER_ROLES, _("Only marketing can make offers."))
    offer = get_offer(offer_id)
    if offer.status not in ("draft", "sent"):
        raise Conflict(_("This offer can no longer be sent."))
    if not offer.lines:
        raise DomainError(_("Add at least one line."), field="lines")
    to, _name, locale = recipient(offer)
    if not to:
        raise DomainError(_("The offer has nobody to go to: give the lead or customer an email address."))
    old = offer.status
    offer.status, offer.sent_at, offer.updated_at = "sent", now, now
    offer.version += 1
    _audit("offer", offer, user.id, "offer", old, "sent", note=to)
    lead = db.session.get(Lead, offer.lead_id) if offer.lead_id else None
    if lead is not None and lead.stage in ("new", "contacted"):
        set_stage(lead, "offer_sent", user.id, now=now)
    lang = locale if locale in outbound.LANGS else None
    subject = outbound.render_subject("offer", lang, offer=offer)
    outbound.queue_mail("offer", ticket=None, to=[to], subject=subject, locale=lang, automatic=False,
                        context={"offer_id": offer.id}, now=now)
    return offer


def make_token(offer):
    from ..webform.tokens import _serializer

    return _serializer(LINK_SALT).dumps({"o": offer.id, "v": offer.version})


def load_token(token, max_age=None):
    """(offer_id, version) of a genuine link (its age is the offer's validity, checked on use)."""
    from ..webform.tokens import InvalidToken, _load

    data = _load(token, LINK_SALT, max_age or 400 * 24 * 3600)
    if not isinstance(data, dict) or not all(isinstance(data.get(k), int) and not isinstance(data.get(k), bool)
                                             for k in ("o", "v")):
        raise InvalidToken()
    return data["o"], data["v"]


def link_url(offer):
    return current_app.config["BASE_URL"].rstrip("/") + "/offers/view/" + make_token(offer)


def offer_for_link(offer_id, version):
    offer = db.session.get(Offer, offer_id)
    if offer is None:
        raise NotFound(_("Offer not found."))
    if version != offer.version:
        raise Conflict(_("This offer has changed since this link was sent. Use the newest email."))
    return offer


def customer_decide(offer_id, version, decision, reason=None, now=None):
    """The customer accepts (an order is placed) or declines the offer, by its signed link."""
    from ..leads.models import Lead
    from ..leads.services import set_stage, to_customer

    now = now or utcnow()
    offer = offer_for_link(offer_id, version)
    today = rules.complaint_day(now)
    if offer.status != "sent":
        raise Conflict(_("This offer is no longer waiting for an answer."))
    if today > offer.valid_until:
        offer.status, offer.updated_at = "expired", now
        _audit("offer", offer, None, "offer", "sent", "expired")
        raise Conflict(_("This offer has expired."))
    if decision not in ("accept", "decline"):
        raise DomainError(_("Please accept or decline."), field="decision")
    lead = db.session.get(Lead, offer.lead_id) if offer.lead_id else None
    offer.decided_at, offer.updated_at = now, now
    if decision == "decline":
        offer.status, offer.decline_reason = "declined", (reason or "").strip()[:2000] or None
        _audit("offer", offer, None, "offer", "sent", "declined", note=offer.decline_reason)
        return offer, None
    if offer.customer_id is None:
        customer = to_customer(lead, None, now)
        if customer.language is None and offer.locale in ("id", "en"):
            customer.language = offer.locale  # they read the offer in it: the invoice mails follow
        offer.customer_id = customer.id
    if lead is not None and lead.stage != "won":
        set_stage(lead, "won", None, now=now)
    offer.status = "accepted"
    _audit("offer", offer, None, "offer", "sent", "accepted", actor_customer_id=offer.customer_id)
    order = _place(customer_id=offer.customer_id, channel="offer", offer=offer, actor_id=None, now=now,
                   lines=[{"product_id": ln.product_id, "description": ln.description, "quantity": ln.quantity,
                           "unit_price": ln.unit_price, "discount": ln.discount} for ln in offer.lines],
                   voucher=offer.voucher, tax_rate_bp=offer.tax_rate_bp, notes=offer.notes, check_voucher=False)
    return offer, order


def expire_offers(now=None):
    """Sent offers past their validity become expired. Returns how many."""
    now = now or utcnow()
    today = rules.complaint_day(now)
    rows = db.session.execute(select(Offer).where(Offer.status == "sent", Offer.valid_until < today)).scalars().all()
    for offer in rows:
        offer.status, offer.updated_at = "expired", now
        _audit("offer", offer, None, "offer", "sent", "expired")
    return len(rows)


# ---------------------------------------------------------------- orders

def get_order(order_id):
    order = db.session.get(Order, order_id)
    if order is None:
        raise NotFound(_("Order not found."))
    return order


def _use_voucher(voucher, order, now):
    """Count the voucher's use; once per customer when it says so (the unique key decides a race)."""
    key = customer_key(order.customer_id)
    try:
        with db.session.begin_nested():
            db.session.add(VoucherUse(voucher_id=voucher.id, customer_key=key, order_id=order.id, used_at=now,
                                      once=bool(voucher.one_per_customer)))
            db.session.flush()
    except IntegrityError:
        raise _voucher_error("already_used") from None
    db.session.execute(update(Voucher).where(Voucher.id == voucher.id)
                       .values(used_count=Voucher.used_count + 1).execution_options(synchronize_session=False))
    db.session.refresh(voucher)


def _place(*, customer_id, channel, lines, actor_id, now, offer=None, voucher=None, tax_rate_bp=None, notes=None,
           repeat_of=None, check_voucher=True):
    customer = db.session.get(Customer, customer_id) if customer_id else None
    if customer is None or customer.merged_into_id:
        raise NotFound(_("Customer not found."))
    if channel not in ORDER_CHANNELS:
        raise DomainError(_("Unknown order channel."), field="channel")
    today = rules.complaint_day(now)
    priced = price_lines(lines)
    order = Order(number=next_number("ORD", today.year), customer_id=customer.id, channel=channel, status="placed",
                  offer_id=offer.id if offer is not None else None, repeat_of_id=repeat_of.id if repeat_of else None,
                  notes=(notes or "").strip() or None, created_by_id=actor_id, created_at=now)
    rate = tax_rate_default() if tax_rate_bp is None else tax_rate_bp
    _apply_totals(order, priced, voucher, rate, today=today if check_voucher else None,
                  key=customer_key(customer.id))
    for cols, _line in priced:
        order.lines.append(OrderLine(**cols))
    db.session.add(order)
    db.session.flush()
    if voucher is not None:
        _use_voucher(voucher, order, now)
    _audit("order", order, actor_id, "order", None, "placed", note=order.number,
           actor_customer_id=None if actor_id else customer.id)
    return order


def create_order(actor_id, *, customer_id, lines, channel="written", voucher_code=None, tax_rate_bp=None,
                 notes=None, now=None):
    """An order entered directly (written or spoken), by marketing or customer support."""
    now = now or utcnow()
    user = _user_with(actor_id, ORDER_ROLES, _("Only marketing and customer support can enter orders."))
    if channel == "offer":
        raise DomainError(_("Unknown order channel."), field="channel")
    return _place(customer_id=customer_id, channel=channel, lines=lines, actor_id=user.id, now=now,
                  voucher=find_voucher(voucher_code), tax_rate_bp=tax_rate_bp, notes=notes)


def confirm(order_id, actor_id, now=None):
    """placed → confirmed: the invoice is created (lines, discounts, tax) and sent to the customer."""
    now = now or utcnow()
    user = _user_with(actor_id, ORDER_ROLES + ("billing",), _("You cannot confirm orders."))
    order = get_order(order_id)
    if order.status != "placed":
        raise Conflict(_("This order is not waiting for confirmation."))
    invoice = billing.create_invoice(
        customer_id=order.customer_id, source_type="order", source_id=order.id, actor_id=user.id, now=now,
        lines=[{"kind": "product" if ln.product_id else "service", "description": ln.description,
                "product_id": ln.product_id, "quantity": ln.quantity, "unit_price": ln.unit_price,
                "discount": ln.discount} for ln in order.lines],
        discount=order.voucher_discount, tax_rate_bp=order.tax_rate_bp)
    order.status, order.confirmed_at, order.invoice_id = "confirmed", now, invoice.id
    _audit("order", order, user.id, "order", "placed", "confirmed", note=invoice.number)
    billing.mail_invoice(invoice, now)
    if invoice.status == "paid":  # nothing to pay (a fully discounted order)
        on_invoice_paid(invoice, user.id, now)
    return order


def on_invoice_paid(invoice, actor_id, now):
    """billing.PAID_HOOKS["order"]: the order is paid."""
    order = db.session.get(Order, invoice.source_id)
    if order is None or order.status != "confirmed":
        return
    order.status, order.paid_at = "paid", now
    _audit("order", order, actor_id, "order", "confirmed", "paid", note=invoice.number)


def fulfil(order_id, actor_id, activation_date=None, now=None):
    """paid → fulfilled: every catalogue line becomes an owned item of the customer (with its bundle:
    a website brings its free domain and hosting), activated on `activation_date` (today)."""
    from ..warranty import services as warranty
    from . import renewals

    now = now or utcnow()
    user = _user_with(actor_id, ORDER_ROLES + ("technical_support",), _("You cannot fulfil orders."))
    order = get_order(order_id)
    if order.status != "paid":
        raise Conflict(_("Only a paid order can be fulfilled."))
    today = rules.complaint_day(now)
    activation = activation_date or today
    purchase = rules.complaint_day(order.created_at)
    if activation < purchase:
        raise DomainError(_("The activation date cannot be before the purchase date."), field="activation_date")
    lines_sum = sum(ln.amount for ln in order.lines)
    for line in order.lines:
        if line.product_id is None or line.owned_item_id is not None:
            continue
        # what the customer paid for one unit: the line's share of the order's total, so the voucher
        # and the tax are spread over the lines (the cashback ceiling of the item)
        paid = line.amount * order.total // lines_sum if lines_sum else 0
        for _n in range(line.quantity):
            item = warranty.create_item(customer_id=order.customer_id, product_id=line.product_id,
                                        purchase_date=purchase, activation_date=activation,
                                        reference=order.number, identifier=line.identifier,
                                        amount_paid=paid // line.quantity,
                                        expires_on=renewals.first_expiry(activation, line.product.term_days
                                                                         if line.product else None))
            line.owned_item_id = line.owned_item_id or item.id
    order.status, order.fulfilled_at = "fulfilled", now
    _audit("order", order, user.id, "order", "paid", "fulfilled")
    return order


def cancel(order_id, actor_id, reason, now=None):
    """placed or confirmed → cancelled (with a reason); an unpaid invoice is voided."""
    now = now or utcnow()
    user = _user_with(actor_id, ORDER_ROLES + ("billing",), _("You cannot cancel orders."))
    order = get_order(order_id)
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_("Give the reason."), field="reason")
    if order.status not in ("placed", "confirmed"):
        raise Conflict(_("A paid or fulfilled order cannot be cancelled."))
    if order.invoice_id:
        invoice = billing.get_invoice(order.invoice_id)
        if invoice.amount_paid:
            raise Conflict(_("This order has payments: it cannot be cancelled."))
        if invoice.status != "void":  # billing may have voided it already
            billing.void(invoice, user.id, f"{order.number}: {reason}"[:500], now)
    old = order.status
    order.status, order.cancelled_at, order.cancel_reason = "cancelled", now, reason[:500]
    _audit("order", order, user.id, "order", old, "cancelled", note=reason[:500])
    return order


def repeat(order_id, actor_id, now=None):
    """A new order with a previous order's lines for the same customer, at today's catalogue prices
    (free-text lines at their price), without the earlier voucher."""
    now = now or utcnow()
    user = _user_with(actor_id, ORDER_ROLES, _("Only marketing and customer support can enter orders."))
    old = get_order(order_id)
    lines = []
    for ln in old.lines:
        product = db.session.get(Product, ln.product_id) if ln.product_id else None
        if ln.product_id and (product is None or not product.active):
            continue
        lines.append({"product_id": ln.product_id, "description": ln.description, "quantity": ln.quantity,
                      "unit_price": int(product.price) if product else ln.unit_price, "identifier": ln.identifier})
    if not lines:
        raise DomainError(_("None of this order's products can be ordered any more."))
    return _place(customer_id=old.customer_id, channel=old.channel if old.channel != "offer" else "written",
                  lines=lines, actor_id=user.id, now=now, tax_rate_bp=old.tax_rate_bp, repeat_of=old)


def orders_of(customer_id):
    return db.session.execute(select(Order).where(Order.customer_id == customer_id)
                              .order_by(Order.id.desc())).scalars().all()


def offers_of(*, customer_id=None, lead_id=None):
    q = select(Offer)
    q = q.where(Offer.customer_id == customer_id) if customer_id else q.where(Offer.lead_id == lead_id)
    return db.session.execute(q.order_by(Offer.id.desc())).scalars().all()
