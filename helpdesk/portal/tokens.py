"""Signed, expiring portal links (itsdangerous, the app's SECRET_KEY).

- Sign-in link: carries the customer id and their current login nonce; the nonce is rotated on
  use, so a link works once. Expires after PORTAL_LINK_MAX_AGE seconds.
- Email confirmation link: a customer adding an address proves they read it (PORTAL_LINK_MAX_AGE).
- Ticket link (for emails): scoped to one ticket and one customer, expires after
  PORTAL_TICKET_LINK_MAX_AGE seconds. No login needed to read; acting takes a POST.
"""
from flask import current_app

from ..webform.tokens import InvalidToken, _load, _serializer

SIGN_IN_SALT = "helpdesk.portal.sign-in"
TICKET_SALT = "helpdesk.portal.ticket"
EMAIL_SALT = "helpdesk.portal.add-email"

__all__ = ["InvalidToken", "make_sign_in_token", "load_sign_in_token", "make_ticket_token", "load_ticket_token",
           "ticket_link_url", "make_email_token", "load_email_token"]


def _pair(token, salt, max_age_setting, key, kind):
    """(customer_id, data[key]) of a genuine, fresh token whose data[key] is a `kind`; else InvalidToken."""
    data = _load(token, salt, current_app.config[max_age_setting])
    if not isinstance(data, dict) or not isinstance(data.get("c"), int) or not isinstance(data.get(key), kind):
        raise InvalidToken()
    return data["c"], data[key]


def make_sign_in_token(customer_id, nonce):
    return _serializer(SIGN_IN_SALT).dumps({"c": customer_id, "n": nonce})


def load_sign_in_token(token):
    """(customer_id, nonce), or InvalidToken (tampered, expired: see .expired)."""
    return _pair(token, SIGN_IN_SALT, "PORTAL_LINK_MAX_AGE", "n", str)


def make_ticket_token(customer_id, ticket_id):
    return _serializer(TICKET_SALT).dumps({"c": customer_id, "t": ticket_id})


def load_ticket_token(token):
    """(customer_id, ticket_id), or InvalidToken."""
    return _pair(token, TICKET_SALT, "PORTAL_TICKET_LINK_MAX_AGE", "t", int)


def ticket_link_url(customer_id, ticket_id):
    """The absolute signed link to one ticket, for emails (BASE_URL + /portal/t/<token>)."""
    return current_app.config["BASE_URL"].rstrip("/") + "/portal/t/" + make_ticket_token(customer_id, ticket_id)


def make_email_token(customer_id, email):
    return _serializer(EMAIL_SALT).dumps({"c": customer_id, "e": email})


def load_email_token(token):
    """(customer_id, email), or InvalidToken."""
    return _pair(token, EMAIL_SALT, "PORTAL_LINK_MAX_AGE", "e", str)
