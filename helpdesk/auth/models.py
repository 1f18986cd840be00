"""Staff users, their roles and API tokens."""
import hashlib

from flask_login import UserMixin

from ..extensions import db
from ..timeutil import utcnow

ROLES = ("admin", "customer_support", "technical_support", "billing", "marketing")
ROLES_REQUIRING_2FA = ("admin", "billing")


class User(UserMixin, db.Model):
    """A staff member (agent). Customers are separate accounts (customers.models.Customer)."""

    __tablename__ = "users"
    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(254), nullable=False, unique=True)
    name = db.Column(db.String(120), nullable=False)
    password_hash = db.Column(db.String(256))
    active = db.Column(db.Boolean, nullable=False, default=True)
    locale = db.Column(db.String(5))
    totp_secret = db.Column(db.String(64))
    totp_enabled = db.Column(db.Boolean, nullable=False, default=False)
    totp_last_step = db.Column(db.Integer)  # replay protection: last accepted TOTP time step
    skip_2fa = db.Column(db.Boolean, nullable=False, default=False)  # demo accounts only
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    invited_at = db.Column(db.DateTime)
    last_login_at = db.Column(db.DateTime)
    roles_rel = db.relationship("UserRole", cascade="all, delete-orphan", lazy="selectin")

    @property
    def roles(self):
        """The set of role names this user holds."""
        return {r.role for r in self.roles_rel}

    def has_role(self, role):
        """True when the user holds this exact role (admin does not imply others)."""
        return role in self.roles

    @property
    def is_admin(self):
        return self.has_role("admin")

    @property
    def is_active(self):
        return bool(self.active)

    @property
    def needs_2fa(self):
        """Two-factor login is required for admin and billing roles (not for demo accounts)."""
        return not self.skip_2fa and bool(self.roles & set(ROLES_REQUIRING_2FA))

    def get_id(self):
        return f"u:{self.id}"

    def __repr__(self):
        return f"<User {self.email}>"


class UserRole(db.Model):
    """One role held by a user; a user may hold several."""

    __tablename__ = "user_roles"
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role = db.Column(db.String(32), primary_key=True)


class ApiToken(db.Model):
    """A bearer token for the JSON API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    token_hash = db.Column(db.String(64), nullable=False, unique=True)
    name = db.Column(db.String(80))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    last_used_at = db.Column(db.DateTime)
    revoked_at = db.Column(db.DateTime)
    user = db.relationship("User")

    @staticmethod
    def hash(token):
        return hashlib.sha256(token.encode()).hexdigest()
