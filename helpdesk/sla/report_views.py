"""The SLA report page (/reports/sla) and its CSV export. Admins see every queue, queue leads theirs."""
import csv
import io
from datetime import date, timedelta

from flask import Blueprint, Response, abort, render_template, request
from flask_login import current_user, login_required
from sqlalchemy import select

from ..extensions import db
from ..tickets.models import Queue
from ..timeutil import to_local, utcnow
from . import report

bp = Blueprint("sla_report", __name__, url_prefix="/reports")


def _queue_scope():
    """None (every queue) for admins, the queues the agent leads otherwise; 403 for neither."""
    if current_user.has_role("admin"):
        return None
    led = list(db.session.execute(select(Queue.id).where(Queue.lead_id == current_user.id)).scalars())
    if not led:
        abort(403)
    return led


@bp.app_context_processor
def _nav():
    def sla_report_visible():
        """Admins and queue leads see the report link (one small query, only when the menu is drawn)."""
        if not getattr(current_user, "is_authenticated", False) or not hasattr(current_user, "has_role"):
            return False
        if current_user.has_role("admin"):
            return True
        return db.session.execute(select(Queue.id).where(Queue.lead_id == current_user.id).limit(1)).first() is not None

    return {"sla_report_visible": sla_report_visible}


def _day(value, default):
    try:
        return date.fromisoformat(value) if value else default
    except ValueError:
        return default


def _params():
    today = to_local(utcnow()).date()
    start = _day(request.args.get("from"), today.replace(day=1))
    end = _day(request.args.get("to"), today)
    if end < start:
        start, end = end, start
    end = min(end, start + timedelta(days=366))
    group = request.args.get("group") if request.args.get("group") in report.GROUPS else "queue"
    return start, end, group


@bp.route("/sla")
@login_required
def sla():
    scope = _queue_scope()
    start, end, group = _params()
    lo, hi = report.period_bounds(start, end)
    data = report.sla_report(lo, hi, group=group, queue_ids=scope)
    csat = report.csat_report(lo, hi, queue_ids=scope)
    return render_template("sla/report.html", data=data, csat=csat, start=start, end=end, group=group,
                           groups=report.GROUPS)


@bp.route("/sla.csv")
@login_required
def sla_csv():
    scope = _queue_scope()
    start, end, group = _params()
    lo, hi = report.period_bounds(start, end)
    buf = io.StringIO()
    csv.writer(buf).writerows(report.csv_rows(report.sla_report(lo, hi, group=group, queue_ids=scope)))
    name = f"sla-{group}-{start.isoformat()}-{end.isoformat()}.csv"
    return Response(buf.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
