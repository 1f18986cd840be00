"""Subscriptions, their consent record, and the delivery log of announcement mail.

A subscriber is a customer or a lead (exactly one of customer_id / lead_id). A customer without a
row for a topic has the topic's default (helpdesk.subscriptions.topics: maintenance and general
announcements on, promotions off); a lead has nothing until a confirmed row says "subscribed"
(double opt-in). Every change is a ConsentEvent: when, which topic, subscribe or unsubscribe, the
source (portal, support_form, offer_form, preference_page, one_click, mailto, agent, ...) and the
method (checkbox, link, one-click POST, ...).
"""
from sqlalchemy import Index, text

from ..dbutil import fk_index
from ..extensions import db
from ..timeutil import utcnow

SUBSCRIPTION_STATUSES = ("subscribed", "unsubscribed", "pending")


class Subscription(db.Model):
    __tablename__ = "subscriptions"
    id = db.Column(db.Integer, primary_key=True)
    customer_id = db.Column(db.Integer, db.ForeignKey("customers.id", ondelete="CASCADE"))
    lead_id = db.Column(db.Integer, db.ForeignKey("leads.id", ondelete="CASCADE"))
    topic = db.Column(db.String(20), nullable=False)  # maintenance, promotions, general
    status = db.Column(db.String(12), nullable=False)  # subscribed, unsubscribed, pending (awaiting confirmation)
    email = db.Column(db.String(254))  # a lead's address at the time (a customer's is their primary address)
    source = db.Column(db.String(30))
    requested_at = db.Column(db.DateTime)  # a pending double opt-in: when the confirmation mail was asked
    confirmed_at = db.Column(db.DateTime)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    __table_args__ = (
        Index("uq_subscriptions_customer_topic", "customer_id", "topic", unique=True,
              sqlite_where=text("customer_id IS NOT NULL"), postgresql_where=text("customer_id IS NOT NULL")),
        Index("uq_subscriptions_lead_topic", "lead_id", "topic", unique=True,
              sqlite_where=text("lead_id IS NOT NULL"), postgresql_where=text("lead_id IS NOT NULL")),
        Index("ix_subscriptions_topic_status", "topic", "status"),
    )


class ConsentEvent(db.Model):
    """One subscribe / unsubscribe / confirmation request / confirmation, never changed afterwards."""

    __tablename__ = "consent_events"
    id = db.Column(db.Integer, primary_key=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    customer_id = db.Column(db.Integer, db.ForeignKey("customers.id", ondelete="CASCADE"))
    lead_id = db.Column(db.Integer, db.ForeignKey("leads.id", ondelete="CASCADE"))
    topic = db.Column(db.String(20), nullable=False)
    action = db.Column(db.String(16), nullable=False)  # subscribe, unsubscribe, request (double opt-in mail), confirm
    source = db.Column(db.String(30), nullable=False)
    method = db.Column(db.String(30), nullable=False)
    email = db.Column(db.String(254))
    actor_user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))  # an agent's change
    delivery_id = db.Column(db.Integer, db.ForeignKey("announcement_deliveries.id", ondelete="SET NULL"))
    ip = db.Column(db.String(64))
    __table_args__ = (
        Index("ix_consent_events_customer", "customer_id", "id"),
        Index("ix_consent_events_lead", "lead_id", "id"),
        Index("ix_consent_events_delivery", "delivery_id", sqlite_where=text("delivery_id IS NOT NULL"),
              postgresql_where=text("delivery_id IS NOT NULL")),
    )


class AnnouncementDelivery(db.Model):
    """One announcement mail to one recipient: a maintenance notice (window_id, kind, revision) or a
    marketing announcement (campaign_id). `dedupe_key` is unique, so a sweep or job run twice, or two
    workers at once, can only claim it once. The mail's own state is its OutboundMail row (queued,
    sent, failed, held); `bounced_at` is set when a bounce of that mail comes back."""

    __tablename__ = "announcement_deliveries"
    id = db.Column(db.Integer, primary_key=True)
    dedupe_key = db.Column(db.String(120), nullable=False, unique=True)
    window_id = db.Column(db.Integer, db.ForeignKey("maintenance_windows.id", ondelete="CASCADE"))
    campaign_id = db.Column(db.Integer, db.ForeignKey("campaigns.id", ondelete="CASCADE"))
    kind = db.Column(db.String(20), nullable=False)  # announce, reminder, completed, extended, updated, cancelled, autoreply, campaign
    revision = db.Column(db.Integer, nullable=False, default=0)
    customer_id = db.Column(db.Integer, db.ForeignKey("customers.id", ondelete="SET NULL"))
    lead_id = db.Column(db.Integer, db.ForeignKey("leads.id", ondelete="SET NULL"))
    email = db.Column(db.String(254))
    outbound_id = db.Column(db.Integer, db.ForeignKey("outbound_mails.id", ondelete="SET NULL"))
    status = db.Column(db.String(12), nullable=False, default="queued")  # queued, skipped (no mail could go), bounced
    error = db.Column(db.String(300))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    bounced_at = db.Column(db.DateTime)
    __table_args__ = (
        Index("ix_announcement_deliveries_window", "window_id", "kind", "revision",
              sqlite_where=text("window_id IS NOT NULL"), postgresql_where=text("window_id IS NOT NULL")),
        Index("ix_announcement_deliveries_campaign", "campaign_id",
              sqlite_where=text("campaign_id IS NOT NULL"), postgresql_where=text("campaign_id IS NOT NULL")),
        Index("ix_announcement_deliveries_outbound", "outbound_id",
              sqlite_where=text("outbound_id IS NOT NULL"), postgresql_where=text("outbound_id IS NOT NULL")),
        fk_index("ix_announcement_deliveries_customer", "customer_id"),
    )
