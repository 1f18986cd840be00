"""Invoices, their lines, payments and the per-year invoice number sequence.

This is the one invoice and payment record of the helpdesk: paid repairs (helpdesk.repairs) create
invoices here, and the sales side extends these rows (orders, tax, PDFs) instead of copying them.
Money is integer rupiah; dates are Asia/Jakarta calendar days; times are naive UTC.
"""
from sqlalchemy import Index, UniqueConstraint, text

from ..dbutil import fk_index
from ..extensions import db
from ..timeutil import utcnow

INVOICE_STATUSES = ("unpaid", "partially_paid", "paid", "void")
PAYMENT_STATUSES = ("pending", "confirmed", "rejected")


class InvoiceSequence(db.Model):
    """The last invoice number given in a year. Taking the next one updates this row inside the
    invoice's own transaction, so a rolled-back invoice gives its number back (no gaps), and on
    PostgreSQL the row lock makes concurrent invoices wait for each other (no duplicates)."""

    __tablename__ = "invoice_sequences"
    year = db.Column(db.Integer, primary_key=True, autoincrement=False)
    last_number = db.Column(db.Integer, nullable=False, default=0)


class Invoice(db.Model):
    """An invoice: INV/<year>/<6 digits>, to a customer (with the NPWP on B2B invoices), from a
    source (a repair quote; the sales side adds orders)."""

    __tablename__ = "invoices"
    id = db.Column(db.Integer, primary_key=True)
    number = db.Column(db.String(24), nullable=False, unique=True)
    year = db.Column(db.Integer, nullable=False)
    sequence = db.Column(db.Integer, nullable=False)
    customer_id = db.Column(db.Integer, db.ForeignKey("customers.id"), nullable=False)
    ticket_id = db.Column(db.Integer, db.ForeignKey("tickets.id", ondelete="SET NULL"))
    source_type = db.Column(db.String(20))  # "repair", "order"
    source_id = db.Column(db.Integer)
    bill_to_name = db.Column(db.String(200), nullable=False)
    bill_to_company = db.Column(db.String(200))
    npwp = db.Column(db.String(32))  # B2B only
    locale = db.Column(db.String(5))
    issued_on = db.Column(db.Date, nullable=False)
    due_on = db.Column(db.Date, nullable=False)
    # total = subtotal − discount + tax (the sales side's tax, rounded once on the total; 0 for repairs)
    subtotal = db.Column(db.BigInteger, nullable=False, default=0, server_default="0")
    discount = db.Column(db.BigInteger, nullable=False, default=0, server_default="0")  # line discounts + voucher
    tax_rate_bp = db.Column(db.Integer, nullable=False, default=0, server_default="0")  # 1100 = PPN 11 %
    tax = db.Column(db.BigInteger, nullable=False, default=0, server_default="0")
    total = db.Column(db.BigInteger, nullable=False, default=0)  # rupiah
    # bank transfers: the customer pays what is left plus a 3-digit code (1–999) that identifies the
    # invoice; transfer_amount is unique among open invoices, so a credit of that amount is this invoice
    transfer_code = db.Column(db.Integer)
    transfer_amount = db.Column(db.BigInteger)
    amount_paid = db.Column(db.BigInteger, nullable=False, default=0)  # confirmed payments
    status = db.Column(db.String(16), nullable=False, default="unpaid")
    paid_at = db.Column(db.DateTime)
    voided_at = db.Column(db.DateTime)
    void_reason = db.Column(db.String(500))
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    lines = db.relationship("InvoiceLine", order_by="InvoiceLine.position", cascade="all, delete-orphan",
                            back_populates="invoice")
    payments = db.relationship("Payment", order_by="Payment.id", back_populates="invoice")
    __table_args__ = (
        UniqueConstraint("year", "sequence", name="uq_invoices_year_sequence"),
        Index("ix_invoices_customer", "customer_id", "id"),
        fk_index("ix_invoices_ticket", "ticket_id"),
        Index("ix_invoices_source", "source_type", "source_id"),
        Index("uq_invoices_open_transfer_amount", "transfer_amount", unique=True,
              sqlite_where=text("status IN ('unpaid', 'partially_paid') AND transfer_amount IS NOT NULL"),
              postgresql_where=text("status IN ('unpaid', 'partially_paid') AND transfer_amount IS NOT NULL")),
        Index("ix_invoices_open_due", "due_on", "id", sqlite_where=text("status IN ('unpaid', 'partially_paid')"),
              postgresql_where=text("status IN ('unpaid', 'partially_paid')")),
    )


