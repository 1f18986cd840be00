"""Admin pages for agent accounts: list, invite, edit roles and queues, deactivate, resets."""
from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from ..auth import services as accounts
from ..auth import totp
from ..auth.models import User
from ..extensions import db
from ..tickets.models import AuditEvent, Queue, QueueMember
from . import services
from .forms import ActionForm, AgentForm, InviteForm
from .views import attempt, bp


def _queue_choices(form):
    form.queues.choices = [(q.id, q.name) for q in db.session.execute(select(Queue).order_by(Queue.name)).scalars()]
    return form


def _queues_by_user():
    rows = db.session.execute(select(QueueMember.user_id, Queue.name).join(Queue, Queue.id == QueueMember.queue_id)
                              .order_by(Queue.name)).all()
    out = {}
    for user_id, name in rows:
        out.setdefault(user_id, []).append(name)
    return out


@bp.route("/agents")
def agents():
    """Every agent, active ones first."""
    users = db.session.execute(select(User).order_by(User.active.desc(), User.name)).scalars().all()
    return render_template("admin/agents.html", users=users, queues_by_user=_queues_by_user())


@bp.route("/agents/invite", methods=["GET", "POST"])
def invite():
    """Create an agent without a password and mail them a link to choose one."""
    form = _queue_choices(InviteForm())
    invited = []

    def invite_with_queues():
        user = accounts.invite_agent(email=form.email.data, name=form.name.data, roles=form.roles.data,
                                     actor_id=current_user.id)
        services.set_user_queues(user.id, form.queues.data or [], current_user.id)
        invited.append(user)

    if form.validate_on_submit() and attempt(form, invite_with_queues):
        db.session.commit()
        flash(_("Invitation sent to %(email)s.", email=invited[0].email), "success")
        return redirect(url_for("admin.agent", user_id=invited[0].id))
    return render_template("admin/invite.html", form=form), 400 if form.errors else 200


def _render_agent(user, form, status=200):
    events = db.session.execute(
        select(AuditEvent).where(AuditEvent.object_type == "user", AuditEvent.object_id == user.id)
        .order_by(AuditEvent.id.desc()).limit(100)
    ).scalars().all()
    return render_template("admin/agent.html", user=user, form=form, action_form=ActionForm(), events=events,
                           needs_2fa=totp.required_for(user)), status


@bp.route("/agents/<int:user_id>", methods=["GET", "POST"])
def agent(user_id):
    """Edit an agent's name, roles and queues; buttons for deactivation and resets."""
    user = accounts.get_user_or_404(user_id)
    form = _queue_choices(AgentForm())
    if not form.is_submitted():
        form.name.data = user.name
        form.roles.data = sorted(user.roles)
        form.queues.data = sorted(db.session.execute(
            select(QueueMember.queue_id).where(QueueMember.user_id == user.id)).scalars())
    if form.validate_on_submit() and attempt(form, lambda: (
            accounts.update_agent(user_id, current_user.id, name=form.name.data, roles=form.roles.data),
            services.set_user_queues(user_id, form.queues.data or [], current_user.id))):
        db.session.commit()
        flash(_("Saved."), "success")
        return redirect(url_for("admin.agent", user_id=user_id))
    return _render_agent(accounts.get_user_or_404(user_id), form, 400 if form.errors else 200)


# (action, service, success message): each is one POST button on the agent page.
ACTIONS = {
    "deactivate": (accounts.deactivate, lambda u: _("%(name)s is deactivated and can no longer log in.", name=u.name)),
    "reactivate": (accounts.reactivate, lambda u: _("%(name)s can log in again.", name=u.name)),
    "send-reset": (accounts.send_password_reset, lambda u: _("A password-reset link was sent to %(email)s.",
                                                               email=u.email)),
    "resend-invite": (accounts.resend_invite, lambda u: _("The invitation was sent again to %(email)s.",
                                                            email=u.email)),
    "reset-2fa": (lambda uid, actor: totp.disable(uid, actor, by_admin=True),
                  lambda u: _("Two-factor login was reset for %(name)s.", name=u.name)),
}


@bp.route("/agents/<int:user_id>/<any(" + ", ".join(f'"{a}"' for a in ACTIONS) + "):action>", methods=["POST"])
def agent_action(user_id, action):
    """Deactivate, reactivate, send a password reset, resend the invitation, reset two-factor login."""
    accounts.get_user_or_404(user_id)
    form = ActionForm()
    service, message = ACTIONS[action]
    if not form.validate_on_submit():
        flash(_("The form expired. Please try again."), "error")
    elif attempt(form, lambda: service(user_id, current_user.id)):
        db.session.commit()
        flash(message(accounts.get_user_or_404(user_id)), "success")
    return redirect(url_for("admin.agent", user_id=user_id))
