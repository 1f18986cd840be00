"""The customer portal (/portal). Customers sign in with a magic link; agents are refused.

Session ids of customers look like 'c:<id>'; helpdesk/auth/views.py loads them only for this
blueprint, so a customer is anonymous on every agent page (and an agent is refused here).
Views are thin: validate, call a portal service with the customer's id, commit, redirect.
"""
import logging
from functools import wraps

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import UserMixin, current_user, login_user, logout_user
from limits import parse

from ..errors import DomainError
from ..extensions import db, limiter
from ..tickets.views import send_attachment
from . import mydata, services, tokens
from .forms import AddEmailForm, ButtonForm, DeletionForm, PasswordLoginForm, ProfileForm, ReplyForm, RequestLinkForm, SetPasswordForm

log = logging.getLogger(__name__)

bp = Blueprint("portal", __name__, url_prefix="/portal")

# Statuses in the customer's words.
PORTAL_STATUS = {
    "new": _l("Received, waiting for our team"), "open": _l("We are working on it"),
    "pending_customer": _l("Waiting for your answer"), "pending_billing": _l("With our billing team"),
    "resolved": _l("Solved"), "closed": _l("Closed"),
}


@bp.context_processor
def _portal_globals():
    return {"PORTAL_STATUS": PORTAL_STATUS}


class CustomerLogin(UserMixin):
    """The logged-in customer as Flask-Login sees it."""

    def __init__(self, customer):
        self.id = customer.id
        self.name = customer.name
        self.language = customer.language
        self.is_admin = False

    def get_id(self):
        return f"c:{self.id}"


def load_customer(session_id):
    """Flask-Login loader for 'c:<id>' ids (called by auth.views.load_user on portal pages only)."""
    try:
        customer = services.active_customer(int(session_id[2:]))
    except ValueError:
        return None
    return CustomerLogin(customer) if customer is not None else None


def customer_required(view):
    """A signed-in customer; an agent's session gets 403, anyone else is sent to the sign-in page."""

    @wraps(view)
    def wrapper(*a, **kw):
        if str(session.get("_user_id") or "").startswith("u:"):
            abort(403)
        if not current_user.is_authenticated:
            return redirect(url_for("portal.login"))
        return view(*a, **kw)

    return wrapper


# ---------------------------------------------------------------- rate limits (request-link form)

def _limits(email):
    cfg = current_app.config
    return [(parse(cfg["PORTAL_LINK_RATE_LIMIT"]), f"portal-link-ip:{request.remote_addr or '-'}"),
            (parse(cfg["PORTAL_LINK_EMAIL_RATE_LIMIT"]), f"portal-link-email:{(email or '').strip().lower()}")]


def _over_limit_then_count(email):
    """True when a limit is used up; else counts this request. Storage down: let it through."""
    if not limiter.enabled:
        return False
    try:
        items = _limits(email)
        if not all(limiter.limiter.test(item, key) for item, key in items):
            return True
        for item, key in items:
            limiter.limiter.hit(item, key)
    except Exception:  # noqa: BLE001
        log.exception("portal: rate limit storage unavailable")
    return False


# ---------------------------------------------------------------- sign in

@bp.route("/login", methods=["GET", "POST"])
def login():
    """Ask for a sign-in link. The answer is the same whether the address is known or not."""
    form = RequestLinkForm()
    if request.method == "POST" and form.validate():
        if _over_limit_then_count(form.email.data):
            return _login_page(form, message=_("Too many sign-in links were asked for. Please wait a while and "
                                               "try again."), status=429)
        services.request_sign_in_link(form.email.data)
        db.session.commit()
        return _login_page(form, sent=True)
    return _login_page(form, status=400 if request.method == "POST" else 200)


def _login_page(form=None, password_form=None, sent=False, message=None, status=200):
    return render_template("portal/login.html", form=form or RequestLinkForm(formdata=None),
                           password_form=password_form or PasswordLoginForm(formdata=None), sent=sent,
                           message=message), status


def _password_failed(response):
    return response.status_code not in (302, 303)


