"""Marketing announcements: write, pick a segment, preview, send now or schedule, and the report."""
from flask import Blueprint

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")
