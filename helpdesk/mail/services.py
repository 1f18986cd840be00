"""Inbound mail, from raw bytes to exactly one ticket, reply or log entry.

The pipeline, for a batch of messages from one mailbox folder:

1. `store_batch`: each message's raw bytes are written to the raw store (by the parse pool's
   workers, while they parse it: see `parse_and_write`) and synced, then one
   transaction inserts their inbound-log rows as `pending` and advances the folder's last UID. A
   unique key on (mailbox, folder, UIDVALIDITY, UID) makes a second fetch of the same message, by
   another process or machine, a no-op.
2. `process_pending`: parses the pending rows (on every core), then in one transaction per batch
   claims each row (`UPDATE ... WHERE result = 'pending'`), classifies, threads and creates the
   ticket or reply, each message inside its own savepoint so one broken message never stops the
   others. A Message-ID (or, without one, a hash of headers and body) is inserted into
   mail_message_ids in the same transaction: a message that reached two mailboxes, or was fetched
   twice, becomes one ticket, whichever process wins.
3. Only then is the message flagged \\Seen or moved on the server (`fetch.py`).

A kill at any point leaves either nothing committed (the batch is fetched again) or pending rows
(processed on the next run), never a second ticket.
"""
import functools
import json
import logging
import os
import signal
from dataclasses import dataclass, field
from types import SimpleNamespace

from flask import current_app
from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import lazyload

from .. import batchcache, bulkrows, idalloc
from ..dbutil import insert_fn
from ..customers import services as customers
from ..customers.models import Customer, CustomerEmail
from ..errors import DomainError, NotFound
from ..extensions import db
from ..tickets import search, storage
from ..tickets import services as tickets
from ..tickets.models import Attachment, Message, Queue, Ticket
from ..timeutil import utcnow
from ..warranty import services as warranty
from . import budget, rawstore
from .models import InboundMessage, Mailbox, MailboxFolderState, MailMessageId, SenderBlock

log = logging.getLogger(__name__)

NO_TEXT = "(no text)"


# ---------------------------------------------------------------- crash points (for the kill tests)

_CRASH = {}


def checkpoint(step):
    """Record that a pipeline step was reached; with HELPDESK_CRASH_AT=step:n, SIGKILL at its n-th time.

    HELPDESK_CRASH_LOG names a file that gets one line per step reached, written before the kill,
    so the crash test can assert that the step was really reached.
    """
    spec = os.environ.get("HELPDESK_CRASH_AT")
    if not spec:
        return
    logfile = os.environ.get("HELPDESK_CRASH_LOG")
    if logfile:
        with open(logfile, "a") as fh:
            fh.write(step + "\n")
    name, _, nth = spec.partition(":")
    if name == step:
        _CRASH[step] = _CRASH.get(step, 0) + 1
        if _CRASH[step] >= int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)


# ---------------------------------------------------------------- mailboxes

@dataclass
class MailboxConfig:
    """What the fetcher needs of a mailbox: a database row, or the IMAP_* environment default."""

    id: int | None
    name: str
    host: str
    port: int
    security: str
    username: str
    password: str | None
    folder: str
    processed_folder: str | None
    quarantine_folder: str | None
    after_fetch: str
    queue_id: int
    from_address: str
    plus_addressing: bool = False
    error: str | None = None  # why the password cannot be read


def _secret():
    return current_app.config.get("MAILBOX_SECRET_KEY") or current_app.config["SECRET_KEY"]


def _config_of(mb):
    from .crypto import PasswordUnavailable, mailbox_password

    try:
        password, error = mailbox_password(mb, _secret()), None
    except PasswordUnavailable as exc:
        password, error = None, str(exc)
    return MailboxConfig(id=mb.id, name=mb.name, host=mb.host, port=mb.port, security=mb.security,
                         username=mb.username, password=password, folder=mb.folder or "INBOX",
                         processed_folder=mb.processed_folder, quarantine_folder=mb.quarantine_folder,
                         after_fetch=mb.after_fetch, queue_id=mb.queue_id, from_address=mb.from_address,
                         plus_addressing=mb.plus_addressing, error=error)


def default_mailbox_settings():
    """The IMAP_* environment mailbox as a dict, or None when IMAP_HOST is unset."""
    cfg = current_app.config
    if not cfg.get("IMAP_HOST"):
        return None
    ssl = cfg.get("IMAP_SSL", "true")
    security = {"true": "ssl", "1": "ssl", "yes": "ssl", "starttls": "starttls"}.get(ssl, "plain")
    port = cfg.get("IMAP_PORT") or (993 if security == "ssl" else 143)
    return {"name": "default", "host": cfg["IMAP_HOST"], "port": port, "security": security,
            "username": cfg.get("IMAP_USER") or "", "folder": cfg.get("IMAP_FOLDER") or "INBOX",
            "queue": cfg.get("IMAP_QUEUE"), "processed_folder": cfg.get("IMAP_PROCESSED_FOLDER"),
            "from_address": cfg.get("IMAP_FROM") or cfg["MAIL_DEFAULT_SENDER"]}


def _default_queue_id(slug):
    q = None
    if slug:
        q = db.session.execute(select(Queue).where(Queue.slug == slug)).scalar_one_or_none()
    if q is None:
        q = db.session.execute(select(Queue).order_by(Queue.id)).scalars().first()
    if q is None:
        raise DomainError("No queue exists for incoming mail; create one first.")
    return q.id


def mailbox_configs(name=None):
    """The mailboxes to fetch: active database rows, else the environment default."""
    query = select(Mailbox).where(Mailbox.active.is_(True)).order_by(Mailbox.id)
    if name:
        query = select(Mailbox).where(Mailbox.name == name)
    rows = db.session.execute(query).scalars().all()
    if rows:
        return [_config_of(mb) for mb in rows]
    env = default_mailbox_settings()
    if env is None or (name and name != env["name"]):
        return []
    return [MailboxConfig(id=None, name=env["name"], host=env["host"], port=env["port"],
                          security=env["security"], username=env["username"],
                          password=current_app.config.get("IMAP_PASSWORD"), folder=env["folder"],
                          processed_folder=env["processed_folder"], quarantine_folder=None,
                          after_fetch="move" if env["processed_folder"] else "flag",
                          queue_id=_default_queue_id(env["queue"]), from_address=env["from_address"])]


