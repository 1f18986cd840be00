"""Shared web-layer helpers: error pages, template filters, safe redirects, role guards."""
from functools import wraps
from urllib.parse import urljoin, urlsplit

from flask import abort, current_app, jsonify, render_template, request
from flask_babel import format_datetime, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.exceptions import default_exceptions


STATUS_LABELS = {
    "new": _l("New"), "open": _l("Open"), "pending_customer": _l("Waiting for customer"),
    "pending_billing": _l("Waiting for billing"), "resolved": _l("Resolved"), "closed": _l("Closed"),
}
PRIORITY_LABELS = {"low": _l("Low"), "normal": _l("Normal"), "high": _l("High"), "urgent": _l("Urgent")}
CHANNEL_LABELS = {"email": _l("Email"), "web": _l("Web form"), "phone": _l("Phone"), "walk_in": _l("Walk-in"),
                  "chat": _l("Chat"), "social": _l("Social media")}
EVENT_LABELS = {
    "created": _l("created"), "status": _l("status"), "priority": _l("priority"), "assignee": _l("assignee"),
    "queue": _l("queue"), "tags": _l("tags"), "merge": _l("merged"), "follow_up": _l("follow-up ticket"),
    "customer_replied": _l("customer replied"), "customer_merge": _l("customers merged"),
    # agent accounts (the admin's agent page)
    "invited": _l("invited"), "invite_accepted": _l("invitation accepted"), "name": _l("name"),
    "roles": _l("roles"), "deactivated": _l("deactivated"), "reactivated": _l("reactivated"),
    "password_reset_sent": _l("password reset sent"), "password_reset": _l("password reset"),
    "password_changed": _l("password changed"), "2fa_enabled": _l("two-factor login on"),
    "2fa_disabled": _l("two-factor login off"), "2fa_reset": _l("two-factor login reset"),
    "queue_added": _l("added to queue"), "queue_removed": _l("removed from queue"),
    # email
    "cc": _l("Cc list"), "bounce": _l("mail bounced"), "attachment_refused": _l("attachment refused"),
    "attachment_infected": _l("infected attachment"), "mail_reprocessed": _l("mail reprocessed"),
    "blocked": _l("sender blocked"), "unblocked": _l("sender unblocked"), "held_mail_sent": _l("held mail sent"),
    # products and guarantees: claims, repairs, invoices
    "owned_item": _l("product linked"), "issue_category": _l("issue category"), "complaint_date": _l("complaint date"),
    "claim": _l("cashback claim"), "repair": _l("repair quote"), "repair_lines": _l("repair quote lines"),
    "repair_price": _l("repair price changed"), "invoice_created": _l("invoice created"),
    "invoice_status": _l("invoice status"), "payment_recorded": _l("payment recorded"),
    "payment_confirmed": _l("payment confirmed"), "payment_rejected": _l("payment rejected"),
}
ROLE_LABELS = {"admin": _l("Admin"), "customer_support": _l("Customer Support"),
               "technical_support": _l("Technical Support"), "billing": _l("Billing"), "marketing": _l("Marketing")}
TIER_LABELS = {"standard": _l("Standard")}
INVOICE_STATUS_LABELS = {"unpaid": _l("Unpaid"), "partially_paid": _l("Partly paid"), "paid": _l("Paid"),
                         "void": _l("Void")}
# Werkzeug's own English descriptions (a bare abort(404)): shown as our translated message instead.
_WERKZEUG_DESCRIPTIONS = {cls.description for cls in default_exceptions.values() if cls.description}


def wants_json():
    return request.path.startswith("/api/")


def render_error(code, message=None):
    """An error page (or JSON under /api) with a clear message, in the user's language."""
    if message in _WERKZEUG_DESCRIPTIONS:
        message = None
    if wants_json():
        return jsonify({"error": {"code": code, "message": message or _default_message(code)}}), code
    return render_template("error.html", code=code, message=message or _default_message(code)), code


def _default_message(code):
    messages = {400: _l("Bad request."), 401: _l("Please log in first."),
                403: _l("You are not allowed to do that."), 404: _l("Not found."),
                405: _l("Method not allowed."), 409: _l("Conflict."), 413: _l("The upload is too large."),
                429: _l("Too many requests. Please wait a moment and try again."),
                500: _l("Something went wrong on our side.")}
    return str(messages.get(code) or _("Error."))


def form_error(form, skip=(), fallback=None, fallback_field=None):
    """A form that failed validation as a DomainError: the first field error (its label, the error,
    the field's name), leaving out the fields in `skip`; else `fallback` (default "Check the form.")
    on `fallback_field`. For views that refuse a bad form like a refused service call."""
    from .errors import DomainError

    for field in form:
        if field.errors and field.name not in skip:
            return DomainError(f"{field.label.text}: {field.errors[0]}", field=field.name)
    return DomainError(fallback or _("Check the form."), field=fallback_field)


def is_safe_next(target):
    """True for a same-site relative path (no scheme, no host, no '//' or backslash tricks)."""
    if not target or not isinstance(target, str):
        return False
    if target.startswith(("//", "\\")) or "\\" in target or any(ord(c) < 32 for c in target):
        return False
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return False
    joined = urlsplit(urljoin(request.host_url, target))
    return joined.netloc == urlsplit(request.host_url).netloc and target.startswith("/")


def roles_required(*roles):
    """View decorator: the logged-in agent needs one of these roles (exactly; admin is a role too)."""

    def deco(view):
        @wraps(view)
        def wrapper(*a, **kw):
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()
            if not (current_user.roles & set(roles)):
                abort(403)
            return view(*a, **kw)

        return wrapper

    return deco


def install_template_helpers(app):
    """Jinja filters and globals."""

    @app.template_filter("localtime")
    def _localtime(dt, fmt="d MMM yyyy HH:mm"):
        if dt is None:
            return ""
        return format_datetime(dt, fmt)  # naive UTC, rebased to HELPDESK_TIMEZONE by Babel

    @app.template_filter("rupiah")
    def _rupiah(amount):
        from .billing.money import format_rupiah

        return format_rupiah(int(amount or 0))

    def company():
        """The issuer on invoices and the account customers pay into (COMPANY_* settings)."""
        cfg = app.config
        return {"name": cfg.get("COMPANY_NAME") or "", "address": cfg.get("COMPANY_ADDRESS") or "",
                "npwp": cfg.get("COMPANY_NPWP") or "", "bank_account": cfg.get("COMPANY_BANK_ACCOUNT") or ""}

    app.jinja_env.globals.update(
        company=company, STATUS_LABELS=STATUS_LABELS, PRIORITY_LABELS=PRIORITY_LABELS, CHANNEL_LABELS=CHANNEL_LABELS,
        ROLE_LABELS=ROLE_LABELS, EVENT_LABELS=EVENT_LABELS, TIER_LABELS=TIER_LABELS,
        INVOICE_STATUS_LABELS=INVOICE_STATUS_LABELS, get_locale=get_locale,
    )
