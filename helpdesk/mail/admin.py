"""Admin pages of the email channel (on the admin blueprint): mailboxes, the inbound log, the blocklist.

Thin views: validate, call helpdesk.mail.admin_services with the acting admin's id, commit, redirect.
"""
from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from ..admin.forms import ActionForm
from ..admin.views import attempt, bp
from ..errors import DomainError, NotFound
from ..extensions import db
from ..tickets.models import Queue
from . import admin_services as mail_admin
from .forms import BlockForm, LogFilterForm, MailboxForm

MAIL_ENDPOINTS = ("admin.mail_mailboxes", "admin.mail_mailbox_new", "admin.mail_mailbox_edit", "admin.mail_log",
                  "admin.mail_log_entry", "admin.mail_blocklist")
MAILBOX_FIELDS = ("name", "host", "port", "security", "username", "password", "password_env", "folder",
                  "after_fetch", "processed_folder", "quarantine_folder", "queue_id", "from_address", "from_name",
                  "plus_addressing", "active")


@bp.context_processor
def _mail_alerts():
    """`mail_alerts()` for the admin start page (queries only when a template calls it)."""
    return {"mail_alerts": mail_admin.alerts, "MAIL_ENDPOINTS": MAIL_ENDPOINTS}


def _found(call, *args):
    try:
        return call(*args)
    except NotFound:
        abort(404)


# ---------------------------------------------------------------- mailboxes

@bp.route("/mail/mailboxes")
def mail_mailboxes():
    """Every mailbox with its health; the default mailbox from the environment when none is configured."""
    mailboxes = mail_admin.list_mailboxes()
    return render_template("admin/mail_mailboxes.html", mailboxes=mailboxes, action_form=ActionForm(),
                           failing={m.id for m in mail_admin.failing_mailboxes()},
                           env_mailbox=None if mailboxes else mail_admin.environment_mailbox())


def _mailbox_form(mailbox=None):
    form = MailboxForm(obj=mailbox)  # a POST's data wins over the stored values
    form.queue_id.choices = [(q.id, q.name) for q in db.session.execute(select(Queue).order_by(Queue.name)).scalars()]
    return form


def _mailbox_data(form):
    return {name: form[name].data for name in MAILBOX_FIELDS}


def _render_mailbox_form(form, mailbox):
    return render_template("admin/mail_mailbox_form.html", form=form, mailbox=mailbox, action_form=ActionForm()), \
        400 if form.is_submitted() else 200


@bp.route("/mail/mailboxes/new", methods=["GET", "POST"])
def mail_mailbox_new():
    form = _mailbox_form()
    created = []
    if form.validate_on_submit() and attempt(form, lambda: created.append(
            mail_admin.create_mailbox(current_user.id, **_mailbox_data(form)))):
        db.session.commit()
        flash(_("Mailbox %(name)s added.", name=created[0].name), "success")
        return redirect(url_for("admin.mail_mailboxes"))
    return _render_mailbox_form(form, None)


@bp.route("/mail/mailboxes/<int:mailbox_id>", methods=["GET", "POST"])
def mail_mailbox_edit(mailbox_id):
    mailbox = _found(mail_admin.get_mailbox, mailbox_id)
    form = _mailbox_form(mailbox)
    if form.validate_on_submit() and attempt(form, lambda: mail_admin.update_mailbox(
            mailbox_id, current_user.id, **_mailbox_data(form))):
        db.session.commit()
        flash(_("Mailbox saved."), "success")
        return redirect(url_for("admin.mail_mailboxes"))
    return _render_mailbox_form(form, _found(mail_admin.get_mailbox, mailbox_id))


