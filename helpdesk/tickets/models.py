"""Queues, tickets, messages, attachments, tags, canned responses and the audit trail."""
from sqlalchemy import Index, Text, text
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import mapped_column

from ..dbutil import fk_index
from ..extensions import db
from ..timeutil import utcnow
from .states import OPEN_STATUSES, STATUSES

CHANNELS = ("email", "web", "phone", "walk_in", "chat", "social")
PRIORITIES = ("low", "normal", "high", "urgent")
PRIORITY_RANK = {p: i for i, p in enumerate(PRIORITIES)}

# Open (not resolved or closed) and not merged: the rows of every queue view by default, as the
# predicate of partial indexes. NOT IN, not IN: no other index can serve a NOT IN, so SQLite picks
# these even without statistics.
DONE_STATUSES = tuple(s for s in STATUSES if s not in OPEN_STATUSES)
OPEN_PREDICATE = "status NOT IN (" + ", ".join(f"'{s}'" for s in DONE_STATUSES) + ") AND merged_into_id IS NULL"
ASSIGNED_PREDICATE = OPEN_PREDICATE + " AND assignee_id IS NOT NULL"  # implied by assignee_id = <id>
UNASSIGNED_PREDICATE = OPEN_PREDICATE + " AND assignee_id IS NULL"

# A tsvector on PostgreSQL; an unused text column on SQLite (which searches an FTS5 table instead).
SearchVector = Text().with_variant(TSVECTOR(), "postgresql")


class Queue(db.Model):
    """A department queue (Customer Support, Technical Support, Billing, Marketing, ...)."""

    __tablename__ = "queues"
    id = db.Column(db.Integer, primary_key=True)
    slug = db.Column(db.String(40), nullable=False, unique=True)
    name = db.Column(db.String(80), nullable=False)
    lead_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    lead = db.relationship("User", foreign_keys=[lead_id])
    members = db.relationship("User", secondary="queue_members", order_by="User.name")


class QueueMember(db.Model):
    """An agent's membership of a queue."""

    __tablename__ = "queue_members"
    queue_id = db.Column(db.Integer, db.ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)


class Counter(db.Model):
    """Named counters (the ticket number), incremented atomically with UPDATE ... RETURNING."""

    __tablename__ = "counters"
    name = db.Column(db.String(40), primary_key=True)
    value = db.Column(db.BigInteger, nullable=False, default=0)


class TicketCount(db.Model):
    """Ticket counts per (queue, status, assigned?), kept on write so sidebars never count rows."""

    __tablename__ = "ticket_counts"
    queue_id = db.Column(db.Integer, primary_key=True)
    status = db.Column(db.String(20), primary_key=True)
    unassigned = db.Column(db.Boolean, primary_key=True)
    n = db.Column(db.Integer, nullable=False, default=0)


ticket_tags = db.Table(
    "ticket_tags",
    db.Column("ticket_id", db.Integer, db.ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True),
    db.Column("tag_id", db.Integer, db.ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_ticket_tags_tag", "tag_id", "ticket_id"),
)


class Tag(db.Model):
    """A free-form label on tickets (stored lower-case)."""

    __tablename__ = "tags"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(60), nullable=False, unique=True)


