"""The web form's acknowledgement mail (run by RQ through the outbox).

A simple Flask-Mail message with the ticket number and what happens next, in the customer's
language (Indonesian when unknown). The email issue replaces it with fully threaded mail.
"""
from flask import current_app, render_template
from flask_babel import force_locale
from flask_mail import Message as MailMessage

from ..extensions import db, mail
from ..portal.tokens import ticket_link_url
from ..tickets.models import Ticket


def send_acknowledgement(ticket_id, email):
    """Mail the address typed in the form: the ticket number and what happens next."""
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or not email:
        return 0
    locale = ticket.customer.language or current_app.config["BABEL_DEFAULT_LOCALE"]
    with force_locale(locale):
        text = render_template("webform/mail/ack.txt", ticket=ticket, customer=ticket.customer,
                               link=ticket_link_url(ticket.customer_id, ticket.id))
    subject, _, body = text.partition("\n")
    mail.send(MailMessage(subject=" ".join(subject.split()), recipients=[email], body=body.lstrip("\n"),
                          sender=current_app.config["MAIL_DEFAULT_SENDER"]))
    return 1
