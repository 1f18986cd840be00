"""Technical support's maintenance windows: list, create, edit, preview of the affected subscribers, publish, cancel."""
from flask import Blueprint

bp = Blueprint("maintenance", __name__, url_prefix="/maintenance")
