"""Admin rules of the email channel: mailboxes, the sender blocklist, the inbound log, alerts.

Services take ids and primitives (the acting admin's id included), raise domain errors and only
flush: the view owns the commit. They never read the request, the session user or flash.
"""
import ipaddress
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from email import policy
from email.header import decode_header, make_header
from email.parser import BytesParser
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import joinedload

from ..auth.i18n import _
from ..errors import DomainError, NotFound
from ..extensions import db
from ..tickets.listing import decode_cursor, encode_cursor
from ..tickets.models import Queue, Ticket
from ..tickets.services import audit
from ..timeutil import utcnow
from . import crypto, rawstore
from .models import AFTER_FETCH, SECURITY_MODES, InboundMessage, Mailbox, MailboxFolderState, OutboundMail, SenderBlock

RAW_PREVIEW_BYTES = 1024 * 1024  # the raw source shown on the page; the download has it all
LOG_PAGE_SIZE = 50
HELD_COUNT_CAP = 1000
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
_CRLF = re.compile(r"[\r\n\x00]")


def lead_service(name):
    """A function of helpdesk.mail.services (the ingest pipeline), or None while it is not there."""
    try:
        from . import services
    except ImportError:
        return None
    return getattr(services, name, None)


def _secret():
    return current_app.config.get("MAILBOX_SECRET_KEY") or current_app.config["SECRET_KEY"]


# ---------------------------------------------------------------- mailboxes

def is_loopback(host):
    """True for localhost and loopback addresses (127.0.0.0/8, ::1): plain IMAP never leaves the machine."""
    host = (host or "").strip().strip("[]").lower().rstrip(".")
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def get_mailbox(mailbox_id):
    mailbox = db.session.get(Mailbox, mailbox_id) if mailbox_id else None
    if mailbox is None:
        raise NotFound(_("No such mailbox."))
    return mailbox


def list_mailboxes():
    return db.session.execute(select(Mailbox).options(joinedload(Mailbox.queue)).order_by(Mailbox.name)
                              ).scalars().all()


