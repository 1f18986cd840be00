"""The agent desk: queue lists, the ticket page and its actions, phone and walk-in calls."""
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from ..auth.models import User
from ..customers import services as customer_services
from ..customers.services import customer_ticket_summary
from ..errors import Conflict, DomainError
from ..extensions import db
from ..mail import desk as mail_desk
from ..mail.forms import CcForm
from ..sla import views as sla_views
from ..web import STATUS_LABELS, render_error
from . import listing, services, states, storage
from .forms import (
    AssignForm, BulkForm, CallForm, MergeForm, PriorityForm, ReplyForm, StatusForm, TagsForm, TransferForm,
)
from .models import PRIORITIES, Attachment, AuditEvent, Message, Queue, QueueMember, Ticket

bp = Blueprint("tickets", __name__)


@bp.before_request
@login_required
def _require_login():
    """Every desk page needs a logged-in agent."""


def _files(field):
    """(filename, content_type, bytes) for each uploaded file of a MultipleFileField."""
    out = []
    for f in field.data or []:
        if getattr(f, "filename", ""):
            out.append((f.filename, f.mimetype, f.read()))
    return out


def _visible_queues():
    if current_user.is_admin:
        return db.session.execute(select(Queue).order_by(Queue.name)).scalars().all()
    qids = services.queue_ids_of(current_user.id)
    return db.session.execute(select(Queue).where(Queue.id.in_(qids or [-1])).order_by(Queue.name)).scalars().all()


@bp.route("/")
def index():
    """A queue view (mine, unassigned, a department, all open) with filters, sorting and paging."""
    params = listing.ListParams.from_args(request.args, current_app.config["PAGE_SIZE"])
    user = db.session.get(User, current_user.id)
    queues = _visible_queues()
    if params.view.startswith("queue:"):
        slug = params.view.split(":", 1)[1]
        q = next((q for q in queues if q.slug == slug), None)
        if q is None:
            abort(404)
        params.queue_id = q.id
    page = listing.list_tickets(params, user, services.visibility_clause(user))
    sidebar = listing.sidebar_counts(user, queues)
    agents = db.session.execute(select(User).where(User.active.is_(True)).order_by(User.name)).scalars().all()
    return render_template("tickets/list.html", page=page, params=params, queues=queues, sidebar=sidebar,
                           agents=agents, statuses=states.STATUSES, priorities=PRIORITIES,
                           bulk_form=BulkForm(), sla_badges=sla_views.list_badges(page.items))


@bp.route("/tickets/<int:number>")
def show(number):
    """The ticket page: thread, reply box, actions, customer sidebar, audit trail."""
    ticket = services.resolve_number(number)
    if ticket is None:
        abort(404)
    if ticket.number != number:
        return redirect(url_for("tickets.show", number=ticket.number), 301)
    user = db.session.get(User, current_user.id)
    if not services.can_see(user, ticket):
        abort(404)
    return _render_ticket(ticket, user)


def _render_ticket(ticket, user, reply_form=None, conflict=None, status_code=200, cc_form=None):
    messages = db.session.execute(select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id)
                                  ).scalars().all()
    events = db.session.execute(select(AuditEvent).where(AuditEvent.ticket_id == ticket.id)
                                .order_by(AuditEvent.id.desc()).limit(200)).scalars().all()
    members = db.session.execute(
        select(User).join(QueueMember, QueueMember.user_id == User.id)
        .where(QueueMember.queue_id == ticket.queue_id, User.active.is_(True)).order_by(User.name)
    ).scalars().all()
    queues = db.session.execute(select(Queue).order_by(Queue.name)).scalars().all()
    targets = states.allowed_targets(ticket.status)
    reply_form = reply_form or ReplyForm()
    reply_form.status.choices = [("", _("(unchanged)"))] + [(s, STATUS_LABELS[s]) for s in targets]
    if not reply_form.seen_last_message_id.data:
        reply_form.seen_last_message_id.data = str(messages[-1].id) if messages else "0"
    status_form = StatusForm()
    status_form.status.choices = [(s, STATUS_LABELS[s]) for s in targets]
    tags_form = TagsForm(tags=", ".join(ticket.tag_names))
    priority_form = PriorityForm(priority=ticket.priority)
    cc_form = cc_form or CcForm(formdata=None, cc=", ".join(ticket.cc_addresses or []))
    views = mail_desk.message_views(messages, lambda a: url_for("tickets.attachment", attachment_id=a.id))
    return render_template(
        "tickets/show.html", ticket=ticket, messages=messages, events=events, members=members, queues=queues,
        reply_form=reply_form, status_form=status_form, priority_form=priority_form, assign_form=AssignForm(),
        transfer_form=TransferForm(), tags_form=tags_form, merge_form=MergeForm(), targets=targets,
        canned=services.canned_for(ticket, user), other_tickets=customer_ticket_summary(ticket.customer_id, ticket.id),
        conflict=conflict, last_channel=services.last_contact_channel(ticket.customer_id),
        views=views, cc_form=cc_form, downloadable=mail_desk.downloadable, sla=sla_views.ticket_sla(ticket),
    ), status_code


