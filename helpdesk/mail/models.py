"""Mailboxes, the inbound log, every Message-ID seen or sent, outbound mail and the mail budget."""
from sqlalchemy import Index, UniqueConstraint, text

from ..dbutil import fk_index
from ..extensions import db
from ..timeutil import utcnow

SECURITY_MODES = ("ssl", "starttls", "plain")
AFTER_FETCH = ("flag", "move")
# What became of an inbound message. "pending" rows are stored raw and waiting to be processed.
RESULTS = ("pending", "created", "appended", "ignored", "duplicate", "quarantined")
OUTBOUND_STATUSES = ("queued", "sent", "held", "failed", "skipped")  # skipped: unsubscribed before sending


class Mailbox(db.Model):
    """A support mailbox fetched over IMAP; its tickets land in `queue`, replies go from `from_address`."""

    __tablename__ = "mailboxes"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(60), nullable=False, unique=True)
    active = db.Column(db.Boolean, nullable=False, default=True)
    host = db.Column(db.String(255), nullable=False)
    port = db.Column(db.Integer, nullable=False, default=993)
    security = db.Column(db.String(10), nullable=False, default="ssl")
    username = db.Column(db.String(255), nullable=False)
    password_encrypted = db.Column(db.Text)  # Fernet token (helpdesk.mail.crypto)
    password_env = db.Column(db.String(80))  # or: the name of an environment variable holding it
    folder = db.Column(db.String(255), nullable=False, default="INBOX")
    processed_folder = db.Column(db.String(255))
    quarantine_folder = db.Column(db.String(255))
    after_fetch = db.Column(db.String(10), nullable=False, default="flag")  # flag \Seen | move
    queue_id = db.Column(db.Integer, db.ForeignKey("queues.id"), nullable=False)
    from_address = db.Column(db.String(254), nullable=False)
    from_name = db.Column(db.String(120))
    plus_addressing = db.Column(db.Boolean, nullable=False, default=False)
    # health: consecutive failures back the mailbox off and raise an alert on the admin pages
    consecutive_failures = db.Column(db.Integer, nullable=False, default=0)
    last_error = db.Column(db.Text)
    last_error_at = db.Column(db.DateTime)
    backoff_until = db.Column(db.DateTime)
    last_success_at = db.Column(db.DateTime)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    queue = db.relationship("Queue")


class MailboxFolderState(db.Model):
    """Where fetching stands in one folder: its UIDVALIDITY and the highest UID stored."""

    __tablename__ = "mailbox_folder_states"
    mailbox_id = db.Column(db.Integer, db.ForeignKey("mailboxes.id", ondelete="CASCADE"), primary_key=True)
    folder = db.Column(db.String(255), primary_key=True)
    uidvalidity = db.Column(db.BigInteger, nullable=False)
    last_uid = db.Column(db.BigInteger, nullable=False, default=0)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow)


class InboundMessage(db.Model):
    """The inbound log: one row per message received (raw bytes kept under RAW_MAIL_DIR by hash)."""

    __tablename__ = "inbound_messages"
    id = db.Column(db.Integer, primary_key=True)
    received_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    mailbox_id = db.Column(db.Integer, db.ForeignKey("mailboxes.id", ondelete="SET NULL"))
    source = db.Column(db.String(500))  # "imap:<mailbox>/<folder>/<uid>" or an imported file
    folder = db.Column(db.String(255))
    uidvalidity = db.Column(db.BigInteger)
    uid = db.Column(db.BigInteger)
    raw_sha256 = db.Column(db.String(64), nullable=False)
    size = db.Column(db.Integer, nullable=False, default=0)
    message_id = db.Column(db.String(500))
    dedupe_key = db.Column(db.String(520))  # "mid:<message-id>" or "hash:<sha256 of headers+body>"
    from_addr = db.Column(db.String(320))
    subject = db.Column(db.String(300))
    result = db.Column(db.String(12), nullable=False, default="pending")
    reason = db.Column(db.String(40))  # auto_reply | bounce | spam | automated | own_bounce | ...
    rule = db.Column(db.String(40))  # the threading rule that matched
    error = db.Column(db.Text)
    ticket_id = db.Column(db.Integer, db.ForeignKey("tickets.id", ondelete="SET NULL"))
    message_row_id = db.Column(db.Integer, db.ForeignKey("messages.id", ondelete="SET NULL"))
    processed_at = db.Column(db.DateTime)
    server_done_at = db.Column(db.DateTime)  # flagged \Seen or moved on the server
    mailbox = db.relationship("Mailbox")

    __table_args__ = (
        # The same server message is stored once, however many fetchers race for it.
        UniqueConstraint("mailbox_id", "folder", "uidvalidity", "uid", name="uq_inbound_server_uid"),
        Index("ix_inbound_pending", "id", sqlite_where=text("result = 'pending'"),
              postgresql_where=text("result = 'pending'")),
        Index("ix_inbound_server_todo", "mailbox_id", "id", sqlite_where=text("server_done_at IS NULL"),
              postgresql_where=text("server_done_at IS NULL")),
        Index("ix_inbound_received", "received_at", "id"),
        Index("ix_inbound_result_received", "result", "received_at", "id"),
        Index("ix_inbound_mailbox_received", "mailbox_id", "received_at", "id"),
        Index("ix_inbound_dedupe", "dedupe_key"),
        Index("ix_inbound_ticket", "ticket_id"),
        fk_index("ix_inbound_message_row", "message_row_id"),
    )