class InvoiceLine(db.Model):
    """One line: quantity × unit price = amount (covered lines carry 0 and say why)."""

    __tablename__ = "invoice_lines"
    id = db.Column(db.Integer, primary_key=True)
    invoice_id = db.Column(db.Integer, db.ForeignKey("invoices.id", ondelete="CASCADE"), nullable=False, index=True)
    position = db.Column(db.Integer, nullable=False, default=0)
    kind = db.Column(db.String(12), nullable=False, default="service")  # service, part, product
    description = db.Column(db.String(300), nullable=False)
    product_id = db.Column(db.Integer, db.ForeignKey("products.id", ondelete="SET NULL"))
    quantity = db.Column(db.Integer, nullable=False, default=1)
    unit_price = db.Column(db.BigInteger, nullable=False, default=0)
    discount = db.Column(db.BigInteger, nullable=False, default=0, server_default="0")
    amount = db.Column(db.BigInteger, nullable=False, default=0)
    covered_reason = db.Column(db.String(300))
    invoice = db.relationship("Invoice", back_populates="lines")


class Payment(db.Model):
    """A payment against an invoice: recorded (pending), then confirmed by billing (or rejected).
    Only confirmed payments count towards the invoice."""

    __tablename__ = "payments"
    id = db.Column(db.Integer, primary_key=True)
    invoice_id = db.Column(db.Integer, db.ForeignKey("invoices.id"), nullable=False)
    amount = db.Column(db.BigInteger, nullable=False)
    method = db.Column(db.String(24), nullable=False)
    reference = db.Column(db.String(120))
    paid_on = db.Column(db.Date, nullable=False)
    status = db.Column(db.String(12), nullable=False, default="pending")
    note = db.Column(db.String(500))
    # where it came from: billing (entered), portal (the customer's proof of transfer), bank (a statement line)
    source = db.Column(db.String(12), nullable=False, default="billing", server_default="billing")
    proof_path = db.Column(db.String(300))  # the uploaded proof in the attachment store (by SHA-256)
    proof_name = db.Column(db.String(255))
    proof_content_type = db.Column(db.String(100))
    customer_id = db.Column(db.Integer, db.ForeignKey("customers.id", ondelete="SET NULL"))  # who uploaded it
    recorded_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    recorded_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    confirmed_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    confirmed_at = db.Column(db.DateTime)
    invoice = db.relationship("Invoice", back_populates="payments")
    __table_args__ = (
        Index("ix_payments_invoice", "invoice_id", "id"),
        fk_index("ix_payments_customer", "customer_id"),
        Index("ix_payments_pending", "recorded_at", "id", sqlite_where=text("status = 'pending'"),
              postgresql_where=text("status = 'pending'")),
    )


class BankStatement(db.Model):
    """A bank statement CSV uploaded by billing. The same file twice is the same statement (its hash)."""

    __tablename__ = "bank_statements"
    id = db.Column(db.Integer, primary_key=True)
    sha256 = db.Column(db.String(64), nullable=False, unique=True)
    filename = db.Column(db.String(255))
    uploaded_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    lines_total = db.Column(db.Integer, nullable=False, default=0)
    credits = db.Column(db.Integer, nullable=False, default=0)


class BankStatementLine(db.Model):
    """One credit of a statement. `fingerprint` (date, amount, description, reference) is unique, so a
    line already imported (in this file or in an overlapping one) is never imported twice. Matched to
    an invoice by its transfer amount (the unique code) or by the invoice number in the reference."""

    __tablename__ = "bank_statement_lines"
    id = db.Column(db.Integer, primary_key=True)
    statement_id = db.Column(db.Integer, db.ForeignKey("bank_statements.id", ondelete="CASCADE"), nullable=False)
    fingerprint = db.Column(db.String(64), nullable=False, unique=True)
    booked_on = db.Column(db.Date, nullable=False)
    amount = db.Column(db.BigInteger, nullable=False)
    description = db.Column(db.String(500))
    reference = db.Column(db.String(200))
    invoice_id = db.Column(db.Integer, db.ForeignKey("invoices.id", ondelete="SET NULL"))
    match_rule = db.Column(db.String(20))  # transfer_amount, reference
    status = db.Column(db.String(12), nullable=False, default="unmatched")  # unmatched, matched, confirmed, ignored
    payment_id = db.Column(db.Integer, db.ForeignKey("payments.id", ondelete="SET NULL"))
    __table_args__ = (Index("ix_bank_statement_lines_statement", "statement_id", "id"),
                      Index("ix_bank_statement_lines_status", "status", "id"))
