"""SLA policies, their business calendars, the matching rules, each ticket's clock runs and alerts.

The ticket itself carries the running deadlines in indexed columns (tickets.first_response_due,
next_response_due, resolution_due, next_sla_due) for lists and sorting; `sla_clocks` holds every
run of a clock (one target, one cycle) as the history, and is what the sweep walks: a partial
index on `alert_at` holds only the runs with an alert still to send.
"""
from sqlalchemy import Index, text

from ..dbutil import fk_index
from ..extensions import db
from ..timeutil import utcnow

TARGETS = ("first_response", "next_response", "resolution")
RULE_KINDS = ("tier", "queue", "channel")
ALERT_KINDS = ("warning", "breach")
CLOCK_STATES = ("running", "paused", "met", "breached", "cancelled")


class BusinessCalendar(db.Model):
    """Working hours per weekday in a time zone, public holidays of a country, or 24x7.

    `hours`: {"0": [["08:00", "17:00"]], ..., "6": []} (0 = Monday), as sla.calendar.Calendar reads it.
    Company days off and special hours are CalendarDay rows."""

    __tablename__ = "business_calendars"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(80), nullable=False, unique=True)
    tz = db.Column(db.String(64), nullable=False, default="Asia/Jakarta")
    hours = db.Column(db.JSON, nullable=False)
    always_open = db.Column(db.Boolean, nullable=False, default=False)
    country = db.Column(db.String(8), default="ID")  # public holidays from the `holidays` package; None: none
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    days = db.relationship("CalendarDay", order_by="CalendarDay.day", cascade="all, delete-orphan",
                           back_populates="calendar")


class CalendarDay(db.Model):
    """A company day off (hours = []) or a day with special hours (e.g. [["08:00", "12:00"]])."""

    __tablename__ = "calendar_days"
    id = db.Column(db.Integer, primary_key=True)
    calendar_id = db.Column(db.Integer, db.ForeignKey("business_calendars.id", ondelete="CASCADE"), nullable=False)
    day = db.Column(db.Date, nullable=False)
    name = db.Column(db.String(120))
    hours = db.Column(db.JSON, nullable=False)  # [] closed, else the day's intervals
    calendar = db.relationship("BusinessCalendar", back_populates="days")
    __table_args__ = (db.UniqueConstraint("calendar_id", "day"),)