class Ticket(db.Model):
    """A call-service ticket. List columns (last activity, preview) are kept up to date on write."""

    __tablename__ = "tickets"
    id = db.Column(db.Integer, primary_key=True)
    number = db.Column(db.Integer, nullable=False, unique=True)
    subject = db.Column(db.String(300), nullable=False)
    channel = db.Column(db.String(16), nullable=False, default="web")
    # active_history: the old value is always known on change, for the counts kept in ticket_counts.
    status = mapped_column(db.String(20), nullable=False, default="new", active_history=True)
    priority = db.Column(db.String(10), nullable=False, default="normal")
    queue_id = mapped_column(db.Integer, db.ForeignKey("queues.id"), nullable=False, active_history=True)
    assignee_id = mapped_column(db.Integer, db.ForeignKey("users.id"), active_history=True)
    customer_id = db.Column(db.Integer, db.ForeignKey("customers.id"), nullable=False)
    merged_into_id = db.Column(db.Integer, db.ForeignKey("tickets.id"))
    linked_ticket_id = db.Column(db.Integer, db.ForeignKey("tickets.id"))  # e.g. follow-up of a closed one
    customer_replied = db.Column(db.Boolean, nullable=False, default=False)  # shown on pending_billing
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    first_response_at = db.Column(db.DateTime)
    last_customer_message_at = db.Column(db.DateTime)
    last_agent_message_at = db.Column(db.DateTime)
    last_activity_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    resolved_at = db.Column(db.DateTime)
    closed_at = db.Column(db.DateTime)
    last_message_preview = db.Column(db.String(200))
    message_count = db.Column(db.Integer, nullable=False, default=0)
    # Email: the mailbox that received it (replies go from its address), the Cc list agents'
    # replies copy (editable), and whether the sender is a machine (never an automatic mail back).
    mailbox_id = db.Column(db.Integer, db.ForeignKey("mailboxes.id", ondelete="SET NULL"))
    cc_addresses = db.Column(db.JSON)
    reply_to = db.Column(db.String(320))  # the customer's Reply-To: where replies go (From identifies)
    # server default only (no Python default): the bulk loader's INSERT lists only the columns it fills
    automated_sender = db.Column(db.Boolean, nullable=False, server_default=db.false())
    search_vector = db.Column(SearchVector)
    # SLA (helpdesk/sla): the policy chosen at creation, the resolution cycle (a reopen starts the
    # next), and the running deadlines, NULL when stopped or paused; next_sla_due is the earliest.
    sla_policy_id = db.Column(db.Integer, db.ForeignKey("sla_policies.id", ondelete="SET NULL"))
    sla_cycle = db.Column(db.Integer, nullable=False, server_default="1")
    first_response_due = db.Column(db.DateTime)
    next_response_due = db.Column(db.DateTime)
    resolution_due = db.Column(db.DateTime)
    next_sla_due = db.Column(db.DateTime)
    # Products and guarantees (helpdesk/warranty): the owned item and issue category the ticket is
    # about, the complaint day (Asia/Jakarta), and the latest eligibility decision: who pays
    # (charge, with its last free day), until when cashback can be claimed (NULL: not eligible),
    # and the whole answer as the API shows it.
    owned_item_id = db.Column(db.Integer, db.ForeignKey("owned_items.id", ondelete="SET NULL"))
    issue_category_id = db.Column(db.Integer, db.ForeignKey("issue_categories.id", ondelete="SET NULL"))
    complaint_date = db.Column(db.Date)
    charge = db.Column(db.String(24))
    charge_until = db.Column(db.Date)
    cashback_until = db.Column(db.Date)
    eligibility = db.Column(db.JSON)

    queue = db.relationship("Queue")
    assignee = db.relationship("User", foreign_keys=[assignee_id])
    customer = db.relationship("Customer")
    tags = db.relationship("Tag", secondary=ticket_tags, lazy="selectin", order_by="Tag.name")
    merged_into = db.relationship("Ticket", remote_side=[id], foreign_keys=[merged_into_id])
    linked_ticket = db.relationship("Ticket", remote_side=[id], foreign_keys=[linked_ticket_id])

    # Queue views show open, unmerged tickets newest activity first: partial indexes hold exactly
    # those rows in that order, so a page (and a capped count) reads a few index entries. Queries
    # must repeat the predicate's terms (listing.open_statuses): SQLite matches them literally.
    __table_args__ = (
        Index("ix_tickets_open_activity", "last_activity_at", "id",
              sqlite_where=text(OPEN_PREDICATE), postgresql_where=text(OPEN_PREDICATE)),
        Index("ix_tickets_open_queue_activity", "queue_id", "last_activity_at", "id",
              sqlite_where=text(OPEN_PREDICATE), postgresql_where=text(OPEN_PREDICATE)),
        Index("ix_tickets_open_queue_created", "queue_id", "created_at", "id",  # oldest first, per queue
              sqlite_where=text(OPEN_PREDICATE), postgresql_where=text(OPEN_PREDICATE)),
        Index("ix_tickets_open_assignee_activity", "assignee_id", "last_activity_at", "id",
              sqlite_where=text(ASSIGNED_PREDICATE), postgresql_where=text(ASSIGNED_PREDICATE)),
        Index("ix_tickets_open_assignee_created", "assignee_id", "created_at", "id",  # oldest first, mine
              sqlite_where=text(ASSIGNED_PREDICATE), postgresql_where=text(ASSIGNED_PREDICATE)),
        # PostgreSQL does not read an index in order after an IS NULL condition on its first column.
        Index("ix_tickets_open_unassigned_activity", "last_activity_at", "id",
              sqlite_where=text(UNASSIGNED_PREDICATE), postgresql_where=text(UNASSIGNED_PREDICATE)),
        # The usual filter within a queue: one status and one priority.
        Index("ix_tickets_queue_status_priority_activity", "queue_id", "status", "priority", "last_activity_at", "id"),
        Index("ix_tickets_activity", "last_activity_at", "id"),
        Index("ix_tickets_created", "created_at", "id"),
        Index("ix_tickets_status_activity", "status", "last_activity_at", "id"),
        Index("ix_tickets_queue_status_activity", "queue_id", "status", "last_activity_at", "id"),
        # Assigned tickets only: unassigned views then use their own partial index on SQLite,
        # which otherwise takes "assignee_id IS NULL" for a selective lookup here.
        Index("ix_tickets_assignee_status_activity", "assignee_id", "status", "last_activity_at", "id",
              sqlite_where=text("assignee_id IS NOT NULL"), postgresql_where=text("assignee_id IS NOT NULL")),
        Index("ix_tickets_customer_activity", "customer_id", "last_activity_at"),
        # Tickets pointing at a ticket (merges move them; deleting or merging checks them):
        # without these, each such check reads the whole table.
        Index("ix_tickets_merged_into", "merged_into_id", sqlite_where=text("merged_into_id IS NOT NULL"),
              postgresql_where=text("merged_into_id IS NOT NULL")),
        Index("ix_tickets_linked_ticket", "linked_ticket_id", sqlite_where=text("linked_ticket_id IS NOT NULL"),
              postgresql_where=text("linked_ticket_id IS NOT NULL")),
        Index("ix_tickets_status_resolved", "status", "resolved_at"),
        # The charge-decision filter of the queue views (open tickets, newest activity first).
        Index("ix_tickets_open_charge_activity", "charge", "last_activity_at", "id",
              sqlite_where=text(OPEN_PREDICATE), postgresql_where=text(OPEN_PREDICATE)),
        Index("ix_tickets_owned_item", "owned_item_id", sqlite_where=text("owned_item_id IS NOT NULL"),
              postgresql_where=text("owned_item_id IS NOT NULL")),
        # "Due soonest" views: open tickets with a running SLA clock, per queue and overall.
        Index("ix_tickets_open_queue_sla", "queue_id", "next_sla_due", "id",
              sqlite_where=text(OPEN_PREDICATE + " AND next_sla_due IS NOT NULL"),
              postgresql_where=text(OPEN_PREDICATE + " AND next_sla_due IS NOT NULL")),
        Index("ix_tickets_open_sla", "next_sla_due", "id",
              sqlite_where=text(OPEN_PREDICATE + " AND next_sla_due IS NOT NULL"),
              postgresql_where=text(OPEN_PREDICATE + " AND next_sla_due IS NOT NULL")),
    )

    @property
    def tag_names(self):
        return [t.name for t in self.tags]


