"""Paid repairs: a quote on a ticket, its lines, and where it stands.

draft → pending_billing → pending_customer → awaiting_payment → in_work → completed
(billing can reject a submitted quote: `rejected`, which technical support edits and submits again;
the customer can decline: `declined`; technical support can cancel a draft: `cancelled`).
With REPAIR_WORK_BEFORE_PAYMENT the customer's approval goes straight to in_work.
"""
from sqlalchemy import Index, text

from ..extensions import db
from ..timeutil import utcnow

QUOTE_STATUSES = ("draft", "rejected", "pending_billing", "pending_customer", "awaiting_payment", "in_work",
                  "completed", "declined", "cancelled")
LIVE_QUOTE_STATUSES = ("draft", "rejected", "pending_billing", "pending_customer", "awaiting_payment", "in_work")
EDITABLE_QUOTE_STATUSES = ("draft", "rejected")
LINE_KINDS = ("service", "part", "product")


class RepairQuote(db.Model):
    __tablename__ = "repair_quotes"
    id = db.Column(db.Integer, primary_key=True)
    ticket_id = db.Column(db.Integer, db.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False)
    customer_id = db.Column(db.Integer, db.ForeignKey("customers.id"), nullable=False)
    owned_item_id = db.Column(db.Integer, db.ForeignKey("owned_items.id", ondelete="SET NULL"))
    status = db.Column(db.String(20), nullable=False, default="draft")
    # bumped by every change after drafting: a signed customer link names the version it shows
    version = db.Column(db.Integer, nullable=False, default=1)
    charge = db.Column(db.String(24))  # the ticket's charge decision when drafted
    total = db.Column(db.BigInteger, nullable=False, default=0)
    drafted_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    drafted_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    submitted_at = db.Column(db.DateTime)
    billing_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    billing_at = db.Column(db.DateTime)
    billing_reason = db.Column(db.Text)  # why billing rejected it
    customer_decided_at = db.Column(db.DateTime)
    decline_reason = db.Column(db.Text)
    invoice_id = db.Column(db.Integer, db.ForeignKey("invoices.id", ondelete="SET NULL"))
    work_started_at = db.Column(db.DateTime)
    completed_at = db.Column(db.DateTime)
    completed_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    lines = db.relationship("RepairQuoteLine", order_by="RepairQuoteLine.position", cascade="all, delete-orphan",
                            back_populates="quote")
    __table_args__ = (
        Index("uq_repair_quotes_ticket_live", "ticket_id", unique=True,
              sqlite_where=text("status IN ('draft', 'rejected', 'pending_billing', 'pending_customer', "
                                "'awaiting_payment', 'in_work')"),
              postgresql_where=text("status IN ('draft', 'rejected', 'pending_billing', 'pending_customer', "
                                    "'awaiting_payment', 'in_work')")),
        Index("ix_repair_quotes_billing", "submitted_at", "id", sqlite_where=text("status = 'pending_billing'"),
              postgresql_where=text("status = 'pending_billing'")),
        Index("ix_repair_quotes_ticket", "ticket_id", "id"),
        Index("ix_repair_quotes_invoice", "invoice_id"),
        Index("ix_repair_quotes_item", "owned_item_id"),
        Index("ix_repair_quotes_customer", "customer_id"),
    )


class RepairQuoteLine(db.Model):
    """A service fee, a part or a product: quantity × unit price, or covered (0, with the reason)."""

    __tablename__ = "repair_quote_lines"
    id = db.Column(db.Integer, primary_key=True)
    quote_id = db.Column(db.Integer, db.ForeignKey("repair_quotes.id", ondelete="CASCADE"), nullable=False,
                         index=True)
    position = db.Column(db.Integer, nullable=False, default=0)
    kind = db.Column(db.String(12), nullable=False, default="service")
    description = db.Column(db.String(300), nullable=False)
    product_id = db.Column(db.Integer, db.ForeignKey("products.id", ondelete="SET NULL"))
    quantity = db.Column(db.Integer, nullable=False, default=1)
    unit_price = db.Column(db.BigInteger, nullable=False, default=0)
    covered = db.Column(db.Boolean, nullable=False, default=False)
    covered_reason = db.Column(db.String(300))
    amount = db.Column(db.BigInteger, nullable=False, default=0)
    quote = db.relationship("RepairQuote", back_populates="lines")
