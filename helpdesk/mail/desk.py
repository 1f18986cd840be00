"""The email parts of the agent's ticket page: threading rules, full originals, inline images, Cc list.

Pure helpers for rendering (no queries: they work on the messages and their eager-loaded
attachments) and one audited service (the Cc list; the caller commits).
"""
import html as _html
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from ..auth.i18n import _
from ..errors import DomainError
from ..tickets.html import sanitize
from ..tickets.services import audit, get_ticket_for
from ..timeutil import utcnow

THREAD_RULE_LABELS = {
    "in_reply_to": "In-Reply-To", "references": "References", "subject_tag": _l("subject tag"),
    "subject_tag_foreign": _l("subject tag of a ticket the sender is not part of (new ticket)"),
    "plus_address": _l("plus address"), "new": _l("new"),
}
BLOCKED_SCANS = ("infected", "pending")
MAX_CC = 20
_CID_SRC = re.compile(r'(<img\b[^>]*?\bsrc=")cid:([^"]*)(")', re.I)
_SPLIT = re.compile(r"[,;\s]+")


def downloadable(attachment):
    """False while a virus scan is pending or after it found something."""
    return attachment.scan_status not in BLOCKED_SCANS


def refusal(attachment):
    """(HTTP status, reason) when an attachment must not be served, else None."""
    if attachment.scan_status == "infected":
        return 403, _("This file is infected (%(finding)s) and cannot be downloaded.",
                      finding=attachment.scan_result or _("virus found"))
    if attachment.scan_status == "pending":
        return 409, _("This file is still being scanned for viruses. Try again in a moment.")
    return None


def rewrite_cids(body_html, attachments, url_for_attachment):
    """`cid:` image sources → the download URL of that message's own inline attachment.

    Returns (html, ids of the attachments shown inline). A cid that names no attachment of this
    message, or a file that may not be downloaded, is left as it is (the browser shows nothing).
    """
    by_cid = {}
    for att in attachments:
        if att.content_id and downloadable(att):
            by_cid.setdefault(att.content_id.strip("<>"), att)
            by_cid.setdefault(att.content_id.strip("<>").lower(), att)
    used = set()
    if not body_html or not by_cid:
        return body_html, used

    def replace(match):
        cid = unquote(_html.unescape(match.group(2))).strip().strip("<>")
        att = by_cid.get(cid) or by_cid.get(cid.lower())
        if att is None:
            return match.group(0)
        used.add(att.id)
        return match.group(1) + _html.escape(url_for_attachment(att), quote=True) + match.group(3)

    return _CID_SRC.sub(replace, body_html), used


@dataclass
class MessageView:
    """What the ticket page shows of one message beyond its row."""

    body_html: Markup | None = None
    original_html: Markup | None = None
    original_text: str | None = None
    rule_label: str | None = None
    attachments: list = field(default_factory=list)  # the listed ones (inline images shown in the body are not)


def message_views(messages, url_for_attachment):
    """{message id: MessageView} for a ticket's messages; uses only their loaded attachments."""
    out = {}
    for m in messages:
        atts = list(m.attachments)
        body, used = rewrite_cids(m.body_html, atts, url_for_attachment)
        original_html = None
        if m.original_html:
            original_html, used_original = rewrite_cids(sanitize(m.original_html), atts, url_for_attachment)
            used |= used_original
        rule = m.thread_rule
        out[m.id] = MessageView(
            body_html=Markup(body) if body else None,
            original_html=Markup(original_html) if original_html else None,
            original_text=m.original_text or None,
            rule_label=str(THREAD_RULE_LABELS.get(rule, rule)) if rule else None,
            attachments=[a for a in atts if not (a.inline and a.id in used)],
        )
    return out


def parse_cc(raw):
    """Comma-, semicolon- or space-separated addresses → a lower-cased, de-duplicated list, or DomainError."""
    out, bad = [], []
    for part in _SPLIT.split(raw or ""):
        part = part.strip().strip("<>")
        if not part:
            continue
        try:
            address = validate_email(part, check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            bad.append(part)
            continue
        if address not in out:
            out.append(address)
    if bad:
        raise DomainError(_("Not a valid email address: %(list)s", list=", ".join(bad)[:300]), field="cc")
    if len(out) > MAX_CC:
        raise DomainError(_("At most %(n)d Cc addresses.", n=MAX_CC), field="cc")
    return out


def set_cc(ticket_id, actor_id, raw, now=None):
    """Replace the ticket's Cc list (agent replies go to these addresses too); audited."""
    user, ticket = get_ticket_for(actor_id, ticket_id)
    if ticket.merged_into_id:
        raise DomainError(_("This ticket was merged: edit the Cc list of the ticket it was merged into."),
                          field="cc")
    new = parse_cc(raw)
    old = list(ticket.cc_addresses or [])
    if new == old:
        return ticket
    ticket.cc_addresses = new
    ticket.last_activity_at = now or utcnow()
    audit(ticket.id, user.id, "cc", ", ".join(old) or None, ", ".join(new) or None)
    return ticket