class SlaPolicy(db.Model):
    """Targets per priority, in business minutes of its calendar, with its warning and escalation.

    `targets`: {"urgent": {"first_response": 30, "next_response": 60, "resolution": 240}, ...};
    a missing or null target is not measured. `pause_statuses`: the statuses that pause the
    resolution clock (default pending_customer; pending_billing does not pause unless listed)."""

    __tablename__ = "sla_policies"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(80), nullable=False, unique=True)
    calendar_id = db.Column(db.Integer, db.ForeignKey("business_calendars.id"), nullable=False)
    targets = db.Column(db.JSON, nullable=False)
    pause_statuses = db.Column(db.JSON, nullable=False)
    warn_percent = db.Column(db.Integer)  # warn when this % of the target is used (e.g. 75)
    warn_minutes = db.Column(db.Integer)  # or when this many business minutes are left (the earlier wins)
    escalate_priority = db.Column(db.Boolean, nullable=False, default=False)  # raise one step on breach
    escalate_to_lead = db.Column(db.Boolean, nullable=False, default=False)  # reassign to the queue lead
    escalate_notify_user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))  # a manager
    reopen_new_cycle = db.Column(db.Boolean, nullable=False, default=True)
    is_default = db.Column(db.Boolean, nullable=False, default=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    calendar = db.relationship("BusinessCalendar")
    notify_user = db.relationship("User")

    def target(self, priority, kind):
        """Business minutes for this priority and target, or None."""
        value = ((self.targets or {}).get(priority) or {}).get(kind)
        return int(value) if value else None


class SlaRule(db.Model):
    """Which policy a new ticket gets: the first rule (by position) whose kind and value match; the
    default policy when none does. kind: tier (customer support tier), queue (queue id), channel."""

    __tablename__ = "sla_rules"
    id = db.Column(db.Integer, primary_key=True)
    position = db.Column(db.Integer, nullable=False, default=0)
    kind = db.Column(db.String(16), nullable=False)
    value = db.Column(db.String(80), nullable=False)
    policy_id = db.Column(db.Integer, db.ForeignKey("sla_policies.id", ondelete="CASCADE"), nullable=False)
    policy = db.relationship("SlaPolicy")


class SlaClock(db.Model):
    """One run of one clock: a target in a cycle (first response, each next response, each
    resolution cycle). The ticket's history and the sweep's work list.

    alert_at: when the next alert of this run is due (its warning, then its breach), NULL when
    none is left or the run stopped. `paused_seconds`: business time spent paused, added to the
    target when the deadline is computed from `started_at`."""

    __tablename__ = "sla_clocks"
    id = db.Column(db.Integer, primary_key=True)
    ticket_id = db.Column(db.Integer, db.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False)
    policy_id = db.Column(db.Integer, db.ForeignKey("sla_policies.id", ondelete="SET NULL"))
    target = db.Column(db.String(20), nullable=False)
    cycle = db.Column(db.Integer, nullable=False, default=1)
    state = db.Column(db.String(10), nullable=False, default="running")
    started_at = db.Column(db.DateTime, nullable=False)
    target_minutes = db.Column(db.Integer, nullable=False)
    due_at = db.Column(db.DateTime)  # NULL while paused
    warn_at = db.Column(db.DateTime)
    alert_at = db.Column(db.DateTime)
    paused_at = db.Column(db.DateTime)
    paused_seconds = db.Column(db.Integer, nullable=False, default=0)
    stopped_at = db.Column(db.DateTime)
    warned_at = db.Column(db.DateTime)  # the warning was claimed (sla_alerts) at this time
    breached_at = db.Column(db.DateTime)  # the breach alert was claimed at this time
    # business seconds: positive = met that much early, negative = late by that much (once stopped)
    margin_seconds = db.Column(db.Integer)
    elapsed_seconds = db.Column(db.Integer)  # business seconds from start to stop, pauses excluded
    # The ticket's queue, priority and assignee when the run stopped: the report's groups.
    queue_id = db.Column(db.Integer)
    priority = db.Column(db.String(10))
    assignee_id = db.Column(db.Integer)
    __table_args__ = (
        Index("ix_sla_clocks_ticket", "ticket_id", "id"),
        # The sweep's index: only runs with an alert to come.
        Index("ix_sla_clocks_alert_at", "alert_at", "id", sqlite_where=text("alert_at IS NOT NULL"),
              postgresql_where=text("alert_at IS NOT NULL")),
        # The report: one read of this index covers every column it needs.
        Index("ix_sla_clocks_stopped", "stopped_at", "target", "state", "elapsed_seconds", "queue_id", "priority",
              "assignee_id"),
        # The report's breaches of clocks still running (breach alerted, not stopped yet).
        Index("ix_sla_clocks_breached", "breached_at", sqlite_where=text("breached_at IS NOT NULL"),
              postgresql_where=text("breached_at IS NOT NULL")),
    )


class SlaAlert(db.Model):
    """An alert claimed for a clock run: the unique key makes each warning and breach exactly once,
    whatever number of sweeps run at the same moment."""

    __tablename__ = "sla_alerts"
    id = db.Column(db.Integer, primary_key=True)
    clock_id = db.Column(db.Integer, db.ForeignKey("sla_clocks.id", ondelete="CASCADE"), nullable=False)
    ticket_id = db.Column(db.Integer, db.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False)
    kind = db.Column(db.String(10), nullable=False)  # warning / breach
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    sent_at = db.Column(db.DateTime)  # the alert job did its work (mail queued, notification added)
    __table_args__ = (db.UniqueConstraint("clock_id", "kind"), Index("ix_sla_alerts_ticket", "ticket_id"))


class Notification(db.Model):
    """An in-app notification for an agent (the bell)."""

    __tablename__ = "notifications"
    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    ticket_id = db.Column(db.Integer, db.ForeignKey("tickets.id", ondelete="CASCADE"))
    lead_id = db.Column(db.Integer, db.ForeignKey("leads.id", ondelete="CASCADE"))  # lead follow-ups
    kind = db.Column(db.String(30), nullable=False)  # sla_warning, sla_breach, sla_escalation, csat_bad, lead_task
    body = db.Column(db.String(300), nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    read_at = db.Column(db.DateTime)
    __table_args__ = (
        Index("ix_notifications_user_unread", "user_id", "id", sqlite_where=text("read_at IS NULL"),
              postgresql_where=text("read_at IS NULL")),
        Index("ix_notifications_user", "user_id", "id"),
        fk_index("ix_notifications_ticket", "ticket_id"),
    )


class SweepRun(db.Model):
    """The last runs of the SLA sweep: worker health (the lag, a sweep missing for 5 minutes)."""

    __tablename__ = "sla_sweep_runs"
    id = db.Column(db.Integer, primary_key=True)
    started_at = db.Column(db.DateTime, nullable=False)
    finished_at = db.Column(db.DateTime)
    claimed = db.Column(db.Integer, nullable=False, default=0)
    lag_seconds = db.Column(db.Float)  # how late the oldest claimed alert was
    host = db.Column(db.String(120))


class CsatResponse(db.Model):
    """The customer's answer to "How did we do?": one per ticket and resolution cycle (a later
    answer replaces the earlier one)."""

    __tablename__ = "csat_responses"
    id = db.Column(db.Integer, primary_key=True)
    ticket_id = db.Column(db.Integer, db.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False)
    cycle = db.Column(db.Integer, nullable=False)
    customer_id = db.Column(db.Integer, db.ForeignKey("customers.id", ondelete="SET NULL"))
    rating = db.Column(db.String(4), nullable=False)  # good / bad
    comment = db.Column(db.Text)
    queue_id = db.Column(db.Integer)  # at the time of the answer, for the report
    agent_id = db.Column(db.Integer)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    __table_args__ = (db.UniqueConstraint("ticket_id", "cycle"), Index("ix_csat_created", "created_at"),
                      fk_index("ix_csat_customer", "customer_id"))
