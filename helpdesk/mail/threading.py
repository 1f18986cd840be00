"""Which ticket an incoming mail belongs to.

`decide` tries, in this order, and the first rule that finds a ticket wins:

1. In-Reply-To against every Message-ID seen or sent (the database), then a signed token in it;
2. References, newest first, the same way;
3. the subject tag "[#N]" (after the reply prefixes), only if the sender takes part in ticket N:
   otherwise a new ticket linked to N ("subject_tag_foreign"), because anyone can type a tag;
4. a signed plus-address (support+t12.<sig>@...) in To, Cc or Delivered-To, when enabled;
5. otherwise a new ticket.

Following merged tickets is the caller's job. Pure: the database is reached only through the
callbacks, so this module needs no app.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from helpdesk.mail.tokens import clean_id

if TYPE_CHECKING:  # pragma: no cover
    from helpdesk.mail.parser import ParsedMessage

# Reply and forward prefixes of common mail clients, compared case-insensitively.
REPLY_PREFIXES = (
    "Re", "RE", "Fwd", "FWD", "Fw", "FW", "AW", "WG", "SV", "VS", "Balas", "Bls", "BLS", "TRS",
    "Tr", "TR", "RV", "Antw", "Antwort", "Odp", "PD", "YNT", "İLT", "Ref", "Réf", "Rif", "Doorst",
    "回复", "答复", "转发", "回覆", "答覆", "轉寄", "轉發",
)
MAX_REFERENCES = 50   # at most this many ids of In-Reply-To and of References (the newest) are looked up

_PREFIX_RE = re.compile(
    r"(?:%s)\s*(?:\[[0-9]{1,4}\]|\([0-9]{1,4}\)|\^[0-9]{1,4})?\s*[:：]"
    % "|".join(sorted({re.escape(p) for p in REPLY_PREFIXES}, key=len, reverse=True)),
    re.IGNORECASE,
)
_TAG_RE = re.compile(r"\[[^\[\]\r\n]{1,40}\]")
_TICKET_TAG_RE = re.compile(r"\[#([0-9]{1,18})\]")


def strip_prefixes(subject: str) -> str:
    """The subject without its leading reply/forward prefixes ("Re: AW: Fwd[2]: x" -> "x").

    Leading bracket tags such as "[EXT]" or the ticket tag "[#12]" are kept where they are, but
    prefixes behind them are removed too ("[EXT] RE: [#12] Re: x" -> "[EXT] [#12] x").
    Whitespace is collapsed. Idempotent; never raises for a string.
    """
    if not isinstance(subject, str):
        return ""
    rest = " ".join(subject.split())
    kept: list[str] = []
    while rest:
        match = _PREFIX_RE.match(rest)
        if match:
            rest = rest[match.end():].lstrip()
            continue
        match = _TAG_RE.match(rest)
        if match:
            kept.append(match.group(0))
            rest = rest[match.end():].lstrip()
            continue
        break
    return " ".join(kept + [rest]).strip()


def subject_ticket_number(subject: str) -> int | None:
    """N of the first "[#N]" anywhere in the subject; "#N" without brackets does not count."""
    if not isinstance(subject, str):
        return None
    for match in _TICKET_TAG_RE.finditer(subject):
        number = int(match.group(1))
        if number > 0:
            return number
    return None


@dataclass
class TicketRef:
    id: int
    participants: set[str] = field(default_factory=set)  # lower-cased: customer, its emails, Cc list


@dataclass
class Decision:
    rule: str            # "in_reply_to" | "references" | "subject_tag" | "subject_tag_foreign"
                         # | "plus_address" | "new"
    ticket_id: int | None
    linked_ticket_id: int | None = None


def _unique(values, exclude: str | None = None) -> list[str]:
    """Clean ids or addresses (no <>, no blanks), without duplicates and without `exclude`."""
    seen: dict[str, None] = {}
    for value in values or ():
        value = clean_id(value)
        if value and value != exclude:
            seen.setdefault(value)
    return list(seen)


def decide(msg: "ParsedMessage", *,
           find_by_message_ids: Callable[[list[str]], int | None],
           ticket_by_number: Callable[[int], TicketRef | None],
           ticket_from_token: Callable[[str], int | None],
           plus_addressing: bool = False) -> Decision:
    """The ticket this mail belongs to, and by which rule (see the module docstring).

    `find_by_message_ids(ids)` gets the ids in priority order and must return the ticket of the
    first known one (or None); `ticket_by_number(n)` the ticket with that number and its
    participants; `ticket_from_token(s)` the ticket of a signed Message-ID or plus-address
    (tokens.ticket_from_token with the secret).
    """
    own = clean_id(getattr(msg, "message_id", None))
    in_reply_to = _unique(getattr(msg, "in_reply_to", None), own)[:MAX_REFERENCES]
    asked = set(in_reply_to)
    references = [i for i in reversed(_unique(getattr(msg, "references", None), own))
                  if i not in asked][:MAX_REFERENCES]

    for rule, ids in (("in_reply_to", in_reply_to), ("references", references)):
        if not ids:
            continue
        ticket = find_by_message_ids(ids)
        if ticket is None:
            ticket = next((t for t in map(ticket_from_token, ids) if t is not None), None)
        if ticket is not None:
            return Decision(rule, ticket)

    number = subject_ticket_number(strip_prefixes(getattr(msg, "subject", "") or ""))
    if number is not None:
        ref = ticket_by_number(number)
        if ref is not None:
            sender = getattr(msg, "from_addr", None)
            sender = sender.strip().lower() if isinstance(sender, str) else None
            participants = {p.strip().lower() for p in ref.participants or () if isinstance(p, str)}
            if sender and sender in participants:
                return Decision("subject_tag", ref.id)
            return Decision("subject_tag_foreign", None, linked_ticket_id=ref.id)

    if plus_addressing:
        addresses = [a for name in ("to", "cc", "delivered_to") for a in getattr(msg, name, None) or ()]
        for address in _unique(addresses):
            ticket = ticket_from_token(address)
            if ticket is not None:
                return Decision("plus_address", ticket)

    return Decision("new", None)
