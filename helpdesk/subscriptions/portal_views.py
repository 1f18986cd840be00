"""The customer's Subscriptions page on the portal (routes on the portal blueprint; helpdesk/__init__.py
imports this module before the blueprint is registered).

- GET /portal/subscriptions: the three topics as checkboxes and the consent history.
- POST /portal/subscriptions: saved at once (services.change, source "portal", method "checkbox"):
  the customer is signed in, so no confirmation mail is needed.
"""
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..errors import DomainError
from ..extensions import db
from ..portal.views import bp, customer_required
from . import forms as F
from . import services


def _render(form, customer_id, message=None, status=200):
    return render_template("subscriptions/portal.html", form=form, message=message,
                           state=services.state("customer", customer_id),
                           history=services.history("customer", customer_id),
                           TOPIC_LABELS=F.TOPIC_LABELS, STATUS_LABELS=F.STATUS_LABELS,
                           ACTION_LABELS=F.ACTION_LABELS, SOURCE_LABELS=F.SOURCE_LABELS), status


@bp.route("/subscriptions", methods=["GET", "POST"])
@customer_required
def subscriptions():
    customer_id = current_user.id
    form = F.topics_form("customer")
    if request.method == "POST":
        if not form.validate():
            return _render(form, customer_id, _("Please correct the fields marked below."), 400)
        try:
            changed = services.change("customer", customer_id, form.wanted(), source="portal", method="checkbox",
                                      ip=request.remote_addr)
        except DomainError as exc:
            db.session.rollback()
            return _render(form, customer_id, exc.message, 400)
        db.session.commit()
        flash(_("Your subscriptions are saved.") if changed else _("Nothing changed."), "success")
        return redirect(url_for("portal.subscriptions"), 303)
    F.fill(form, services.state("customer", customer_id))
    return _render(form, customer_id)