def _password_ip_limit():
    return current_app.config["PORTAL_PASSWORD_RATE_LIMIT"]


def _password_limited():
    return _("Too many failed sign-in attempts. Please wait a few minutes, or ask for a sign-in link.")


def _password_account_key():
    return "portal-password:" + (request.form.get("email") or "").strip().lower()


@bp.route("/login/password", methods=["POST"])
@limiter.limit(_password_ip_limit, deduct_when=_password_failed, error_message=_password_limited)
@limiter.limit(_password_ip_limit, deduct_when=_password_failed, key_func=_password_account_key,
               error_message=_password_limited)
def password_login():
    """Optional password sign-in for customers who set one (failures count per IP and per address)."""
    form = PasswordLoginForm()
    customer = services.authenticate(form.email.data, form.password.data) if form.validate() else None
    if customer is None:
        db.session.rollback()
        return _login_page(password_form=form, message=_("The email address or password is not right. "
                                                         "You can also ask for a sign-in link."), status=400)
    db.session.commit()
    _sign_in(customer)
    return redirect(url_for("portal.index"), 303)


def _sign_in(customer):
    session.pop("_pwf", None)
    login_user(CustomerLogin(customer))


@bp.route("/login/<token>", methods=["GET", "POST"])
def use_link(token):
    """GET only shows a "Sign in" button (mail scanners open links); the POST signs in."""
    form = ButtonForm()
    try:
        if request.method == "POST":
            if not form.validate():
                abort(400)
            customer = services.sign_in(token)
        else:
            customer = services.check_sign_in_token(token)
    except DomainError as exc:
        db.session.rollback()
        return render_template("portal/use_link.html", form=form, error=exc.message, customer=None), 400
    if request.method == "GET":
        return render_template("portal/use_link.html", form=form, error=None, customer=customer)
    db.session.commit()
    _sign_in(customer)
    return redirect(url_for("portal.index"), 303)


@bp.route("/logout", methods=["POST"])
def logout():
    if str(session.get("_user_id") or "").startswith("c:"):
        logout_user()
    return redirect(url_for("portal.login"), 303)


# ---------------------------------------------------------------- pages

@bp.route("/")
@customer_required
def index():
    open_tickets, closed_tickets = services.list_tickets(current_user.id)
    return render_template("portal/index.html", open_tickets=open_tickets, closed_tickets=closed_tickets)


def _render_ticket(ticket, reply_form=None, token=None, status=200):
    from ..mail.desk import message_views

    can_act = ticket.customer_id == (current_user.id if current_user.is_authenticated else None) or token
    messages = services.public_thread(ticket.id)

    def attachment_url(att):
        return url_for("portal.link_attachment", token=token, attachment_id=att.id) if token else \
            url_for("portal.attachment", attachment_id=att.id)

    # inline images of email (cid:) shown in place, as on the desk
    views = message_views(messages, attachment_url)
    return render_template("portal/ticket.html", ticket=ticket, messages=messages, views=views,
                           reply_form=reply_form or ReplyForm(), button=ButtonForm(), can_act=can_act,
                           token=token), status


@bp.route("/tickets/<int:number>")
@customer_required
def ticket(number):
    t = services.get_ticket(current_user.id, number)
    if t.number != number:
        return redirect(url_for("portal.ticket", number=t.number), 301)
    return _render_ticket(t)


def _files(form):
    return [(f.filename, f.mimetype, f.read()) for f in (form.attachments.data or []) if getattr(f, "filename", "")]


def _reply(customer_id, ticket, back, token=None):
    form = ReplyForm()
    if not form.validate():
        return _render_ticket(ticket, form, token=token, status=400)
    try:
        new, _msg = services.reply(customer_id, ticket.number, body_text=form.body.data, files=_files(form))
    except DomainError as exc:
        db.session.rollback()
        form.body.errors = [*form.body.errors, exc.message]
        return _render_ticket(ticket, form, token=token, status=exc.status_code)
    db.session.commit()
    if new.id != ticket.id:
        flash(_("This request was closed, so we opened a new one for your message: #%(number)s.",
                number=new.number), "success")
    else:
        flash(_("Your message was sent."), "success")
    return redirect(back(new), 303)


