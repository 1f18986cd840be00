"""Fetching a mailbox: UIDs after the last one stored, bodies in batches, raw stored and committed,
then processed, then flagged or moved on the server.

Used by `flask mail fetch --once`, by the `rq cron` poll (every minute, for mailboxes without an
IDLE holder) and by the IDLE worker (workers/mail_idle.py). Several of them may run at once, on
several machines: the database's unique keys decide who stores and who processes a message, and a
short Redis lock per mailbox only saves wasted work.
"""
import logging
from contextlib import contextmanager
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from ..extensions import db
from ..timeutil import utcnow
from . import services
from .models import InboundMessage, Mailbox

log = logging.getLogger(__name__)

IDLE_HEARTBEAT_KEY = "helpdesk:mail:idle:{}"
IDLE_HEARTBEAT_TTL = 90  # seconds; the IDLE worker refreshes it at least every 30 s


@contextmanager
def open_connection(cfg):
    from .imap import ImapSettings, MailboxConnection

    settings = ImapSettings(host=cfg.host, port=cfg.port, security=cfg.security, username=cfg.username,
                            password=cfg.password or "")
    with MailboxConnection(settings) as conn:
        yield conn


def _record_failure(cfg, error, now):
    if cfg.id is None:
        log.error("mailbox %s: %s", cfg.name, error)
        return
    mb = db.session.get(Mailbox, cfg.id)
    mb.consecutive_failures = (mb.consecutive_failures or 0) + 1
    mb.last_error, mb.last_error_at = str(error)[:2000], now
    threshold = current_app.config.get("MAILBOX_BACKOFF_AFTER", 5)
    if mb.consecutive_failures >= threshold:
        # 10 minutes, doubling with each further failure, at most 6 hours
        minutes = min(10 * 2 ** (mb.consecutive_failures - threshold), 360)
        mb.backoff_until = now + timedelta(minutes=minutes)
    db.session.commit()


def _record_success(cfg, now):
    if cfg.id is None:
        return
    db.session.execute(update(Mailbox).where(Mailbox.id == cfg.id).values(
        consecutive_failures=0, backoff_until=None, last_success_at=now))
    db.session.commit()


