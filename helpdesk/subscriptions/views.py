"""Public subscription pages (no login): one-click unsubscribe (RFC 8058), the preference page, the double opt-in confirmation."""
from flask import Blueprint

bp = Blueprint("subscriptions", __name__, url_prefix="/subscriptions")
