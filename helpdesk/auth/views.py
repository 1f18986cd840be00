"""Login (password, then TOTP when required), logout, the agent's own account page.

Password-reset and invitation links live in helpdesk/auth/links.py on the same blueprint.
"""
import time

import segno
from flask import (Blueprint, current_app, flash, g, has_request_context, redirect, render_template, request, session,
                   url_for)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from ..errors import DomainError
from ..extensions import db, limiter, login_manager
from ..timeutil import utcnow
from ..web import is_safe_next, render_error
from . import services, tokens, totp
from .forms import AccountForm, CodeForm, DisableTwoFactorForm, LoginForm
from .models import User

bp = Blueprint("auth", __name__)

PENDING_MAX_AGE = 600  # seconds between the password and the code
ENROLMENT_MAX_AGE = 1800  # seconds between the password and the end of enrolment (installing an app)
PENDING_KEYS = ("2fa_uid", "2fa_next", "2fa_at")
# Pages an agent who must enrol in two-factor login may still reach.
ENROLMENT_OPEN = {"auth.two_factor_setup", "auth.logout", "static"}


@login_manager.user_loader
def load_user(user_id):
    """Session ids look like 'u:<id>' (staff) or 'c:<id>' (customers, on the portal's pages only).

    A session made before the password changed (another browser, a stolen cookie) ends with it.
    """
    portal = has_request_context() and request.blueprint == "portal"
    if user_id and user_id.startswith("c:"):  # a customer: known on the portal only, anonymous on the desk
        from ..portal.views import load_customer

        return load_customer(user_id) if portal else None
    if not user_id or not user_id.startswith("u:") or portal:  # the portal never loads an agent
        return None
    user = db.session.get(User, int(user_id[2:]))
    if user is None or not user.is_active:
        return None
    pwf = session.get("_pwf")
    if pwf is not None and pwf != tokens.password_fingerprint(user):
        return None
    return user


# ---------------------------------------------------------------- rate limits

def _login_account_key():
    return "login-account:" + (request.form.get("email") or "").strip().lower()


def _pending_account_key():
    uid = session.get("2fa_uid") or (current_user.id if current_user.is_authenticated else "")
    return f"2fa-account:{uid}"


def _login_limit():
    return current_app.config["LOGIN_RATE_LIMIT"]


def _failed(response):
    """Only failed attempts count: a success is a redirect, so an office behind one IP can log in."""
    return response.status_code not in (302, 303)


def _ip_message():
    return _("Too many failed login attempts from your network. Please wait a few minutes and try again.")


def _account_message():
    return _("Too many failed login attempts for this account. Please wait a few minutes and try again.")


def _limited(key_func=None):
    """The login limit on POST, per IP (default) or per account (key_func), counting failures only."""
    if key_func is None:
        return limiter.limit(_login_limit, methods=["POST"], deduct_when=_failed, error_message=_ip_message)
    return limiter.limit(_login_limit, methods=["POST"], deduct_when=_failed, key_func=key_func,
                         error_message=_account_message)


@bp.errorhandler(429)
def _too_many_attempts(exc):
    """A limited login re-renders its page with the message and what was typed, as a 429."""
    if request.endpoint == "auth.login":
        return render_template("auth/login.html", form=LoginForm(), limit_message=exc.description), 429
    if request.endpoint == "auth.two_factor":
        return render_template("auth/two_factor.html", form=CodeForm(), limit_message=exc.description), 429
    return render_error(429, exc.description)


# ---------------------------------------------------------------- login

