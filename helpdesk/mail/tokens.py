"""Signed tokens that tie a mail to its ticket: in our own Message-IDs and in plus-addresses.

A reply whose subject was rewritten, or whose In-Reply-To points at a Message-ID the database
no longer has, still finds its ticket: the ticket number travels in the id, signed with
HMAC-SHA256 so that nobody can point a mail at another customer's ticket by guessing.

    <random>.t<ticket_id>.<sig>@<domain>      (a Message-ID, stored without angle brackets)
    support+t<ticket_id>.<sig>@example.com    (a plus-address)

Everything in a token is lower-case (base32 "a-z2-7" and digits), and the checks lower-case what
they are given, so a server that changes the case of the local part does not break it. The
Message-ID and the plus-address are signed with different derived keys, so one can never be
passed off as the other. Pure: takes the secret, no app, no database.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets

SIG_BYTES = 10          # 80 bits of HMAC-SHA256 -> 16 base32 characters
RANDOM_BYTES = 10       # 16 base32 characters of randomness per Message-ID
MAX_TICKET_DIGITS = 18  # fits a 64-bit integer column

_SIG_LEN = len(base64.b32encode(b"\0" * SIG_BYTES).rstrip(b"="))
_KIND_RE = re.compile(r"^[a-z0-9]{1,8}\Z")
# RFC 5322 dot-atom-text (what may follow "@" in a msg-id), or a no-fold-literal "[...]".
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOMAIN_RE = re.compile(rf"^(?:{_ATEXT}+(?:\.{_ATEXT}+)*|\[[\x21-\x5a\x5e-\x7e]*\])\Z")
_MID_RE = re.compile(rf"^([a-z0-9]{{1,72}})\.t([0-9]{{1,{MAX_TICKET_DIGITS}}})\.([a-z2-7]{{{_SIG_LEN}}})@.+\Z")
_PLUS_RE = re.compile(rf"\+t([0-9]{{1,{MAX_TICKET_DIGITS}}})\.([a-z2-7]{{{_SIG_LEN}}})\Z")


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


@functools.lru_cache(maxsize=32)
def _key(secret: str | bytes, purpose: str) -> bytes:
    raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    return hmac.new(raw, f"helpdesk-mail-token:{purpose}".encode("ascii"), hashlib.sha256).digest()


def _sign(secret: str | bytes, purpose: str, payload: str) -> str:
    mac = hmac.new(_key(secret, purpose), payload.encode("ascii"), hashlib.sha256).digest()
    return _b32(mac[:SIG_BYTES])


def _check_secret(secret) -> None:
    if not isinstance(secret, (str, bytes)) or not secret:
        raise ValueError("a non-empty secret is needed to sign mail tokens")


def _check_ticket_id(ticket_id) -> int:
    if isinstance(ticket_id, bool) or not isinstance(ticket_id, int) or ticket_id < 1 \
            or len(str(ticket_id)) > MAX_TICKET_DIGITS:
        raise ValueError(f"not a ticket id: {ticket_id!r}")
    return ticket_id


def clean_id(value) -> str | None:
    """"<x@y>" or " x@y " -> "x@y" (a Message-ID or an address); None if not a string, blank, or
    holding whitespace inside."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value if value and not any(c.isspace() for c in value) else None


def _verified(secret, purpose: str, payload: str, sig: str, ticket: str) -> int | None:
    if not isinstance(secret, (str, bytes)) or not secret:
        return None
    expected = _sign(secret, purpose, payload)
    if not hmac.compare_digest(expected, sig):
        return None
    number = int(ticket)
    return number if number >= 1 else None


def make_message_id(ticket_id: int, secret: str, domain: str, kind: str = "m") -> str:
    """A new, unique, signed Message-ID for a mail of this ticket, without angle brackets.

    `kind` (1-8 lower-case letters/digits, e.g. "m" message, "a" acknowledgement) starts the
    random part, so the ids of different mails of one ticket are easy to tell apart in logs.
    """
    _check_secret(secret)
    _check_ticket_id(ticket_id)
    if not isinstance(kind, str) or not _KIND_RE.match(kind):
        raise ValueError(f"kind must be 1-8 lower-case letters or digits: {kind!r}")
    if not isinstance(domain, str) or not _DOMAIN_RE.match(domain):
        raise ValueError(f"not a valid Message-ID domain: {domain!r}")
    left = f"{kind}{_b32(secrets.token_bytes(RANDOM_BYTES))}.t{ticket_id}"
    return f"{left}.{_sign(secret, 'mid', left)}@{domain}"


def ticket_from_message_id(mid: str, secret: str) -> int | None:
    """The ticket of one of our signed Message-IDs (with or without <>), else None. Never raises."""
    value = clean_id(mid)
    match = _MID_RE.match(value.lower()) if value else None
    if not match:
        return None
    rand, ticket, sig = match.groups()
    return _verified(secret, "mid", f"{rand}.t{ticket}", sig, ticket)


def plus_address(address: str, ticket_id: int, secret: str) -> str:
    """support@example.com -> support+t123.<sig>@example.com (an existing +tag is kept)."""
    _check_secret(secret)
    _check_ticket_id(ticket_id)
    if not isinstance(address, str):
        raise ValueError(f"not an address: {address!r}")
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"not an address: {address!r}")
    return f"{local}+t{ticket_id}.{_sign(secret, 'plus', f't{ticket_id}')}@{domain}"


def ticket_from_address(address: str, secret: str) -> int | None:
    """The ticket of a signed plus-address (any case, with or without <>), else None. Never raises."""
    local, at, _domain = (clean_id(address) or "").rpartition("@")
    if not at:
        return None
    match = _PLUS_RE.search(local.lower())
    if not match:
        return None
    ticket, sig = match.groups()
    return _verified(secret, "plus", f"t{ticket}", sig, ticket)


def ticket_from_token(value: str, secret: str) -> int | None:
    """Either kind of token: what threading.decide's `ticket_from_token` callback wants."""
    return ticket_from_message_id(value, secret) or ticket_from_address(value, secret)
