"""Paying an invoice on the portal: the transfer amount with its code, and the customer's proof of
transfer (POST /portal/invoices/<id>/proof: amount, date, reference, an image or PDF up to 5 MB →
a pending payment for billing; a refused form comes back with what was typed).
helpdesk/portal/views.py imports this module so the route joins the portal blueprint."""
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import DateField, StringField
from wtforms.validators import DataRequired, Length, Optional

from ..billing import proofs
from ..billing import services as billing
from ..claims.views import parse_amount
from ..errors import DomainError, NotFound
from ..extensions import db
from .views import bp, customer_required


class ProofForm(FlaskForm):
    amount = StringField(_l("Amount transferred (Rp)"), validators=[DataRequired(), Length(max=30)])
    paid_on = DateField(_l("Transfer date"), validators=[DataRequired()])
    reference = StringField(_l("Reference or sender name (optional)"), validators=[Optional(), Length(max=120)])
    proof = FileField(_l("Proof of transfer (image or PDF, up to 5 MB)"))


@bp.app_template_global("portal_pay")
def portal_pay(invoice, form=None):
    """For the portal's invoice page: the proof form (a fresh one unless a refused one is given) and
    the customer's proofs waiting for billing."""
    if form is None:
        form = ProofForm(formdata=None, amount=str(invoice.transfer_amount or max(0, invoice.total - invoice.amount_paid)))
    customer_id = current_user.id if current_user.is_authenticated else None
    return {"form": form, "pending": proofs.pending_of(invoice.id, customer_id) if customer_id else []}


def _own_invoice(invoice_id):
    try:
        inv = billing.get_invoice(invoice_id)
    except NotFound:
        abort(404)
    if inv.customer_id != current_user.id:
        abort(404)
    return inv


@bp.route("/invoices/<int:invoice_id>/proof", methods=["POST"])
@customer_required
def invoice_proof(invoice_id):
    inv = _own_invoice(invoice_id)
    form = ProofForm()
    try:
        if not form.validate_on_submit():
            raise DomainError(_("Check the form."))
        upload = request.files.get("proof")
        data = upload.read(proofs.MAX_PROOF_BYTES + 1) if upload else b""
        proofs.submit_proof(current_user.id, inv.id, amount=parse_amount(form.amount.data, "amount"),
                            paid_on=form.paid_on.data, reference=form.reference.data,
                            filename=upload.filename if upload else None, data=data)
    except DomainError as exc:
        db.session.rollback()
        field = exc.details.get("field") if exc.details else None
        if field in ("amount", "paid_on", "proof") and exc.message not in getattr(form, field).errors:
            getattr(form, field).errors = [*getattr(form, field).errors, exc.message]
        status = exc.status_code
        flash(exc.message, "error")
        inv = billing.get_invoice(invoice_id)
        payments = [p for p in inv.payments if p.status == "confirmed"]
        return render_template("portal/invoice.html", invoice=inv, payments=payments, proof_form=form,
                               remaining=max(0, inv.total - inv.amount_paid)), status
    db.session.commit()
    flash(_("Thank you: we received your proof of transfer. We will email you once the payment is confirmed."),
          "success")
    return redirect(url_for("portal.invoice", invoice_id=inv.id), 303)
