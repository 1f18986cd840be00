"""Signed, expiring, single-use links for password reset and invitations.

A link carries the user id and a fingerprint of the current password hash, signed with the app's
SECRET_KEY (itsdangerous, one salt per purpose). Setting a password changes the hash, so every link
issued before that stops working: a link works once. The signature's timestamp gives the expiry.
"""
import hashlib

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ..errors import DomainError
from ..extensions import db
from .i18n import _
from .models import User

# purpose -> (salt, config key of the maximum age in seconds)
PURPOSES = {
    "reset": ("helpdesk.auth.password-reset", "PASSWORD_RESET_MAX_AGE"),
    "invite": ("helpdesk.auth.invite", "INVITE_MAX_AGE"),
}


class InvalidLink(DomainError):
    """The link is forged, expired, already used, or its account is inactive."""


def password_fingerprint(user):
    """A short digest of the current password hash ('' hash for an account without a password).

    A digest rather than a slice of the hash itself: the signed payload is readable by its holder.
    """
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]


def _serializer(purpose):
    salt, _key = PURPOSES[purpose]
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def make_link_token(user, purpose):
    """A signed token for this user and purpose ('reset' or 'invite')."""
    return _serializer(purpose).dumps({"u": user.id, "h": password_fingerprint(user)})


def user_for_link(token, purpose):
    """The active user a link was made for, if it is genuine, fresh and unused; else InvalidLink."""
    max_age = current_app.config[PURPOSES[purpose][1]]
    try:
        data = _serializer(purpose).loads(token, max_age=max_age)
    except SignatureExpired:
        raise InvalidLink(_("This link has expired. Please ask for a new one.")) from None
    except BadSignature:
        raise InvalidLink(_("This link is not valid. Please ask for a new one.")) from None
    user = db.session.get(User, data.get("u")) if isinstance(data, dict) and isinstance(data.get("u"), int) else None
    if user is None or not user.is_active or data.get("h") != password_fingerprint(user):
        raise InvalidLink(_("This link was already used or is no longer valid. Please ask for a new one."))
    return user
