"""Locale and time-zone selection: the user's setting, else ?lang= in the session, else the browser."""
from flask import current_app, request, session
from flask_login import current_user


def select_locale():
    """Indonesian or English."""
    langs = current_app.config["LANGUAGES"]
    if session.get("lang") in langs:
        return session["lang"]
    user = current_user if current_user and not current_user.is_anonymous else None
    if user is not None and getattr(user, "locale", None) in langs:
        return user.locale
    return request.accept_languages.best_match(langs) or current_app.config["BABEL_DEFAULT_LOCALE"]


def select_timezone():
    """Times are shown in the helpdesk's zone (Asia/Jakarta by default)."""
    return current_app.config["HELPDESK_TIMEZONE"]
