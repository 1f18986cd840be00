"""Cashback guarantee claims: one per ticket at a time, through requested → verified → approved →
paid (or rejected at verification or approval)."""
from sqlalchemy import Index, text

from ..dbutil import fk_index
from ..extensions import db
from ..timeutil import utcnow

CLAIM_STATUSES = ("requested", "verified", "approved", "paid", "rejected")
OPEN_CLAIM_STATUSES = ("requested", "verified", "approved")


class CashbackClaim(db.Model):
    __tablename__ = "cashback_claims"
    id = db.Column(db.Integer, primary_key=True)
    ticket_id = db.Column(db.Integer, db.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False)
    customer_id = db.Column(db.Integer, db.ForeignKey("customers.id"), nullable=False)
    owned_item_id = db.Column(db.Integer, db.ForeignKey("owned_items.id"), nullable=False)
    status = db.Column(db.String(12), nullable=False, default="requested")
    cashback_until = db.Column(db.Date, nullable=False)  # the window's last day when requested
    requested_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    requested_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    requested_by_customer_id = db.Column(db.Integer, db.ForeignKey("customers.id", ondelete="SET NULL"))
    request_note = db.Column(db.Text)
    verified_at = db.Column(db.DateTime)
    verified_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    verify_note = db.Column(db.Text)
    approved_at = db.Column(db.DateTime)
    approved_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    amount = db.Column(db.BigInteger)  # rupiah, ≤ item_paid
    item_paid = db.Column(db.BigInteger)  # what the customer paid for the item
    paid_at = db.Column(db.DateTime)
    paid_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    paid_on = db.Column(db.Date)
    payment_reference = db.Column(db.String(120))
    rejected_at = db.Column(db.DateTime)
    rejected_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    rejected_stage = db.Column(db.String(12))  # verification, approval
    reject_reason = db.Column(db.Text)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    item = db.relationship("OwnedItem")
    __table_args__ = (
        # one claim in progress (or paid) per ticket; a rejected one does not block a new request
        Index("uq_cashback_claims_ticket_live", "ticket_id", unique=True,
              sqlite_where=text("status != 'rejected'"), postgresql_where=text("status != 'rejected'")),
        Index("ix_cashback_claims_billing", "status", "updated_at",
              sqlite_where=text("status IN ('verified', 'approved')"),
              postgresql_where=text("status IN ('verified', 'approved')")),
        Index("ix_cashback_claims_ticket", "ticket_id", "id"),
        Index("ix_cashback_claims_item", "owned_item_id"),
        Index("ix_cashback_claims_customer", "customer_id"),
        fk_index("ix_cashback_claims_requested_by_customer", "requested_by_customer_id"),
        Index("ix_cashback_claims_requested", "requested_at"),
    )