def _clean_address(raw, field_name):
    try:
        return validate_email((raw or "").strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise DomainError(_("%(email)s is not a valid email address.", email=repr(raw or "")),
                          field=field_name) from exc


def _one_line(value, field_name, max_len, required=False, label=None):
    value = (value or "").strip()
    if _CRLF.search(value):
        raise DomainError(_("Line breaks are not allowed here."), field=field_name)
    if required and not value:
        raise DomainError(_("%(label)s is required.", label=label or field_name), field=field_name)
    if len(value) > max_len:
        raise DomainError(_("At most %(n)d characters.", n=max_len), field=field_name)
    return value


def _mailbox_values(mailbox_id, *, name, host, port, security, username, folder, after_fetch, processed_folder,
                    quarantine_folder, queue_id, from_address, from_name, plus_addressing, active):
    name = " ".join((name or "").split())
    if not name or len(name) > 60:
        raise DomainError(_("A name of at most 60 characters is required."), field="name")
    clash = db.session.execute(select(Mailbox.id).where(func.lower(Mailbox.name) == name.lower())).scalar()
    if clash and clash != mailbox_id:
        raise DomainError(_("A mailbox called %(name)s exists already.", name=name), field="name")
    host = _one_line(host, "host", 255, required=True, label=_("The host"))
    if " " in host or "/" in host:
        raise DomainError(_("A host name or IP address, without spaces or slashes."), field="host")
    if security not in SECURITY_MODES:
        raise DomainError(_("Choose SSL/TLS, STARTTLS or plain."), field="security")
    if security == "plain" and not is_loopback(host):
        raise DomainError(_("Plain (unencrypted) IMAP is only allowed for a loopback host such as 127.0.0.1 or "
                            "localhost: the password would cross the network in clear text. Use SSL/TLS or "
                            "STARTTLS."), field="security")
    if port in (None, ""):
        port = 993 if security == "ssl" else 143
    try:
        port = int(port)
    except (TypeError, ValueError):
        port = 0
    if not 1 <= port <= 65535:
        raise DomainError(_("A port between 1 and 65535."), field="port")
    username = _one_line(username, "username", 255, required=True, label=_("The user name"))
    folder = _one_line(folder or "INBOX", "folder", 255)
    processed_folder = _one_line(processed_folder, "processed_folder", 255) or None
    quarantine_folder = _one_line(quarantine_folder, "quarantine_folder", 255) or None
    if after_fetch not in AFTER_FETCH:
        raise DomainError(_("Choose what happens after fetching."), field="after_fetch")
    if after_fetch == "move" and not processed_folder:
        raise DomainError(_("Moving needs a processed folder."), field="processed_folder")
    if processed_folder and processed_folder == folder:
        raise DomainError(_("The processed folder must differ from the folder that is fetched."),
                          field="processed_folder")
    if quarantine_folder and quarantine_folder == folder:
        raise DomainError(_("The quarantine folder must differ from the folder that is fetched."),
                          field="quarantine_folder")
    if not queue_id or db.session.get(Queue, queue_id) is None:
        raise DomainError(_("Choose the queue for new tickets."), field="queue_id")
    return dict(name=name, host=host, port=port, security=security, username=username, folder=folder,
                after_fetch=after_fetch, processed_folder=processed_folder, quarantine_folder=quarantine_folder,
                queue_id=queue_id, from_address=_clean_address(from_address, "from_address"),
                from_name=_one_line(from_name, "from_name", 120) or None,
                plus_addressing=bool(plus_addressing), active=bool(active))


def _apply_password(mailbox, password, password_env, creating):
    """A typed password is encrypted (the env name cleared); an env name replaces the stored one."""
    password_env = (password_env or "").strip()
    if password and password_env:
        raise DomainError(_("Give either a password or the name of an environment variable, not both."),
                          field="password_env")
    if password_env:
        if not _ENV_NAME.match(password_env) or len(password_env) > 80:
            raise DomainError(_("An environment variable name: letters, digits and underscores."),
                              field="password_env")
        changed = mailbox.password_env != password_env or mailbox.password_encrypted is not None
        mailbox.password_env, mailbox.password_encrypted = password_env, None
        return changed
    if password:
        if _CRLF.search(password):
            raise DomainError(_("Line breaks are not allowed here."), field="password")
        mailbox.password_encrypted, mailbox.password_env = crypto.encrypt(password, _secret()), None
        return True
    if creating or not (mailbox.password_encrypted or mailbox.password_env):
        raise DomainError(_("A password or the name of an environment variable holding it is required."),
                          field="password")
    return False


def create_mailbox(actor_id, *, password=None, password_env=None, **values):
    """A new support mailbox (audited; the password only encrypted)."""
    clean = _mailbox_values(None, **values)
    mailbox = Mailbox(**clean)
    _apply_password(mailbox, password, password_env, creating=True)
    db.session.add(mailbox)
    db.session.flush()
    audit(None, actor_id, "created", new=f"{mailbox.name} {mailbox.username}@{mailbox.host}",
          object_type="mailbox", object_id=mailbox.id)
    return mailbox


def update_mailbox(mailbox_id, actor_id, *, password=None, password_env=None, **values):
    """Change a mailbox; a blank password keeps the stored one. Changes are audited, never the password."""
    mailbox = get_mailbox(mailbox_id)
    clean = _mailbox_values(mailbox.id, **values)
    changes = []
    for key, value in clean.items():
        if getattr(mailbox, key) != value:
            changes.append(f"{key}: {getattr(mailbox, key)} → {value}")
            setattr(mailbox, key, value)
    if _apply_password(mailbox, password, password_env, creating=False):
        changes.append("password changed")
    if changes:
        audit(None, actor_id, "updated", new=mailbox.name, note="; ".join(changes),
              object_type="mailbox", object_id=mailbox.id)
    db.session.flush()
    return mailbox


def delete_mailbox(mailbox_id, actor_id):
    """Remove a mailbox that never received mail; one with an inbound log is deactivated instead."""
    mailbox = get_mailbox(mailbox_id)
    if db.session.execute(select(InboundMessage.id).where(InboundMessage.mailbox_id == mailbox.id).limit(1)).first():
        raise DomainError(_("%(name)s has received mail, which stays in the inbound log: deactivate it instead.",
                            name=mailbox.name))
    db.session.execute(MailboxFolderState.__table__.delete().where(MailboxFolderState.mailbox_id == mailbox.id))
    audit(None, actor_id, "deleted", old=mailbox.name, object_type="mailbox", object_id=mailbox.id)
    db.session.delete(mailbox)
    db.session.flush()


def test_connection(mailbox_id):
    """(ok, detail) from the ingest pipeline's connection test, or DomainError while it is missing."""
    get_mailbox(mailbox_id)
    call = lead_service("test_connection")
    if call is None:
        raise DomainError(_("The connection test is not available yet (helpdesk.mail.services.test_connection "
                            "is missing)."))
    try:
        ok, detail = call(mailbox_id)
    except Exception as exc:  # noqa: BLE001 - a network test reports whatever went wrong
        return False, f"{type(exc).__name__}: {exc}"
    return bool(ok), str(detail or "")


def environment_mailbox():
    """The default mailbox from IMAP_* (used while no mailbox is in the database), password hidden."""
    config = current_app.config
    settings = None
    call = lead_service("default_mailbox_settings")
    if call is not None:
        try:
            settings = call()
        except Exception:  # noqa: BLE001 - a display of settings must not break the page
            settings = None
    if settings is None and config.get("IMAP_HOST"):
        ssl = (config.get("IMAP_SSL") or "true").lower()
        security = "starttls" if ssl == "starttls" else ("plain" if ssl in ("false", "0", "no") else "ssl")
        settings = {"host": config["IMAP_HOST"], "security": security,
                    "port": config.get("IMAP_PORT") or (993 if security == "ssl" else 143),
                    "username": config.get("IMAP_USER"), "folder": config.get("IMAP_FOLDER") or "INBOX",
                    "queue": config.get("IMAP_QUEUE"), "processed_folder": config.get("IMAP_PROCESSED_FOLDER"),
                    "from_address": config.get("IMAP_FROM")}
    if not settings:
        return None
    shown = {k: v for k, v in dict(settings).items() if "password" not in k.lower() and "secret" not in k.lower()}
    shown["password_set"] = bool(config.get("IMAP_PASSWORD") or settings.get("password"))
    return shown


# ---------------------------------------------------------------- blocklist

def normalise_pattern(raw):
    """'user@example.com' (an address) or '@example.com' (a domain and its subdomains), lower-case."""
    value = (raw or "").strip().lower()
    for lead in ("*@", "@", "*."):
        if value.startswith(lead):
            value = value[len(lead):]
            break
    else:
        if "@" in value:
            return _clean_address(value, "pattern")
    value = value.strip(".")
    try:
        ascii_domain = value.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_domain = ""
    if not ascii_domain or not _DOMAIN.match(ascii_domain):
        raise DomainError(_("%(value)s is neither an email address nor a domain.", value=repr(raw or "")),
                          field="pattern")
    return "@" + value


def list_blocks():
    return db.session.execute(select(SenderBlock).order_by(SenderBlock.pattern)).scalars().all()


def blocklist_patterns():
    return list(db.session.execute(select(SenderBlock.pattern)).scalars())


def add_block(pattern, note, actor_id):
    """Block a sender address or a domain: their mail is logged as spam (one click makes it a ticket)."""
    pattern = normalise_pattern(pattern)
    note = _one_line(note, "note", 300) or None
    if db.session.execute(select(SenderBlock.id).where(SenderBlock.pattern == pattern)).first():
        raise DomainError(_("%(pattern)s is on the blocklist already.", pattern=pattern), field="pattern")
    block = SenderBlock(pattern=pattern, note=note)
    db.session.add(block)
    db.session.flush()
    audit(None, actor_id, "blocked", new=pattern, note=note, object_type="blocklist", object_id=block.id)
    return block


def remove_block(block_id, actor_id):
    block = db.session.get(SenderBlock, block_id) if block_id else None
    if block is None:
        raise NotFound(_("That entry is not on the blocklist."))
    audit(None, actor_id, "unblocked", old=block.pattern, object_type="blocklist", object_id=block.id)
    db.session.delete(block)
    db.session.flush()
    return block.pattern


# ---------------------------------------------------------------- inbound log

@dataclass
class LogFilters:
    result: str = ""
    reason: str = ""
    mailbox: str = ""  # a mailbox id, "none" (imported files) or ""
    sender: str = ""  # from address starts with (or "@domain": ends with)
    subject: str = ""  # subject contains, case-insensitive
    date_from: date | None = None  # local dates (HELPDESK_TIMEZONE), inclusive
    date_to: date | None = None
    cursor: str = ""

    def as_args(self, **changes):
        data = {k: getattr(self, k) for k in ("result", "reason", "mailbox", "sender", "subject", "date_from",
                                              "date_to")}
        data.update(changes)
        return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in data.items() if v}


