"""The catalogue (products, service contract plans, issue categories), what each customer owns,
their service contracts, and each ticket's eligibility decisions.

The rules themselves are pure code in warranty/rules.py; these rows are its inputs and the stored
snapshots of its answers.
"""
from sqlalchemy import Index, text

from ..extensions import db
from ..timeutil import utcnow

ITEM_STATUSES = ("active", "suspended", "expired", "cancelled")


class Product(db.Model):
    """A product or package of the catalogue, with its guarantee terms.

    bundle: [{"target": "<product line or product code>", "free_days": 365}]: buying it creates those
    items, free for that many days. cashback_categories: issue category codes the cashback
    guarantee covers ([] = every defect); cashback_days 0 = no cashback guarantee."""

    __tablename__ = "products"
    id = db.Column(db.Integer, primary_key=True)
    code = db.Column(db.String(40), nullable=False, unique=True)
    name = db.Column(db.String(120), nullable=False)
    product_line = db.Column(db.String(30), nullable=False)
    price = db.Column(db.BigInteger, nullable=False, default=0)  # rupiah
    active = db.Column(db.Boolean, nullable=False, default=True)
    warranty_days = db.Column(db.Integer, nullable=False, default=0)
    cashback_days = db.Column(db.Integer, nullable=False, default=0)
    cashback_categories = db.Column(db.JSON, nullable=False, default=list)
    bundle = db.Column(db.JSON, nullable=False, default=list)
    # renewable products (domains, hosting, contracts): the period one payment buys, in days; None = one-off
    term_days = db.Column(db.Integer)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class ContractPlan(db.Model):
    """A service contract plan: what it covers (product lines or products), for how long, at which
    support tier (the SLA policies' rules read it), and its price."""

    __tablename__ = "contract_plans"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(120), nullable=False, unique=True)
    coverage_days = db.Column(db.Integer, nullable=False, default=365)
    covers_lines = db.Column(db.JSON, nullable=False, default=list)
    covers_products = db.Column(db.JSON, nullable=False, default=list)  # product codes
    support_tier = db.Column(db.String(32), nullable=False, default="standard")
    price = db.Column(db.BigInteger, nullable=False, default=0)  # rupiah
    active = db.Column(db.Boolean, nullable=False, default=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class IssueCategory(db.Model):
    """What a ticket is about; `is_defect` says whether it can be a warranty or cashback matter (a
    content change request never is)."""

    __tablename__ = "issue_categories"
    id = db.Column(db.Integer, primary_key=True)
    code = db.Column(db.String(40), nullable=False, unique=True)
    name_id = db.Column(db.String(120), nullable=False)
    name_en = db.Column(db.String(120), nullable=False)
    is_defect = db.Column(db.Boolean, nullable=False, default=True)
    product_line = db.Column(db.String(30))  # the product line it is about, when it is specific
    active = db.Column(db.Boolean, nullable=False, default=True)


class OwnedItem(db.Model):
    """Something a customer owns: a website, a domain, a hosting account, a package.

    warranty_end / cashback_end / bundle_free_until are computed when the item is saved (the
    engine's own arithmetic), so lists and sidebars read them."""

    __tablename__ = "owned_items"
    id = db.Column(db.Integer, primary_key=True)
    customer_id = db.Column(db.Integer, db.ForeignKey("customers.id", ondelete="CASCADE"), nullable=False)
    product_id = db.Column(db.Integer, db.ForeignKey("products.id"), nullable=False)
    purchase_date = db.Column(db.Date, nullable=False)
    activation_date = db.Column(db.Date)
    reference = db.Column(db.String(80))  # order or invoice number
    # what the customer paid for it (rupiah; the cashback ceiling): entered by hand, or set by billing
    # when a claim is approved; the sales side fills it from the order's invoice line
    amount_paid = db.Column(db.BigInteger)
    identifier = db.Column(db.String(255))  # domain name, hosting account, server, site URL (lower case)
    # the server the item runs on (hosting, a website, a reseller account; lower case): maintenance
    # windows on a server reach the customers of its items
    server = db.Column(db.String(255))
    status = db.Column(db.String(12), nullable=False, default="active")
    bundle_parent_id = db.Column(db.Integer, db.ForeignKey("owned_items.id", ondelete="SET NULL"))
    bundle_free_until = db.Column(db.Date)
    warranty_end = db.Column(db.Date)
    cashback_end = db.Column(db.Date)
    # a renewable item is paid until this day (its last day, Asia/Jakarta); renewal reminders and the
    # renewal invoice count back from it, and an unpaid item expires after the grace period
    expires_on = db.Column(db.Date)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    product = db.relationship("Product")
    __table_args__ = (
        Index("ix_owned_items_customer", "customer_id", "status"),
        Index("ix_owned_items_expires", "expires_on", "id", sqlite_where=text("expires_on IS NOT NULL AND status = 'active'"),
              postgresql_where=text("expires_on IS NOT NULL AND status = 'active'")),
        Index("ix_owned_items_server", "server", "status", sqlite_where=text("server IS NOT NULL"),
              postgresql_where=text("server IS NOT NULL")),
        Index("ix_owned_items_product", "product_id", "status"),
        Index("ix_owned_items_identifier", "identifier", sqlite_where=text("identifier IS NOT NULL"),
              postgresql_where=text("identifier IS NOT NULL")),
    )


class ServiceContract(db.Model):
    """A customer's service contract: a plan from `start` to `end` (inclusive days). It covers the
    customer's items the plan covers. While one runs, the customer's support tier is the plan's."""

    __tablename__ = "service_contracts"
    id = db.Column(db.Integer, primary_key=True)
    customer_id = db.Column(db.Integer, db.ForeignKey("customers.id", ondelete="CASCADE"), nullable=False)
    plan_id = db.Column(db.Integer, db.ForeignKey("contract_plans.id"), nullable=False)
    start = db.Column(db.Date, nullable=False)
    end = db.Column(db.Date, nullable=False)
    reference = db.Column(db.String(80))
    cancelled_at = db.Column(db.DateTime)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    plan = db.relationship("ContractPlan")
    __table_args__ = (Index("ix_service_contracts_customer_end", "customer_id", "end"),)


class EligibilityDecision(db.Model):
    """One evaluation of a ticket (at intake, and whenever its item, category or complaint date
    changed): the answer, the rule, and the inputs, for audit. The newest is copied on the ticket."""

    __tablename__ = "eligibility_decisions"
    id = db.Column(db.Integer, primary_key=True)
    ticket_id = db.Column(db.Integer, db.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    actor_user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    trigger = db.Column(db.String(30), nullable=False)  # intake, item, category, complaint_date, recheck
    charge = db.Column(db.String(24), nullable=False)
    rule = db.Column(db.String(60), nullable=False)
    cashback_eligible = db.Column(db.Boolean, nullable=False, default=False)
    snapshot = db.Column(db.JSON, nullable=False)
    __table_args__ = (Index("ix_eligibility_decisions_ticket", "ticket_id", "id"),)


class RenewalNotice(db.Model):
    """One renewal step of an item for one expiry day: a reminder N days before (days_before > 0),
    the renewal invoice (kind "invoice"), or the expiry (kind "expired"). The unique key makes each
    happen exactly once, whatever number of sweeps run."""

    __tablename__ = "renewal_notices"
    id = db.Column(db.Integer, primary_key=True)
    owned_item_id = db.Column(db.Integer, db.ForeignKey("owned_items.id", ondelete="CASCADE"), nullable=False)
    expires_on = db.Column(db.Date, nullable=False)
    kind = db.Column(db.String(12), nullable=False)  # reminder, invoice, expired
    days_before = db.Column(db.Integer, nullable=False, default=0)
    invoice_id = db.Column(db.Integer, db.ForeignKey("invoices.id", ondelete="SET NULL"))
    mail_id = db.Column(db.Integer)  # the OutboundMail row (None when the budget or the address refused it)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    __table_args__ = (
        db.UniqueConstraint("owned_item_id", "expires_on", "kind", "days_before", name="uq_renewal_notices_step"),
    )