def _fresh_session():
    """Empty the session (a new login, a logout) but keep the language chosen with ?lang=."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


def _complete_login(user, target, message=None):
    """Log the user in with a fresh session and go to the (already checked) target."""
    _fresh_session()
    login_user(user)
    session["_pwf"] = tokens.password_fingerprint(user)
    user.last_login_at = utcnow()
    db.session.commit()
    if message:
        flash(message, "success")
    return redirect(target or url_for("tickets.index"))


def _start_pending(user, target):
    """Password accepted, second factor still due: remember who, not logged in yet."""
    _fresh_session()
    session.update({"2fa_uid": user.id, "2fa_next": target, "2fa_at": int(time.time())})


def _pending_user(max_age=PENDING_MAX_AGE):
    """The user between password and code, if that step is recent and the account still active."""
    uid, started = session.get("2fa_uid"), session.get("2fa_at") or 0
    if not uid or time.time() - started > max_age:
        return None
    user = db.session.get(User, uid)
    return user if user is not None and user.is_active else None


def _back_to_login():
    for key in PENDING_KEYS:
        session.pop(key, None)
    flash(_("Please log in again."), "warning")
    return redirect(url_for("auth.login"))


@bp.route("/login", methods=["GET", "POST"])
@_limited()
@_limited(_login_account_key)
def login():
    """Email + password; then the TOTP code (or enrolment) when needed; then the next page if safe."""
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    if form.validate_on_submit():
        user = services.authenticate(form.email.data, form.password.data)
        if user is None:
            flash(_("Wrong email or password."), "error")
        else:
            target = form.next.data if is_safe_next(form.next.data) else url_for("tickets.index")
            if user.totp_enabled:
                _start_pending(user, target)
                return redirect(url_for("auth.two_factor"))
            if totp.required_for(user):
                _start_pending(user, target)
                return redirect(url_for("auth.two_factor_setup"))
            return _complete_login(user, target)
    return render_template("auth/login.html", form=form)


def _code_accepted(form, check, user_id):
    """True for a posted code that `check` accepts; otherwise its error is shown on the form."""
    if not form.validate_on_submit():
        return False
    try:
        check(user_id, form.code.data)
    except totp.WrongCode as exc:
        db.session.rollback()
        form.code.errors.append(exc.message)
        return False
    return True


@bp.route("/login/code", methods=["GET", "POST"])
@_limited()
@_limited(_pending_account_key)
def two_factor():
    """Second step: the 6-digit code from the authenticator app."""
    user = _pending_user()
    if user is None or not user.totp_enabled:
        return _back_to_login()
    form = CodeForm()
    if _code_accepted(form, totp.verify_login_code, user.id):
        return _complete_login(user, session.get("2fa_next"))
    return render_template("auth/two_factor.html", form=form)


@bp.route("/login/2fa-setup", methods=["GET", "POST"])
@_limited()
@_limited(_pending_account_key)
def two_factor_setup():
    """Enrol an authenticator app: during login (required roles) or from the account page."""
    pending = not current_user.is_authenticated
    user = _pending_user(ENROLMENT_MAX_AGE) if pending else db.session.get(User, current_user.id)
    if user is None:
        return _back_to_login()
    if user.totp_enabled:
        return redirect(url_for("auth.two_factor" if pending else "auth.account"))
    totp.begin_enrolment(user.id)
    db.session.commit()
    form = CodeForm()
    if _code_accepted(form, totp.confirm_enrolment, user.id):
        message = _("Two-factor login is on. You will need a code from your app at every login.")
        if pending:
            return _complete_login(user, session.get("2fa_next"), message)
        db.session.commit()
        flash(message, "success")
        return redirect(url_for("auth.account"))
    uri = totp.provisioning_uri(user)
    return render_template("auth/two_factor_setup.html", form=form, secret=user.totp_secret, uri=uri,
                           qr=segno.make(uri, error="m").svg_data_uri(scale=5, border=2),
                           required=totp.required_for(user), pending=pending)


@bp.before_app_request
def _forget_cached_user():
    """Load current_user from this request's session. Flask-Login caches it on `g`, which outlives
    the request when an app context was already pushed (tests, scripts driving a test client)."""
    g.pop("_login_user", None)


@bp.before_app_request
def _require_enrolment():
    """An agent whose role needs two-factor login reaches no page before enrolling."""
    if request.blueprint in ("api", "portal") or request.endpoint in ENROLMENT_OPEN or request.endpoint is None:
        return None
    if current_user.is_authenticated and not current_user.totp_enabled and totp.required_for(current_user):
        flash(_("Your role requires two-factor login. Set it up to continue."), "warning")
        return redirect(url_for("auth.two_factor_setup"))
    return None


@bp.route("/logout", methods=["POST"])
def logout():
    logout_user()
    _fresh_session()
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))


# ---------------------------------------------------------------- own account

def _render_account(form, disable_form=None, status=200):
    return render_template("auth/account.html", form=form, disable_form=disable_form or DisableTwoFactorForm(),
                           two_factor_required=totp.required_for(current_user)), status


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    """Language setting, password change, two-factor status."""
    form = AccountForm()
    if request.method == "GET":
        form.locale.data = current_user.locale or ""
    if form.validate_on_submit():
        user = db.session.get(User, current_user.id)
        if form.new_password.data:
            try:
                services.change_password(user.id, form.current_password.data, form.new_password.data)
            except DomainError as exc:
                db.session.rollback()
                form.current_password.errors.append(exc.message)
                return _render_account(form)
        user.locale = form.locale.data or None
        session.pop("lang", None)
        db.session.commit()
        session["_pwf"] = tokens.password_fingerprint(user)  # this session stays, others end
        flash(_("Saved."), "success")
        return redirect(url_for("auth.account"))
    return _render_account(form)


@bp.route("/account/2fa/disable", methods=["POST"])
@login_required
def two_factor_disable():
    """Switch optional two-factor login off (needs the current password)."""
    disable_form = DisableTwoFactorForm()
    if disable_form.validate_on_submit():
        if not services.check_password(db.session.get(User, current_user.id), disable_form.password.data):
            disable_form.password.errors.append(_("Your current password is not correct."))
        else:
            try:
                totp.disable(current_user.id, current_user.id)
            except DomainError as exc:
                db.session.rollback()
                flash(exc.message, "error")
                return redirect(url_for("auth.account"))
            db.session.commit()
            flash(_("Two-factor login is off."), "success")
            return redirect(url_for("auth.account"))
    form = AccountForm(formdata=None, locale=current_user.locale or "")
    return _render_account(form, disable_form, 400)


from . import links  # noqa: E402,F401  (password-reset and invitation routes on this blueprint)
