"""The public status page (no login, no customer data): upcoming, ongoing and past maintenance windows, and their Atom feed."""
from flask import Blueprint

bp = Blueprint("status", __name__, url_prefix="/status")
