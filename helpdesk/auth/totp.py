"""TOTP two-factor login (RFC 6238, 30-second steps, 6 digits) with replay protection.

The secret is stored on the user when enrolment starts and switched on only after the user has
typed a correct code. Every accepted code records its time step in User.totp_last_step, and a
code for that step or an earlier one is refused, so a code works once.
"""
import hmac
from datetime import datetime, timezone

import pyotp
from flask import current_app

from ..errors import DomainError
from ..extensions import db
from ..tickets.services import audit
from .i18n import _
from .services import get_user_or_404

ISSUER = "Helpdesk"
DRIFT_STEPS = 1  # accept the previous and the next 30-second code as well (clock drift)


class WrongCode(DomainError):
    """The code is wrong, or was already used."""


def required_for(user):
    """True when this user must use two-factor login (admin or billing, unless switched off)."""
    return bool(current_app.config.get("REQUIRE_2FA", True)) and user.needs_2fa


def begin_enrolment(user_id):
    """Give the user a fresh secret unless enrolment is already under way; returns the secret."""
    user = get_user_or_404(user_id)
    if user.totp_enabled:
        raise DomainError(_("Two-factor login is already on."))
    if not user.totp_secret:
        user.totp_secret = pyotp.random_base32()
        user.totp_last_step = None
        db.session.flush()
    return user.totp_secret


def provisioning_uri(user):
    """The otpauth:// URI that authenticator apps read (from the QR code or typed in)."""
    issuer = current_app.config.get("TOTP_ISSUER", ISSUER)
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.email, issuer_name=issuer)


def _matching_step(secret, code, now):
    """The time step whose code equals `code` (within the drift window), else None."""
    code = "".join((code or "").split())
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _accept(user, code, now):
    when = now or datetime.now(timezone.utc)
    step = _matching_step(user.totp_secret, code, when) if user.totp_secret else None
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        raise WrongCode(_("That code is wrong or was already used. Wait for the next code and try again."),
                        field="code")
    user.totp_last_step = step


def confirm_enrolment(user_id, code, now=None):
    """Switch two-factor login on once the user proves the authenticator app works."""
    user = get_user_or_404(user_id)
    if user.totp_enabled:
        raise DomainError(_("Two-factor login is already on."))
    if not user.totp_secret:
        raise DomainError(_("Start the set-up again."))
    _accept(user, code, now)
    user.totp_enabled = True
    audit(None, user.id, "2fa_enabled", object_type="user", object_id=user.id)
    db.session.flush()
    return user


def verify_login_code(user_id, code, now=None):
    """Check a login code for a user with two-factor login on; raises WrongCode."""
    user = get_user_or_404(user_id)
    if not user.totp_enabled:
        raise DomainError(_("Two-factor login is not on for this account."))
    _accept(user, code, now)
    db.session.flush()
    return user


def disable(user_id, actor_id, *, by_admin=False):
    """Switch two-factor login off (the user themselves, or an admin resetting a lost device).

    A user whose role requires it cannot switch it off; an admin reset sends them to enrol again.
    """
    user = get_user_or_404(user_id)
    if not by_admin and required_for(user):
        raise DomainError(_("Two-factor login is required for your role and cannot be switched off."))
    was_on = user.totp_enabled or bool(user.totp_secret)
    user.totp_enabled = False
    user.totp_secret = None
    user.totp_last_step = None
    if was_on:
        audit(None, actor_id, "2fa_reset" if by_admin else "2fa_disabled", object_type="user", object_id=user.id)
    db.session.flush()
    return user
