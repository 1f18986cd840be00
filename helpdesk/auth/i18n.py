"""Translated messages for services that also run outside a request (jobs, CLI, tests).

Flask-Babel picks the language from the request; without one the English text is used as is.
"""
from flask import has_request_context
from flask_babel import gettext


def _(message, **values):
    """gettext in a request; the English message (with %(name)s values filled in) elsewhere."""
    if has_request_context():
        return gettext(message, **values)
    return message % values if values else message
