"""Offers (quotations), vouchers, and orders.

An offer has lines from the catalogue or free text, a validity date, notes, an optional voucher and
tax; it is sent with a signed link where the customer accepts or declines, and acceptance creates
an order. An order (from an offer, or entered directly for a written or spoken order) goes
placed → confirmed → paid → fulfilled, or cancelled with a reason; fulfilment creates the
customer's owned items (helpdesk.warranty), and its invoice is a billing Invoice with source_type
"order". Totals are computed by helpdesk.sales.pricing, in integer rupiah.
"""
from sqlalchemy import Index, UniqueConstraint, text

from ..extensions import db
from ..timeutil import utcnow

OFFER_STATUSES = ("draft", "sent", "accepted", "declined", "expired", "cancelled")
ORDER_STATUSES = ("placed", "confirmed", "paid", "fulfilled", "cancelled")
ORDER_CHANNELS = ("offer", "written", "phone", "walk_in", "email", "chat")
VOUCHER_KINDS = ("percent", "amount")


class Voucher(db.Model):
    """A daily-deal voucher or promo code: percent (basis points) or an amount off the subtotal."""

    __tablename__ = "vouchers"
    id = db.Column(db.Integer, primary_key=True)
    code = db.Column(db.String(40), nullable=False, unique=True)  # upper case
    description = db.Column(db.String(200))
    kind = db.Column(db.String(8), nullable=False, default="percent")
    value = db.Column(db.BigInteger, nullable=False)
    valid_from = db.Column(db.Date)
    valid_until = db.Column(db.Date)
    usage_limit = db.Column(db.Integer)
    used_count = db.Column(db.Integer, nullable=False, default=0)
    one_per_customer = db.Column(db.Boolean, nullable=False, default=True)
    min_subtotal = db.Column(db.BigInteger, nullable=False, default=0)
    active = db.Column(db.Boolean, nullable=False, default=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class VoucherUse(db.Model):
    """One use of a voucher (by an accepted offer or a placed order), once per customer when the
    voucher says so (the unique key holds it under concurrency)."""

    __tablename__ = "voucher_uses"
    id = db.Column(db.Integer, primary_key=True)
    voucher_id = db.Column(db.Integer, db.ForeignKey("vouchers.id"), nullable=False)
    customer_key = db.Column(db.String(80), nullable=False)  # "c:<customer id>" or "l:<lead id>"
    order_id = db.Column(db.Integer, db.ForeignKey("orders.id", ondelete="CASCADE"))
    used_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    once = db.Column(db.Boolean, nullable=False, default=True)
    __table_args__ = (
        Index("uq_voucher_uses_once", "voucher_id", "customer_key", unique=True, sqlite_where=text("once"),
              postgresql_where=text("once")),
    )


class _Priced:
    """Columns shared by offers and orders: the totals (see pricing.Totals), tax and voucher."""

    subtotal = db.Column(db.BigInteger, nullable=False, default=0)
    discount_total = db.Column(db.BigInteger, nullable=False, default=0)  # line discounts + voucher
    voucher_discount = db.Column(db.BigInteger, nullable=False, default=0)
    tax_rate_bp = db.Column(db.Integer, nullable=False, default=0)  # 1100 = PPN 11 %
    tax = db.Column(db.BigInteger, nullable=False, default=0)
    total = db.Column(db.BigInteger, nullable=False, default=0)


class Offer(_Priced, db.Model):
    __tablename__ = "offers"
    id = db.Column(db.Integer, primary_key=True)
    number = db.Column(db.String(24), nullable=False, unique=True)  # OFR/2026/000123
    lead_id = db.Column(db.Integer, db.ForeignKey("leads.id", ondelete="SET NULL"))
    customer_id = db.Column(db.Integer, db.ForeignKey("customers.id", ondelete="SET NULL"))
    status = db.Column(db.String(12), nullable=False, default="draft")
    version = db.Column(db.Integer, nullable=False, default=1)  # a signed link names the version it shows
    locale = db.Column(db.String(5))  # the language of the offer (printout, PDF, mail)
    valid_until = db.Column(db.Date, nullable=False)
    notes = db.Column(db.Text)
    voucher_id = db.Column(db.Integer, db.ForeignKey("vouchers.id"))
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    sent_at = db.Column(db.DateTime)
    decided_at = db.Column(db.DateTime)
    decline_reason = db.Column(db.Text)
    lines = db.relationship("OfferLine", order_by="OfferLine.position", cascade="all, delete-orphan",
                            back_populates="offer")
    voucher = db.relationship("Voucher")
    __table_args__ = (
        Index("ix_offers_lead", "lead_id", "id"),
        Index("ix_offers_customer", "customer_id", "id"),
        Index("ix_offers_status", "status", "id"),
    )


class OfferLine(db.Model):
    __tablename__ = "offer_lines"
    id = db.Column(db.Integer, primary_key=True)
    offer_id = db.Column(db.Integer, db.ForeignKey("offers.id", ondelete="CASCADE"), nullable=False, index=True)
    position = db.Column(db.Integer, nullable=False, default=0)
    product_id = db.Column(db.Integer, db.ForeignKey("products.id", ondelete="SET NULL"))
    description = db.Column(db.String(300), nullable=False)
    quantity = db.Column(db.Integer, nullable=False, default=1)
    unit_price = db.Column(db.BigInteger, nullable=False, default=0)
    discount = db.Column(db.BigInteger, nullable=False, default=0)
    amount = db.Column(db.BigInteger, nullable=False, default=0)
    offer = db.relationship("Offer", back_populates="lines")
    product = db.relationship("Product")


class Order(_Priced, db.Model):
    __tablename__ = "orders"
    id = db.Column(db.Integer, primary_key=True)
    number = db.Column(db.String(24), nullable=False, unique=True)  # ORD/2026/000123
    customer_id = db.Column(db.Integer, db.ForeignKey("customers.id"), nullable=False)
    offer_id = db.Column(db.Integer, db.ForeignKey("offers.id", ondelete="SET NULL"))
    repeat_of_id = db.Column(db.Integer, db.ForeignKey("orders.id", ondelete="SET NULL"))
    channel = db.Column(db.String(12), nullable=False, default="written")
    status = db.Column(db.String(12), nullable=False, default="placed")
    cancel_reason = db.Column(db.String(500))
    voucher_id = db.Column(db.Integer, db.ForeignKey("vouchers.id"))
    notes = db.Column(db.Text)
    invoice_id = db.Column(db.Integer, db.ForeignKey("invoices.id", ondelete="SET NULL"))
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    confirmed_at = db.Column(db.DateTime)
    paid_at = db.Column(db.DateTime)
    fulfilled_at = db.Column(db.DateTime)
    cancelled_at = db.Column(db.DateTime)
    lines = db.relationship("OrderLine", order_by="OrderLine.position", cascade="all, delete-orphan",
                            back_populates="order")
    voucher = db.relationship("Voucher")
    __table_args__ = (
        Index("ix_orders_customer", "customer_id", "id"),
        Index("ix_orders_status", "status", "id"),
        UniqueConstraint("offer_id", name="uq_orders_offer"),
    )


class OrderLine(db.Model):
    """A line; at fulfilment a catalogue product becomes an owned item (identifier: the domain,
    hosting account or site it is for)."""

    __tablename__ = "order_lines"
    id = db.Column(db.Integer, primary_key=True)
    order_id = db.Column(db.Integer, db.ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True)
    position = db.Column(db.Integer, nullable=False, default=0)
    product_id = db.Column(db.Integer, db.ForeignKey("products.id", ondelete="SET NULL"))
    description = db.Column(db.String(300), nullable=False)
    identifier = db.Column(db.String(255))
    quantity = db.Column(db.Integer, nullable=False, default=1)
    unit_price = db.Column(db.BigInteger, nullable=False, default=0)
    discount = db.Column(db.BigInteger, nullable=False, default=0)
    amount = db.Column(db.BigInteger, nullable=False, default=0)
    owned_item_id = db.Column(db.Integer, db.ForeignKey("owned_items.id", ondelete="SET NULL"))
    order = db.relationship("Order", back_populates="lines")
    product = db.relationship("Product")
