"""Admin pages: the blueprint, its guard (admin role only), the start page and job status.

Agents are in admin/agents.py; queues and canned responses in admin/queues.py; customers' data
requests in admin/data_requests.py.
"""
from flask import Blueprint, flash, render_template
from sqlalchemy import select

from .. import jobs
from ..errors import DomainError
from ..extensions import db
from ..jobs import OutboxJob
from ..web import roles_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
@roles_required("admin")
def _admins_only():
    """Every admin page: logged in (else the login page) and holding the admin role (else 403)."""


def attempt(form, call):
    """Run a service call; on a domain error roll back, show it next to its field and return False."""
    try:
        call()
    except DomainError as exc:
        db.session.rollback()
        field = exc.details.get("field")
        if field and field in form:
            form[field].errors = list(form[field].errors) + [exc.message]
        else:
            flash(exc.message, "error")
        return False
    return True


@bp.route("/")
def index():
    return render_template("admin/index.html")


@bp.route("/jobs")
def jobs_status():
    """Queue depths, failed jobs and the outbox backlog (the oldest pending rows with their errors)."""
    status = jobs.status()
    pending = db.session.execute(
        select(OutboxJob).where(OutboxJob.done_at.is_(None)).order_by(OutboxJob.id).limit(20)
    ).scalars().all()
    from ..sla.jobs import sweep_health

    return render_template("admin/jobs.html", status=status, pending=pending, sla=sweep_health())


from . import agents, data_requests, queues  # noqa: E402,F401  (their routes register on this blueprint)
from ..mail import admin as mail_admin  # noqa: E402,F401  (mailboxes, inbound log, blocklist)
