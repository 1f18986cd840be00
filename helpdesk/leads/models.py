"""Leads (prospects) for marketing: who they are, where they came from, where they stand, their
activity log, their follow-up tasks, and CSV imports.

A person is one lead: the email (lower case) and the phone (E.164, +62...) are each unique among
leads, so a second capture of the same person can only merge into the first.
"""
from sqlalchemy import Index, text

from ..extensions import db
from ..timeutil import utcnow

LEAD_SOURCES = ("seminar", "print", "social", "sms", "chat", "website", "referral", "daily_deal", "other")
LEAD_STAGES = ("new", "contacted", "offer_sent", "won", "lost")
OPEN_STAGES = ("new", "contacted", "offer_sent")
PRODUCT_LINES = ("website", "domain_hosting", "reseller_franchise", "ads_seo", "daily_deal")


class Lead(db.Model):
    __tablename__ = "leads"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(200), nullable=False)
    company = db.Column(db.String(200))
    email = db.Column(db.String(254))  # lower case
    phone = db.Column(db.String(32))  # E.164
    source = db.Column(db.String(20), nullable=False, default="other")
    campaign = db.Column(db.String(80))  # campaign or promo code
    product_lines = db.Column(db.JSON, nullable=False, default=list)
    owner_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    notes = db.Column(db.Text)
    stage = db.Column(db.String(12), nullable=False, default="new")
    lost_reason = db.Column(db.String(500))
    customer_id = db.Column(db.Integer, db.ForeignKey("customers.id", ondelete="SET NULL"))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    stage_changed_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    contacted_at = db.Column(db.DateTime)
    offer_sent_at = db.Column(db.DateTime)
    won_at = db.Column(db.DateTime)
    lost_at = db.Column(db.DateTime)
    last_activity_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    merge_count = db.Column(db.Integer, nullable=False, default=0)
    # a hard bounce of an announcement to this address: no announcement goes to it any more
    bouncing_at = db.Column(db.DateTime)
    owner = db.relationship("User")
    __table_args__ = (
        Index("uq_leads_email", "email", unique=True, sqlite_where=text("email IS NOT NULL"),
              postgresql_where=text("email IS NOT NULL")),
        Index("uq_leads_phone", "phone", unique=True, sqlite_where=text("phone IS NOT NULL"),
              postgresql_where=text("phone IS NOT NULL")),
        Index("ix_leads_stage_activity", "stage", "last_activity_at", "id"),
        Index("ix_leads_owner_stage", "owner_id", "stage"),
        Index("ix_leads_source_campaign", "source", "campaign"),
        Index("ix_leads_customer", "customer_id"),
        Index("ix_leads_created", "created_at"),
    )


class LeadActivity(db.Model):
    """One entry of the lead's log: created, merged (what a duplicate capture brought), a note, a
    call, a meeting, an email, a stage change, a task, the conversion."""

    __tablename__ = "lead_activities"
    id = db.Column(db.Integer, primary_key=True)
    lead_id = db.Column(db.Integer, db.ForeignKey("leads.id", ondelete="CASCADE"), nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    actor_user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    kind = db.Column(db.String(20), nullable=False)
    text = db.Column(db.Text)
    data = db.Column(db.JSON)
    actor = db.relationship("User")
    __table_args__ = (Index("ix_lead_activities_lead", "lead_id", "id"),)


class LeadTask(db.Model):
    """A follow-up with a due time (UTC). The reminder sweep picks undone, unreminded tasks that are
    due, over a partial index, and tells the owner once."""

    __tablename__ = "lead_tasks"
    id = db.Column(db.Integer, primary_key=True)
    lead_id = db.Column(db.Integer, db.ForeignKey("leads.id", ondelete="CASCADE"), nullable=False)
    title = db.Column(db.String(300), nullable=False)
    due_at = db.Column(db.DateTime, nullable=False)
    owner_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    done_at = db.Column(db.DateTime)
    done_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    reminded_at = db.Column(db.DateTime)
    __table_args__ = (
        Index("ix_lead_tasks_lead", "lead_id", "due_at"),
        Index("ix_lead_tasks_due", "due_at", "id", sqlite_where=text("done_at IS NULL AND reminded_at IS NULL"),
              postgresql_where=text("done_at IS NULL AND reminded_at IS NULL")),
        Index("ix_lead_tasks_owner_open", "owner_id", "due_at", sqlite_where=text("done_at IS NULL"),
              postgresql_where=text("done_at IS NULL")),
    )


class LeadImport(db.Model):
    """A CSV import: the file as uploaded, its preview, and (once run) what each row became."""

    __tablename__ = "lead_imports"
    id = db.Column(db.Integer, primary_key=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    filename = db.Column(db.String(255))
    content = db.Column(db.Text, nullable=False)  # the decoded CSV text
    source = db.Column(db.String(20), nullable=False, default="other")
    campaign = db.Column(db.String(80))
    owner_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    status = db.Column(db.String(12), nullable=False, default="preview")  # preview, queued, running, done, failed
    total = db.Column(db.Integer, nullable=False, default=0)
    processed = db.Column(db.Integer, nullable=False, default=0)
    created = db.Column(db.Integer, nullable=False, default=0)
    merged = db.Column(db.Integer, nullable=False, default=0)
    rejected = db.Column(db.Integer, nullable=False, default=0)
    report = db.Column(db.JSON, nullable=False, default=list)  # [{"row": n, "result": ..., "lead_id", "reason"}]
    started_at = db.Column(db.DateTime)
    finished_at = db.Column(db.DateTime)
    error = db.Column(db.Text)
