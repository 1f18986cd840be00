"""The public web form (/form) and its embeddable variant (/form/embed). No login.

Views are thin: validate, check the rate limits, call services.submit, commit, redirect to a
confirmation page whose URL carries a signed, short-lived token (never a guessable number).
Every answer is the same whether the email belongs to a known customer or not.
"""
import logging

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from limits import parse

from ..errors import DomainError
from ..extensions import db, limiter
from ..subscriptions import services as subscriptions
from . import services, tokens
from .forms import EmbedForm, WebForm

log = logging.getLogger(__name__)

bp = Blueprint("webform", __name__, url_prefix="/form")

FRAMED = {"webform.embed", "webform.embed_done"}
BASE_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "object-src 'none'; base-uri 'self'; form-action 'self'; ")


@bp.before_app_request
def _framing():
    """The embeddable pages may be framed by the configured origins (and this site), nothing else.

    Runs for every request (g outlives a request when an app context was already pushed), so a
    framed page's policy never leaks into the next page.
    """
    if request.endpoint in FRAMED:
        origins = " ".join(["'self'", *current_app.config.get("WEBFORM_FRAME_ORIGINS", [])])
        g.csp = BASE_CSP + f"frame-ancestors {origins}"
        g.allow_framing = True
    elif g.pop("allow_framing", False):
        g.pop("csp", None)


# ---------------------------------------------------------------- rate limits

def _limits(email, scope="webform"):
    """(limit, key) pairs: submissions per IP and per email address (or phone), counted per form."""
    cfg = current_app.config
    return [(parse(cfg["WEBFORM_RATE_LIMIT"]), f"{scope}-ip:{request.remote_addr or '-'}"),
            (parse(cfg["WEBFORM_EMAIL_RATE_LIMIT"]), f"{scope}-email:{(email or '').strip().lower()}")]


def over_limit(email, scope="webform"):
    """A message when a limit is used up, else None. The limiter's storage down: let it through.

    Shared by the public forms (the support form, the offer form in helpdesk.leads.public): each
    counts its own submissions under its `scope`.
    """
    if not limiter.enabled:
        return None
    try:
        for item, key in _limits(email, scope):
            if not limiter.limiter.test(item, key):
                if key.startswith(f"{scope}-ip:"):
                    return _("Too many requests were sent from your network. Please try again later, "
                             "or email us. Everything you typed is still here.")
                return _("Too many requests were sent for this email address. Please try again later, "
                         "or email us. Everything you typed is still here.")
    except Exception:  # noqa: BLE001  (Redis down: never lose a customer's request)
        log.exception("webform: rate limit storage unavailable")
    return None


def count_submission(email, scope="webform"):
    """Count one accepted submission against the limits of `scope`."""
    if not limiter.enabled:
        return
    try:
        for item, key in _limits(email, scope):
            limiter.limiter.hit(item, key)
    except Exception:  # noqa: BLE001
        log.exception("webform: rate limit storage unavailable")


# ---------------------------------------------------------------- the form

def _files(form):
    """(filename, content_type, bytes) for each uploaded file."""
    return [(f.filename, f.mimetype, f.read()) for f in (form.attachments.data or []) if getattr(f, "filename", "")]


def _file_names():
    return [f.filename for f in request.files.getlist("attachments") if f and f.filename]


def _render(form, embed, status=200, message=None, lost_files=()):
    template = "webform/embed.html" if embed else "webform/form.html"
    if embed:
        form.form_token.data = tokens.make_form_token()
    return render_template(template, form=form, message=message, lost_files=list(lost_files),
                           lang=str(get_locale() or "id")), status


def _handle(form, embed):
    """GET shows the form; a POST validates, checks the limits, opens the ticket and redirects."""
    if request.method != "POST":
        return _render(form, embed)
    if embed:
        try:
            tokens.check_form_token(request.form.get("form_token"))
        except tokens.InvalidToken as exc:
            msg = (_("This form was open for too long. Please check your details and send it again.") if exc.expired
                   else _("This form could not be checked. Please check your details and send it again."))
            return _render(form, embed, 400, msg, _file_names())
    if not form.validate():
        return _render(form, embed, 200, _("Please correct the fields marked below."), _file_names())
    done = "webform.embed_done" if embed else "webform.done"
    lang = str(get_locale() or "id")
    if (form.fax_number.data or "").strip():  # honeypot: pretend it worked, create nothing
        return redirect(url_for(done, token=tokens.make_done_token(None), lang=lang), 303)
    message = over_limit(form.email.data)
    if message:
        return _render(form, embed, 429, message, _file_names())
    try:
        ticket = services.submit(name=form.name.data, email=form.email.data, phone=form.phone.data,
                                 topic=form.topic.data, website=form.website.data, subject=form.subject.data,
                                 message=form.message.data, files=_files(form), language=lang)
        if form.promotions.data:  # double opt-in: nothing is sent until the mailed link is confirmed
            subscriptions.change("customer", ticket.customer_id, {"promotions": True}, source="support_form",
                                 method="checkbox", ip=request.remote_addr)
    except DomainError as exc:
        db.session.rollback()
        name = exc.details.get("field")
        field = getattr(form, name, None) if name in ("name", "email", "phone", "topic", "subject") else None
        if field is not None:
            field.errors = [*field.errors, exc.message]
        return _render(form, embed, 200, exc.message, _file_names())
    db.session.commit()
    count_submission(form.email.data)
    return redirect(url_for(done, token=tokens.make_done_token(ticket.number), lang=lang), 303)


def _done(token, embed):
    template = "webform/done_embed.html" if embed else "webform/done.html"
    try:
        number = tokens.number_from_done_token(token)
    except tokens.InvalidToken:
        return render_template(template, expired=True, number=None, lang=str(get_locale() or "id")), 400
    lang = str(get_locale() or "id")
    return render_template(template, expired=False, number=number, lang=lang,
                           first_answer=_first_answer(number, lang))


def _first_answer(number, lang):
    """When the customer can expect our first answer ("Senin, 7 Desember 2026, 13.00 WIB"), or None."""
    if not number:
        return None
    from ..sla.csat import expected_first_answer
    from ..tickets.services import resolve_number

    return expected_first_answer(resolve_number(number), lang)


@bp.route("", methods=["GET", "POST"])
def form():
    return _handle(WebForm(), embed=False)


@bp.route("/done/<token>")
def done(token):
    return _done(token, embed=False)


@bp.route("/embed", methods=["GET", "POST"])
def embed():
    return _handle(EmbedForm(), embed=True)


@bp.route("/embed/done/<token>")
def embed_done(token):
    return _done(token, embed=True)