def _ticket_or_404(number):
    ticket = db.session.execute(select(Ticket).where(Ticket.number == number)).scalar_one_or_none()
    user = db.session.get(User, current_user.id)
    if ticket is None or not services.can_see(user, ticket):
        abort(404)
    return ticket, user


def _done(ticket, message=None):
    db.session.commit()
    if message:
        flash(message, "success")
    return redirect(url_for("tickets.show", number=ticket.number))


def _fail(ticket, exc):
    db.session.rollback()
    flash(exc.message, "error")
    return redirect(url_for("tickets.show", number=ticket.number))


@bp.route("/tickets/<int:number>/messages", methods=["POST"])
def add_message(number):
    """Reply to the customer or add an internal note (warns when someone else wrote meanwhile)."""
    ticket, user = _ticket_or_404(number)
    form = ReplyForm()
    if not form.validate_on_submit():
        return _render_ticket(ticket, user, reply_form=form, status_code=400)
    try:
        seen = int(form.seen_last_message_id.data) if (form.seen_last_message_id.data or "").isdigit() else None
        services.add_agent_message(ticket.id, user.id, body_text=form.body.data or "", kind=form.kind.data,
                                   files=_files(form.attachments), status=form.status.data or None,
                                   seen_last_message_id=seen, force=bool(form.force.data))
    except Conflict as exc:
        db.session.rollback()
        ticket = db.session.get(Ticket, ticket.id)
        return _render_ticket(ticket, user, reply_form=form, conflict=exc, status_code=409)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        ticket = db.session.get(Ticket, ticket.id)
        return _render_ticket(ticket, user, reply_form=form, status_code=exc.status_code)
    return _done(ticket, _("Note added.") if form.kind.data == "note" else _("Reply sent."))


def _ticket_action(number, form_cls, apply, success):
    """Validate the form, apply one change through a service, commit, and go back to the ticket."""
    ticket, user = _ticket_or_404(number)
    form = form_cls()
    if not form.validate_on_submit():
        abort(400)
    try:
        apply(ticket.id, user.id, form)
    except DomainError as exc:
        return _fail(ticket, exc)
    return _done(ticket, success)


def _assign(ticket_id, user_id, form):
    value = form.assignee_id.data
    if value == "me":
        return services.take(ticket_id, user_id)
    return services.assign(ticket_id, user_id, int(value) if (value or "").isdigit() else None)


@bp.route("/tickets/<int:number>/status", methods=["POST"])
def set_status(number):
    return _ticket_action(number, StatusForm, lambda tid, uid, f: services.change_status(tid, uid, f.status.data),
                          _("Status changed."))


@bp.route("/tickets/<int:number>/priority", methods=["POST"])
def set_priority(number):
    return _ticket_action(number, PriorityForm,
                          lambda tid, uid, f: services.change_priority(tid, uid, f.priority.data),
                          _("Priority changed."))


@bp.route("/tickets/<int:number>/assign", methods=["POST"])
def set_assignee(number):
    return _ticket_action(number, AssignForm, _assign, _("Assignee changed."))


@bp.route("/tickets/<int:number>/tags", methods=["POST"])
def set_tags(number):
    return _ticket_action(number, TagsForm,
                          lambda tid, uid, f: services.set_tags(tid, uid, (f.tags.data or "").split(",")),
                          _("Tags saved."))


@bp.route("/tickets/<int:number>/transfer", methods=["POST"])
def transfer(number):
    ticket, user = _ticket_or_404(number)
    form = TransferForm()
    if not form.validate_on_submit():
        flash(_("Choose a queue and write a handover note."), "error")
        return redirect(url_for("tickets.show", number=number))
    try:
        services.transfer(ticket.id, user.id, int(form.queue_id.data), form.note.data)
    except ValueError:  # a queue id that is not a number
        return _fail(ticket, DomainError(_("Unknown queue.")))
    except DomainError as exc:
        return _fail(ticket, exc)
    db.session.commit()
    flash(_("Ticket transferred."), "success")
    if not services.can_see(db.session.get(User, user.id), db.session.get(Ticket, ticket.id)):
        return redirect(url_for("tickets.index"))
    return redirect(url_for("tickets.show", number=number))


