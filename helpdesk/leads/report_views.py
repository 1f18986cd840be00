"""The leads funnel report (/reports/leads?from=YYYY-MM-DD&to=YYYY-MM-DD, or ?month=YYYY-MM), its
chart (an SVG image drawn on the server, never inline in the page) and its CSV export.

Who sees it: marketing and admins (403 for the other agents).
"""
import csv
import io
from datetime import date, timedelta

from flask import Blueprint, Response, abort, render_template, request
from flask_babel import format_date
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..warranty.report import parse_month
from ..warranty.report_views import _nice_step
from . import report, services
from .forms import SOURCE_LABELS

bp = Blueprint("lead_report", __name__, url_prefix="/reports")

SERIES = (("leads", "#0d6efd"), ("offers", "#ffc107"), ("won", "#198754"))
MAX_DAYS = 366


def may_see(user):
    return bool(getattr(user, "is_authenticated", False) and hasattr(user, "has_role")
                and any(user.has_role(r) for r in services.MANAGER_ROLES))


@bp.before_request
@login_required
def _require():
    if not may_see(current_user):
        abort(403)


@bp.app_context_processor
def _nav():
    return {"lead_report_visible": lambda: may_see(current_user)}


def _day(value):
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _period():
    """(start, end) Jakarta days: ?month=YYYY-MM, else ?from=&to= (each defaulting to this month's
    first day and today), at most a year."""
    month = parse_month(request.args.get("month"))
    if month:
        return report.month_period(month)
    first, today = report.default_period()
    start = _day(request.args.get("from")) or first
    end = _day(request.args.get("to")) or (today if start <= today else start)
    if end < start:
        start, end = end, start
    return start, min(end, start + timedelta(days=MAX_DAYS))


def _series_names():
    return {"leads": _("Leads"), "offers": _("Offers"), "won": _("Won")}


@bp.route("/leads")
def leads():
    start, end = _period()
    data = report.funnel_report(start, end)
    return render_template("reports/leads.html", data=data, start=start, end=end, source_names=SOURCE_LABELS,
                           series=SERIES, series_names=_series_names(),
                           args={"from": start.isoformat(), "to": end.isoformat()})


@bp.route("/leads/chart.svg")
def chart():
    """Leads, offers and won per source (the sources with leads), as grouped bars."""
    start, end = _period()
    data = report.funnel_report(start, end)
    svg = render_template("reports/leads_chart.svg", **chart_geometry(data),
                          title=_("Leads, offers and won per source, %(start)s – %(end)s",
                                  start=format_date(start, "d MMM yyyy"), end=format_date(end, "d MMM yyyy")),
                          empty_text=_("No leads in this period."))
    resp = Response(svg, mimetype="image/svg+xml")
    # an image, never a document: nothing in it may run or load
    resp.headers["Content-Security-Policy"] = "default-src 'none'"
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


def chart_geometry(data):
    """Grouped bars (leads, offers, won) per source with leads, axis ticks and the legend."""
    width, height = 640, 300
    left, right, top, bottom = 44, 12, 28, 70
    plot_w, plot_h = width - left - right, height - top - bottom
    sources = [s for s, f in data["by_source"].items() if f.leads]
    top_value = max([data["by_source"][s].leads for s in sources] + [1])
    step = _nice_step(top_value)
    scale_max = -(-top_value // step) * step
    names = _series_names()
    groups = []
    slot = plot_w / max(len(sources), 1)
    bar_w = round(min(slot * 0.8 / len(SERIES), 40), 1)
    for i, source in enumerate(sources):
        f = data["by_source"][source]
        x0 = left + i * slot + (slot - bar_w * len(SERIES)) / 2
        bars = []
        for j, (key, colour) in enumerate(SERIES):
            n = getattr(f, key)
            h = round(plot_h * n / scale_max, 1)
            bars.append({"x": round(x0 + j * bar_w, 1), "y": round(top + plot_h - h, 1), "w": bar_w, "h": h, "n": n,
                         "colour": colour, "name": names[key]})
        groups.append({"label": str(SOURCE_LABELS.get(source, source)), "cx": round(left + i * slot + slot / 2, 1),
                       "bars": bars})
    ticks = [{"value": v, "y": round(top + plot_h - plot_h * v / scale_max, 1)} for v in range(0, scale_max + 1, step)]
    legend = [{"name": names[key], "colour": colour, "x": left + i * 140, "y": height - 16}
              for i, (key, colour) in enumerate(SERIES)]
    return {"width": width, "height": height, "left": left, "plot_w": plot_w, "top": top, "plot_h": plot_h,
            "groups": groups, "ticks": ticks, "legend": legend, "empty": not sources}


@bp.route("/leads.csv")
def leads_csv():
    start, end = _period()
    buf = io.StringIO()
    csv.writer(buf).writerows(report.csv_rows(report.funnel_report(start, end)))
    name = f"leads-funnel-{start.isoformat()}-{end.isoformat()}.csv"
    # UTF-8 with a byte order mark, so spreadsheet programs read names with accents right
    return Response("\ufeff" + buf.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