class MailMessageId(db.Model):
    """Every Message-ID the helpdesk has seen or sent, with its ticket: threading and dedupe."""

    __tablename__ = "mail_message_ids"
    message_id = db.Column(db.String(520), primary_key=True)  # "<id>" stored without brackets; "hash:..." keys too
    ticket_id = db.Column(db.Integer, db.ForeignKey("tickets.id", ondelete="CASCADE"))
    message_row_id = db.Column(db.Integer, db.ForeignKey("messages.id", ondelete="SET NULL"))
    inbound_id = db.Column(db.Integer, db.ForeignKey("inbound_messages.id", ondelete="SET NULL"))
    direction = db.Column(db.String(3), nullable=False, default="in")  # in | out
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    __table_args__ = (Index("ix_mail_message_ids_ticket", "ticket_id"),
                      fk_index("ix_mail_message_ids_message_row", "message_row_id"),
                      fk_index("ix_mail_message_ids_inbound", "inbound_id"))


class OutboundMail(db.Model):
    """One mail the helpdesk sends (or holds): its stored Message-ID threads the customer's answer."""

    __tablename__ = "outbound_mails"
    id = db.Column(db.Integer, primary_key=True)
    ticket_id = db.Column(db.Integer, db.ForeignKey("tickets.id", ondelete="CASCADE"))
    message_row_id = db.Column(db.Integer, db.ForeignKey("messages.id", ondelete="SET NULL"))
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="SET NULL"))  # the notified agent
    kind = db.Column(db.String(30), nullable=False)  # ack | reply | notify_new | notify_reply | notify_assign | refused
    message_id = db.Column(db.String(520), nullable=False, unique=True)
    in_reply_to = db.Column(db.String(520))
    references = db.Column(db.Text)
    to_addrs = db.Column(db.JSON, nullable=False, default=list)
    cc_addrs = db.Column(db.JSON, nullable=False, default=list)
    subject = db.Column(db.String(400), nullable=False, default="")
    locale = db.Column(db.String(10))  # None: bilingual, Indonesian first
    automatic = db.Column(db.Boolean, nullable=False, default=True)
    status = db.Column(db.String(10), nullable=False, default="queued")
    attempts = db.Column(db.Integer, nullable=False, default=0)
    last_error = db.Column(db.Text)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    sent_at = db.Column(db.DateTime)

    __table_args__ = (
        Index("ix_outbound_ticket", "ticket_id", "id"),
        Index("ix_outbound_status", "status", "id"),
        fk_index("ix_outbound_message_row", "message_row_id"),
    )


class AutoMailLog(db.Model):
    """One automatic mail to one recipient: the sliding windows of the automatic-mail budget."""

    __tablename__ = "auto_mail_log"
    id = db.Column(db.Integer, primary_key=True)
    recipient = db.Column(db.String(320), nullable=False)
    ticket_id = db.Column(db.Integer, db.ForeignKey("tickets.id", ondelete="CASCADE"))
    outbound_id = db.Column(db.Integer, db.ForeignKey("outbound_mails.id", ondelete="CASCADE"))
    sent_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    __table_args__ = (
        Index("ix_auto_mail_recipient", "recipient", "sent_at"),
        Index("ix_auto_mail_ticket", "ticket_id", "sent_at"),
        fk_index("ix_auto_mail_outbound", "outbound_id"),
    )


class SenderBlock(db.Model):
    """An admin-managed blocklist entry: an address, or a domain ("@example.com" / "example.com")."""

    __tablename__ = "mail_blocklist"
    id = db.Column(db.Integer, primary_key=True)
    pattern = db.Column(db.String(255), nullable=False, unique=True)
    note = db.Column(db.String(300))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