@bp.route("/tickets/<int:number>/merge", methods=["POST"])
def merge(number):
    ticket, user = _ticket_or_404(number)
    form = MergeForm()
    if not form.validate_on_submit():
        abort(400)
    raw = (form.target_number.data or "").strip().lstrip("#")
    target = services.resolve_number(int(raw)) if raw.isdigit() else None
    if target is None:
        flash(_("There is no ticket with that number."), "error")
        return redirect(url_for("tickets.show", number=number))
    try:
        services.merge(ticket.id, target.id, user.id)
    except DomainError as exc:
        return _fail(ticket, exc)
    db.session.commit()
    flash(_("Ticket #%(a)s was merged into #%(b)s.", a=ticket.number, b=target.number), "success")
    return redirect(url_for("tickets.show", number=target.number))


@bp.route("/tickets/<int:number>/cc", methods=["POST"])
def set_cc(number):
    """Edit the Cc list that agent replies go to (a rejected list is shown again as typed)."""
    ticket, user = _ticket_or_404(number)
    form = CcForm()
    if not form.validate_on_submit():
        return _render_ticket(ticket, user, cc_form=form, status_code=400)
    try:
        mail_desk.set_cc(ticket.id, user.id, form.cc.data)
    except DomainError as exc:
        db.session.rollback()
        form.cc.errors = list(form.cc.errors) + [exc.message]
        return _render_ticket(db.session.get(Ticket, ticket.id), user, cc_form=form, status_code=exc.status_code)
    return _done(ticket, _("Cc list saved."))


@bp.route("/tickets/bulk", methods=["POST"])
def bulk():
    """Assign, change status or close many tickets at once."""
    form = BulkForm()
    if not form.validate_on_submit():
        abort(400)
    ids = [int(i) for i in request.form.getlist("ticket_ids") if i.isdigit()]
    if not ids:
        flash(_("Select at least one ticket."), "warning")
        return redirect(request.referrer if _same_site(request.referrer) else url_for("tickets.index"))
    try:
        done, errors = services.bulk(ids, current_user.id, form.action.data, form.value.data)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("tickets.index"))
    db.session.commit()
    flash(_("%(n)s ticket(s) updated.", n=len(done)), "success")
    for tid, msg in list(errors.items())[:10]:
        t = db.session.get(Ticket, tid)
        flash(_("Ticket #%(number)s: %(error)s", number=t.number if t else tid, error=msg), "error")
    return redirect(request.referrer if _same_site(request.referrer) else url_for("tickets.index"))


def _same_site(url):
    from ..web import is_safe_next

    if not url:
        return False
    host = request.host_url.rstrip("/")
    return url.startswith(host + "/") and is_safe_next(url[len(host):])


@bp.route("/calls/new", methods=["GET", "POST"])
def new_call():
    """A phone or walk-in call: a ticket on behalf of an existing or new customer."""
    form = CallForm()
    queues = _visible_queues()
    form.queue_id.choices = [(str(q.id), q.name) for q in queues]
    if form.validate_on_submit():
        try:
            customer, _created = customer_services.find_or_create(
                email=form.customer_email.data, name=form.customer_name.data, phone=form.customer_phone.data)
            ticket = services.create_ticket(
                customer_id=customer.id, subject=form.subject.data, body_text=form.body.data,
                channel=form.channel.data, queue_id=int(form.queue_id.data), actor_id=current_user.id,
                priority=form.priority.data, files=_files(form.attachments))
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            return render_template("tickets/new_call.html", form=form), 400
        flash(_("Ticket #%(n)s created.", n=ticket.number), "success")
        return redirect(url_for("tickets.show", number=ticket.number))
    return render_template("tickets/new_call.html", form=form), (400 if request.method == "POST" else 200)


@bp.route("/attachments/<int:attachment_id>")
def attachment(attachment_id):
    """Download an attachment of a ticket the agent may see, never rendered inline."""
    att = db.session.get(Attachment, attachment_id)
    user = db.session.get(User, current_user.id)
    if att is None or not services.can_see(user, db.session.get(Ticket, att.ticket_id)):
        abort(404)
    return send_attachment(att)


def send_attachment(att):
    """Serve a stored file as a download with safe headers (shared with the API and portal).

    Never a file whose virus scan is pending or found something (409 / 403 with the reason).
    """
    refused = mail_desk.refusal(att)
    if refused:
        return render_error(*refused)
    path = storage.path_for(att.sha256)
    if not path.exists():
        abort(404)
    ctype = att.content_type if att.content_type and "html" not in att.content_type.lower() \
        and "svg" not in att.content_type.lower() and "xml" not in att.content_type.lower() \
        else "application/octet-stream"
    resp = send_file(path, mimetype=ctype, as_attachment=True, download_name=att.filename, max_age=0)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    resp.headers["Cache-Control"] = "private, no-store"
    return resp
