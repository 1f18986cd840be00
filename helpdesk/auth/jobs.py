"""Account mail jobs (run by RQ through the outbox): invitations and password-reset links.

They take a user id, make the signed link when the mail is sent (so its lifetime starts then),
and do nothing for an account that no longer qualifies, so running one twice is harmless.
"""
from flask import current_app, render_template
from flask_babel import force_locale
from flask_mail import Message as MailMessage

from ..extensions import db, mail
from . import tokens
from .models import User


def _link(endpoint, token):
    """An absolute link into the app built without a request (BASE_URL + the route's path)."""
    path = current_app.url_map.bind("localhost").build(endpoint, {"token": token})
    return current_app.config["BASE_URL"].rstrip("/") + path


def _send(user, template, link, max_age):
    locale = user.locale or current_app.config["BABEL_DEFAULT_LOCALE"]
    with force_locale(locale):
        body = render_template(template, user=user, link=link, hours=max(1, max_age // 3600))
    subject, _, text = body.partition("\n")
    mail.send(MailMessage(subject=" ".join(subject.split()), recipients=[user.email], body=text.lstrip("\n"),
                          sender=current_app.config["MAIL_DEFAULT_SENDER"]))
    return 1


def send_invite(user_id):
    """Mail an invited agent a link to set their password (skipped once a password is set)."""
    user = db.session.get(User, user_id)
    if user is None or not user.is_active or user.password_hash:
        return 0
    link = _link("auth.accept_invite", tokens.make_link_token(user, "invite"))
    return _send(user, "auth/mail/invite.txt", link, current_app.config["INVITE_MAX_AGE"])


def send_password_reset(user_id):
    """Mail an active agent a single-use, expiring password-reset link."""
    user = db.session.get(User, user_id)
    if user is None or not user.is_active:
        return 0
    link = _link("auth.reset_password", tokens.make_link_token(user, "reset"))
    return _send(user, "auth/mail/reset.txt", link, current_app.config["PASSWORD_RESET_MAX_AGE"])
