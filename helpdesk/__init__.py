"""The helpdesk application factory."""
import os

import click

from flask import Flask, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

from config import DEFAULT_SECRET, BASE_DIR

from . import extensions
from .extensions import babel, csrf, db, limiter, login_manager

# Routes that skip session CSRF, each with its reason. tests/integration/test_security.py checks this
# list against app.url_map, so an exemption cannot appear or vanish unnoticed.
CSRF_EXEMPT = {
    "api.": "JSON API v1: token auth in the Authorization header, no cookies, so no CSRF risk.",
    "subscriptions.unsubscribe": "RFC 8058 one-click unsubscribe: mail clients POST to the List-Unsubscribe URL "
                                 "with no cookies and no form; the signed URL itself is the credential.",
    "webform.embed": "Embeddable web form: framed cross-site, so the browser sends no session cookie; its "
                     "POST carries a signed, expiring form token (helpdesk/webform/tokens.py) instead.",
}


def create_app(config=None):
    """Build the app from a config object (config.Config instance); None reads the environment."""
    if config is None:
        from config import config_from_env

        config = config_from_env()
    app = Flask(
        __name__,
        instance_path=config.INSTANCE_PATH,
        template_folder=str(BASE_DIR / "templates"),
        static_folder="static",
    )
    app.config.from_object(config)
    _check_secret(app)
    os.makedirs(app.instance_path, exist_ok=True)
    if app.config.get("TRUSTED_PROXIES"):
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    register_template_helpers(app)
    register_security_headers(app)
    return app


def _check_secret(app):
    if app.config["SECRET_KEY"] == DEFAULT_SECRET and not (app.debug or app.testing):
        raise RuntimeError(
            "SECRET_KEY is the insecure default. Set SECRET_KEY in the environment "
            "(for example: export SECRET_KEY=$(python -c 'import secrets; print(secrets.token_hex(32))'))."
        )


def register_extensions(app):
    """Bind every extension to the app."""
    from . import models  # noqa: F401  (register every model with the metadata)
    from .jobs import install_session_hooks

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            **app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}),
            "connect_args": {"timeout": 30},
        }
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            from .dbutil import install_sqlite_pragmas

            install_sqlite_pragmas(db.engine)
    from .tickets import counts

    install_session_hooks(db.session.session_factory.class_)
    counts.install(db.session.session_factory.class_)
    from . import idalloc

    idalloc.install(db.session.session_factory.class_)
    app.cli.add_command(_LazyDbGroup(app))  # `flask db ...`: Flask-Migrate, loaded when used
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"
    extensions.mail.init_app(app)  # not `mail`: the name is the helpdesk.mail package
    csrf.init_app(app)
    from .i18n import install_request_hooks, select_locale, select_timezone

    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone,
                   default_translation_directories=str(BASE_DIR / "translations"))
    install_request_hooks(app)
    if not app.config.get("RATELIMIT_STORAGE_URI"):
        from .jobs import redis_url

        url = redis_url(app)
        app.config["RATELIMIT_STORAGE_URI"] = (
            "redis+unix://" + url[len("unix://"):] if url.startswith("unix://") else url
        )
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    limiter.init_app(app)


# Objects that migrations create by hand, per dialect, and the models do not describe.
UNMODELLED = {"ticket_fts", "ix_tickets_search_vector"}


def include_object(obj, name, type_, reflected, compare_to):
    """Alembic filter: leave out the FTS5 table (SQLite) and the GIN index (PostgreSQL)."""
    if name in UNMODELLED or (name or "").startswith("ticket_fts_"):
        return False
    return True


def init_migrations(app):
    """Flask-Migrate bound to the app: `flask db ...` and flask_migrate's functions (upgrade() in an
    app context). Loaded only when migrations are used: importing it imports Alembic, a third of a
    second at the start of every process (every `flask mail fetch --once`, every worker) that never
    migrates. Returns app.extensions["migrate"]."""
    if "migrate" not in app.extensions:
        from flask_migrate import Migrate

        Migrate(app, db, directory=str(BASE_DIR / "migrations"), render_as_batch=True, compare_type=True,
                include_object=include_object)
    return app.extensions["migrate"]


class _LazyDbGroup(click.Group):
    """The `flask db` command group of Flask-Migrate, imported when one of its commands is asked for."""

    def __init__(self, app):
        super().__init__("db", help="Perform database migrations (Flask-Migrate, Alembic).")
        self._app = app

    def _group(self):
        init_migrations(self._app)
        from flask_migrate.cli import db as group

        return group

    def make_context(self, info_name, args, parent=None, **extra):
        # the real group parses its own options (--directory, -x) and runs its callback
        return self._group().make_context(info_name, args, parent=parent, **extra)

    def list_commands(self, ctx):
        return self._group().list_commands(ctx)

    def get_command(self, ctx, cmd_name):
        return self._group().get_command(ctx, cmd_name)