def own_addresses():
    """Every address of ours (mailboxes, the default sender): never recorded as Cc, never a customer."""
    addrs = {a.lower() for a in db.session.execute(select(Mailbox.from_address)).scalars() if a}
    addrs |= {a.lower() for a in db.session.execute(select(Mailbox.username)).scalars() if a and "@" in a}
    for key in ("MAIL_DEFAULT_SENDER", "IMAP_FROM", "IMAP_USER"):
        val = current_app.config.get(key)
        if isinstance(val, (tuple, list)):
            val = val[-1]
        if val and "@" in val:
            addrs.add(val.lower())
    return addrs


# ---------------------------------------------------------------- 1. store raw

def store_batch(mailbox_id, folder, uidvalidity, items, now=None, written=None):
    """Store raw messages and log them as pending, in one transaction. Returns the new rows' ids.

    items: [(uid, raw_bytes)]. Raw files are written and synced before the commit. The folder's
    last UID advances in the same transaction; a UID already stored (by a concurrent fetcher) is
    skipped by the unique key.
    written: what the parse pool already wrote of them (`rawstore.write_pending`, one (sha256,
    temporary file) or None per item, see `parse_and_write`): only synced and put in place here.
    """
    now = now or utcnow()
    if not items:
        return []
    if written is None:
        digests = rawstore.save_many([raw for _uid, raw in items])
    else:
        written = list(written)
        redo = [n for n, w in enumerate(written) if w is None]  # a worker could not write it: here, or fail
        for n, w in zip(redo, rawstore.write_pending([items[n][1] for n in redo], str(rawstore.root()))):
            written[n] = w
        rawstore.put_in_place(written)
        digests = [digest for digest, _tmp in written]
    rows = []
    for (uid, raw), sha in zip(items, digests):
        rows.append({"received_at": now, "mailbox_id": mailbox_id, "folder": folder, "uidvalidity": uidvalidity,
                     "uid": uid, "raw_sha256": sha, "size": len(raw), "result": "pending",
                     "source": f"imap:{mailbox_id or 'default'}/{folder}/{uidvalidity}/{uid}"})
    checkpoint("stored_raw")
    if mailbox_id is None:  # the environment mailbox: NULLs never conflict, so look first
        uids = [r["uid"] for r in rows]
        existing = set(db.session.execute(
            select(InboundMessage.uid).where(_same_mailbox(mailbox_id), InboundMessage.folder == folder,
                                             InboundMessage.uidvalidity == uidvalidity,
                                             InboundMessage.uid.in_(uids))).scalars())
        rows = [r for r in rows if r["uid"] not in existing]
    ids = []
    if rows:
        # One statement: a UID a concurrent fetcher stored first is skipped by the unique key. (Not a
        # savepoint per row: with pysqlite a SAVEPOINT that opens the transaction commits on RELEASE,
        # so two fetchers' rows would interleave.)
        # The rows as parameters of one single-row statement: SQLAlchemy sends them as multi-row
        # INSERTs ("insertmanyvalues") without compiling a statement with a parameter per value.
        insert = _dialect_insert()
        ids = list(db.session.execute(
            insert(InboundMessage.__table__)
            .on_conflict_do_nothing(index_elements=["mailbox_id", "folder", "uidvalidity", "uid"])
            .returning(InboundMessage.__table__.c.id), rows).scalars())
    _advance(mailbox_id, folder, uidvalidity, max(uid for uid, _ in items), now)
    db.session.commit()
    return sorted(ids)


def _dialect_insert():
    return insert_fn(db.session)


def _same_mailbox(mailbox_id):
    return InboundMessage.mailbox_id.is_(None) if mailbox_id is None else InboundMessage.mailbox_id == mailbox_id


def folder_state(mailbox_id, folder):
    if mailbox_id is None:
        return None
    return db.session.get(MailboxFolderState, (mailbox_id, folder))


def _advance(mailbox_id, folder, uidvalidity, uid, now):
    if mailbox_id is None:  # the environment mailbox keeps its state in the inbound log itself
        return
    st = db.session.get(MailboxFolderState, (mailbox_id, folder))
    if st is None:
        db.session.add(MailboxFolderState(mailbox_id=mailbox_id, folder=folder, uidvalidity=uidvalidity,
                                          last_uid=uid, updated_at=now))
    elif st.uidvalidity != uidvalidity:
        st.uidvalidity, st.last_uid, st.updated_at = uidvalidity, uid, now
    elif uid > st.last_uid:
        st.last_uid, st.updated_at = uid, now


def last_uid(mailbox_id, folder, uidvalidity):
    """The highest UID already stored for this folder and UIDVALIDITY (0: start from the beginning).

    A changed UIDVALIDITY restarts from 0: the folder is rescanned and Message-ID dedupe turns
    what was already processed into `duplicate` log entries, never second tickets.
    """
    st = folder_state(mailbox_id, folder)
    if st is not None:
        return st.last_uid if st.uidvalidity == uidvalidity else 0
    found = db.session.execute(
        select(func.max(InboundMessage.uid)).where(_same_mailbox(mailbox_id), InboundMessage.folder == folder,
                                                   InboundMessage.uidvalidity == uidvalidity)).scalar()
    return found or 0


def store_file(raw, source, mailbox_id=None, now=None):
    """An imported message (a file, not an IMAP UID): stored raw and logged as pending. Returns its id."""
    now = now or utcnow()
    sha = rawstore.save(raw)
    row = InboundMessage(received_at=now, mailbox_id=mailbox_id, source=source[:500], raw_sha256=sha,
                         size=len(raw), result="pending")
    db.session.add(row)
    db.session.flush()
    return row.id


# ---------------------------------------------------------------- 2. parse (in parallel) and process

def parse_safe(raw):
    """Parse in a worker process: a ParsedMessage, or the error text (never raises)."""
    from .parser import parse

    try:
        return parse(raw)
    except Exception as exc:  # noqa: BLE001 - every failure is a quarantine reason, never a crash
        return f"{type(exc).__name__}: {exc}"[:2000]


class _Parsed:
    def __init__(self, results):
        self._results = results

    def get(self):
        return self._results


class ParseJob:
    """Stored rows whose raw messages are being parsed in the pool (`start_parse`): the next batch
    is parsed on the other cores while this process writes the current one."""

    def __init__(self, ids, raws, result):
        self.ids, self.raws, self._result, self._parsed = ids, raws, result, None

    def results(self):
        """{inbound id: (raw bytes or None, ParsedMessage or error text)}."""
        if self._parsed is None:
            self._parsed = dict(zip(self.ids, zip(self.raws, self._result.get())))
        return self._parsed


