"""Login, logout and the agent's own account page."""
from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from ..extensions import db, limiter, login_manager
from ..timeutil import utcnow
from ..web import is_safe_next
from . import services
from .forms import AccountForm, LoginForm
from .models import User

bp = Blueprint("auth", __name__)


@login_manager.user_loader
def load_user(user_id):
    """Session ids look like 'u:<id>' (staff); other prefixes belong to other account kinds."""
    if not user_id or not user_id.startswith("u:"):
        return None
    user = db.session.get(User, int(user_id[2:]))
    return user if user and user.is_active else None


def _login_account_key():
    return "login-account:" + (request.form.get("email") or "").strip().lower()


def _login_limit():
    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], error_message="Too many login attempts. Please wait and try again.")
@limiter.limit(_login_limit, methods=["POST"], key_func=_login_account_key,
               error_message="Too many login attempts for this account. Please wait and try again.")
def login():
    """Email + password; then the next page, if it is on this site."""
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    if form.validate_on_submit():
        user = services.authenticate(form.email.data, form.password.data)
        if user is None:
            flash(_("Wrong email or password."), "error")
        else:
            target = form.next.data if is_safe_next(form.next.data) else url_for("tickets.index")
            session.clear()
            login_user(user)
            user.last_login_at = utcnow()
            db.session.commit()
            return redirect(target)
    return render_template("auth/login.html", form=form), (200 if request.method == "GET" else 200)


@bp.route("/logout", methods=["POST"])
def logout():
    logout_user()
    session.clear()
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    """Language setting and password change."""
    form = AccountForm(obj=None)
    if request.method == "GET":
        form.locale.data = current_user.locale or ""
    if form.validate_on_submit():
        user = db.session.get(User, current_user.id)
        if form.new_password.data:
            if not services.check_password(user, form.current_password.data):
                flash(_("Your current password is not correct."), "error")
                return render_template("auth/account.html", form=form)
            user.password_hash = services.hash_password(form.new_password.data)
        user.locale = form.locale.data or None
        session.pop("lang", None)
        db.session.commit()
        flash(_("Saved."), "success")
        return redirect(url_for("auth.account"))
    return render_template("auth/account.html", form=form)