@dataclass
class LogPage:
    items: list
    next_cursor: str | None
    ticket_numbers: dict = field(default_factory=dict)


def _like_escape(value):
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _local_midnight_utc(day, tzname):
    local = datetime.combine(day, time.min, tzinfo=ZoneInfo(tzname))
    return local.astimezone(timezone.utc).replace(tzinfo=None)


def _log_conditions(f, tzname):
    conds = []
    if f.result:
        conds.append(InboundMessage.result == f.result)
    if f.reason:
        conds.append(InboundMessage.reason == f.reason)
    if f.mailbox == "none":
        conds.append(InboundMessage.mailbox_id.is_(None))
    elif f.mailbox.isdigit():
        conds.append(InboundMessage.mailbox_id == int(f.mailbox))
    sender = f.sender.strip().lower()
    if sender.startswith("@"):
        conds.append(InboundMessage.from_addr.like("%" + _like_escape(sender), escape="\\"))
    elif sender:
        conds.append(InboundMessage.from_addr.like(_like_escape(sender) + "%", escape="\\"))
    subject = f.subject.strip().lower()
    if subject:
        conds.append(func.lower(InboundMessage.subject).like("%" + _like_escape(subject) + "%", escape="\\"))
    if f.date_from:
        conds.append(InboundMessage.received_at >= _local_midnight_utc(f.date_from, tzname))
    if f.date_to:
        conds.append(InboundMessage.received_at < _local_midnight_utc(f.date_to + timedelta(days=1), tzname))
    return conds