def parse_and_write(base, raw):
    """In a worker of the parse pool: the raw message written to the raw store under a temporary
    name (`rawstore.write_pending`: the fetcher syncs it and puts it in place before its commit)
    and parsed. Returns ((sha256, temporary path or None) or None when it could not be written,
    parse_safe(raw))."""
    try:
        written = rawstore.write_pending([raw], base)[0]
    except Exception:  # noqa: BLE001 - the fetcher writes it itself, and fails there if it must
        log.warning("raw store: a parse worker could not write a message", exc_info=True)
        written = None
    return written, parse_safe(raw)


class FetchedParse:
    """Fetched (uid, raw) items being written to the raw store and parsed in the pool before they
    are stored (`start_parse_fetched`)."""

    def __init__(self, items, result):
        self.items, self._both = items, result
        self._result = _Part(result, 1)

    def written(self):
        """[(sha256, temporary path or None) or None] of the items, in order (waits for the pool)."""
        return _Part(self._both, 0).get()

    def discard(self):
        """This batch will not be stored (another fetcher stored it first, or the fetch failed):
        remove the raw files the pool wrote for it under temporary names. Never raises."""
        wait = getattr(self._both, "wait", None)
        if wait is not None:  # (a pool whose worker died never finishes: do not wait for ever)
            wait(60)
            if not self._both.ready():
                return
        try:
            written = self.written()
        except Exception:  # noqa: BLE001 - the pool failed: it wrote nothing to remove
            return
        rawstore.discard_pending(written)

    def job_for(self, ids):
        """The ParseJob of the stored rows `ids` (a UID another fetcher stored first is not among them)."""
        uid_of = dict(db.session.execute(select(InboundMessage.id, InboundMessage.uid)
                                         .where(InboundMessage.id.in_(ids))).all())
        pos = {uid: n for n, (uid, _raw) in enumerate(self.items)}
        order = sorted(i for i in ids if uid_of.get(i) in pos)
        at = [pos[uid_of[i]] for i in order]
        return ParseJob(order, [self.items[n][1] for n in at], _Subset(self._result, at))


class _Part:
    """One part of each (written, parsed) result of `parse_and_write`."""

    def __init__(self, result, index):
        self._result, self._index = result, index

    def get(self):
        return [pair[self._index] for pair in self._result.get()]


class _Subset:
    def __init__(self, result, positions):
        self._result, self._positions = result, positions

    def get(self):
        every = self._result.get()
        return [every[n] for n in self._positions]


def start_parse_fetched(items, pool):
    """Start writing fetched [(uid, raw)] to the raw store and parsing them in the pool (both off
    this process: it is busy writing the previous batch); returns a FetchedParse."""
    return FetchedParse(items, pool.map_async([raw for _uid, raw in items],
                                              fn=functools.partial(parse_and_write, str(rawstore.root()))))


def start_parse(ids, pool):
    """Load these pending rows' raw messages and start parsing them; returns a ParseJob."""
    rows = db.session.execute(select(InboundMessage.id, InboundMessage.raw_sha256)
                              .where(InboundMessage.id.in_(ids)).order_by(InboundMessage.id)).all()
    raws = [rawstore.load(sha) for _id, sha in rows]
    return ParseJob([i for i, _sha in rows], raws, pool.map_async([r if r is not None else b"" for r in raws]))


