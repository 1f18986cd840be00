"""Customers (separate from staff), their email addresses and B2B organisations."""
from ..dbutil import fk_index
from ..extensions import db
from ..timeutil import utcnow

CUSTOMER_KINDS = ("b2c", "b2b")
LANGUAGES = ("id", "en")


class Organisation(db.Model):
    """A B2B customer organisation with several contact persons."""

    __tablename__ = "organisations"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(200), nullable=False)
    npwp = db.Column(db.String(32))
    contacts_see_all_tickets = db.Column(db.Boolean, nullable=False, default=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    customers = db.relationship("Customer", back_populates="organisation")


class Customer(db.Model):
    """A customer account: a person, possibly a contact of an organisation."""

    __tablename__ = "customers"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(200), nullable=False)
    phone = db.Column(db.String(32), index=True)  # E.164, +62...
    kind = db.Column(db.String(8), nullable=False, default="b2c")
    language = db.Column(db.String(5))  # id / en / NULL = unknown
    support_tier = db.Column(db.String(32), nullable=False, default="standard")
    npwp = db.Column(db.String(32))
    organisation_id = db.Column(db.Integer, db.ForeignKey("organisations.id"), index=True)
    merged_into_id = db.Column(db.Integer, db.ForeignKey("customers.id"))
    anonymised_at = db.Column(db.DateTime)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    # Customer portal: a random value that signed sign-in links carry; rotated on every sign-in so a
    # link works once. last_login_at: the latest portal sign-in (UTC). password_hash: an optional
    # portal password the customer set on their profile (NULL: magic links only).
    login_nonce = db.Column(db.String(32))
    password_hash = db.Column(db.String(255))
    last_login_at = db.Column(db.DateTime)
    organisation = db.relationship("Organisation", back_populates="customers")
    emails = db.relationship(
        "CustomerEmail", back_populates="customer", lazy="selectin", order_by="CustomerEmail.id"
    )
    __table_args__ = (fk_index("ix_customers_merged_into", "merged_into_id"),)

    @property
    def primary_email(self):
        """The primary address, else the first one."""
        for e in self.emails:
            if e.is_primary:
                return e.email
        return self.emails[0].email if self.emails else None


class CustomerEmail(db.Model):
    """One email address of a customer; an address belongs to one customer only."""

    __tablename__ = "customer_emails"
    id = db.Column(db.Integer, primary_key=True)
    customer_id = db.Column(db.Integer, db.ForeignKey("customers.id"), nullable=False, index=True)
    email = db.Column(db.String(254), nullable=False, unique=True)  # stored lower-case
    is_primary = db.Column(db.Boolean, nullable=False, default=False)
    verified_at = db.Column(db.DateTime)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    bouncing_at = db.Column(db.DateTime)  # a hard bounce (5.x.x): no automatic mail goes here
    bounce_reason = db.Column(db.String(300))
    customer = db.relationship("Customer", back_populates="emails")


DATA_REQUEST_KINDS = ("deletion",)
DATA_REQUEST_STATUSES = ("pending", "approved", "rejected")


class DataRequest(db.Model):
    """A customer's personal-data request (UU PDP, Law 27/2022): deletion, decided by an admin."""

    __tablename__ = "data_requests"
    id = db.Column(db.Integer, primary_key=True)
    customer_id = db.Column(db.Integer, db.ForeignKey("customers.id"), nullable=False, index=True)
    kind = db.Column(db.String(16), nullable=False, default="deletion")
    status = db.Column(db.String(16), nullable=False, default="pending", index=True)
    requested_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    decided_at = db.Column(db.DateTime)
    decided_by_user_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    note = db.Column(db.String(500))
    customer = db.relationship("Customer")