def register_blueprints(app):
    """Every feature's blueprint."""
    from .admin.views import bp as admin_bp
    from .sla import admin as _sla_admin  # noqa: F401  (the SLA admin pages register on the admin blueprint)
    from .warranty import admin as _catalogue_admin  # noqa: F401  (the catalogue admin pages, likewise)
    from .api.views import bp as api_bp
    from .auth.views import bp as auth_bp
    from .customers.views import bp as customers_bp
    from .portal.views import bp as portal_bp
    from .portal import sales_views as _portal_sales  # noqa: F401  (My purchases, invoice PDFs: portal routes)
    from .subscriptions import portal_views as _portal_subscriptions  # noqa: F401  (/portal/subscriptions)
    from .sla.report_views import bp as sla_report_bp
    from .sla.views import bp as notifications_bp
    from .sla.views import install as install_bell
    from .tickets.views import bp as tickets_bp
    from .warranty.views import bp as warranty_bp
    from .warranty.report_views import bp as guarantee_report_bp
    from .webform.views import bp as webform_bp
    from .leads.public import bp as offer_bp
    from .billing.views import bp as billing_bp
    from .claims.views import bp as claims_bp
    from .repairs.views import bp as repairs_bp
    from .leads.views import bp as leads_bp

    for bp in (auth_bp, tickets_bp, customers_bp, admin_bp, api_bp, webform_bp, offer_bp, portal_bp, notifications_bp,
               sla_report_bp, warranty_bp, guarantee_report_bp, claims_bp, repairs_bp, billing_bp):
        app.register_blueprint(bp)
    app.register_blueprint(leads_bp)  # marketing's lead pages (/leads)
    from .leads.import_views import bp as lead_import_bp
    from .leads.report_views import bp as lead_report_bp

    app.register_blueprint(lead_import_bp)  # CSV import of leads (/leads/import)
    app.register_blueprint(lead_report_bp)  # the leads funnel report (/reports/leads)
    from .sales.offer_views import bp as offers_bp
    from .sales.public_views import bp as offer_link_bp
    from .sales.voucher_admin import bp as vouchers_bp

    app.register_blueprint(offers_bp)  # marketing's offers (/offers)
    app.register_blueprint(vouchers_bp)  # vouchers admin (/offers/vouchers)
    app.register_blueprint(offer_link_bp)  # the customer's signed offer link (/offers/view/<token>)
    from .sales.order_views import bp as orders_bp

    app.register_blueprint(orders_bp)  # orders (/orders)
    from .campaigns.views import bp as campaigns_bp
    from .maintenance.public_views import bp as status_bp
    from .maintenance.views import bp as maintenance_bp
    from .subscriptions.views import bp as subscriptions_bp

    app.register_blueprint(maintenance_bp)  # technical support's maintenance windows (/maintenance)
    app.register_blueprint(status_bp)  # the public status page and its feed (/status)
    app.register_blueprint(subscriptions_bp)  # unsubscribe, preferences, confirmation (/subscriptions)
    app.register_blueprint(campaigns_bp)  # marketing announcements (/campaigns)
    install_bell(app)
    for prefix in CSRF_EXEMPT:
        bp = app.blueprints.get(prefix.rstrip("."))
        if bp is not None:
            csrf.exempt(bp)
        elif prefix in app.view_functions:  # a single endpoint
            csrf.exempt(app.view_functions[prefix])


def register_errorhandlers(app):
    """Domain errors become pages (or JSON under /api)."""
    from .errors import DomainError
    from .web import render_error

    from flask import make_response

    def http_error(e, code):
        resp = make_response(render_error(code, getattr(e, "description", None)))
        for key, value in (e.get_headers() if hasattr(e, "get_headers") else []):
            if key.lower() != "content-type":  # keep Allow, Retry-After, WWW-Authenticate...
                resp.headers[key] = value
        return resp

    app.register_error_handler(DomainError, lambda e: render_error(e.status_code, e.message))
    for code in (400, 401, 403, 404, 405, 409, 413, 429, 500):
        app.register_error_handler(code, lambda e, code=code: http_error(e, code))


def register_commands(app):
    """flask CLI commands."""
    from .cli import register

    register(app)


def register_template_helpers(app):
    """Jinja filters: local time, labels."""
    from .web import install_template_helpers

    install_template_helpers(app)


def register_security_headers(app):
    """CSP, nosniff, frame-ancestors and friends on every response."""

    @app.after_request
    def _headers(resp):
        csp = getattr(g, "csp", None) or (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
        )
        resp.headers.setdefault("Content-Security-Policy", csp)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        if not getattr(g, "allow_framing", False):  # a route that sets its own frame-ancestors
            resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if request.is_secure:
            resp.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return resp