class ParsePool:
    """Parsing on the other cores: a fork pool when there are enough messages to be worth it.

    workers: the pool's processes (0: this process parses). By default MAIL_PARSE_WORKERS, else one
    per CPU but one: this process writes the tickets on the remaining core, and is the slower
    part, so a parse worker per CPU only takes time from it (on two cores a batch of 2,000 mails
    took 10 % longer with two parse workers than with one)."""

    def __init__(self, workers=None):
        if workers is None:
            workers = current_app.config.get("MAIL_PARSE_WORKERS") or (os.cpu_count() or 1) - 1
        self.workers = max(0, workers)
        self._pool = None

    def map(self, raws):
        """parse_safe of each, in order (waits for them)."""
        return self.map_async(raws).get()

    def map_async(self, raws, fn=parse_safe):
        """Start parsing (fn) in the pool and return at once; `.get()` waits for the results, in order."""
        if self.workers < 1 or len(raws) < 8:
            return _Parsed([fn(r) for r in raws])
        if self._pool is None:
            import multiprocessing

            self._pool = multiprocessing.get_context("fork").Pool(self.workers)
        return self._pool.map_async(fn, raws, chunksize=max(1, len(raws) // (self.workers * 4)))

    def close(self):
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass
class Outcome:
    """What became of one inbound message: one JSON line of `flask mail fetch` / `import`."""

    inbound_id: int
    source: str | None
    message_id: str | None
    action: str
    ticket: int | None = None
    rule: str | None = None
    subject: str | None = None
    sender: str | None = None
    attachments: list = field(default_factory=list)
    error: str | None = None
    reason: str | None = None

    def as_json(self):
        return json.dumps({"source": self.source, "message_id": self.message_id, "action": self.action,
                           "ticket": self.ticket, "rule": self.rule, "subject": self.subject, "from": self.sender,
                           "attachments": self.attachments, "error": self.error}, ensure_ascii=False)


def pending_ids(limit, mailbox_id=None, ids=None):
    q = select(InboundMessage.id).where(InboundMessage.result == "pending").order_by(InboundMessage.id).limit(limit)
    if ids is not None:
        q = q.where(InboundMessage.id.in_(ids))
    return list(db.session.execute(q).scalars())


def process_pending(ids=None, batch=None, pool=None, now=None, job=None):
    """Process pending inbound rows (these ids, or all) in batches. Returns their Outcomes, in order.

    job: a ParseJob already started for (some of) these ids. With a list of ids, the next batch is
    parsed in the pool while this one is written."""
    batch = batch or current_app.config.get("MAIL_FETCH_BATCH", 200)
    own_pool = pool is None
    pool = pool or ParsePool()
    out = []
    try:
        todo = pending_ids(100000, ids=ids) if ids is not None else None
        while True:
            if todo is not None:
                chunk, todo = todo[:batch], todo[batch:]
            else:
                chunk = pending_ids(batch)
            if not chunk:
                break
            if job is None or not set(chunk) & set(job.ids):
                job = start_parse(chunk, pool)
            ahead = start_parse(todo[:batch], pool) if todo else None
            out.extend(_process_chunk(chunk, pool, now, job))
            job = ahead
            if todo is not None and not todo:
                break
    finally:
        if own_pool:
            pool.close()
    return out


CONFLICT_RETRIES = 3


def _process_chunk(ids, pool, now, job):
    """Process a chunk in one transaction; on SQLite its rows are written together (idalloc).

    With the batch's foreign-key checks deferred to its COMMIT, a row referring to one that does not
    exist fails the whole chunk there, not its own message: the chunk is then done again row by row
    (flushed per message, as on PostgreSQL), where that message is quarantined and the rest kept."""
    try:
        return _process_chunk_once(ids, pool, now, job, batched=True)
    except IntegrityError as exc:
        if db.engine.dialect.name != "sqlite":
            raise
        db.session.rollback()
        log.warning("inbound batch: %s at commit, processing again without batching", exc.orig)
        return _process_chunk_once(ids, pool, now, job, batched=False)


def _process_chunk_once(ids, pool, now, job, batched):
    rows = db.session.execute(select(InboundMessage).where(InboundMessage.id.in_(ids))
                              .order_by(InboundMessage.id)).scalars().all()
    done = job.results()
    missing = [r for r in rows if r.id not in done]
    if missing:  # not in the job (e.g. stored meanwhile): parse them now
        done = {**done, **start_parse([r.id for r in missing], pool).results()}
    # Claim the batch in one statement (never committed as such): a row another process took is skipped.
    claimed = set(db.session.execute(
        update(InboundMessage).where(InboundMessage.id.in_([r.id for r in rows]), InboundMessage.result == "pending")
        .values(result="processing").returning(InboundMessage.id)).scalars())
    ctx = _Context()
    todo = []
    for row in rows:
        if row.id not in claimed:  # another process took it
            continue
        raw, msg = done[row.id]
        todo.append((row, "raw message file is missing from RAW_MAIL_DIR" if raw is None else msg))
    middle = {len(todo) // 2}  # where the crash point mid_ingest is passed (once)
    try:
        with batchcache.opened(), idalloc.batch(db.session, enabled=batched):
            ctx.prefetch([msg for _row, msg in todo], now)
            # (not row by row: there a row's failure is its own)
            with bulkrows.collecting(db.session), tickets.numbers_in_memory(db.session):
                outcomes = _ingest_together(todo, ctx, now, middle)
            if outcomes is None:
                outcomes = []
                for n, (row, msg) in enumerate(todo):
                    if n in middle:
                        checkpoint("mid_ingest")
                    outcomes.append(_ingest_alone(row, msg, ctx, now))
            db.session.flush()
            bulkrows.write(db.session)  # the rows it collected instead of ORM objects, one INSERT per table
            tickets.write_numbers(db.session)  # the last ticket number it handed out
            search.reindex_deferred(db.session)  # the batch's tickets' search documents, at once
        storage.finish_batch(db.session)  # its attachments, durable and in place before the commit
    finally:
        search.discard_deferred(db.session)
        storage.discard_batch(db.session)
        bulkrows.discard(db.session)
        tickets.forget_numbers(db.session)
    checkpoint("before_commit")
    db.session.commit()
    checkpoint("committed")
    return outcomes


def _ingest_together(todo, ctx, now, middle):
    """The optimistic pass: every message of the chunk in one savepoint (no savepoint, and no flush
    for one, per message). None, with nothing of it kept, when any message raised: the caller then
    redoes the chunk one savepoint per message (`_ingest_alone`), where a broken message is
    quarantined and a concurrent write retried. `middle`: {position} at which the crash point
    mid_ingest is passed; emptied once it is."""
    try:
        with db.session.begin_nested():
            outcomes = []
            for n, (row, msg) in enumerate(todo):
                if n in middle:
                    middle.clear()
                    checkpoint("mid_ingest")
                outcomes.append(ingest_parsed(row, msg, ctx, now=now or utcnow()))
        return outcomes
    except Exception as exc:  # noqa: BLE001 - redone message by message, where it is handled
        log.info("inbound batch: %s, processing message by message", type(exc).__name__)
        for row, _msg in todo:
            db.session.expire(row)
        ctx.reset()
        return None


def _ingest_alone(row, msg, ctx, now):
    """One message in its own savepoint: a concurrent write is retried, any other error quarantines it."""
    for attempt in range(CONFLICT_RETRIES + 1):
        try:
            with db.session.begin_nested():
                return ingest_parsed(row, msg, ctx, now=now or utcnow())
        except (IntegrityError, OperationalError) as exc:
            # A concurrent process committed the same customer, counter row or key first (or a
            # deadlock was broken): that is not this message's fault. Its savepoint is rolled
            # back; try again, now seeing the other process's rows.
            db.session.expire(row)
            ctx.reset()
            if attempt < CONFLICT_RETRIES:
                log.info("inbound %s: concurrent write (%s), retrying", row.id, type(exc).__name__)
                continue
            log.exception("inbound %s: processing failed", row.id)
            return _finish(row, None, "quarantined", error=f"{type(exc).__name__}: {exc}"[:2000], now=now)
        except Exception as exc:  # noqa: BLE001 - one broken message never stops the others
            log.exception("inbound %s: processing failed", row.id)
            db.session.expire(row)
            ctx.reset()
            return _finish(row, None, "quarantined", error=f"{type(exc).__name__}: {exc}"[:2000], now=now)


def _encodable(text):
    try:
        text.encode("utf-8")
        return True
    except UnicodeError:
        return False


class _Context:
    """Per-batch caches (blocklist, our own addresses, the batch's known dedupe keys)."""

    def __init__(self):
        self.blocklist = list(db.session.execute(select(SenderBlock.pattern)).scalars())
        self.own = own_addresses()
        self.mailboxes = {}
        self.known = None  # {dedupe key: MailMessageId} of the batch, read before it (see prefetch)
        self.asked = set()  # the keys that prefetch asked for
        self.seen = set()  # keys looked up during the batch (one may be claimed by an earlier message)
        self.senders = {}  # id(message) -> (message, sender_of(message))
        self.now = None  # the batch's `now`, when it was given one

    def prefetch(self, msgs, now=None):
        """Read in a few statements what each message of the batch would read one by one: the
        dedupe keys already known, the senders' customer records and whether they bounce.
        Never fails: a value the database refuses is left to its own message, which is
        quarantined for it as before."""
        self.now = now
        try:
            with db.session.begin_nested():
                self._prefetch(msgs)
        except Exception:  # noqa: BLE001 - read one by one instead
            log.info("inbound batch: prefetch failed, reading message by message", exc_info=True)
            self.known, self.asked = None, set()
            self.reset()

    def _prefetch(self, msgs):
        parsed = [m for m in msgs if not isinstance(m, str)]
        keys = [k for k in dict.fromkeys(_dedupe_key(m) for m in parsed) if _encodable(k)]
        self.known = {k.message_id: k for n in range(0, len(keys), 500) for k in db.session.execute(
            select(MailMessageId).where(MailMessageId.message_id.in_(keys[n:n + 500]))).scalars()}
        self.asked = set(keys)
        senders = set()
        for m in parsed:
            try:
                sender = self.sender(m)
            except Exception:  # noqa: BLE001 - the message's own processing reports it
                continue
            if sender and _encodable(sender):
                senders.add(sender)
        senders = sorted(senders)
        for n in range(0, len(senders), 500):
            customers.prefetch_emails(senders[n:n + 500])
            known = [customers.customer_email_row(s) for s in senders[n:n + 500]]
            warranty.prefetch_items({row.customer_id for row in known if row is not None})
            budget.bouncing(senders[n:n + 500])
            budget.prefetch(senders[n:n + 500], self.now)

    def sender(self, msg):
        """sender_of(msg), worked out once per message of the batch."""
        if id(msg) not in self.senders:
            self.senders[id(msg)] = (msg, sender_of(msg))  # (the message too: its id stays its own)
        return self.senders[id(msg)][1]

    def known_key(self, key):
        """The MailMessageId of a dedupe key (or the values of one the batch claimed), or None."""
        if self.known is None or key in self.seen or key not in self.asked:
            found = _key_row(key)
        else:
            found = self.known.get(key)
        self.seen.add(key)
        return found

    def claims_in_memory(self, key):
        """May this key be claimed without the database (`_claim_key`)? In a batch collecting rows
        (SQLite, which it holds locked), for a key whose presence the prefetch read."""
        return self.known is not None and key in self.asked and bulkrows.active()

    def reset(self):
        """Forget what a rolled-back savepoint may have left behind (cached rows, collected rows)."""
        self.mailboxes = {}
        bulkrows.discard(db.session)
        tickets.forget_numbers(db.session)
        batchcache.clear()
        search.forget_deferred_bodies(db.session)
        idalloc.defer_checks(db.session)  # (kept over a savepoint rollback too, to be sure)

    def mailbox(self, mailbox_id):
        if mailbox_id not in self.mailboxes:
            self.mailboxes[mailbox_id] = db.session.get(Mailbox, mailbox_id) if mailbox_id else None
        return self.mailboxes[mailbox_id]

    def queue_id(self, mailbox):
        if mailbox is not None:
            return mailbox.queue_id
        if "default_queue" not in self.mailboxes:
            env = default_mailbox_settings()
            with db.session.no_autoflush:  # (queues are not written by the batch)
                self.mailboxes["default_queue"] = _default_queue_id(env["queue"] if env else None)
        return self.mailboxes["default_queue"]


def _finish(row, msg, action, *, ticket=None, rule=None, reason=None, error=None, message_row=None, now=None):
    row.result = action
    row.reason = reason
    row.rule = rule
    row.error = error
    row.processed_at = now or utcnow()
    if ticket is not None:
        row.ticket_id = ticket.id
    if message_row is not None:
        row.message_row_id = message_row.id
    if msg is not None and not isinstance(msg, str):
        row.message_id = (msg.message_id or "")[:500] or None
        row.dedupe_key = _dedupe_key(msg)
        row.from_addr = (msg.from_addr or "")[:320] or None
        row.subject = (msg.subject or "")[:300]
    return Outcome(inbound_id=row.id, source=row.source, message_id=row.message_id, action=action,
                   ticket=ticket.number if ticket is not None else None, rule=rule, subject=row.subject,
                   sender=row.from_addr, error=error, reason=reason,
                   attachments=[{"filename": a.filename, "size": a.size, "md5": a.md5}
                                for a in getattr(msg, "attachments", None) or []] if msg is not None and
                   not isinstance(msg, str) else [])


def _dedupe_key(msg):
    """The Message-ID itself (as stored for our own outbound mail too), or a hash when there is none."""
    return msg.message_id[:520] if msg.message_id else "hash:" + msg.content_hash


_CLAIM_KEY = text(
    "INSERT INTO mail_message_ids (message_id, ticket_id, inbound_id, direction, created_at) "
    "VALUES (:message_id, :ticket_id, :inbound_id, :direction, :created_at) "
    "ON CONFLICT (message_id) DO NOTHING RETURNING message_id"
).bindparams(bindparam("created_at", type_=MailMessageId.__table__.c.created_at.type))


def _claim_key(key, row, ticket_id=None, direction="in", ctx=None):
    """Insert the dedupe key; False if it is already there (this message was processed before).

    INSERT ... ON CONFLICT DO NOTHING: one statement, no savepoint (a concurrent process inserting
    the same key makes this one wait for its commit, then find the key taken). Written as SQL text,
    the same on SQLite and PostgreSQL, because SQLAlchemy compiles an ON CONFLICT construct again on
    every execution while a text statement is compiled once.

    In a batch's optimistic pass on SQLite (`ctx.claims_in_memory`) the batch holds the database's
    write lock and has read which of its keys exist: the key is claimed in memory when neither
    that read nor an earlier message of the batch has it, and written with the batch's other
    collected rows (helpdesk.bulkrows), its ticket and message included."""
    # RETURNING, not rowcount: through the ORM session PostgreSQL's rowcount here is -1
    # (on the session's connection: no ORM execution step for a plain SQL statement)
    params = {"message_id": key, "ticket_id": ticket_id, "inbound_id": row.id, "direction": direction,
              "created_at": utcnow()}
    if ctx is not None and ctx.claims_in_memory(key):
        claimed = ctx.known.get(key) is None and bulkrows.find(MailMessageId, key) is None
        if claimed:
            bulkrows.add(MailMessageId, _key=key, message_row_id=None, **params)
    else:
        claimed = db.session.connection().execute(_CLAIM_KEY, params).scalar() is not None
    if claimed and ticket_id is not None and direction == "in":
        _outbound("thread_joined", ticket_id, params["created_at"], key)
    return claimed


def ingest_parsed(row, msg, ctx, now, force_ticket=False):
    """Turn one parsed message into a ticket, a reply or a log entry (inside the caller's savepoint)."""
    from ..subscriptions import inbound as subscription_inbound
    from . import classify as classify_mod
    from . import threading as threading_mod

    if isinstance(msg, str):
        return _finish(row, None, "quarantined", error=msg, now=now)
    key = _dedupe_key(msg)  # the row's message_id and dedupe_key are set by _finish (one UPDATE of the row)
    known = ctx.known_key(key)
    if known is not None:
        ticket = idalloc.get(Ticket, known.ticket_id) if known.ticket_id else None
        if known.direction == "out":
            return _finish(row, msg, "ignored", ticket=ticket, reason="own_mail", now=now)
        return _finish(row, msg, "duplicate", ticket=ticket, now=now)
    if subscription_inbound.unsubscribe(msg, now=now):  # "unsubscribe <token>": the List-Unsubscribe mailto
        _claim_key(key, row, ctx=ctx)
        return _finish(row, msg, "ignored", reason="unsubscribe", now=now)

    verdict = classify_mod.classify(msg, ctx.blocklist)
    if verdict.kind == "bounce":
        return _own_bounce(row, msg, key, verdict, now, ctx)
    if verdict.kind == "auto_reply":
        _claim_key(key, row, ctx=ctx)
        return _finish(row, msg, "ignored", reason="auto_reply", error=verdict.reason, now=now)
    if verdict.kind == "spam" and not force_ticket:
        # No dedupe key yet: "make a ticket" reprocesses this row later.
        return _finish(row, msg, "ignored", reason="spam", error=verdict.reason, now=now)
    if not msg.headers:
        return _finish(row, msg, "quarantined", error="not an email message: no header fields", now=now)
    sender = ctx.sender(msg)
    if sender in ctx.own:
        _claim_key(key, row, ctx=ctx)
        return _finish(row, msg, "ignored", reason="own_mail", error="sent from one of our own addresses", now=now)
    if not _claim_key(key, row, ctx=ctx):  # a concurrent process or another mailbox got it first
        known = _key_row(key)
        ticket = idalloc.get(Ticket, known.ticket_id) if known and known.ticket_id else None
        return _finish(row, msg, "duplicate", ticket=ticket, now=now)

    automated = verdict.kind == "automated"
    mailbox = ctx.mailbox(row.mailbox_id)
    try:
        customer = _unknown_sender() if sender is None else \
            customers.find_or_create(email=sender, name=(msg.from_name or None))[0]
    except DomainError as exc:
        return _finish(row, msg, "quarantined", error=f"sender address not usable: {exc}", now=now)

    decision = threading_mod.decide(
        msg, find_by_message_ids=_find_by_message_ids, ticket_by_number=_ticket_by_number,
        ticket_from_token=_ticket_from_token,
        plus_addressing=bool(mailbox and mailbox.plus_addressing))
    files, refused = _split_attachments(msg)
    if decision.ticket_id:
        with db.session.no_autoflush:  # (by primary key: what the batch changed is in the session)
            ticket = idalloc.get(Ticket, decision.ticket_id, options=_NO_TAGS)
            while ticket is not None and ticket.merged_into_id:
                ticket = db.session.get(Ticket, ticket.merged_into_id, options=_NO_TAGS)
        if ticket is not None:
            return _append(row, msg, key, ticket, customer, decision.rule, files, refused, automated, now)
    return _create(row, msg, key, customer, decision, files, refused, automated, mailbox, ctx, now)


# Threading reads tickets, not their tags (loaded with every ticket otherwise, by a second statement).
_NO_TAGS = [lazyload(Ticket.tags)]

UNKNOWN_SENDER = "unknown-sender@invalid"  # the customer of mail with no usable sender address


def sender_of(msg):
    """Who wrote it: From; when From has no usable address (none, or one no mail system accepts,
    such as a .local host), Reply-To, Sender, then Return-Path (as Zammad does). None when there is none: the ticket goes to the shared "unknown sender" customer
    rather than to quarantine (nothing is lost; an agent can move it), and no mail goes back."""
    from email.utils import getaddresses

    candidates = ([msg.from_addr] if msg.from_addr else []) + list(msg.reply_to or ())
    for name in ("Sender", "Return-Path"):
        candidates += [addr for _n, addr in getaddresses(msg.header_all(name) or [])]
    for cand in candidates:
        try:
            return customers.clean_email(cand)
        except DomainError:
            continue
    return None


def _unknown_sender():
    from ..customers.models import Customer

    row = db.session.execute(select(CustomerEmail).where(CustomerEmail.email == UNKNOWN_SENDER)).scalar_one_or_none()
    if row is not None:
        return row.customer
    cust = Customer(name="Unknown sender", kind="b2c")
    db.session.add(cust)
    db.session.flush()
    db.session.add(CustomerEmail(customer_id=cust.id, email=UNKNOWN_SENDER, is_primary=True))
    db.session.flush()
    db.session.refresh(cust)
    return cust


_TICKETS_OF_IDS = (select(MailMessageId.message_id, MailMessageId.ticket_id)  # built once: one cache key
                   .where(MailMessageId.message_id.in_(bindparam("ids", expanding=True)),
                          MailMessageId.ticket_id.isnot(None)))


def _find_by_message_ids(ids):
    ids = [i[:520] for i in ids if i][:200]
    if not ids:
        return None
    # No autoflush: the batch's pending Message-IDs are its own outbound mail, not sent before its
    # commit, so no mail of the batch can refer to them (inbound ids are written at once).
    with db.session.no_autoflush:
        rows = dict(db.session.execute(_TICKETS_OF_IDS, {"ids": ids}).all())
    for i in ids:  # in the order asked (the threading rules order them)
        claimed = bulkrows.find(MailMessageId, i)  # (a key this batch claimed: not written yet)
        if claimed is not None and claimed["ticket_id"]:
            return claimed["ticket_id"]
        if rows.get(i):
            return rows[i]
    return None


def _key_row(key):
    """The MailMessageId of a key (or, for a key this batch claimed in memory, its values), or None."""
    claimed = bulkrows.find(MailMessageId, key)
    if claimed is not None:
        return SimpleNamespace(**claimed)
    return db.session.get(MailMessageId, key)


def _ticket_by_number(number):
    from .threading import TicketRef

    # a ticket of this batch is not written yet (and reading would flush the batch)
    t = next((t for t in batchcache.values("new_ticket") if t.number == number), None)
    if t is None:
        with db.session.no_autoflush:
            t = db.session.execute(select(Ticket).where(Ticket.number == number).options(*_NO_TAGS)
                                   ).scalar_one_or_none()
    if t is None:
        return None
    customer = batchcache.get("assigned", (Customer, t.customer_id))
    if customer is not None:
        parts = {e.email.lower() for e in customer.emails}
    else:
        with db.session.no_autoflush:
            parts = {e.lower() for e in db.session.execute(
                select(CustomerEmail.email).where(CustomerEmail.customer_id == t.customer_id)).scalars()}
    parts |= {a.lower() for a in (t.cc_addresses or [])}
    if t.reply_to:
        parts.add(t.reply_to.lower())
    return TicketRef(id=t.id, participants=parts)


def _ticket_from_token(value):
    from . import tokens

    return tokens.ticket_from_token(value, current_app.config["SECRET_KEY"])


def _split_attachments(msg):
    """(files to keep, refused [(filename, reason)]): size limit and blocked types."""
    cfg = current_app.config
    limit = min(cfg.get("MAIL_MAX_ATTACHMENT_BYTES") or cfg["MAX_ATTACHMENT_BYTES"], cfg["MAX_ATTACHMENT_BYTES"])
    blocked = {e.strip().lower().lstrip(".") for e in (cfg.get("MAIL_BLOCKED_EXTENSIONS") or "").split(",") if e.strip()}
    keep, refused = [], []
    for att in msg.attachments:
        ext = att.filename.rsplit(".", 1)[-1].lower() if "." in att.filename else ""
        if len(att.data) > limit:
            refused.append((att.filename, f"larger than {limit // (1024 * 1024)} MB"))
        elif ext in blocked:
            refused.append((att.filename, f"file type .{ext} is not accepted"))
        else:
            keep.append(att)
    return keep, refused


def _files(atts):
    return [(a.filename, a.content_type, a.data) for a in atts]


# Built once: its cache key is computed once. On the table, not the ORM class: no autoflush (what is
# pending is written by the next flush) and no scan of the session's objects (it holds no copy of a
# key row that was claimed by a Core INSERT and is linked here in the same message).
_LINK_KEY = (update(MailMessageId.__table__).where(MailMessageId.__table__.c.message_id == bindparam("key"))
             .values(ticket_id=bindparam("ticket"), message_row_id=bindparam("message")))


def _message_columns(row, msg, rule, original=None):
    """The mail's own columns of its ticket message: Message-ID, thread rule, inbound row and, when
    quoted text was cut, the original text and HTML."""
    columns = {"email_message_id": (msg.message_id or "")[:520] or None, "thread_rule": rule, "inbound_id": row.id}
    if original is not None:
        columns["original_text"], columns["original_html"] = original
    return columns


def _after_message(row, msg, key, ticket, message, rule, kept, refused, automated, now, action):
    """Shared bookkeeping once the ticket message exists (written with `_message_columns`)."""
    if not idalloc.assign(message):  # a new ticket's first message is written by the next flush
        db.session.flush()
    claimed = bulkrows.find(MailMessageId, key)
    if claimed is not None:  # claimed in memory by this batch: written with its ticket and message
        claimed["ticket_id"], claimed["message_row_id"] = ticket.id, message.id
    else:
        db.session.connection().execute(_LINK_KEY, {"key": key, "ticket": ticket.id, "message": message.id})
    if kept:
        stored = getattr(message, "stored_attachments", None)
        if stored is None:
            stored = db.session.execute(select(Attachment).where(Attachment.message_id == message.id)
                                        .order_by(Attachment.id)).scalars().all()
        for att, src in zip(stored, kept):
            att.content_id = (src.content_id or "")[:255] or None
            att.inline = bool(src.inline)
    if refused:
        tickets.audit(ticket.id, None, "attachment_refused", None, ", ".join(f for f, _ in refused)[:300],
                      note="; ".join(f"{f}: {r}" for f, r in refused))
        to = msg.reply_to[0] if msg.reply_to else msg.from_addr
        if not automated and to:
            _outbound("queue_refused_files", ticket.id, to, refused)
    return _finish(row, msg, action, ticket=ticket, rule=rule, message_row=message, now=now)


def _outbound(fn, *args):
    """Call the outbound mail service when it exists (it lands with the outbound-mail work)."""
    try:
        from . import outbound
    except ImportError:
        return None
    target = getattr(outbound, fn, None)
    return target(*args) if target else None


def _create(row, msg, key, customer, decision, kept, refused, automated, mailbox, ctx, now):
    subject = msg.subject.strip() or "(no subject)"
    text, html = msg.body_text or "", msg.body_html
    if not text.strip() and not html:
        text = NO_TEXT
    columns = {"mailbox_id": mailbox.id if mailbox is not None else None, "automated_sender": automated,
               "cc_addresses": _cc_list(msg, ctx.own, customer) or None}
    if msg.reply_to and msg.reply_to[0] != msg.from_addr:
        columns["reply_to"] = msg.reply_to[0][:320]
    ticket = tickets.create_ticket(customer_id=customer.id, subject=subject, body_text=text, body_html=html,
                                   channel="email", queue_id=ctx.queue_id(mailbox), files=_files(kept),
                                   linked_ticket_id=decision.linked_ticket_id, now=now, columns=columns,
                                   message_columns=_message_columns(row, msg, decision.rule))
    message = getattr(ticket, "first_message", None) or \
        db.session.execute(select(Message).where(Message.ticket_id == ticket.id)).scalars().first()
    if not automated and customer.primary_email != UNKNOWN_SENDER:
        _outbound("queue_acknowledgement", ticket.id)
    return _after_message(row, msg, key, ticket, message, decision.rule, kept, refused, automated, now, "created")


def _cc_list(msg, own, customer):
    mine = {e.email for e in customer.emails} | {msg.from_addr}
    seen, out = set(), []
    for a in list(msg.to) + list(msg.cc):
        a = a.lower()
        if a in own or a in mine or a in seen or "@" not in a or "+" in a.split("@")[0] and \
                a.split("+")[0] + "@" + a.split("@")[1] in own:
            continue
        seen.add(a)
        out.append(a)
    return out[:50]


def _append(row, msg, key, ticket, customer, rule, kept, refused, automated, now):
    from .quotes import visible_html, visible_text

    text, html = msg.body_text or "", msg.body_html
    shown_text = visible_text(text) if text else text
    shown_html = visible_html(html) if html else html
    original = None
    if shown_text != text or shown_html != html:
        original = (text, html)
    if not (shown_text or "").strip() and not shown_html:
        shown_text = NO_TEXT if not kept else ""
    owner = ticket.customer_id
    new_ticket, message = tickets.add_customer_message(
        ticket.id, owner, body_text=shown_text, body_html=shown_html, files=_files(kept), channel="email",
        now=now, author_customer_id=customer.id if customer.id != owner else None,
        message_columns=_message_columns(row, msg, rule, original))
    if customer.id != owner:
        cc = list(ticket.cc_addresses or [])
        if customer.primary_email not in cc:
            ticket.cc_addresses = cc + [customer.primary_email]
    if new_ticket.id != ticket.id:  # a reply to a closed ticket opened a linked one
        new_ticket.mailbox_id = ticket.mailbox_id
        new_ticket.automated_sender = automated
        return _after_message(row, msg, key, new_ticket, message, rule, kept, refused, automated, now, "created")
    return _after_message(row, msg, key, ticket, message, rule, kept, refused, automated, now, "appended")


def _own_bounce(row, msg, key, verdict, now, ctx=None):
    """A bounce: attached to the ticket of our mail it bounced; a hard one flags the address."""
    from .classify import bounce_info

    info = bounce_info(msg)
    ticket = None
    if info.original_message_ids:
        tid = _find_by_message_ids(info.original_message_ids)
        ticket = db.session.get(Ticket, tid) if tid else None
    if ticket is not None:
        _claim_key(key, row, ticket_id=ticket.id, ctx=ctx)
        status = info.status or "?"
        body = f"Delivery failure ({status}) for {', '.join(info.recipients) or 'the recipient'}.\n\n" \
               + (msg.body_text or "")[:4000]
        note = Message(ticket_id=ticket.id, kind="note", body_text=body, channel="email", created_at=now,
                       thread_rule="bounce", inbound_id=row.id)
        db.session.add(note)
        if not idalloc.assign(note):  # in a batch: written by its flush
            db.session.flush()
        tickets.audit(ticket.id, None, "bounce", None, status, note=", ".join(info.recipients)[:500])
        if info.hard:
            for addr in info.recipients:
                ce = customers.customer_email_row(addr)
                if ce is not None and ce.bouncing_at is None:
                    ce.bouncing_at, ce.bounce_reason = now, f"{status} bounce of ticket #{ticket.number}"[:300]
                    batchcache.put("bouncing", ce.email, True)
        return _finish(row, msg, "ignored", ticket=ticket, reason="own_bounce", error=verdict.reason,
                       message_row=note, now=now)
    _claim_key(key, row, ctx=ctx)
    if info.original_message_ids:  # a bounce of an announcement (maintenance notice, marketing mail)
        from ..subscriptions.delivery import mark_bounced

        found = mark_bounced(info.original_message_ids, info.hard, now)
        if found:
            for addr in info.recipients:
                batchcache.put("bouncing", addr.lower(), bool(info.hard))
            if info.hard:  # the addresses the announcements went to (the report may name others)
                for d in found:
                    if d.email:
                        batchcache.put("bouncing", d.email.lower(), True)
            return _finish(row, msg, "ignored", reason="own_bounce", error=verdict.reason, now=now)
    return _finish(row, msg, "ignored", reason="bounce", error=verdict.reason, now=now)


def scan_attachments(stored):
    """Scan new attachments (any channel) when a ClamAV daemon is configured; see _scan."""
    _scan(stored)


def _scan(stored):
    """Virus scanning when a ClamAV daemon is configured; attachments stay `unscanned` otherwise."""
    from . import clamd

    scanner = clamd.from_config(current_app.config)
    if scanner is None:
        return

    down, results = None, {}  # sha256 -> signature, None (clean) or the daemon's refusal (ClamdError)
    for att in stored:
        if down is None and att.sha256 not in results:
            try:
                results[att.sha256] = scanner.scan(storage.read_bytes(att.sha256))
            except clamd.ClamdUnavailable as exc:
                down = exc  # not asked again for this message's other files (no timeout per file)
            except clamd.ClamdError as exc:
                results[att.sha256] = exc
        found = results.get(att.sha256, down)
        if isinstance(found, clamd.ClamdError):
            att.scan_status, att.scan_result = "pending", f"not scanned: {found}"[:200]
            continue
        if found:
            att.scan_status, att.scan_result = "infected", found[:200]
            tickets.audit(att.ticket_id, None, "attachment_infected", None, att.filename[:300], note=found)
        else:
            att.scan_status, att.scan_result = "clean", None


# ---------------------------------------------------------------- reprocessing and tools

def reprocess(inbound_id, actor_id, *, force_ticket=False, now=None):
    """Run a quarantined or ignored message through the pipeline again (an admin's one click).

    force_ticket turns an ignored message (spam) into a ticket. Audited. Returns the row.
    """
    now = now or utcnow()
    row = db.session.get(InboundMessage, inbound_id)
    if row is None:
        raise NotFound("Inbound message not found.")
    if row.result not in ("quarantined", "ignored"):
        raise DomainError("Only quarantined or ignored messages can be reprocessed.")
    raw = rawstore.load(row.raw_sha256)
    if raw is None:
        raise DomainError("The raw message is missing from the raw store.")
    msg = parse_safe(raw)
    if not isinstance(msg, str) and force_ticket:
        existing = db.session.get(MailMessageId, _dedupe_key(msg))
        if existing is not None and existing.ticket_id is None:
            db.session.delete(existing)  # an ignored message's key: the ticket takes it over
            db.session.flush()
    row.result, row.error, row.reason, row.rule = "pending", None, None, None
    with db.session.begin_nested():
        ingest_parsed(row, msg, _Context(), now=now, force_ticket=force_ticket)
    tickets.audit(row.ticket_id, actor_id, "mail_reprocessed", None, row.result, object_type="inbound",
                  object_id=row.id, note=f"force_ticket={force_ticket}")
    return row


def test_connection(mailbox_id):
    """Log in and select the folder: (ok, detail)."""
    from .fetch import open_connection

    mb = db.session.get(Mailbox, mailbox_id)
    if mb is None:
        raise NotFound("Mailbox not found.")
    cfg = _config_of(mb)
    if cfg.error:
        return False, cfg.error
    try:
        with open_connection(cfg) as conn:
            st = conn.select(cfg.folder)
        return True, f"{cfg.folder}: {st.exists} messages, UIDVALIDITY {st.uidvalidity}"
    except Exception as exc:  # noqa: BLE001 - shown to the admin
        return False, f"{type(exc).__name__}: {exc}"

