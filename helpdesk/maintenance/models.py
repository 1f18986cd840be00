"""Maintenance windows, what they affect, and the tickets linked to them.

Times are UTC in the database (entered and shown in Asia/Jakarta). `revision` goes up whenever a
published window's start, end, impact or text changes; the notices of a revision go out once per
recipient (AnnouncementDelivery.dedupe_key). The sweep's progress per window: announced_at,
reminded_at, completed_at (when that notice was fanned out), notified_revision (the revision whose
"updated" / "extended" notice went out), cancel_notified_at.
"""
from sqlalchemy import Index

from ..extensions import db
from ..timeutil import utcnow

IMPACTS = ("downtime", "degraded", "none")
WINDOW_STATUSES = ("draft", "scheduled", "cancelled")
TARGET_KINDS = ("server", "product", "item")


class MaintenanceWindow(db.Model):
    __tablename__ = "maintenance_windows"
    id = db.Column(db.Integer, primary_key=True)
    title_id = db.Column(db.String(200), nullable=False)
    title_en = db.Column(db.String(200), nullable=False)
    description_id = db.Column(db.Text, nullable=False, default="")
    description_en = db.Column(db.Text, nullable=False, default="")
    starts_at = db.Column(db.DateTime, nullable=False)
    ends_at = db.Column(db.DateTime, nullable=False)
    original_ends_at = db.Column(db.DateTime)  # the end first announced (an "extended" notice compares to it)
    impact = db.Column(db.String(10), nullable=False, default="downtime")
    status = db.Column(db.String(10), nullable=False, default="draft")
    announce_days = db.Column(db.Integer, nullable=False, default=3)
    revision = db.Column(db.Integer, nullable=False, default=0)
    change_note = db.Column(db.String(500))  # what changed in the latest revision (shown in the update)
    revision_kind = db.Column(db.String(10))  # the latest revision's notice: "updated" or "extended"
    cancel_reason = db.Column(db.String(500))
    created_by_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    published_at = db.Column(db.DateTime)
    cancelled_at = db.Column(db.DateTime)
    announced_at = db.Column(db.DateTime)
    reminded_at = db.Column(db.DateTime)
    completed_at = db.Column(db.DateTime)
    notified_revision = db.Column(db.Integer, nullable=False, default=0)
    # the reminder's round: goes up only when the start moves (everyone is reminded again); other
    # edits (a typo, the impact) leave it, so a reminder fan-out in progress never repeats itself
    reminder_round = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    cancel_notified_at = db.Column(db.DateTime)
    targets = db.relationship("MaintenanceTarget", lazy="selectin", cascade="all, delete-orphan",
                              order_by="MaintenanceTarget.id")
    created_by = db.relationship("User")
    __table_args__ = (
        Index("ix_maintenance_windows_status_start", "status", "starts_at"),
        Index("ix_maintenance_windows_status_end", "status", "ends_at"),
    )


class MaintenanceTarget(db.Model):
    """One thing a window affects: a server (by name), a product (every item of it) or one owned item."""

    __tablename__ = "maintenance_targets"
    id = db.Column(db.Integer, primary_key=True)
    window_id = db.Column(db.Integer, db.ForeignKey("maintenance_windows.id", ondelete="CASCADE"), nullable=False)
    kind = db.Column(db.String(10), nullable=False)  # server, product, item
    server = db.Column(db.String(255))  # lower case
    product_id = db.Column(db.Integer, db.ForeignKey("products.id", ondelete="CASCADE"))
    owned_item_id = db.Column(db.Integer, db.ForeignKey("owned_items.id", ondelete="CASCADE"))
    __table_args__ = (Index("ix_maintenance_targets_window", "window_id"),)


class TicketMaintenance(db.Model):
    """A ticket opened during a window by an affected customer about an affected item."""

    __tablename__ = "ticket_maintenance"
    ticket_id = db.Column(db.Integer, db.ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    window_id = db.Column(db.Integer, db.ForeignKey("maintenance_windows.id", ondelete="CASCADE"), primary_key=True)
    owned_item_id = db.Column(db.Integer, db.ForeignKey("owned_items.id", ondelete="SET NULL"))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    __table_args__ = (Index("ix_ticket_maintenance_window", "window_id"),)