class Message(db.Model):
    """A public reply or an internal note on a ticket, by an agent or the customer."""

    __tablename__ = "messages"
    id = db.Column(db.Integer, primary_key=True)
    ticket_id = db.Column(db.Integer, db.ForeignKey("tickets.id"), nullable=False)
    kind = db.Column(db.String(10), nullable=False, default="reply")  # reply | note
    author_user_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    author_customer_id = db.Column(db.Integer, db.ForeignKey("customers.id"))
    channel = db.Column(db.String(16))
    body_text = db.Column(db.Text, nullable=False, default="")
    body_html = db.Column(db.Text)  # sanitised with nh3
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    # Email: its Message-ID, the threading rule that matched, the inbound log row, and the full
    # original when quotes and signatures were stripped for display.
    email_message_id = db.Column(db.String(520))
    thread_rule = db.Column(db.String(40))
    inbound_id = db.Column(db.Integer)  # inbound_messages.id (no FK: that table points here already)
    original_text = db.Column(db.Text)
    original_html = db.Column(db.Text)
    author_user = db.relationship("User")
    author_customer = db.relationship("Customer")
    attachments = db.relationship("Attachment", lazy="selectin", order_by="Attachment.id")

    __table_args__ = (Index("ix_messages_ticket", "ticket_id", "id"),
                      fk_index("ix_messages_author_customer", "author_customer_id"))

    @property
    def is_note(self):
        return self.kind == "note"

    @property
    def from_customer(self):
        return self.author_customer_id is not None