def inbound_log(filters, page_size=LOG_PAGE_SIZE):
    """One page of the inbound log, newest first, from a keyset cursor: no OFFSET and no COUNT.

    The page walks the (received_at, id) index (or the result's / mailbox's one) from the cursor
    and stops after page_size + 1 matching rows.
    """
    tzname = current_app.config.get("HELPDESK_TIMEZONE", "Asia/Jakarta")
    conds = _log_conditions(filters, tzname)
    cur = decode_cursor(filters.cursor) if filters.cursor else None
    if cur:
        conds.append(tuple_(InboundMessage.received_at, InboundMessage.id) < tuple_(*cur))
    stmt = (select(InboundMessage).where(*conds)
            .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
            .limit(page_size + 1).options(joinedload(InboundMessage.mailbox)))
    rows = db.session.execute(stmt).scalars().all()
    next_cursor = None
    if len(rows) > page_size:
        rows = rows[:page_size]
        next_cursor = encode_cursor(rows[-1].received_at, rows[-1].id)
    return LogPage(items=rows, next_cursor=next_cursor, ticket_numbers=ticket_numbers(r.ticket_id for r in rows))


def ticket_numbers(ticket_ids):
    ids = sorted({i for i in ticket_ids if i})
    if not ids:
        return {}
    return dict(db.session.execute(select(Ticket.id, Ticket.number).where(Ticket.id.in_(ids))).all())


def get_inbound(inbound_id):
    row = db.session.get(InboundMessage, inbound_id) if inbound_id else None
    if row is None:
        raise NotFound(_("No such message in the inbound log."))
    return row


