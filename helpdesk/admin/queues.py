"""Admin pages for queues (lead, members) and their canned responses."""
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from ..auth.models import User
from ..extensions import db
from ..tickets.models import CannedResponse, Queue, QueueMember
from . import services
from .forms import ActionForm, CannedForm, QueueForm, QueueLeadForm, QueueMemberForm
from .views import attempt, bp


def _queue_or_404(queue_id):
    queue = db.session.get(Queue, queue_id)
    if queue is None:
        abort(404)
    return queue


def _done(message, endpoint, **values):
    db.session.commit()
    flash(message, "success")
    return redirect(url_for(endpoint, **values))


# ---------------------------------------------------------------- queues

@bp.route("/queues", methods=["GET", "POST"])
def queues():
    """Every queue with its lead and member count, and a form to add one."""
    form = QueueForm()
    created = []
    if form.validate_on_submit() and attempt(form, lambda: created.append(
            services.create_queue(slug=form.slug.data, name=form.name.data, actor_id=current_user.id))):
        return _done(_("Queue %(name)s added.", name=created[0].name), "admin.queue", queue_id=created[0].id)
    rows = db.session.execute(select(Queue).order_by(Queue.name)).scalars().all()
    canned_counts = dict(db.session.execute(
        select(CannedResponse.queue_id, func.count()).group_by(CannedResponse.queue_id)).all())
    return render_template("admin/queues.html", queues=rows, form=form, canned_counts=canned_counts), \
        400 if form.errors else 200


def _render_queue(queue, lead_form=None, member_form=None, status=200):
    active = db.session.execute(select(User).where(User.active.is_(True)).order_by(User.name)).scalars().all()
    member_ids = set(db.session.execute(select(QueueMember.user_id).where(QueueMember.queue_id == queue.id)).scalars())
    lead_form = lead_form or QueueLeadForm(lead=queue.lead_id or 0)
    lead_form.lead.choices = [(0, _("(no lead)"))] + [(u.id, u.name) for u in active]
    member_form = member_form or QueueMemberForm()
    member_form.user.choices = [(u.id, f"{u.name} <{u.email}>") for u in active if u.id not in member_ids]
    return render_template("admin/queue.html", queue=queue, lead_form=lead_form, member_form=member_form,
                           action_form=ActionForm()), status


@bp.route("/queues/<int:queue_id>")
def queue(queue_id):
    """A queue: its lead and its member agents."""
    return _render_queue(_queue_or_404(queue_id))


@bp.route("/queues/<int:queue_id>/lead", methods=["POST"])
def queue_lead(queue_id):
    queue = _queue_or_404(queue_id)
    form = QueueLeadForm()
    form.lead.choices = [(0, "")] + [(u, u) for u in db.session.execute(select(User.id)).scalars()]
    if form.validate_on_submit() and attempt(form, lambda: services.set_lead(queue_id, form.lead.data or None,
                                                                             current_user.id)):
        return _done(_("Lead saved."), "admin.queue", queue_id=queue_id)
    return _render_queue(queue, lead_form=form, status=400)


@bp.route("/queues/<int:queue_id>/members", methods=["POST"])
def queue_add_member(queue_id):
    queue = _queue_or_404(queue_id)
    form = QueueMemberForm()
    form.user.choices = [(u, u) for u in db.session.execute(select(User.id)).scalars()]
    if form.validate_on_submit() and attempt(form, lambda: services.add_member(queue_id, form.user.data,
                                                                               current_user.id)):
        return _done(_("Agent added to the queue."), "admin.queue", queue_id=queue_id)
    return _render_queue(queue, member_form=form, status=400)


@bp.route("/queues/<int:queue_id>/members/<int:user_id>/remove", methods=["POST"])
def queue_remove_member(queue_id, user_id):
    _queue_or_404(queue_id)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    if not attempt(form, lambda: services.remove_member(queue_id, user_id, current_user.id)):
        return redirect(url_for("admin.queue", queue_id=queue_id))
    return _done(_("Agent removed from the queue."), "admin.queue", queue_id=queue_id)


# ---------------------------------------------------------------- canned responses

def _canned_form(**kw):
    form = CannedForm(**kw)
    form.queue.choices = [(0, _("Every queue"))] + [
        (q.id, q.name) for q in db.session.execute(select(Queue).order_by(Queue.name)).scalars()]
    return form


@bp.route("/canned")
def canned():
    """Canned responses, optionally of one queue (?queue=<id>, 0 for the ones of every queue)."""
    stmt = select(CannedResponse).outerjoin(Queue, Queue.id == CannedResponse.queue_id) \
        .order_by(Queue.name.is_not(None), Queue.name, CannedResponse.title)
    queue_id = request.args.get("queue", type=int)
    if queue_id is not None:
        stmt = stmt.where(CannedResponse.queue_id == queue_id if queue_id else CannedResponse.queue_id.is_(None))
    rows = db.session.execute(stmt).scalars().all()
    return render_template("admin/canned.html", rows=rows, queue_filter=queue_id, filter_form=_canned_form(),
                           placeholders=services.PLACEHOLDERS, action_form=ActionForm())


def _save_canned(form, canned_id=None):
    """Create or update from a validated form; returns a redirect, or None with errors on the form."""
    values = dict(queue_id=form.queue.data or None, title=form.title.data, body=form.body.data,
                  actor_id=current_user.id)
    if not attempt(form, lambda: services.create_canned(**values) if canned_id is None
                   else services.update_canned(canned_id, **values)):
        return None
    return _done(_("Canned response saved."), "admin.canned", queue=form.queue.data)


@bp.route("/canned/new", methods=["GET", "POST"])
def canned_new():
    form = _canned_form(queue=request.args.get("queue", 0, type=int))
    if form.validate_on_submit():
        done = _save_canned(form)
        if done:
            return done
    return render_template("admin/canned_form.html", form=form, item=None, placeholders=services.PLACEHOLDERS), \
        400 if form.errors else 200


@bp.route("/canned/<int:canned_id>", methods=["GET", "POST"])
def canned_edit(canned_id):
    item = services.get_canned(canned_id)
    form = _canned_form(queue=item.queue_id or 0, title=item.title, body=item.body)  # a POST's data wins
    if form.validate_on_submit():
        done = _save_canned(form, item.id)
        if done:
            return done
    return render_template("admin/canned_form.html", form=form, item=item, placeholders=services.PLACEHOLDERS), \
        400 if form.errors else 200


@bp.route("/canned/<int:canned_id>/delete", methods=["POST"])
def canned_delete(canned_id):
    if not ActionForm().validate_on_submit():
        abort(400)
    item = services.get_canned(canned_id)
    queue_id = item.queue_id or 0
    services.delete_canned(item.id, current_user.id)
    return _done(_("Canned response deleted."), "admin.canned", queue=queue_id)
