"""Subscriptions (issue #8 §1): who may receive which announcements, with a consent record, and the
delivery log of every announcement mail (maintenance notices and marketing announcements)."""
