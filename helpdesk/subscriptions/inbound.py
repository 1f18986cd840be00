"""The mailto unsubscribe of List-Unsubscribe: an email to our address whose subject is
"unsubscribe <token>" (what a mail client sends for the header's mailto link).

helpdesk/mail/services.py asks `unsubscribe(msg)` before it decides what an inbound message
becomes: a valid token unsubscribes that topic (source "mailto", method "mailto") and the message
is logged as ignored with reason "unsubscribe", never a ticket. Anything else (no such subject, a
wrong or tampered token) returns None and the message goes on as usual.
"""
import re

from ..errors import DomainError
from . import services, tokens

SUBJECT = re.compile(r"^\s*unsubscribe\s+([A-Za-z0-9_\-.]{10,500})\s*$", re.IGNORECASE)


def token_of(subject):
    """The token of an "unsubscribe <token>" subject, else None."""
    m = SUBJECT.match(subject or "")
    return m.group(1) if m else None


def unsubscribe(msg, now=None):
    """Unsubscribe by a parsed inbound message. Returns (kind, sid, topic) when the message was an
    unsubscribe with a valid token (done, or done before), else None. Only flushes."""
    token = token_of(getattr(msg, "subject", None))
    if token is None:
        return None
    try:
        tokens.load_unsubscribe_token(token)
        kind, sid, topic, _changed = services.unsubscribe_token(token, method="mailto", now=now)
    except (tokens.InvalidToken, DomainError):
        return None
    return kind, sid, topic
