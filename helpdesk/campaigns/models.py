"""Marketing announcements: the message, its segment, when it goes, and its counts."""
from sqlalchemy import Index

from ..extensions import db
from ..timeutil import utcnow

CAMPAIGN_STATUSES = ("draft", "scheduled", "sending", "sent", "cancelled")
CAMPAIGN_TOPICS = ("promotions", "general")
AUDIENCES = ("leads", "customers")


class Campaign(db.Model):
    __tablename__ = "campaigns"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(200), nullable=False)
    topic = db.Column(db.String(20), nullable=False, default="promotions")
    subject_id = db.Column(db.String(300))
    body_id = db.Column(db.Text)
    subject_en = db.Column(db.String(300))
    body_en = db.Column(db.Text)
    audience = db.Column(db.String(10), nullable=False, default="customers")  # leads | customers
    # leads: {"sources": [...], "campaigns": [...], "interests": [product lines], "stages": [...]}
    # customers: {"product_lines": [...], "product_ids": [...], "kind": "b2b" | "b2c" | ""}
    segment = db.Column(db.JSON, nullable=False, default=dict)
    status = db.Column(db.String(10), nullable=False, default="draft")
    scheduled_at = db.Column(db.DateTime)  # UTC; None = send when asked
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    started_at = db.Column(db.DateTime)
    finished_at = db.Column(db.DateTime)
    recipients_total = db.Column(db.Integer, nullable=False, default=0)
    created_by = db.relationship("User")
    __table_args__ = (Index("ix_campaigns_status_scheduled", "status", "scheduled_at"),)
