"""CSAT pages on the portal blueprint: the signed answer link of the mail, and the question on the
customer's resolved ticket (helpdesk/portal/views.py imports this module so the routes join it).

GET /portal/csat/<token> shows the question, the choice of the link preselected, and records
nothing (mail scanners prefetch links); the form's POST (CSRF token in the form) records the
answer, or replaces the earlier one. The portal's ticket page posts to the same route with a
token made for the signed-in customer.
"""
from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import RadioField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from ..errors import DomainError
from ..extensions import db
from ..portal.views import bp
from ..webform.tokens import InvalidToken
from . import csat


class CsatForm(FlaskForm):
    rating = RadioField(_l("How did we do?"), choices=[("good", _l("Good")), ("bad", _l("Bad"))],
                        validators=[InputRequired(_l("Please choose good or bad."))])
    comment = TextAreaField(_l("Anything you want to tell us? (optional)"),
                            validators=[Optional(), Length(max=csat.COMMENT_MAX)])


def _load(token):
    try:
        return csat.load_token(token)
    except InvalidToken as exc:
        abort(400, description=_("This link has expired. Sign in to see your requests.") if exc.expired
              else _("This link is not valid. Sign in to see your requests."))


def _ticket(customer_id, ticket_id, cycle):
    from ..tickets.models import Ticket

    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or ticket.customer_id != customer_id or cycle > csat.resolution_cycle(ticket.id):
        abort(404)
    return ticket


@bp.route("/csat/<token>", methods=["GET", "POST"])
def csat_answer(token):
    """The question (GET, nothing recorded) and the answer (POST)."""
    customer_id, ticket_id, cycle, preset = _load(token)
    ticket = _ticket(customer_id, ticket_id, cycle)
    answer = csat.answer_for(ticket.id, cycle)
    form = CsatForm()
    if form.is_submitted():
        if form.validate():
            try:
                csat.record(ticket.id, customer_id, cycle, form.rating.data, form.comment.data)
            except DomainError as exc:
                db.session.rollback()
                form.rating.errors = [*form.rating.errors, exc.message]
            else:
                db.session.commit()
                flash(_("Thank you for your answer."), "success")
                return redirect(url_for("portal.csat_answer", token=token), 303)
        status = 400
    else:
        form = CsatForm(formdata=None, rating=preset or (answer.rating if answer else None),
                        comment=answer.comment if answer else "")
        status = 200
    return render_template("portal/csat.html", form=form, ticket=ticket, answer=answer, token=token), status


@bp.app_template_global("csat_question")
def csat_question(ticket, link_token=None):
    """For the portal's ticket page: (form, answer token, answer or None) when the viewer is the
    customer of this resolved ticket (signed in, or through a ticket link), else None."""
    customer_id = None
    if current_user.is_authenticated and str(current_user.get_id()).startswith("c:"):
        customer_id = current_user.id
    elif link_token:
        from ..portal.tokens import load_ticket_token

        try:
            customer_id = load_ticket_token(link_token)[0]
        except InvalidToken:
            return None
    question = csat.portal_question(ticket, customer_id)
    if question is None:
        return None
    _cycle, token, answer = question
    form = CsatForm(formdata=None, rating=answer.rating if answer else None, comment=answer.comment if answer else "")
    return form, token, answer


@bp.app_template_global("csat_answers")
def csat_answers(ticket_id):
    """Every CSAT answer of a ticket, newest cycle first (the agent's ticket page)."""
    return csat.answers(ticket_id)
