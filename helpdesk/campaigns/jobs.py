"""Sending marketing announcements in batches (issue #8 §3).

`cron_campaigns()` runs every minute (rq cron, queue "default"): one sweep over the campaigns being
sent and the scheduled ones that are due (index status, scheduled_at), queueing at most
ANNOUNCE_BATCH mails per sweep in all (the rate limit); a campaign with more recipients continues on
the next sweep until none is left (sending → sent). "Send now" enqueues `send_campaign` (through the
outbox, after the commit), which sends the first batch at once. Every mail is claimed with a unique
key per campaign and recipient first, so a repeated job, a repeated sweep or two at once send
nothing twice.
"""
from flask import current_app

from ..extensions import db
from ..timeutil import utcnow
from . import services


def sweep(now=None, batch=None):
    """One pass. Returns {"campaigns": n worked on, "queued": mails queued, "finished": n done}."""
    now = now or utcnow()
    budget = batch or current_app.config.get("ANNOUNCE_BATCH", 200)
    stats = {"campaigns": 0, "queued": 0, "finished": 0}
    for campaign_id in services.due_ids(now):
        if budget <= 0:
            break
        queued, finished = services.run_batch(campaign_id, now, limit=budget)
        db.session.commit()
        stats["campaigns"] += 1
        stats["queued"] += queued
        stats["finished"] += int(finished)
        budget -= queued
    return stats


def send_campaign(campaign_id):
    """The "send now" job: the campaign's first batch (the sweeps send the rest)."""
    services.run_batch(campaign_id, utcnow())


def cron_campaigns():
    """rq cron (queue "default", every minute): the campaign sweep."""
    from ..jobs import app_context

    with app_context():
        try:
            return sweep(utcnow())
        finally:
            db.session.remove()