@bp.route("/mail/mailboxes/<int:mailbox_id>/test", methods=["POST"])
def mail_mailbox_test(mailbox_id):
    """Connect and log in to the mailbox now; the outcome is flashed."""
    mailbox = _found(mail_admin.get_mailbox, mailbox_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        ok, detail = mail_admin.test_connection(mailbox.id)
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        if ok:
            flash(_("%(name)s: connection works. %(detail)s", name=mailbox.name, detail=detail), "success")
        else:
            flash(_("%(name)s: connection failed. %(detail)s", name=mailbox.name, detail=detail), "error")
    db.session.rollback()  # a test changes nothing
    return redirect(url_for("admin.mail_mailboxes"), 303)


@bp.route("/mail/mailboxes/<int:mailbox_id>/delete", methods=["POST"])
def mail_mailbox_delete(mailbox_id):
    _found(mail_admin.get_mailbox, mailbox_id)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    if attempt(form, lambda: mail_admin.delete_mailbox(mailbox_id, current_user.id)):
        db.session.commit()
        flash(_("Mailbox deleted."), "success")
    return redirect(url_for("admin.mail_mailboxes"), 303)


# ---------------------------------------------------------------- inbound log

def _log_filters():
    form = LogFilterForm(formdata=request.args)
    mailboxes = mail_admin.list_mailboxes()
    form.mailbox.choices = [("", _("Any")), ("none", _("(imported files)"))] + [(str(m.id), m.name)
                                                                                for m in mailboxes]
    form.validate()
    data = {name: (form[name].data if not form[name].errors else None) for name in
            ("result", "reason", "mailbox", "sender", "subject", "date_from", "date_to")}
    filters = mail_admin.LogFilters(**{k: (v or "") if k not in ("date_from", "date_to") else v
                                       for k, v in data.items()},
                                    cursor=(request.args.get("cursor") or "").strip())
    return form, filters


@bp.route("/mail/log")
def mail_log():
    """The inbound log, newest first, with filters and keyset paging."""
    form, filters = _log_filters()
    page = mail_admin.inbound_log(filters)
    return render_template("admin/mail_log.html", form=form, filters=filters, page=page)


@bp.route("/mail/log/<int:inbound_id>")
def mail_log_entry(inbound_id):
    """One logged message: its headers, its raw source (escaped, first MB) and the reprocess buttons."""
    row = _found(mail_admin.get_inbound, inbound_id)
    return render_template("admin/mail_log_entry.html", row=row, raw=mail_admin.raw_view(row),
                           action_form=ActionForm(),
                           ticket_numbers=mail_admin.ticket_numbers([row.ticket_id]),
                           can_reprocess=mail_admin.can_reprocess(row),
                           can_make_ticket=mail_admin.can_make_ticket(row))


@bp.route("/mail/log/<int:inbound_id>/raw")
def mail_log_raw(inbound_id):
    """The raw message as a text/plain download, never rendered."""
    row = _found(mail_admin.get_inbound, inbound_id)
    raw = _found(mail_admin.load_raw, row)
    return Response(raw, content_type="text/plain", headers={
        "Content-Disposition": f'attachment; filename="inbound-{row.id}.eml"',
        "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store"})


def _reprocess(inbound_id, force_ticket):
    _found(mail_admin.get_inbound, inbound_id)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    done = []
    if attempt(form, lambda: done.append(mail_admin.reprocess(inbound_id, current_user.id,
                                                              force_ticket=force_ticket))):
        db.session.commit()
        row = mail_admin.get_inbound(inbound_id)
        number = mail_admin.ticket_numbers([row.ticket_id]).get(row.ticket_id)
        if number:
            flash(_("Processed again: %(result)s, ticket #%(number)s.", result=row.result, number=number), "success")
        else:
            flash(_("Processed again: %(result)s.", result=row.result), "success")
    return redirect(url_for("admin.mail_log_entry", inbound_id=inbound_id), 303)


@bp.route("/mail/log/<int:inbound_id>/reprocess", methods=["POST"])
def mail_log_reprocess(inbound_id):
    """Run a quarantined or ignored message through the pipeline again."""
    return _reprocess(inbound_id, force_ticket=False)


@bp.route("/mail/log/<int:inbound_id>/make-ticket", methods=["POST"])
def mail_log_make_ticket(inbound_id):
    """Turn a message logged as spam into a ticket."""
    return _reprocess(inbound_id, force_ticket=True)


# ---------------------------------------------------------------- held automatic mail

@bp.route("/mail/held/<int:outbound_id>/send", methods=["POST"])
def mail_held_send(outbound_id):
    """Send a mail held by the automatic-mail budget anyway (an admin's decision; audited)."""
    from ..tickets.services import audit
    from .outbound import release_held

    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    row = release_held(outbound_id)
    if row is None:
        flash(_("That mail is not held (any more)."), "warning")
    else:
        audit(row.ticket_id, current_user.id, "held_mail_sent", "held", "queued", object_type="outbound",
              object_id=row.id, note=", ".join(row.to_addrs or [])[:300])
        db.session.commit()
        flash(_("The held mail is on its way."), "success")
    return redirect(request.referrer if request.referrer and request.referrer.startswith(request.host_url)
                    else url_for("admin.index"), 303)


# ---------------------------------------------------------------- blocklist

@bp.route("/mail/blocklist", methods=["GET", "POST"])
def mail_blocklist():
    """Blocked sender addresses and domains (their mail is logged as spam), and a form to add one."""
    form = BlockForm()
    added = []
    if form.validate_on_submit() and attempt(form, lambda: added.append(
            mail_admin.add_block(form.pattern.data, form.note.data, current_user.id))):
        db.session.commit()
        flash(_("%(pattern)s is blocked.", pattern=added[0].pattern), "success")
        return redirect(url_for("admin.mail_blocklist"), 303)
    return render_template("admin/mail_blocklist.html", form=form, blocks=mail_admin.list_blocks(),
                           action_form=ActionForm()), 400 if form.is_submitted() else 200


@bp.route("/mail/blocklist/<int:block_id>/delete", methods=["POST"])
def mail_block_delete(block_id):
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    removed = []
    if attempt(form, lambda: removed.append(mail_admin.remove_block(block_id, current_user.id))):
        db.session.commit()
        flash(_("%(pattern)s is no longer blocked.", pattern=removed[0]), "success")
    return redirect(url_for("admin.mail_blocklist"), 303)
