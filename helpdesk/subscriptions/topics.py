"""The subscription topics and their defaults (pure rules, no database).

- maintenance: maintenance and incident notices about the services a customer owns. On by default
  for customers (they can opt out); leads own nothing, so it is not offered to them.
- promotions: product news and promotions. Opt-in only, for everybody.
- general: general announcements (office hours, policy changes). On by default for customers;
  leads only by (double) opt-in.

A lead is subscribed to nothing until they confirm (double opt-in): their rows are "pending" until then.
"""
TOPICS = ("maintenance", "promotions", "general")
CUSTOMER_TOPICS = TOPICS
LEAD_TOPICS = ("promotions", "general")
CUSTOMER_DEFAULTS = {"maintenance": True, "promotions": False, "general": True}

SOURCES = ("portal", "support_form", "offer_form", "preference_page", "one_click", "mailto", "agent", "api",
           "confirmation", "bounce", "import", "lead_conversion", "merge")


def topics_for(kind):
    """The topics a customer ("customer") or a lead ("lead") can hold."""
    return LEAD_TOPICS if kind == "lead" else CUSTOMER_TOPICS


def is_subscribed(kind, topic, status):
    """Does a subscriber of this kind receive the topic, given their row's status (None: no row)?"""
    if topic not in topics_for(kind):
        return False
    if status is None:
        return kind == "customer" and CUSTOMER_DEFAULTS[topic]
    return status == "subscribed"
