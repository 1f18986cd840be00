"""Admin page for customers' personal-data requests (UU PDP): approve (anonymise) or reject."""
from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..extensions import db
from ..portal import mydata
from .forms import DataRequestDecisionForm
from .views import attempt, bp


@bp.route("/data-requests")
def data_requests():
    """Pending deletion requests, oldest first."""
    return render_template("admin/data_requests.html", requests=mydata.pending_requests(),
                           form=DataRequestDecisionForm(formdata=None))


@bp.route("/data-requests/<int:request_id>", methods=["POST"])
def data_request_decide(request_id):
    """Approve (the customer is anonymised, tickets and audit kept) or reject a pending request."""
    form = DataRequestDecisionForm()
    if not form.validate():
        flash(_("Please choose approve or reject."), "error")
        return redirect(url_for("admin.data_requests"), 303)
    approve = form.decision.data == "approve"
    if attempt(form, lambda: mydata.decide(request_id, current_user.id, approve, note=form.note.data)):
        db.session.commit()
        flash(_("The request was approved: the customer is anonymised.") if approve
              else _("The request was rejected."), "success")
    return redirect(url_for("admin.data_requests"), 303)
