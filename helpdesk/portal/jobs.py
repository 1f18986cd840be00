"""Portal mail (run by RQ through the outbox): sign-in and address-confirmation links, in the
customer's language."""
from flask import current_app, render_template
from flask_babel import force_locale
from flask_mail import Message as MailMessage

from ..customers.models import Customer
from ..extensions import db, mail
from . import tokens


def send_sign_in_link(customer_id, email):
    """Mail a fresh single-use sign-in link (carrying the customer's current nonce) to `email`."""
    customer = db.session.get(Customer, customer_id)
    if customer is None or not customer.login_nonce or customer.anonymised_at:
        return 0
    return _send(customer, email, "portal/mail/sign_in.txt",
                 "/portal/login/" + tokens.make_sign_in_token(customer.id, customer.login_nonce))


def send_email_confirmation(customer_id, email):
    """Mail the link that adds `email` to the customer once opened and confirmed."""
    customer = db.session.get(Customer, customer_id)
    if customer is None or customer.anonymised_at:
        return 0
    return _send(customer, email, "portal/mail/confirm_email.txt",
                 "/portal/profile/emails/" + tokens.make_email_token(customer.id, email))


def _send(customer, email, template, path):
    url = current_app.config["BASE_URL"].rstrip("/") + path
    minutes = current_app.config["PORTAL_LINK_MAX_AGE"] // 60
    locale = customer.language or current_app.config["BABEL_DEFAULT_LOCALE"]
    with force_locale(locale):
        text = render_template(template, customer=customer, url=url, minutes=minutes, email=email)
    subject, _, body = text.partition("\n")
    mail.send(MailMessage(subject=" ".join(subject.split()), recipients=[email], body=body.lstrip("\n"),
                          sender=current_app.config["MAIL_DEFAULT_SENDER"]))
    return 1