class Attachment(db.Model):
    """A file on a message, stored once per content hash under the attachment directory."""

    __tablename__ = "attachments"
    id = db.Column(db.Integer, primary_key=True)
    ticket_id = db.Column(db.Integer, db.ForeignKey("tickets.id"), nullable=False, index=True)
    message_id = db.Column(db.Integer, db.ForeignKey("messages.id"), index=True)
    sha256 = db.Column(db.String(64), nullable=False, index=True)
    filename = db.Column(db.String(255), nullable=False)
    size = db.Column(db.Integer, nullable=False)
    content_type = db.Column(db.String(127), nullable=False, default="application/octet-stream")
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    content_id = db.Column(db.String(255))  # inline image referenced by cid: in the HTML body
    inline = db.Column(db.Boolean, nullable=False, default=False, server_default=db.false())
    # unscanned (no scanner) | pending | clean | infected: agents cannot open pending or infected files
    scan_status = db.Column(db.String(10), nullable=False, default="unscanned", server_default="unscanned")
    scan_result = db.Column(db.String(200))


class CannedResponse(db.Model):
    """A reusable reply for a queue (or every queue when queue_id is NULL) with placeholders."""

    __tablename__ = "canned_responses"
    id = db.Column(db.Integer, primary_key=True)
    queue_id = db.Column(db.Integer, db.ForeignKey("queues.id"), index=True)
    title = db.Column(db.String(120), nullable=False)
    body = db.Column(db.Text, nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    queue = db.relationship("Queue")


class AuditEvent(db.Model):
    """One change: who, when, what, old -> new. Ticket events carry ticket_id for the ticket page."""

    __tablename__ = "audit_events"
    id = db.Column(db.Integer, primary_key=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    actor_user_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    actor_customer_id = db.Column(db.Integer, db.ForeignKey("customers.id"))
    ticket_id = db.Column(db.Integer, db.ForeignKey("tickets.id"))
    object_type = db.Column(db.String(20), nullable=False, default="ticket")
    object_id = db.Column(db.Integer)
    action = db.Column(db.String(40), nullable=False)  # status, priority, queue, assignee, tags, merge...
    old_value = db.Column(db.String(300))
    new_value = db.Column(db.String(300))
    note = db.Column(db.Text)
    actor = db.relationship("User")

    __table_args__ = (
        Index("ix_audit_ticket", "ticket_id", "id"),
        Index("ix_audit_object", "object_type", "object_id"),
        fk_index("ix_audit_actor_customer", "actor_customer_id"),
    )