def _status(customer_id, ticket, status, back):
    form = ButtonForm()
    if not form.validate():
        abort(400)
    try:
        services.set_status(customer_id, ticket.number, status)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(back(ticket), 303)
    db.session.commit()
    flash(_("Thank you. We marked this request as solved.") if status == "resolved"
          else _("We reopened this request."), "success")
    return redirect(back(ticket), 303)


def _to_ticket(t):
    return url_for("portal.ticket", number=t.number)


@bp.route("/tickets/<int:number>/reply", methods=["POST"])
@customer_required
def reply(number):
    return _reply(current_user.id, services.get_ticket(current_user.id, number), _to_ticket)


@bp.route("/tickets/<int:number>/solved", methods=["POST"])
@customer_required
def solved(number):
    return _status(current_user.id, services.get_ticket(current_user.id, number), "resolved", _to_ticket)


@bp.route("/tickets/<int:number>/reopen", methods=["POST"])
@customer_required
def reopen(number):
    return _status(current_user.id, services.get_ticket(current_user.id, number), "open", _to_ticket)


@bp.route("/attachments/<int:attachment_id>")
@customer_required
def attachment(attachment_id):
    return send_attachment(services.get_attachment(current_user.id, attachment_id))


# ---------------------------------------------------------------- profile

def _render_profile(form=None, email_form=None, password_form=None, status=200):
    customer = services.active_customer(current_user.id)
    form = form or ProfileForm(name=customer.name, phone=customer.phone, language=customer.language or "id")
    return render_template("portal/profile.html", customer=customer, form=form,
                           email_form=email_form or AddEmailForm(formdata=None),
                           password_form=password_form or SetPasswordForm(formdata=None)), status


@bp.route("/profile", methods=["GET", "POST"])
@customer_required
def profile():
    """Name, phone, language."""
    if request.method == "GET":
        return _render_profile()
    form = ProfileForm()
    if not form.validate():
        return _render_profile(form, status=400)
    try:
        services.update_profile(current_user.id, name=form.name.data, phone=form.phone.data,
                                language=form.language.data)
    except DomainError as exc:
        db.session.rollback()
        field = getattr(form, exc.details.get("field") or "", None) or form.name
        field.errors = [*field.errors, exc.message]
        return _render_profile(form, status=400)
    db.session.commit()
    flash(_("Your details were saved."), "success")
    return redirect(url_for("portal.profile"), 303)


@bp.route("/profile/password", methods=["POST"])
@customer_required
def set_password():
    """Set, change or remove the optional portal password."""
    form = SetPasswordForm()
    try:
        if not form.validate():
            raise DomainError(_("Please check the password."), field="password")
        services.set_password(current_user.id, form.password.data or None)
    except DomainError as exc:
        db.session.rollback()
        form.password.errors = [*form.password.errors, exc.message]
        return _render_profile(password_form=form, status=400)
    db.session.commit()
    flash(_("Your password was saved.") if form.password.data else _("You now sign in by email link only."),
          "success")
    return redirect(url_for("portal.profile"), 303)


@bp.route("/profile/emails", methods=["POST"])
@customer_required
def add_email():
    """Send a confirmation link to another address; it is added once confirmed."""
    form = AddEmailForm()
    if not form.validate():
        return _render_profile(email_form=form, status=400)
    try:
        email = services.request_email_confirmation(current_user.id, form.email.data)
    except DomainError as exc:
        db.session.rollback()
        form.email.errors = [*form.email.errors, exc.message]
        return _render_profile(email_form=form, status=400)
    db.session.commit()
    flash(_("We sent a confirmation link to %(email)s. The address is added once you confirm it.", email=email),
          "success")
    return redirect(url_for("portal.profile"), 303)


# ---------------------------------------------------------------- my data (UU PDP)