def fetch_mailbox(cfg, *, pool=None, on_outcome=None, now=None, errors=None):
    """Drain one mailbox folder. Returns the list of Outcomes. Errors are recorded on the mailbox
    (and appended to `errors` as {"mailbox", "error"})."""
    now = now or utcnow()
    if cfg.error:
        _record_failure(cfg, cfg.error, now)
        if errors is not None:
            errors.append({"mailbox": cfg.name, "error": cfg.error})
        return []
    outcomes = []
    try:
        with open_connection(cfg) as conn:
            # Finish what a previous run stored but did not process or flag (a crash, a kill).
            outcomes += _drain_pending(cfg, conn, pool, on_outcome)
            status = conn.select(cfg.folder)
            start = services.last_uid(cfg.id, cfg.folder, status.uidvalidity)
            uids = conn.uids_after(start)
            batch = current_app.config.get("MAIL_FETCH_BATCH", 200)
            # Pipelined: batch k+1 is fetched and handed to the parse pool before batch k is stored
            # and processed, so parsing runs on the other cores while this process writes. A batch
            # is stored (committed as pending) just before it is processed, so that another
            # fetcher never sees it pending for long (it would process later mail before earlier
            # mail), and flagged on the server only after its processing commit.
            # A batch that another fetcher stored first means it is working this folder right now
            # (IDLE and the poll, or two machines): leave the rest to it, so that mail is processed
            # in order (a reply after the message it answers), and pick up anything left next time.
            ahead, overtaken = None, False
            in_flight = []  # batches handed to the pool and not stored yet
            try:
                # A small first batch: the writer waits only for its parsing, then the pipeline is full.
                for chunk in conn.fetch_raw(uids, batch=batch, first=max(1, batch // 8)):
                    services.checkpoint("fetched")
                    parsing = services.start_parse_fetched(chunk, pool)
                    in_flight.append(parsing)
                    if ahead is not None:
                        got, overtaken = _store_and_process(cfg, conn, pool, on_outcome, status, ahead)
                        in_flight.remove(ahead)
                        outcomes += got
                        if overtaken:
                            break
                    ahead = parsing
                if ahead is not None and not overtaken:
                    outcomes += _store_and_process(cfg, conn, pool, on_outcome, status, ahead)[0]
                    in_flight.remove(ahead)
            finally:
                # The pool wrote their raw files under temporary names: not to be left behind.
                # (A batch that was stored has its files in place; one that failed while being
                # stored may have some: what is in place stays, content-addressed.)
                for parsing in in_flight:
                    parsing.discard()
        _record_success(cfg, utcnow())
    except Exception as exc:  # noqa: BLE001 - a failing mailbox never stops the others
        db.session.rollback()
        log.exception("mailbox %s: fetch failed", cfg.name)
        _record_failure(cfg, f"{type(exc).__name__}: {exc}", utcnow())
        if errors is not None:
            errors.append({"mailbox": cfg.name, "error": f"{type(exc).__name__}: {exc}"})
    return outcomes


def _store_and_process(cfg, conn, pool, on_outcome, status, parsing):
    """Store a fetched batch and process it. Returns (outcomes, overtaken: another fetcher had
    stored some of these messages already)."""
    ids = services.store_batch(cfg.id, cfg.folder, status.uidvalidity, parsing.items, now=utcnow(),
                               written=parsing.written())
    got = services.process_pending(ids=ids, pool=pool, job=parsing.job_for(ids)) if ids else []
    _emit(got, on_outcome)
    _server_done(cfg, conn)
    return got, len(ids) < len(parsing.items)


def _emit(outcomes, on_outcome):
    if on_outcome:
        for o in outcomes:
            on_outcome(o)


def _drain_pending(cfg, conn, pool, on_outcome):
    ids = list(db.session.execute(select(InboundMessage.id).where(
        InboundMessage.result == "pending", services._same_mailbox(cfg.id))).scalars())
    got = services.process_pending(ids=ids, pool=pool) if ids else []
    _emit(got, on_outcome)
    _server_done(cfg, conn)
    return got


def _server_done(cfg, conn):
    """Flag \\Seen (or move) every processed message of this mailbox not yet done on the server.

    Runs after the processing commit, so a message is never marked on the server before it is safe
    in the database. Quarantined messages go to the quarantine folder when one is set.
    """
    rows = db.session.execute(
        select(InboundMessage.id, InboundMessage.uid, InboundMessage.result, InboundMessage.folder,
               InboundMessage.uidvalidity)
        .where(InboundMessage.server_done_at.is_(None), services._same_mailbox(cfg.id),
               InboundMessage.uid.isnot(None), InboundMessage.result != "pending")
        .order_by(InboundMessage.id)).all()
    if not rows:
        return
    status = conn.select(cfg.folder)
    current = [r for r in rows if r.folder == cfg.folder and r.uidvalidity == status.uidvalidity]
    services.checkpoint("before_flag")
    quarantine = [r.uid for r in current if r.result == "quarantined" and cfg.quarantine_folder]
    rest = [r.uid for r in current if r.uid not in set(quarantine)]
    if quarantine:
        conn.ensure_folder(cfg.quarantine_folder)
        conn.move(quarantine, cfg.quarantine_folder)
    if rest:
        if cfg.after_fetch == "move" and cfg.processed_folder:
            conn.ensure_folder(cfg.processed_folder)
            conn.move(rest, cfg.processed_folder)
        else:
            conn.mark_seen(rest)
    db.session.execute(update(InboundMessage).where(InboundMessage.id.in_([r.id for r in rows]))
                       .values(server_done_at=utcnow()))
    db.session.commit()


def due_mailboxes(name=None, now=None, skip_idle=False):
    """Mailbox configs that may be fetched now: not backing off, and (for the poll) not held by IDLE."""
    now = now or utcnow()
    cfgs = services.mailbox_configs(name)
    out = []
    for cfg in cfgs:
        if cfg.id is not None and not name:
            mb = db.session.get(Mailbox, cfg.id)
            if mb.backoff_until and mb.backoff_until > now:
                continue
        if skip_idle and _idle_alive(cfg):
            continue
        out.append(cfg)
    return out


def _idle_alive(cfg):
    from ..jobs import get_redis

    try:
        return bool(get_redis().exists(IDLE_HEARTBEAT_KEY.format(cfg.id or "default")))
    except Exception:  # noqa: BLE001 - without Redis, poll
        return False


POLL_LOCK_SECONDS = 120  # a poller killed mid-fetch delays the next poll by at most this much


def _lock(cfg):
    """A short Redis lock per mailbox so overlapping polls do not fetch the same batch (only an
    optimisation: correctness comes from the database). None when Redis is unavailable."""
    from ..jobs import get_redis

    try:
        lock = get_redis().lock(f"helpdesk:mail:fetch:{cfg.id or 'default'}", timeout=POLL_LOCK_SECONDS,
                                blocking=False)
        return lock if lock.acquire() else False
    except Exception:  # noqa: BLE001
        return None


def fetch_all(name=None, on_outcome=None, skip_idle=False, errors=None, use_lock=False):
    """Fetch every due mailbox (or the named one), parsing on every core. Returns all Outcomes.

    use_lock: skip a mailbox another poll is fetching right now (the cron poll); an operator's
    `flask mail fetch --once` always fetches."""
    outcomes = []
    with services.ParsePool() as pool:
        for cfg in due_mailboxes(name, skip_idle=skip_idle):
            lock = _lock(cfg) if use_lock else None
            if lock is False:
                continue  # another fetcher is on it right now
            try:
                outcomes += fetch_mailbox(cfg, pool=pool, on_outcome=on_outcome, errors=errors)
            finally:
                if lock:
                    try:
                        lock.release()
                    except Exception:  # noqa: BLE001 - expired: harmless
                        pass
    return outcomes


ORPHAN_AFTER = timedelta(minutes=2)  # a live fetcher processes what it stored within seconds


def cron_poll(now=None):
    """`rq cron`, every minute: fetch mailboxes that no IDLE worker is holding, then process any
    message stored but left pending for a while (a killed import, a mailbox since deleted)."""
    from ..jobs import app_context

    with app_context():
        try:
            n = len(fetch_all(skip_idle=True, use_lock=True))
            return n + len(process_orphans(now))
        finally:
            db.session.remove()


def process_orphans(now=None):
    """Pending inbound rows older than ORPHAN_AFTER, processed (the claim makes a race harmless)."""
    cutoff = (now or utcnow()) - ORPHAN_AFTER
    ids = list(db.session.execute(select(InboundMessage.id).where(
        InboundMessage.result == "pending", InboundMessage.received_at < cutoff).order_by(InboundMessage.id)
        .limit(10000)).scalars())
    return services.process_pending(ids=ids, pool=services.ParsePool(workers=0)) if ids else []
