"""What kind of mail this is, before it may become a ticket: bounce, auto-reply, spam, automated.

    bounce, auto_reply  never a ticket, never a mail back (logged as ignored)
    spam                ignored, an agent can make a ticket of it with one click
    automated           a ticket, but never an automatic mail back (newsletters, notifications)
    normal              everything else

The first rule that matches wins, in that order. Every answer carries a reason a person can read
in the inbound log. Pure: reads only the parsed headers (`ParsedMessage`), no app, no database.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

from helpdesk.mail.tokens import clean_id

if TYPE_CHECKING:  # pragma: no cover
    from helpdesk.mail.parser import ParsedMessage


@dataclass
class Classification:
    kind: str     # "normal" | "auto_reply" | "bounce" | "automated" | "spam"
    reason: str   # human-readable, e.g. "Auto-Submitted: auto-replied", "subject: out of office"


@dataclass
class BounceInfo:
    original_message_ids: list[str] = field(default_factory=list)
    status: str | None = None
    hard: bool = False
    recipients: list[str] = field(default_factory=list)


# Subjects of out-of-office and other automatic replies (Indonesian, English and the languages of
# common mail clients), matched at the start of the subject only. A marker counts only when a colon,
# a bracket or the end follows it ("Auto reply: Re: x", "[Out of Office]", "Sedang cuti"), so a
# customer's "Auto reply tidak jalan" (help with their mailbox) or "Vacation package ke Bali" stays
# normal mail; a few whole sentences count as they are ("I am out of the office until ...").
_AUTO_REPLY_SUBJECT = re.compile(
    r"""^[\s\[(]*(?:
        (?:out\ of\ (?:the\ )?office(?:\s+(?:auto[-\ ]?reply|reply|notice|message|notification))?
         | automatic\ reply | auto[-\ ]?reply | auto[-\ ]?respon(?:se|der) | auto(?=\s*[:：])
         | vacation(?:\s+(?:reply|response|notice|message|auto[-\ ]?reply))? | on\ (?:vacation|leave|holiday)
         | abwesend | abwesenheitsnotiz | automatische\ antwort | automatisch\ antwoord
         | r[ée]ponse\ automatique | respuesta\ autom[aá]tica | risposta\ automatica | resposta\ autom[aá]tica
         | autosvar | (?:sedang\ )?cuti | (?:sedang\ )?(?:berada\ )?di\ luar\ kantor
         | tidak\ (?:berada\ )?di\ kantor | balasan\ otomatis | jawaban\ otomatis | pesan\ otomatis
        )\s*(?:[:：\])]|-\s|\Z)
      | (?:i\ am|i['’]m|i\ will\ be)\ (?:currently\ )?(?:out\ of\ (?:the\ )?office|on\ (?:vacation|leave|holiday)|away)\b
      | out\ of\ (?:the\ )?office\ (?:until|till|from|sampai|hingga)\b
      | saya\ (?:sedang\ )?(?:cuti|(?:berada\ )?di\ luar\ kantor|tidak\ (?:berada\ )?di\ kantor)\b
    )""",
    re.IGNORECASE | re.VERBOSE,
)

# Subjects of delivery failures that are not (or not only) multipart/report.
_BOUNCE_SUBJECT = re.compile(
    r"""(?:undeliver(?:ed|able)|delivery\ status\ notification|mail\ delivery\ (?:failed|failure|system)
      | delivery\ (?:has\ )?fail(?:ed|ure)|returned\ mail|failure\ notice|non\ remis|unzustellbar
      | (?:pesan|surat)\ (?:tidak|gagal)\ (?:terkirim|dikirim)|gagal\ terkirim)""",
    re.IGNORECASE | re.VERBOSE,
)

_DAEMON_LOCALS = {"mailer-daemon", "mail-daemon", "maildaemon", "postmaster", "mailer_daemon"}
_NOREPLY_LOCAL = re.compile(r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|dont[-_.]?reply)(?:[-_.+].*)?\Z", re.I)
_AUTO_REPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoreply-From", "X-Mail-Autoreply")
_NEGATIVE = {"", "no", "false", "0", "none", "off"}
_STATUS_RE = re.compile(r"(?<![0-9.])([245])\.([0-9]{1,3})\.([0-9]{1,3})(?![0-9]|\.[0-9])")
_SMTP_CODE_RE = re.compile(r"(?<![0-9.])([245])[0-9]{2}(?=[ -])")
_BRACKET_ID_RE = re.compile(r"<([^<>\s@]+@[^<>\s@]+)>")


def _values(msg, name: str) -> list[str]:
    try:
        values = msg.header_all(name)
    except Exception:  # a broken header must not stop classification
        return []
    return [v.strip() for v in values or () if isinstance(v, str)]


def _first(msg, name: str) -> str | None:
    values = _values(msg, name)
    return values[0] if values else None


def _report_type(msg) -> str:
    report = getattr(msg, "report_type", None)
    if isinstance(report, str) and report.strip():
        return report.strip().lower()
    content_type = getattr(msg, "content_type", None) or _first(msg, "Content-Type") or ""
    if isinstance(content_type, str) and content_type.lower().lstrip().startswith("multipart/report"):
        match = re.search(r"report-type\s*=\s*\"?([\w.-]+)", content_type, re.I)
        if match:
            return match.group(1).lower()
    return ""


def _from_local(msg) -> str:
    address = getattr(msg, "from_addr", None)
    if isinstance(address, str) and "@" in address:
        return address.rpartition("@")[0].lower()
    raw = _first(msg, "From") or ""          # "From: MAILER-DAEMON" has no usable address
    match = re.search(r"\b(mailer-daemon|postmaster)\b", raw, re.I)
    return match.group(1).lower() if match else ""


def _has_delivery_report(msg) -> bool:
    return bool(getattr(msg, "dsn", None) or getattr(msg, "original_message_id", None)
                or _first(msg, "X-Failed-Recipients")
                or _BOUNCE_SUBJECT.search(getattr(msg, "subject", "") or ""))


def _bounce(msg) -> str | None:
    report = _report_type(msg)
    if report == "delivery-status":
        return "multipart/report; report-type=delivery-status"
    if _has_delivery_report(msg):
        local = _from_local(msg)
        if local in _DAEMON_LOCALS:
            return f"delivery report from {'postmaster' if local == 'postmaster' else 'MAILER-DAEMON'}"
        if any(v.replace(" ", "") == "<>" for v in _values(msg, "Return-Path")):
            return "delivery report with Return-Path: <>"
    return None


def _auto_reply(msg) -> str | None:
    for value in _values(msg, "Auto-Submitted"):
        if value.split(";")[0].strip().lower() == "auto-replied":
            return "Auto-Submitted: auto-replied"
    for name in _AUTO_REPLY_HEADERS:
        for value in _values(msg, name):
            if value.lower() not in _NEGATIVE - {""}:    # present, even empty, unless "no"
                return name
    if (_first(msg, "X-Autogenerated") or "").lower() == "reply":
        return "X-Autogenerated: Reply"
    for value in _values(msg, "Precedence"):
        if value.lower().replace("-", "_") == "auto_reply":
            return "Precedence: auto_reply"
    if _report_type(msg) == "disposition-notification":
        return "read receipt (report-type=disposition-notification)"
    explicitly_human = any(v.split(";")[0].strip().lower() == "no" for v in _values(msg, "Auto-Submitted"))
    subject = getattr(msg, "subject", "") or ""
    if not explicitly_human and isinstance(subject, str):
        match = _AUTO_REPLY_SUBJECT.match(subject)
        if match:
            return f"subject: {match.group(0).strip(' [(]):：-').strip()}"
    return None


def _blocked(address: str | None, blocklist: Iterable[str]) -> str | None:
    if not isinstance(address, str) or "@" not in address:
        return None
    address = address.strip().lower()
    domain = address.rpartition("@")[2]
    for entry in blocklist or ():
        if not isinstance(entry, str):
            continue
        pattern = entry.strip().lower()
        for lead in ("*@", "@", "*."):
            if pattern.startswith(lead):
                pattern, is_domain = pattern[len(lead):], True
                break
        else:
            is_domain = "@" not in pattern
        pattern = pattern.strip(".")
        if not pattern:
            continue
        if is_domain:
            if domain == pattern or domain.endswith("." + pattern):
                return entry.strip()
        elif address == pattern:
            return entry.strip()
    return None


def _spam(msg, blocklist: Iterable[str]) -> str | None:
    for value in _values(msg, "X-Spam-Flag"):
        if value.lower() == "yes":
            return "X-Spam-Flag: YES"
    for value in _values(msg, "X-Spam-Status"):
        if re.match(r"yes\b", value, re.I):
            return "X-Spam-Status: Yes"
    for value in _values(msg, "X-Spam"):         # rspamd
        if value.lower() in ("yes", "true"):
            return "X-Spam: Yes"
    entry = _blocked(getattr(msg, "from_addr", None), blocklist)
    if entry:
        return f"sender on the blocklist ({entry})"
    return None


def _automated(msg) -> str | None:
    for value in _values(msg, "Auto-Submitted"):
        token = value.split(";")[0].strip().lower()
        if token and token != "no":
            return f"Auto-Submitted: {token}"[:200]
    for value in _values(msg, "Precedence"):
        if value.lower() in ("bulk", "list", "junk"):
            return f"Precedence: {value.lower()}"
    if any(_values(msg, "List-Id")):
        return "List-Id"
    for value in _values(msg, "X-Auto-Response-Suppress"):
        if value.lower() not in _NEGATIVE:
            return "X-Auto-Response-Suppress"
    report = _report_type(msg)
    if report:
        return f"report-type={report}"[:200]
    local = _from_local(msg)
    if local in _DAEMON_LOCALS - {"postmaster"}:
        return "sender: mailer-daemon"
    if _NOREPLY_LOCAL.match(local):
        return "sender: no-reply address"
    if any(v.replace(" ", "") == "<>" for v in _values(msg, "Return-Path")):
        return "Return-Path: <>"
    return None


def classify(msg: "ParsedMessage", blocklist: Iterable[str] = ()) -> Classification:
    """Bounce, then auto-reply, then spam, then automated; else normal."""
    reason = _bounce(msg)
    if reason:
        return Classification("bounce", reason)
    reason = _auto_reply(msg)
    if reason:
        return Classification("auto_reply", reason)
    reason = _spam(msg, blocklist)
    if reason:
        return Classification("spam", reason)
    reason = _automated(msg)
    if reason:
        return Classification("automated", reason)
    return Classification("normal", "")


def _recipient(value) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    if ";" in value:                       # "rfc822; user@example.com"
        value = value.split(";", 1)[1].strip()
    value = value.strip("<> \t").lower()
    return value if "@" in value and not any(c.isspace() for c in value) else None


def _status_of(text: str) -> str | None:
    match = _STATUS_RE.search(text)
    return ".".join(match.groups()) if match else None


_REPORT_PARTS = ("message/delivery-status", "message/global-delivery-status", "text/rfc822-headers",
                 "message/global-headers", "message/rfc822", "message/global")


def _report_parts(msg) -> list[tuple[str, str]]:
    """(content type, text) of the parts of a delivery report that were kept as attachments."""
    parts = []
    for attachment in getattr(msg, "attachments", None) or ():
        ctype = getattr(attachment, "content_type", None)
        data = getattr(attachment, "data", None)
        if isinstance(ctype, str) and ctype.lower() in _REPORT_PARTS and isinstance(data, (bytes, str)):
            text = data[:65536].decode("utf-8", "replace") if isinstance(data, bytes) else data[:65536]
            parts.append((ctype.lower(), text.replace("\r\n", "\n")))
    return parts


def _fields(text: str, name: str) -> list[str]:
    """Values of the (unfolded) header-style field `name` in text."""
    unfolded = re.sub(r"\n[ \t]+", " ", text)
    return [m.group(1).strip() for m in re.finditer(rf"^{re.escape(name)}[ \t]*:(.*)$", unfolded, re.I | re.M)]


def bounce_info(msg: "ParsedMessage") -> BounceInfo:
    """Which of our mails bounced, to whom, and how badly. hard = a 5.x.x status (4.x.x is a delay)."""
    ids: dict[str, None] = {}           # ordered sets: a spam bounce may carry thousands of ids
    recipients: dict[str, None] = {}
    statuses: dict[str, None] = {}
    diagnostics: list[str] = []

    def add(target: dict[str, None], value) -> None:
        if value:
            target.setdefault(value)

    add(ids, clean_id(getattr(msg, "original_message_id", None)))
    for name in ("in_reply_to", "references"):
        for value in getattr(msg, name, None) or ():
            add(ids, clean_id(value))
    for entry in getattr(msg, "dsn", None) or ():
        if not isinstance(entry, dict):
            continue
        fields = {str(k).lower(): v for k, v in entry.items() if isinstance(v, str)}
        add(recipients, _recipient(fields.get("recipient") or fields.get("final-recipient")
                                   or fields.get("original-recipient")))
        add(statuses, _status_of(fields.get("status", "")))
        for key, value in fields.items():
            if "recipient" in key or key in ("status", "action"):
                continue
            if "diagnostic" in key:            # it names addresses, not Message-IDs
                diagnostics.append(value)
            elif "message-id" in key:
                add(ids, clean_id(value))
            else:
                for found in _BRACKET_ID_RE.findall(value):
                    add(ids, found)
    for value in _values(msg, "X-Failed-Recipients"):
        for part in value.split(","):
            add(recipients, _recipient(part))
    for ctype, text in _report_parts(msg):
        if "delivery-status" in ctype:          # the raw report: Diagnostic-Code is not in dsn
            for value in _fields(text, "status"):
                add(statuses, _status_of(value))
            diagnostics.extend(_fields(text, "diagnostic-code"))
        else:                                   # the bounced message or its headers
            add(ids, next((clean_id(v) for v in _fields(text.split("\n\n", 1)[0], "message-id")), None))

    status = next((s for s in statuses if s.startswith("5")), next(iter(statuses), None))
    if status is None:
        for text in diagnostics:             # "550 5.1.1 <x@y>: user unknown", "550 no such user"
            code = _SMTP_CODE_RE.search(text)
            status = _status_of(text) or (f"{code.group(1)}.0.0" if code else None)
            if status:
                break
    return BounceInfo(original_message_ids=[i for i in ids if i not in recipients], status=status,
                      hard=bool(status and status.startswith("5")), recipients=list(recipients))
