"""Billing's bank statement pages and the proof of transfer download (on the billing blueprint:
billing only, like every /billing page; helpdesk/billing/views.py imports this module).

- GET/POST /billing/statements: upload a CSV (a second upload of the same file says so), the
  recent statements and the unmatched lines of all statements.
- GET /billing/statements/<id>: the preview: each credit with its matched invoice (and the rule),
  "Confirm matched payments", and per unmatched line a hand match (invoice number) or Ignore.
- POST /billing/statements/<id>/confirm, /billing/statement-lines/<id>/match, .../ignore.
- GET /billing/payments/<id>/proof: the customer's proof of transfer (a download, safe headers).
"""
from flask import abort, flash, redirect, render_template, send_file, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from ..errors import DomainError
from ..extensions import db
from ..tickets import storage
from . import statements, transfer
from .models import BankStatementLine, Payment
from .views import bp

LINE_STATUS_LABELS = {"unmatched": _l("Unmatched"), "matched": _l("Matched"), "confirmed": _l("Confirmed"),
                      "ignored": _l("Ignored")}
RULE_LABELS = {"transfer_amount": _l("transfer amount"), "reference": _l("invoice number in the text"),
               "manual": _l("matched by hand")}


class StatementUploadForm(FlaskForm):
    file = FileField(_l("Bank statement (CSV)"), validators=[FileRequired(_l("Choose a CSV file."))])


class ConfirmMatchedForm(FlaskForm):
    """Only the CSRF token."""


class HandMatchForm(FlaskForm):
    invoice = StringField(_l("Invoice number"), validators=[DataRequired(), Length(max=40)])


class IgnoreForm(FlaskForm):
    """Only the CSRF token."""


@bp.context_processor
def _statement_labels():
    return {"LINE_STATUS_LABELS": LINE_STATUS_LABELS, "RULE_LABELS": RULE_LABELS}


def _list_page(form, status=200):
    return render_template("billing/statements.html", form=form, statements=statements.recent_statements(),
                           unmatched=statements.open_unmatched(), match_form=HandMatchForm(formdata=None),
                           ignore_form=IgnoreForm(formdata=None), max_mb=transfer.MAX_BYTES // (1024 * 1024)), status


@bp.route("/statements", methods=["GET", "POST"])
def statements_index():
    form = StatementUploadForm()
    if not form.is_submitted():
        return _list_page(form)
    if not form.validate():
        return _list_page(form, 400)
    upload = form.file.data
    data = upload.read(transfer.MAX_BYTES + 1)
    try:
        statement, new, already = statements.import_statement(current_user.id, upload.filename, data)
    except DomainError as exc:
        db.session.rollback()
        form.file.errors = [*form.file.errors, exc.message]
        return _list_page(form, exc.status_code)
    db.session.commit()
    if already:
        flash(_("This file was already imported: nothing new."), "warning")
    elif new == 0:
        flash(_("Every credit of this file was already imported: nothing new."), "warning")
    else:
        flash(_("%(n)s new credit(s) imported.", n=new), "success")
    return redirect(url_for("billing.statement", statement_id=statement.id), 303)


@bp.route("/statements/<int:statement_id>")
def statement(statement_id):
    st = statements.get_statement(statement_id)
    rows = statements.lines_of(st.id)
    return render_template("billing/statement.html", statement=st, rows=rows,
                           matched=sum(1 for line, _inv in rows if line.status == "matched"),
                           confirm_form=ConfirmMatchedForm(formdata=None), match_form=HandMatchForm(formdata=None),
                           ignore_form=IgnoreForm(formdata=None))


@bp.route("/statements/<int:statement_id>/confirm", methods=["POST"])
def statement_confirm(statement_id):
    st = statements.get_statement(statement_id)
    form = ConfirmMatchedForm()
    if not form.validate_on_submit():
        flash(_("The form expired. Please try again."), "error")
        return redirect(url_for("billing.statement", statement_id=st.id), 303)
    try:
        done, dropped = statements.confirm_matched(st.id, current_user.id)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("billing.statement", statement_id=st.id), 303)
    db.session.commit()
    flash(_("%(n)s payment(s) confirmed.", n=done), "success")
    if dropped:
        flash(_("%(n)s line(s) went back to unmatched: their invoice is no longer open.", n=dropped), "warning")
    return redirect(url_for("billing.statement", statement_id=st.id), 303)


def _line_or_404(line_id):
    line = db.session.get(BankStatementLine, line_id)
    if line is None:
        abort(404)
    return line


@bp.route("/statement-lines/<int:line_id>/match", methods=["POST"])
def statement_line_match(line_id):
    line = _line_or_404(line_id)
    form = HandMatchForm()
    back = url_for("billing.statement", statement_id=line.statement_id)
    try:
        if not form.validate_on_submit():
            raise DomainError(_("Enter the invoice number."), field="invoice")
        statements.match_by_hand(line.id, current_user.id, form.invoice.data)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(back, 303)
    db.session.commit()
    flash(_("Payment confirmed."), "success")
    return redirect(back, 303)


@bp.route("/statement-lines/<int:line_id>/ignore", methods=["POST"])
def statement_line_ignore(line_id):
    line = _line_or_404(line_id)
    form = IgnoreForm()
    back = url_for("billing.statement", statement_id=line.statement_id)
    try:
        if not form.validate_on_submit():
            raise DomainError(_("The form expired. Please try again."))
        statements.ignore(line.id, current_user.id)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(back, 303)
    db.session.commit()
    flash(_("Line ignored."), "success")
    return redirect(back, 303)


@bp.route("/payments/<int:payment_id>/proof")
def payment_proof(payment_id):
    """The customer's proof of transfer as a download (never shown inline)."""
    payment = db.session.get(Payment, payment_id)
    if payment is None or not payment.proof_path:
        abort(404)
    path = storage.path_for(payment.proof_path)
    if not path.exists():
        abort(404)
    ctype = payment.proof_content_type if payment.proof_content_type in (
        "application/pdf", "image/png", "image/jpeg", "image/webp", "image/gif") else "application/octet-stream"
    resp = send_file(path, mimetype=ctype, as_attachment=True, download_name=payment.proof_name or "proof",
                     max_age=0)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    resp.headers["Cache-Control"] = "private, no-store"
    return resp