def _render_my_data(form=None, status=200):
    return render_template("portal/my_data.html", button=ButtonForm(), form=form or DeletionForm(formdata=None),
                           pending=mydata.pending_deletion(current_user.id)), status


@bp.route("/my-data")
@customer_required
def my_data():
    """Download my data, ask for deletion."""
    return _render_my_data()


@bp.route("/my-data/export", methods=["POST"])
@customer_required
def my_data_export():
    """The customer's data as a ZIP download (a POST: never from a bare link)."""
    if not ButtonForm().validate():
        abort(400)
    data = mydata.build_export(current_user.id)
    resp = Response(data, mimetype="application/zip")
    resp.headers["Content-Disposition"] = f'attachment; filename="my-data-{current_user.id}.zip"'
    resp.headers["Cache-Control"] = "private, no-store"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


@bp.route("/my-data/delete", methods=["POST"])
@customer_required
def my_data_delete():
    """Ask for deletion (the confirmation box must be ticked); an admin decides."""
    form = DeletionForm()
    if not form.validate():
        return _render_my_data(form, status=400)
    mydata.request_deletion(current_user.id)
    db.session.commit()
    flash(_("We received your deletion request. An administrator will handle it soon."), "success")
    return redirect(url_for("portal.my_data"), 303)


@bp.route("/profile/emails/<token>", methods=["GET", "POST"])
def confirm_email(token):
    """GET shows a "Confirm" button; the POST adds the address."""
    form = ButtonForm()
    if request.method == "GET":
        try:
            _cid, email = tokens.load_email_token(token)
        except tokens.InvalidToken:
            email = None
        return render_template("portal/confirm_email.html", form=form, email=email), (200 if email else 400)
    if not form.validate():
        abort(400)
    try:
        _customer, email = services.confirm_email(token)
    except DomainError as exc:
        db.session.rollback()
        return render_template("portal/confirm_email.html", form=form, email=None, error=exc.message), 400
    db.session.commit()
    flash(_("%(email)s was added to your account.", email=email), "success")
    return redirect(url_for("portal.profile" if current_user.is_authenticated else "portal.login"), 303)


# ---------------------------------------------------------------- signed ticket links (emails)

def _from_link(token):
    """(customer_id, ticket) of a signed ticket link; a bad or expired link is a 400 page."""
    try:
        customer_id, ticket_id = tokens.load_ticket_token(token)
    except tokens.InvalidToken as exc:
        msg = (_("This link has expired. Sign in to see your requests.") if exc.expired
               else _("This link is not valid. Sign in to see your requests."))
        abort(400, description=msg)
    return customer_id, services.get_ticket_by_id(customer_id, ticket_id)


@bp.route("/t/<token>")
def link(token):
    """The ticket of a signed link, without login. Acting takes a POST from this page."""
    _customer_id, t = _from_link(token)
    return _render_ticket(t, token=token)


def _back_to_link(token):
    return lambda _t: url_for("portal.link", token=token)


@bp.route("/t/<token>/reply", methods=["POST"])
def link_reply(token):
    customer_id, t = _from_link(token)
    return _reply(customer_id, t, _back_to_link(token), token=token)


@bp.route("/t/<token>/solved", methods=["POST"])
def link_solved(token):
    customer_id, t = _from_link(token)
    return _status(customer_id, t, "resolved", _back_to_link(token))


@bp.route("/t/<token>/reopen", methods=["POST"])
def link_reopen(token):
    customer_id, t = _from_link(token)
    return _status(customer_id, t, "open", _back_to_link(token))


@bp.route("/t/<token>/attachments/<int:attachment_id>")
def link_attachment(token, attachment_id):
    customer_id, t = _from_link(token)
    return send_attachment(services.get_attachment(customer_id, attachment_id, ticket_id=t.id))


from ..sla import csat_views  # noqa: E402,F401  (the CSAT answer routes on this blueprint)
from . import repair_views  # noqa: E402,F401  (cashback, repair quote and invoice routes)
from . import pay_views  # noqa: E402,F401  (the invoice's transfer amount and proof of transfer)
