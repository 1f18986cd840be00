"""The public status page (no login, no customer data, no item identifiers): upcoming, ongoing and
past maintenance windows (STATUS_PAST_DAYS back), one window, and their Atom feed, in the request's
language (the app's ?lang= switch)."""
from flask import Blueprint, abort, current_app, make_response, render_template, url_for
from flask_babel import get_locale

from ..extensions import db
from ..timeutil import utcnow
from . import schedule, services
from .forms import IMPACT_LABELS, PHASE_LABELS
from .models import MaintenanceWindow

bp = Blueprint("status", __name__, url_prefix="/status")


def _lang():
    return "en" if str(get_locale() or "") == "en" else "id"


def public_window(w, now, lang):
    """What the public sees of a window: text in one language, times, impact, state."""
    return {"id": w.id, "title": w.title_en if lang == "en" else w.title_id,
            "description": (w.description_en if lang == "en" else w.description_id) or "",
            "starts_at": w.starts_at, "ends_at": w.ends_at, "impact": w.impact, "phase": schedule.phase(w, now),
            "cancelled": w.status == "cancelled", "cancel_reason": w.cancel_reason if w.status == "cancelled" else "",
            "change_note": w.change_note or "", "updated_at": w.updated_at, "published_at": w.published_at,
            "url": current_app.config["BASE_URL"].rstrip("/") + url_for("status.show", window_id=w.id)}


def _lists(now, lang):
    lists = services.windows(now, published_only=True, past_days=current_app.config["STATUS_PAST_DAYS"])
    return {k: [public_window(w, now, lang) for w in v] for k, v in lists.items()}


@bp.context_processor
def _labels():
    return {"IMPACT_LABELS": IMPACT_LABELS, "PHASE_LABELS": PHASE_LABELS}


@bp.route("")
def index():
    now, lang = utcnow(), _lang()
    return render_template("status/index.html", lists=_lists(now, lang), lang=lang)


@bp.route("/<int:window_id>")
def show(window_id):
    w = db.session.get(MaintenanceWindow, window_id)
    if w is None or w.published_at is None:
        abort(404)
    return render_template("status/show.html", w=public_window(w, utcnow(), _lang()))


@bp.route("/feed.atom")
def feed():
    now, lang = utcnow(), _lang()
    lists = _lists(now, lang)
    entries = sorted(lists["ongoing"] + lists["upcoming"] + lists["past"],
                     key=lambda e: (e["updated_at"], e["id"]), reverse=True)
    base = current_app.config["BASE_URL"].rstrip("/")
    updated = max([e["updated_at"] for e in entries], default=now)
    body = render_template("status/feed.xml", entries=entries, lang=lang, updated=updated,
                           feed_url=base + url_for("status.feed"), page_url=base + url_for("status.index"))
    resp = make_response(body)
    resp.headers["Content-Type"] = "application/atom+xml; charset=utf-8"
    return resp
