"""The IDLE worker: holds IMAP IDLE on every mailbox that supports it, so a new mail becomes a
ticket within seconds. `flask mail fetch` (without --once) runs it; `make run` starts it too.

    flask mail fetch          # or: python -m workers.mail_idle

Each mailbox gets a thread: drain, then IDLE until the server reports new mail (or 5 minutes pass),
then drain again. A heartbeat key in Redis tells the `rq cron` poll to leave that mailbox alone;
if this process dies, the key expires and the poll takes over within two minutes. Running this on
several machines at once is safe: the database decides who stores and processes each message.
"""
import logging
import signal
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

log = logging.getLogger("helpdesk.mail.idle")

IDLE_SECONDS = 300  # re-issue IDLE at least this often (RFC 2177 asks for under 29 minutes)
RECONNECT_SECONDS = 30
REFRESH_MAILBOXES = 120  # look for new or changed mailboxes this often


def _heartbeat(cfg):
    from helpdesk.jobs import get_redis
    from helpdesk.mail.fetch import IDLE_HEARTBEAT_KEY, IDLE_HEARTBEAT_TTL

    try:
        get_redis().set(IDLE_HEARTBEAT_KEY.format(cfg.id or "default"), "1", ex=IDLE_HEARTBEAT_TTL)
    except Exception:  # noqa: BLE001 - without Redis the poll also runs: harmless, the DB dedupes
        pass


def _drain(app, name):
    from helpdesk.extensions import db
    from helpdesk.mail import fetch, services

    with app.app_context():
        try:
            for cfg in fetch.due_mailboxes(name):
                fetch.fetch_mailbox(cfg, pool=services.ParsePool(workers=0))
        finally:
            db.session.remove()


def _catch_up(app, name, cfg, conn, rounds=5):
    """Re-select the folder; while it holds mail newer than what is stored (it arrived during the
    drain, when this connection was not idling), drain again."""
    from helpdesk.extensions import db
    from helpdesk.mail import services

    for _ in range(rounds):
        status = conn.select(cfg.folder)
        with app.app_context():
            try:
                stored = services.last_uid(cfg.id, cfg.folder, status.uidvalidity)
            finally:
                db.session.remove()
        if status.uidnext - 1 <= stored:
            return
        _drain(app, name)


def watch(app, name, stop):
    """IDLE loop for one mailbox, until `stop` is set. Returns False if the server has no IDLE."""
    from helpdesk.mail import fetch, services

    while not stop.is_set():
        try:
            with app.app_context():
                cfgs = services.mailbox_configs(name)
            if not cfgs:
                return False
            cfg = cfgs[0]
            _drain(app, name)
            with fetch.open_connection(cfg) as conn:
                if not conn.supports_idle():
                    log.info("mailbox %s: no IDLE; the rq cron poll fetches it", name)
                    return False
                _catch_up(app, name, cfg, conn)
                while not stop.is_set():
                    with app.app_context():
                        _heartbeat(cfg)
                    if conn.idle_wait(min(IDLE_SECONDS, 30)):
                        _drain(app, name)
                        _catch_up(app, name, cfg, conn)
        except Exception:  # noqa: BLE001 - reconnect after any failure; the poll covers the gap
            log.exception("mailbox %s: IDLE loop failed; reconnecting in %ss", name, RECONNECT_SECONDS)
            stop.wait(RECONNECT_SECONDS)
    return True


def run_idle(name=None, app=None, stop=None):
    """Hold IDLE on the named mailbox, or on every configured one (new ones are picked up)."""
    from flask import current_app

    from helpdesk.extensions import db
    from helpdesk.mail import services

    app = app or current_app._get_current_object()
    stop = stop or threading.Event()
    threads = {}
    while not stop.is_set():
        with app.app_context():
            names = [c.name for c in services.mailbox_configs(name)]
            db.session.remove()
        for n in names:
            if n not in threads or not threads[n].is_alive():
                t = threading.Thread(target=watch, args=(app, n, stop), name=f"idle-{n}", daemon=True)
                t.start()
                threads[n] = t
        stop.wait(REFRESH_MAILBOXES)
    for t in threads.values():
        t.join(timeout=5)


def main():
    from config import config_from_env
    from helpdesk import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = create_app(config_from_env())
    from helpdesk.mail.cli import settle_gc

    settle_gc()
    stop = threading.Event()

    def _stop(*_):
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    run_idle(app=app, stop=stop)
    time.sleep(0)


if __name__ == "__main__":
    main()
