"""Forms of the subscription pages: the topics as checkboxes (preference page, portal), and the
Confirm button of a double opt-in link."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField

from . import topics as T

TOPIC_LABELS = {
    "maintenance": _l("Maintenance and incidents of the services I own"),
    "promotions": _l("Product news and promotions"),
    "general": _l("General announcements"),
}
TOPIC_HELP = {
    "maintenance": _l("Planned maintenance and outages that affect your websites, hosting and domains."),
    "promotions": _l("New products, offers and discounts."),
    "general": _l("Office hours, policy changes and other news for all customers."),
}
STATUS_LABELS = {"subscribed": _l("Subscribed"), "unsubscribed": _l("Not subscribed"),
                 "pending": _l("Awaiting confirmation")}
ACTION_LABELS = {"subscribe": _l("Subscribed"), "unsubscribe": _l("Unsubscribed"),
                 "request": _l("Confirmation requested"), "confirm": _l("Confirmed")}
SOURCE_LABELS = {
    "portal": _l("Customer portal"), "support_form": _l("Support form"), "offer_form": _l("Offer form"),
    "preference_page": _l("Preference page"), "one_click": _l("One-click unsubscribe"), "mailto": _l("Email"),
    "agent": _l("Agent"), "api": _l("API"), "confirmation": _l("Confirmation link"), "bounce": _l("Bounce"),
    "import": _l("Import"), "lead_conversion": _l("Lead became a customer"),
    "merge": _l("Customers merged"),
}
# the promotions box of the support and offer forms (unticked by default)
PROMOTIONS_OPT_IN = _l("Send me product news and promotions")
PROMOTIONS_OPT_IN_HELP = _l("We first send you an email to confirm. You can unsubscribe at any time.")


class ButtonForm(FlaskForm):
    """A POST with only the CSRF token (the Confirm button of a double opt-in link)."""


class _TopicsForm(FlaskForm):
    """Base of the per-kind topic forms built by `topics_form`."""

    topic_names = ()

    def wanted(self):
        """{topic: bool} as ticked."""
        return {t: bool(self[t].data) for t in self.topic_names}


_FORMS = {}


def topics_form(kind, **kwargs):
    """The checkbox form of a customer's ("customer") or a lead's ("lead") topics."""
    cls = _FORMS.get(kind)
    if cls is None:
        names = T.topics_for(kind)
        attrs = {t: BooleanField(TOPIC_LABELS[t], description=TOPIC_HELP[t]) for t in names}
        attrs["topic_names"] = names
        cls = _FORMS[kind] = type(f"{kind.title()}TopicsForm", (_TopicsForm,), attrs)
    return cls(**kwargs)


def fill(form, state):
    """Tick the boxes of the subscribed topics. A topic awaiting confirmation stays unticked (its
    badge says so): saving the form must not turn somebody else's unconfirmed request into consent."""
    for t in form.topic_names:
        form[t].data = state.get(t) == "subscribed"
    return form
