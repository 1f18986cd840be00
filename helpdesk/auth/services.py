"""Staff accounts: password hashing, authentication, roles, API tokens."""
import secrets

from flask import current_app
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from ..errors import DomainError
from ..extensions import db
from ..timeutil import utcnow
from .models import ROLES, ApiToken, User, UserRole

MIN_PASSWORD = 10


def hash_password(password):
    """A salted hash with a current algorithm (scrypt by default)."""
    method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
    return generate_password_hash(password, method=method)


def check_password(user, password):
    return bool(user and user.password_hash and check_password_hash(user.password_hash, password or ""))


def find_user(email):
    return db.session.execute(select(User).where(func.lower(User.email) == (email or "").strip().lower())
                              ).scalar_one_or_none()


def authenticate(email, password):
    """The active user with this email and password, else None (same answer for every failure)."""
    user = find_user(email)
    if user is None:
        # Spend the same time as a real check so timing does not reveal which emails exist.
        check_password_hash(hash_password("x" * MIN_PASSWORD), password or "")
        return None
    if not user.is_active or not check_password(user, password):
        return None
    return user


def validate_password(password):
    if len(password or "") < MIN_PASSWORD:
        raise DomainError(f"A password needs at least {MIN_PASSWORD} characters.", field="password")


def create_user(*, email, name, roles=(), password=None, locale=None, skip_2fa=False):
    """A new agent. Roles must be known; the email must be unused."""
    email = (email or "").strip().lower()
    if not email or "@" not in email:
        raise DomainError("A valid email is required.", field="email")
    if find_user(email):
        raise DomainError(f"{email} already has an account.", field="email")
    bad = set(roles) - set(ROLES)
    if bad:
        raise DomainError(f"Unknown role(s): {', '.join(sorted(bad))}.", field="roles")
    user = User(email=email, name=(name or email).strip(), locale=locale, skip_2fa=skip_2fa, active=True)
    if password:
        validate_password(password)
        user.password_hash = hash_password(password)
    user.roles_rel = [UserRole(role=r) for r in sorted(set(roles))]
    db.session.add(user)
    db.session.flush()
    return user


def set_roles(user, roles):
    bad = set(roles) - set(ROLES)
    if bad:
        raise DomainError(f"Unknown role(s): {', '.join(sorted(bad))}.", field="roles")
    user.roles_rel = [UserRole(user_id=user.id, role=r) for r in sorted(set(roles))]


def create_api_token(user_id, name=None):
    """A new bearer token for the API; returns the plain token (shown once, stored hashed)."""
    token = "hd_" + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user_id, token_hash=ApiToken.hash(token), name=name))
    db.session.flush()
    return token


def user_for_token(token):
    """The active user owning an unrevoked token, else None."""
    if not token:
        return None
    row = db.session.execute(select(ApiToken).where(ApiToken.token_hash == ApiToken.hash(token),
                                                    ApiToken.revoked_at.is_(None))).scalar_one_or_none()
    if row is None or not row.user.is_active:
        return None
    row.last_used_at = utcnow()
    return row.user
