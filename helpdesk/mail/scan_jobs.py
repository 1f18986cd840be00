"""Rescanning attachments whose virus scan is `pending` (the ClamAV daemon was unreachable).

`rescan_pending()` asks the daemon first (PING); when it answers, the pending attachments are
scanned in id order through the same code as the inbound pipeline (services._scan: clean, or
infected with an `attachment_infected` audit event on the ticket). A file the daemon refuses (e.g.
larger than its StreamMaxLength) stays pending, with the daemon's answer in scan_result, and does
not hold up the others. Idempotent: a doubled or missed
run does no harm; on PostgreSQL, concurrent runs skip each other's rows (FOR UPDATE SKIP LOCKED).

`cron_rescan_pending()` is the `rq cron` entry (workers/cron.py).
"""
from flask import current_app
from sqlalchemy import select

from ..extensions import db
from ..tickets.models import Attachment
from . import clamd

BATCH = 100


def rescan_pending(*, limit=1000):
    """Scan up to `limit` pending attachments; returns how many left the `pending` state."""
    scanner = clamd.from_config(current_app.config)
    if scanner is None:
        return 0
    if not _answers(scanner):
        return 0
    from .services import _scan

    done, tried, after = 0, 0, 0
    while tried < limit:
        rows = db.session.execute(
            select(Attachment).where(Attachment.scan_status == "pending", Attachment.id > after)
            .order_by(Attachment.id).limit(min(BATCH, limit - tried)).with_for_update(skip_locked=True)
        ).scalars().all()
        if not rows:
            break
        after, tried = rows[-1].id, tried + len(rows)
        _scan(rows)
        scanned = sum(1 for a in rows if a.scan_status != "pending")
        db.session.commit()
        done += scanned
        if scanned < len(rows) and not _answers(scanner):  # gone again: the rest waits for the next run
            break
    return done


def _answers(scanner):
    try:
        return scanner.ping()
    except clamd.ClamdError:
        return False


def cron_rescan_pending():
    """rq cron: rescan attachments left `pending` while the virus scanner was unreachable."""
    from ..jobs import app_context

    with app_context():
        try:
            return rescan_pending()
        finally:
            db.session.remove()
