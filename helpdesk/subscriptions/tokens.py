"""Signed links of announcement mail (itsdangerous, the app's SECRET_KEY).

- Unsubscribe (RFC 8058 one-click): names the subscriber, the topic and the delivery it came in. It
  does not expire: an unsubscribe link must keep working for as long as the mail is kept.
- Preferences: names the subscriber; opens their preference page without a login. No expiry either.
- Confirmation (double opt-in): names the subscriber and the topics asked for; expires after
  SUBSCRIBE_CONFIRM_MAX_AGE seconds (default 7 days).

A subscriber is ("customer", id) or ("lead", id).
"""
from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from ..webform.tokens import InvalidToken, _load, _serializer

UNSUBSCRIBE_SALT = "helpdesk.subscriptions.unsubscribe"
PREFERENCES_SALT = "helpdesk.subscriptions.preferences"
CONFIRM_SALT = "helpdesk.subscriptions.confirm"
KINDS = {"c": "customer", "l": "lead"}
CODES = {v: k for k, v in KINDS.items()}

__all__ = ["InvalidToken", "make_unsubscribe_token", "load_unsubscribe_token", "make_preferences_token",
           "load_preferences_token", "make_confirm_token", "load_confirm_token"]


def _plain(salt):
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=salt)


def _loads(token, salt):
    if not token or not isinstance(token, str) or len(token) > 500:
        raise InvalidToken()
    try:
        return _plain(salt).loads(token)
    except BadSignature:
        raise InvalidToken() from None


def _subscriber(data):
    if not isinstance(data, dict) or data.get("k") not in KINDS or not isinstance(data.get("i"), int):
        raise InvalidToken()
    return KINDS[data["k"]], data["i"]


def make_unsubscribe_token(kind, subscriber_id, topic, delivery_id=None):
    return _plain(UNSUBSCRIBE_SALT).dumps({"k": CODES[kind], "i": subscriber_id, "t": topic, "d": delivery_id})


def load_unsubscribe_token(token):
    """(kind, subscriber_id, topic, delivery_id or None), or InvalidToken."""
    data = _loads(token, UNSUBSCRIBE_SALT)
    kind, sid = _subscriber(data)
    if not isinstance(data.get("t"), str) or not (data.get("d") is None or isinstance(data.get("d"), int)):
        raise InvalidToken()
    return kind, sid, data["t"], data.get("d")


def make_preferences_token(kind, subscriber_id):
    return _plain(PREFERENCES_SALT).dumps({"k": CODES[kind], "i": subscriber_id})


def load_preferences_token(token):
    """(kind, subscriber_id), or InvalidToken."""
    return _subscriber(_loads(token, PREFERENCES_SALT))


def make_confirm_token(kind, subscriber_id, topics):
    return _serializer(CONFIRM_SALT).dumps({"k": CODES[kind], "i": subscriber_id, "t": list(topics)})


def load_confirm_token(token):
    """(kind, subscriber_id, [topics]), or InvalidToken (see .expired)."""
    data = _load(token, CONFIRM_SALT, current_app.config.get("SUBSCRIBE_CONFIRM_MAX_AGE", 7 * 24 * 3600))
    kind, sid = _subscriber(data)
    if not isinstance(data.get("t"), list) or not all(isinstance(t, str) for t in data["t"]):
        raise InvalidToken()
    return kind, sid, data["t"]
