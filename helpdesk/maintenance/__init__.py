"""Maintenance windows (issue #8 §2): technical support announces server and product maintenance to
the affected, subscribed customers; the public status page and its feed."""
