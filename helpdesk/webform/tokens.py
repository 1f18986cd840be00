"""Signed, stateless, expiring tokens of the web form (itsdangerous, the app's SECRET_KEY).

- The embedded form's token: proves the POST comes from a form we served recently. A frame on
  another site gets no session cookie, so the session CSRF token cannot work there.
- The confirmation token: carries the ticket number to the confirmation page, so the page's URL is
  not a guessable number and stops working after WEBFORM_DONE_MAX_AGE.
"""
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

FORM_SALT = "helpdesk.webform.embed-form"
DONE_SALT = "helpdesk.webform.done"
OFFER_DONE_SALT = "helpdesk.leads.offer-done"


class InvalidToken(ValueError):
    """Missing, tampered with or expired (see .expired)."""

    def __init__(self, expired=False):
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def _serializer(salt):
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def _load(token, salt, max_age):
    if not token or not isinstance(token, str):
        raise InvalidToken()
    try:
        return _serializer(salt).loads(token, max_age=max_age)
    except SignatureExpired:
        raise InvalidToken(expired=True) from None
    except BadSignature:
        raise InvalidToken() from None


def make_form_token():
    return _serializer(FORM_SALT).dumps({"f": "embed"})


def check_form_token(token):
    """None when the token is genuine and fresh; else InvalidToken."""
    data = _load(token, FORM_SALT, current_app.config["WEBFORM_TOKEN_MAX_AGE"])
    if data != {"f": "embed"}:
        raise InvalidToken()


def make_done_token(number):
    """number: the ticket number, or None for a submission that created nothing (honeypot)."""
    return _serializer(DONE_SALT).dumps({"n": number})


def number_from_done_token(token):
    data = _load(token, DONE_SALT, current_app.config["WEBFORM_DONE_MAX_AGE"])
    if not isinstance(data, dict) or "n" not in data:
        raise InvalidToken()
    return data["n"]


def make_offer_done_token(received):
    """The offer form's thank-you page (helpdesk.leads.public); `received` False for a honeypot hit.
    Says nothing about the lead, so the page cannot tell whether the person was known."""
    return _serializer(OFFER_DONE_SALT).dumps({"o": bool(received)})


def check_offer_done_token(token):
    """None when the offer form's confirmation token is genuine and fresh; else InvalidToken."""
    data = _load(token, OFFER_DONE_SALT, current_app.config["WEBFORM_DONE_MAX_AGE"])
    if not isinstance(data, dict) or "o" not in data:
        raise InvalidToken()
