"""Locale and time-zone selection.

The desk: the ?lang= choice kept in the session, else the user's setting, else the browser's
Accept-Language, else Indonesian (BABEL_DEFAULT_LOCALE). The JSON API keeps no session and its
messages are documented in English: Accept-Language if the client sends one, else English.
"""
from flask import current_app, request, session
from flask_babel import refresh
from flask_login import current_user

API_DEFAULT_LOCALE = "en"


def select_locale():
    """Indonesian or English."""
    langs = current_app.config["LANGUAGES"]
    if request.blueprint == "api" or request.path.startswith("/api/"):
        return browser_locale(langs) or API_DEFAULT_LOCALE
    if session.get("lang") in langs:
        return session["lang"]
    user = current_user if current_user and not current_user.is_anonymous else None
    if user is not None and getattr(user, "locale", None) in langs:
        return user.locale
    return browser_locale(langs) or current_app.config["BABEL_DEFAULT_LOCALE"]


def browser_locale(langs):
    """The first of the browser's languages (best first) that we have: 'en-GB' counts as 'en'."""
    for value, quality in request.accept_languages:
        primary = value.replace("_", "-").split("-")[0].lower()
        if quality > 0 and primary in langs:
            return primary
    return None


def select_timezone():
    """Times are shown in the helpdesk's zone (Asia/Jakarta by default)."""
    return current_app.config["HELPDESK_TIMEZONE"]


def install_request_hooks(app):
    """Before anything else in a request: forget a locale cached by an earlier request and apply ?lang=."""

    @app.before_request
    def _choose_language():
        # Flask-Babel caches the locale on `g`, which outlives a request when an app context was
        # already pushed (tests, scripts driving a test client): choose again for every request.
        refresh()
        lang = request.args.get("lang")
        if lang in app.config["LANGUAGES"]:
            session["lang"] = lang
