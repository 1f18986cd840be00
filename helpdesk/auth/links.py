"""'Forgot password', and the signed links that set a password (reset and invitation).

A GET on a link only shows the form; the password changes on POST, and the link dies with it.
"""
from flask import current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from ..errors import DomainError
from ..extensions import db, limiter
from . import services, tokens
from .forms import ForgotPasswordForm, SetPasswordForm
from .views import bp


def _forgot_limit():
    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.route("/forgot-password", methods=["GET", "POST"])
@limiter.limit(_forgot_limit, methods=["POST"],
               error_message=lambda: _("Too many requests. Please wait a few minutes and try again."))
def forgot_password():
    """Ask for a reset link; the answer is the same whether or not the email has an account."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        services.request_password_reset(form.email.data)
        db.session.commit()
        hours = max(1, current_app.config["PASSWORD_RESET_MAX_AGE"] // 3600)
        flash(_("If %(email)s belongs to an active account, a link to choose a new password is on its way. "
                "It works once and expires in %(hours)d hours.", email=form.email.data, hours=hours), "info")
        return redirect(url_for("auth.login"))
    return render_template("auth/forgot_password.html", form=form)


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
def reset_password(token):
    """A password-reset link: choose a new password."""
    return _set_password(token, "reset")


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept_invite(token):
    """An invitation link: choose the first password."""
    return _set_password(token, "invite")


def _set_password(token, purpose):
    try:
        user = tokens.user_for_link(token, purpose)
    except tokens.InvalidLink as exc:
        return render_template("auth/link_invalid.html", message=exc.message, purpose=purpose), 400
    form = SetPasswordForm()
    if form.validate_on_submit():
        try:
            services.set_password_from_link(token, purpose, form.password.data)
        except DomainError as exc:
            db.session.rollback()
            form.password.errors.append(exc.message)
        else:
            db.session.commit()
            flash(_("Your password is set. Log in with it now."), "success")
            return redirect(url_for("auth.login"))
    return render_template("auth/set_password.html", form=form, user=user, purpose=purpose)
