"""The products and guarantees report (/reports/guarantees?month=YYYY-MM), its chart (an SVG image
drawn on the server, never inline in the page) and its CSV export.

Who sees it: admins, billing and queue leads (like the SLA report, plus billing). The numbers are
the whole company's: claims and repair money belong to no queue.
"""
import csv
import io

from flask import Blueprint, Response, abort, g, render_template, request
from flask_babel import format_date, get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from ..extensions import db
from ..tickets.models import Queue
from . import report
from .badges import charge_label, lang_of

bp = Blueprint("guarantee_report", __name__, url_prefix="/reports")

# one colour per charge decision (the chart and the table's legend swatches)
CHARGE_COLOURS = {"free_warranty": "#146c43", "free_contract": "#20c997", "free_bundle": "#0dcaf0",
                  "paid": "#dc3545", "needs_classification": "#ffc107", "unknown_item": "#adb5bd"}


def may_see(user):
    """Admins, billing and queue leads (at most one query, once per request)."""
    if not getattr(user, "is_authenticated", False) or not hasattr(user, "has_role"):
        return False
    if user.has_role("admin") or user.has_role("billing"):
        return True
    cached = getattr(g, "_leads_a_queue", None)
    if cached is None:
        cached = g._leads_a_queue = db.session.execute(
            select(Queue.id).where(Queue.lead_id == user.id).limit(1)).first() is not None
    return cached


def _require():
    if not may_see(current_user):
        abort(403)


@bp.app_context_processor
def _nav():
    return {"guarantee_report_visible": lambda: may_see(current_user)}


def _month():
    """The asked month ("YYYY-MM"), else this Asia/Jakarta month."""
    return report.parse_month(request.args.get("month")) or report.this_month()


def _charge_names():
    """Charge decision names in the page's language (the badges' own texts, without a date)."""
    lang = lang_of(get_locale())
    return {code: charge_label(code, None, lang) for code in report.CHARGES}


def _month_label(first, fmt="MMM yyyy"):
    return format_date(first, fmt)


@bp.route("/guarantees")
@login_required
def guarantees():
    _require()
    first = _month()
    data = report.guarantee_report(first)
    return render_template("reports/guarantees.html", data=data, month=first,
                           prev_month=report.add_months(first, -1), next_month=report.add_months(first, 1),
                           charge_names=_charge_names(), colours=CHARGE_COLOURS,
                           month_label=_month_label)


@bp.route("/guarantees/chart.svg")
@login_required
def chart():
    """Tickets per charge decision, the month and the five before it, as stacked bars."""
    _require()
    first = _month()
    months = report.months_ending(first)
    trend = report.charges_by_month(months)
    names = _charge_names()
    svg = render_template("reports/guarantees_chart.svg", **chart_geometry(months, trend, names),
                          title=_("Tickets per charge decision, %(start)s – %(end)s",
                                  start=_month_label(months[0]), end=_month_label(months[-1])))
    resp = Response(svg, mimetype="image/svg+xml")
    # an image, never a document: nothing in it may run or load
    resp.headers["Content-Security-Policy"] = "default-src 'none'"
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


def chart_geometry(months, trend, names):
    """Bars, axis ticks and legend of the stacked bar chart (plain numbers for the SVG template)."""
    width, height = 640, 300
    left, right, top, bottom = 44, 12, 28, 76
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = max([trend[m]["total"] for m in months] + [1])
    step = _nice_step(top_value)
    scale_max = -(-top_value // step) * step
    slot = plot_w / len(months)
    bar_w = round(slot * 0.6, 1)
    bars = []
    for i, m in enumerate(months):
        x = round(left + i * slot + (slot - bar_w) / 2, 1)
        y = top + plot_h
        segments = []
        for code in report.CHARGES:
            n = trend[m]["charges"][code]
            if not n:
                continue
            h = round(plot_h * n / scale_max, 1)
            y = round(y - h, 1)
            segments.append({"code": code, "y": y, "h": h, "n": n, "colour": CHARGE_COLOURS[code],
                             "name": names[code]})
        bars.append({"x": x, "w": bar_w, "label": _month_label(m), "total": trend[m]["total"],
                     "top": round(top + plot_h - plot_h * trend[m]["total"] / scale_max, 1),
                     "segments": segments, "current": i == len(months) - 1})
    ticks = [{"value": v, "y": round(top + plot_h - plot_h * v / scale_max, 1)}
             for v in range(0, scale_max + 1, step)]
    legend = [{"code": code, "name": names[code], "colour": CHARGE_COLOURS[code],
               "x": left + (i % 3) * 200, "y": height - bottom + 40 + (i // 3) * 20}
              for i, code in enumerate(report.CHARGES)]
    return {"width": width, "height": height, "left": left, "plot_w": plot_w, "top": top, "plot_h": plot_h,
            "bars": bars, "ticks": ticks, "legend": legend,
            "empty": all(trend[m]["total"] == 0 for m in months)}


def _nice_step(top_value):
    """A 1-2-5 tick step giving at most five ticks above zero."""
    magnitude = 1
    while True:
        for k in (1, 2, 5):
            if top_value <= 5 * k * magnitude:
                return k * magnitude
        magnitude *= 10


@bp.route("/guarantees.csv")
@login_required
def guarantees_csv():
    _require()
    first = _month()
    buf = io.StringIO()
    csv.writer(buf).writerows(report.csv_rows(report.guarantee_report(first)))
    name = f"guarantees-{first.strftime('%Y-%m')}.csv"
    # UTF-8 with a byte order mark, so spreadsheet programs read names with accents right
    return Response("\ufeff" + buf.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