def load_raw(row):
    """The raw bytes of a logged message, or NotFound when the file is gone from RAW_MAIL_DIR."""
    raw = rawstore.load(row.raw_sha256) if row.raw_sha256 else None
    if raw is None:
        raise NotFound(_("The raw message is no longer in the raw mail store."))
    return raw


def _text_of(value):
    """A header value as text: raw bytes that were not ASCII decoded as UTF-8 (else replaced)."""
    text = str(value)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _decoded(value):
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # noqa: BLE001 - broken encoded-words are shown as written
        return value


def parse_headers(raw):
    """Every header of the raw message, in order: (name, value as written, decoded value or None).

    compat32 keeps values as they were written; undecodable bytes never raise.
    """
    msg = BytesParser(policy=policy.compat32).parsebytes(raw, headersonly=True)
    out = []
    for name, value in msg.raw_items():
        text = _text_of(value)
        decoded = _decoded(text) if "=?" in text else None
        out.append((_text_of(name), text, decoded if decoded and decoded != text else None))
    return out


def raw_preview(raw, limit=RAW_PREVIEW_BYTES):
    """(text, truncated): at most `limit` bytes of the raw source, as text for an escaped <pre>."""
    return raw[:limit].decode("utf-8", "replace"), len(raw) > limit


def raw_view(row):
    """What the log entry page shows of the raw message: headers, source (first MB), truncated; None if gone."""
    raw = rawstore.load(row.raw_sha256) if row.raw_sha256 else None
    if raw is None:
        return None
    source, truncated = raw_preview(raw)
    return {"headers": parse_headers(raw), "source": source, "truncated": truncated, "size": len(raw)}


def can_reprocess(row):
    return row.result in ("quarantined", "ignored")


def can_make_ticket(row):
    return row.result == "ignored" and row.reason == "spam"


def reprocess(inbound_id, actor_id, *, force_ticket=False):
    """Run a quarantined or ignored message through the pipeline again; force_ticket turns spam into a ticket."""
    row = get_inbound(inbound_id)
    if force_ticket and not can_make_ticket(row):
        raise DomainError(_("Only a message logged as spam can be turned into a ticket."))
    if not force_ticket and not can_reprocess(row):
        raise DomainError(_("Only a quarantined or ignored message can be reprocessed."))
    load_raw(row)
    call = lead_service("reprocess")
    if call is None:
        raise DomainError(_("Reprocessing is not available yet (helpdesk.mail.services.reprocess is missing)."))
    return call(row.id, actor_id, force_ticket=force_ticket)  # audited by the pipeline


# ---------------------------------------------------------------- alerts

def failing_mailboxes(now=None):
    """Active mailboxes whose last fetch failed or that are backed off."""
    now = now or utcnow()
    return db.session.execute(
        select(Mailbox).where(Mailbox.active.is_(True),
                              (Mailbox.consecutive_failures > 0) | (Mailbox.backoff_until > now))
        .order_by(Mailbox.name)).scalars().all()


def held_mail():
    """(count, recent held mails): from the budget module when it is there, else from outbound_mails."""
    try:
        from . import budget
        return budget.held_count(), list(budget.recent_held())
    except (ImportError, AttributeError, TypeError):
        pass
    sub = select(OutboundMail.id).where(OutboundMail.status == "held").limit(HELD_COUNT_CAP).subquery()
    count = db.session.execute(select(func.count()).select_from(sub)).scalar()
    recent = db.session.execute(select(OutboundMail).where(OutboundMail.status == "held")
                                .order_by(OutboundMail.id.desc()).limit(10)).scalars().all()
    return count, recent


def scanning_configured():
    config = current_app.config
    return bool(config.get("CLAMD_SOCKET") or config.get("CLAMD_HOST"))


def alerts(now=None):
    """What the admin start page warns about."""
    held_count, held_recent = held_mail()
    return {"failing": failing_mailboxes(now), "held_count": held_count, "held_recent": held_recent,
            "scanning_off": not scanning_configured()}
