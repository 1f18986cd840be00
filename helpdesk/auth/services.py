"""Staff accounts: passwords, authentication, roles, invitations, deactivation, API tokens."""
import secrets

from flask import current_app
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from .. import jobs
from ..errors import DomainError, NotFound
from ..extensions import db
from ..tickets.services import audit
from ..timeutil import utcnow
from . import tokens
from .i18n import _
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
        raise DomainError(_("A password needs at least %(n)d characters.", n=MIN_PASSWORD), field="password")


def _check_roles(roles):
    """The roles as a set, if every one is known; else DomainError."""
    bad = set(roles) - set(ROLES)
    if bad:
        raise DomainError(_("Unknown role(s): %(roles)s.", roles=", ".join(sorted(bad))), field="roles")
    return set(roles)


def create_user(*, email, name, roles=(), password=None, locale=None, skip_2fa=False):
    """A new agent. Roles must be known; the email must be unused."""
    email = (email or "").strip().lower()
    if not email or "@" not in email:
        raise DomainError(_("A valid email is required."), field="email")
    if find_user(email):
        raise DomainError(_("%(email)s already has an account.", email=email), field="email")
    _check_roles(roles)
    user = User(email=email, name=(name or email).strip(), locale=locale, skip_2fa=skip_2fa, active=True)
    if password:
        validate_password(password)
        user.password_hash = hash_password(password)
    user.roles_rel = [UserRole(role=r) for r in sorted(set(roles))]
    db.session.add(user)
    db.session.flush()
    return user


def set_roles(user, roles):
    _check_roles(roles)
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


# ---------------------------------------------------------------- agent accounts managed by admins

def get_user_or_404(user_id):
    """The staff user with this id, else NotFound."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(_("No such agent."))
    return user


def _other_active_admins(user_id):
    return db.session.execute(
        select(func.count()).select_from(User).join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == "admin", User.active.is_(True), User.id != user_id)
    ).scalar()


def _clean_name(name):
    name = " ".join((name or "").split())
    if not name:
        raise DomainError(_("A name is required."), field="name")
    if len(name) > 120:
        raise DomainError(_("A name can have at most 120 characters."), field="name")
    return name


def invite_agent(*, email, name, roles, actor_id, now=None):
    """A new agent without a password; an invitation mail with a signed link is queued."""
    user = create_user(email=email, name=_clean_name(name or email), roles=roles)
    user.invited_at = now or utcnow()
    audit(None, actor_id, "invited", new=user.email, note=", ".join(sorted(user.roles)) or None,
          object_type="user", object_id=user.id)
    jobs.enqueue("helpdesk.auth.jobs.send_invite", user.id, queue="mail")
    return user


def resend_invite(user_id, actor_id, now=None):
    """Send the invitation again to an agent who has not set a password yet."""
    user = get_user_or_404(user_id)
    if user.password_hash:
        raise DomainError(_("This agent has already accepted the invitation."))
    if not user.is_active:
        raise DomainError(_("Reactivate the account first."))
    user.invited_at = now or utcnow()
    audit(None, actor_id, "invited", new=user.email, note="resent", object_type="user", object_id=user.id)
    jobs.enqueue("helpdesk.auth.jobs.send_invite", user.id, queue="mail")
    return user


def update_agent(user_id, actor_id, *, name, roles):
    """Change an agent's name and roles (audited). The last active admin keeps the admin role."""
    user = get_user_or_404(user_id)
    roles = _check_roles(roles)
    old_roles = user.roles
    if "admin" in old_roles and "admin" not in roles and user.is_active and not _other_active_admins(user.id):
        raise DomainError(_("This is the last active admin: give another agent the admin role first."),
                          field="roles")
    new_name = _clean_name(name)
    if new_name != user.name:
        audit(None, actor_id, "name", old=user.name, new=new_name, object_type="user", object_id=user.id)
        user.name = new_name
    if roles != old_roles:
        user.roles_rel = [r for r in user.roles_rel if r.role in roles] + \
            [UserRole(user_id=user.id, role=r) for r in sorted(roles - old_roles)]
        audit(None, actor_id, "roles", old=", ".join(sorted(old_roles)), new=", ".join(sorted(roles)),
              object_type="user", object_id=user.id)
    db.session.flush()
    return user


def deactivate(user_id, actor_id):
    """Block an agent from logging in and from the API (the account and its history stay)."""
    user = get_user_or_404(user_id)
    if user.id == actor_id:
        raise DomainError(_("You cannot deactivate your own account."))
    if not user.is_active:
        return user
    if user.is_admin and not _other_active_admins(user.id):
        raise DomainError(_("This is the last active admin and cannot be deactivated."))
    user.active = False
    audit(None, actor_id, "deactivated", old="active", new="inactive", object_type="user", object_id=user.id)
    db.session.flush()
    return user


def reactivate(user_id, actor_id):
    """Let a deactivated agent log in again."""
    user = get_user_or_404(user_id)
    if user.is_active:
        return user
    user.active = True
    audit(None, actor_id, "reactivated", old="inactive", new="active", object_type="user", object_id=user.id)
    db.session.flush()
    return user


# ---------------------------------------------------------------- passwords

def request_password_reset(email):
    """'Forgot password': queue a reset mail if an active account has this email; tell nobody."""
    user = find_user(email)
    if user is not None and user.is_active:
        jobs.enqueue("helpdesk.auth.jobs.send_password_reset", user.id, queue="mail")


def send_password_reset(user_id, actor_id):
    """An admin sends an agent a password-reset link."""
    user = get_user_or_404(user_id)
    if not user.is_active:
        raise DomainError(_("Reactivate the account first."))
    audit(None, actor_id, "password_reset_sent", object_type="user", object_id=user.id)
    jobs.enqueue("helpdesk.auth.jobs.send_password_reset", user.id, queue="mail")
    return user


def set_password_from_link(token, purpose, password):
    """Set the password from a reset or invitation link; the link dies with the old hash."""
    user = tokens.user_for_link(token, purpose)
    validate_password(password)
    user.password_hash = hash_password(password)
    audit(None, user.id, "invite_accepted" if purpose == "invite" else "password_reset",
          object_type="user", object_id=user.id)
    db.session.flush()
    return user


def change_password(user_id, current_password, new_password):
    """The agent changes their own password, proving the current one."""
    user = get_user_or_404(user_id)
    if not check_password(user, current_password):
        raise DomainError(_("Your current password is not correct."), field="current_password")
    validate_password(new_password)
    user.password_hash = hash_password(new_password)
    audit(None, user.id, "password_changed", object_type="user", object_id=user.id)
    db.session.flush()
    return user
