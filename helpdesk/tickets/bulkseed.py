"""Bulk loader for large realistic data sets (the latency benchmark and the query-budget tests).

Rows are generated in Python, 20,000 tickets at a time, and written in bulk, never through the
ORM: on SQLite one Core INSERT prepared once and run for every row of a batch (executemany); on
PostgreSQL COPY, and for tickets COPY into a temporary table and then one INSERT ... SELECT that
also computes the tsvector, so the search index is filled in the same pass (SQLite: the FTS5 table,
by executemany). Multi-row INSERT ... VALUES statements were measured too: building and binding
thousands of parameters per statement made them the slowest of all (about 4,000 rows per second).
The secondary indexes (and, on PostgreSQL, the foreign keys) of the big tables are dropped for the
load and rebuilt once at the end, then ticket_counts is rebuilt.

About a quarter of the tickets contain COMMON_WORD and one per load contains RARE_TERM, so
searches of both kinds have known answers. 1,000,000 tickets load in about two minutes on
PostgreSQL, 100,000 in about ten seconds on SQLite (2 cores).
"""
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, insert, select, text, update

from ..auth.models import User, UserRole
from ..auth.services import hash_password
from ..cli import FIRST, LAST, QUEUES
from ..customers.models import Customer, CustomerEmail
from ..extensions import db
from ..timeutil import utcnow
from . import counts
from .html import preview
from .models import Counter, Message, Queue, QueueMember, Tag, Ticket, ticket_tags
from .search import compose_document

COMMON_WORD = "hosting"
RARE_TERM = "ORD-93817264"
PASSWORD = "bench-password-123"
ADMIN_EMAIL = "bench.admin@example.com"
AGENT_QUEUE = "technical-support"  # the queue of SeedResult.agent_email, which also holds the rare ticket
AGENTS_PER_QUEUE = 3
QUEUE_ROLES = {"customer-support": "customer_support", "technical-support": "technical_support",
               "billing": "billing", "marketing": "marketing"}
TAGS = ("domain", "website", "seo", "invoice", "vip", "ssl", "email", "refund", "promo", "dns")
STATUS_WEIGHTS = {"new": 8, "open": 14, "pending_customer": 7, "pending_billing": 3, "resolved": 18, "closed": 50}
PRIORITY_WEIGHTS = {"low": 20, "normal": 55, "high": 18, "urgent": 7}
CHANNEL_WEIGHTS = {"email": 40, "web": 25, "phone": 12, "walk_in": 5, "chat": 12, "social": 6}
DOMAINS = ("gmail.com", "yahoo.co.id", "outlook.com", "batiksekar.co.id", "kopimerapi.id", "mataramweb.co.id")
HISTORY_DAYS = 730
BATCH_ROWS = 20_000  # tickets generated per round (memory stays flat at 1M)

# Texts never contain COMMON_WORD or RARE_TERM by accident: those are added on purpose below.
SUBJECTS = (
    "Website tidak bisa dibuka sejak pagi", "Email tidak bisa kirim dari Outlook", "SSL certificate expired",
    "Perpanjangan domain", "Ganti password cPanel", "Question about reseller programme",
    "Konfirmasi pembayaran invoice", "Refund cashback website", "Invoice double charged",
    "Minta penawaran paket SEO", "Daily deal untuk restoran", "Franchise programme info",
    "Website lambat sekali", "Cannot log in to the client area", "DNS belum propagasi",
    "Upgrade paket toko online", "Backup data hilang", "Payment via virtual account failed",
    "Error 500 di halaman checkout", "Permintaan faktur pajak", "Migrasi website dari provider lain",
    "Domain transfer stuck", "Pertanyaan tentang garansi website", "Akun diblokir",
)
COMMON_SUBJECTS = ("Paket {w} penuh", "{w} renewal question", "Masalah {w} sejak kemarin", "Upgrade {w} bisnis")
OPENINGS = (
    "Selamat pagi, saya mau tanya.", "Halo tim support,", "Dear support team,", "Selamat siang kak,",
    "Good afternoon,", "Permisi, mohon bantuannya.", "Hi there,", "Assalamualaikum, selamat sore.",
)
DETAILS = (
    "Sejak tadi pagi website kami tidak bisa diakses dan muncul pesan error.",
    "Saya sudah mencoba menghapus cache browser tetapi masih sama.",
    "Our online shop has been very slow since the last update.",
    "Pembayaran sudah saya transfer melalui BCA kemarin sore.",
    "I was charged twice for the same invoice this month.",
    "Mohon dicek apakah domain kami sudah diperpanjang.",
    "Customers report that the checkout page shows a blank screen.",
    "Email dari kantor tidak terkirim, selalu kembali dengan pesan gagal.",
    "Kami ingin menambahkan fitur pembayaran QRIS di toko online.",
    "The SSL padlock disappeared and browsers warn our visitors.",
    "Password akun saya tidak bisa direset lewat email.",
    "Tolong kirimkan faktur pajak untuk pembayaran bulan lalu.",
    "We would like to move our site from another provider next week.",
    "Apakah ada promo untuk perpanjangan tahunan?",
    "Setelah update plugin, halaman admin tidak bisa dibuka.",
    "Our DNS records were changed and the site points to the wrong server.",
)
COMMON_DETAILS = (
    "Paket {w} kami sepertinya sudah penuh, mohon dicek kuotanya.",
    "Our {w} account shows a suspended notice.",
    "Berapa biaya upgrade {w} ke paket bisnis?",
    "Is the {w} plan renewed automatically every year?",
)
CLOSINGS = ("Terima kasih.", "Thanks in advance.", "Mohon segera dibantu ya.", "Salam,", "Regards,", "Ditunggu kabarnya.")
AGENT_REPLIES = (
    "Halo, terima kasih sudah menghubungi kami. Kami sedang memeriksa masalah ini.",
    "Hello, thank you for reaching out. Our technical team is looking into it.",
    "Pembayaran Anda sudah kami terima dan invoice sudah lunas.",
    "Kami sudah memperbarui sertifikat SSL, silakan dicek kembali.",
    "Could you please send us a screenshot of the error message?",
    "Domain Anda sudah diperpanjang sampai tahun depan.",
    "Mohon coba login kembali, password sudah kami reset.",
    "We have refunded the duplicate charge; it takes 3-5 working days.",
)
FOLLOW_UPS = (
    "Sudah bisa, terima kasih banyak!", "It still does not work, please check again.",
    "Baik, screenshot saya lampirkan di email berikutnya.", "Thanks, that solved it.",
    "Masih error kak, mohon dicek lagi.", "Kapan kira-kira selesai?",
)


@dataclass
class SeedResult:
    """What was loaded, and the handles a benchmark or a test needs."""

    tickets: int
    seconds: float
    admin_email: str = ADMIN_EMAIL
    agent_email: str = ""
    agent_queue_slug: str = ""
    password: str = PASSWORD
    rare_term: str = RARE_TERM
    rare_ticket_number: int = 0
    common_word: str = COMMON_WORD
    common_count: int = 0
    first_number: int = 0
    queue_ids: dict = field(default_factory=dict)


def _weighted(rnd, weights, n):
    return rnd.choices(list(weights), weights=list(weights.values()), k=n)


def _ts(value):
    """A datetime as text in the form SQLAlchemy stores on SQLite (PostgreSQL parses it too)."""
    return value.isoformat(sep=" ", timespec="microseconds")


def _load(conn, table, columns, rows, derived=None):
    """Write many rows at once: COPY on PostgreSQL, one prepared Core INSERT run for every row on SQLite.

    `derived` (PostgreSQL) maps more target columns to SQL over the extra trailing row values: the
    rows are then copied into a temporary table and moved with one INSERT ... SELECT.
    """
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.exec_driver_sql(str(insert(table).compile(dialect=conn.dialect, column_keys=list(columns))), rows)
        return
    target = table.name
    if derived:
        target = f"bulk_{table.name}"
        extra = [f"{name} text" for name in derived["inputs"]]
        cols = [f"{c} {table.c[c].type.compile(dialect=conn.dialect)}" for c in columns]
        conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {target} ({', '.join(cols + extra)}) ON COMMIT DROP")
        columns = list(columns) + list(derived["inputs"])
    with conn.connection.driver_connection.cursor() as cur:
        with cur.copy(f"COPY {target} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    if derived:
        plain = [c for c in columns if c not in derived["inputs"]]
        conn.exec_driver_sql(
            f"INSERT INTO {table.name} ({', '.join(plain + list(derived['columns']))}) "
            f"SELECT {', '.join(plain + list(derived['columns'].values()))} FROM {target}")
        conn.exec_driver_sql(f"TRUNCATE {target}")


@contextmanager
def _deferred_indexes(conn, tables):
    """Drop the secondary indexes (and, on PostgreSQL, the foreign keys) of these tables for the
    load, then rebuild them: one index build per index instead of a million insertions."""
    pg = conn.dialect.name == "postgresql"
    if pg:
        indexes = conn.execute(text(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
            "AND i.tablename = ANY(:t) AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
        ), {"t": list(tables)}).all()
        keys = conn.execute(text(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'f' AND conrelid::regclass::text = ANY(:t)"), {"t": list(tables)}).all()
    else:
        indexes = conn.execute(text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ("
            + ", ".join(f"'{t}'" for t in tables) + ")")).all()
        keys = []
    for table, name, _definition in keys:
        conn.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _sql in indexes:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    yield
    for _name, sql in indexes:
        conn.exec_driver_sql(sql)
    for table, name, definition in keys:
        conn.exec_driver_sql(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


def _next_id(conn, model):
    return (conn.execute(select(func.max(model.id))).scalar() or 0) + 1


def _reset_sequences(conn, tables):
    """PostgreSQL: move the id sequences past the explicitly numbered rows."""
    if conn.dialect.name != "postgresql":
        return
    for t in tables:
        conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), "
                          f"GREATEST((SELECT max(id) FROM {t}), 1))"))


def _staff(password):
    """Queues (reused when present), one admin and AGENTS_PER_QUEUE agents per queue, via the ORM."""
    existing = {q.slug: q for q in db.session.execute(select(Queue)).scalars()}
    queues = {slug: existing.get(slug) or Queue(slug=slug, name=name) for slug, name in QUEUES}
    db.session.add_all(queues.values())
    db.session.flush()
    pw_hash = hash_password(password)

    def user(email, name, role):
        u = db.session.execute(select(User).where(User.email == email)).scalar_one_or_none()
        if u is None:
            u = User(email=email, name=name, password_hash=pw_hash, active=True, skip_2fa=True,
                     roles_rel=[UserRole(role=role)])
            db.session.add(u)
            db.session.flush()
        return u

    user(ADMIN_EMAIL, "Admin Benchmark", "admin")
    agents = {}
    for slug, q in queues.items():
        agents[slug] = []
        for k in range(AGENTS_PER_QUEUE):
            u = user(f"bench.{slug}.{k}@example.com", f"{FIRST[k % len(FIRST)]} {q.name} {k}", QUEUE_ROLES[slug])
            if db.session.get(QueueMember, (q.id, u.id)) is None:
                db.session.add(QueueMember(queue_id=q.id, user_id=u.id))
            agents[slug].append(u.id)
        q.lead_id = q.lead_id or agents[slug][0]
    queue_ids = {slug: q.id for slug, q in queues.items()}
    db.session.commit()  # and touch no ORM object after: the bulk load must not wait on this session
    return queue_ids, agents


CUSTOMER_COLUMNS = ("id", "name", "phone", "kind", "language", "support_tier", "created_at")
EMAIL_COLUMNS = ("id", "customer_id", "email", "is_primary", "created_at")


def _customers(conn, rnd, n):
    """n customers with one primary email each. Returns [(id, name, email)]."""
    first_id, first_email_id = _next_id(conn, Customer), _next_id(conn, CustomerEmail)
    now = _ts(utcnow())
    out, cust_rows, email_rows = [], [], []
    for i in range(n):
        cid = first_id + i
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        name = f"{first} {last}"
        email = f"{first}.{last}.{cid}@{rnd.choice(DOMAINS)}".lower()
        cust_rows.append((cid, name, f"+628{rnd.randrange(10**9, 10**10)}", "b2b" if i % 7 == 0 else "b2c",
                          rnd.choice(("id", "id", "en", None)), "standard", now))
        email_rows.append((first_email_id + i, cid, email, True, now))
        out.append((cid, name, email))
    _load(conn, Customer.__table__, CUSTOMER_COLUMNS, cust_rows)
    _load(conn, CustomerEmail.__table__, EMAIL_COLUMNS, email_rows)
    return out


def _tags(conn):
    existing = dict(conn.execute(select(Tag.name, Tag.id)).all())
    missing = [{"name": t} for t in TAGS if t not in existing]
    if missing:
        conn.execute(insert(Tag.__table__).values(missing))
    return [tid for name, tid in conn.execute(select(Tag.name, Tag.id)).all() if name in TAGS]


def _customer_text(rnd, common):
    parts = [rnd.choice(OPENINGS), rnd.choice(DETAILS)]
    if common:
        parts.append(rnd.choice(COMMON_DETAILS).format(w=COMMON_WORD))
    if rnd.random() < 0.3:
        parts.append(f"Nomor invoice INV-{rnd.randrange(100000, 999999)}.")
    parts.append(rnd.choice(CLOSINGS))
    return " ".join(parts)


TICKET_COLUMNS = ("id", "number", "subject", "channel", "status", "priority", "queue_id", "assignee_id",
                  "customer_id", "customer_replied", "created_at", "first_response_at", "last_customer_message_at",
                  "last_agent_message_at", "last_activity_at", "resolved_at", "closed_at", "last_message_preview",
                  "message_count")
MESSAGE_COLUMNS = ("id", "ticket_id", "kind", "author_user_id", "author_customer_id", "channel", "body_text",
                   "created_at")
TAG_COLUMNS = ("ticket_id", "tag_id")
# PostgreSQL fills the search index in the same INSERT; each ticket row carries its document last.
SEARCH_VECTOR = {"inputs": ("doc",), "columns": {"search_vector": "to_tsvector('simple', doc)"}}


class _Generator:
    """Builds ticket, message and tag rows (tuples in the *_COLUMNS order) for a range of tickets."""

    def __init__(self, rnd, n, first_id, first_number, first_msg_id, queue_ids, agents, customers, tag_ids):
        self.rnd, self.n = rnd, n
        self.first_id, self.first_number, self.next_msg_id = first_id, first_number, first_msg_id
        self.queue_slugs = list(queue_ids)
        self.queue_ids, self.agents, self.customers, self.tag_ids = queue_ids, agents, customers, tag_ids
        self.now = utcnow().replace(microsecond=0)
        self.rare_index = n // 3
        self.common_count = 0

    def _status_priority_assignee(self, i, status, priority, slug):
        """Random, except that the first tickets cover every queue, open status, view and the usual
        filter (open + high), and the rare ticket is open and assigned: small data sets then show
        the same kinds of rows as big ones (the query-budget tests compare the two)."""
        if i < 12:
            status = ("new", "open", "pending_customer")[i % 3]
            return status, ("high" if status == "open" else priority), \
                (self.agents[slug][0] if (i // 4) % 2 == 0 else None)
        if i == self.rare_index:
            return "open", priority, self.agents[slug][0]
        share = 0.3 if status == "new" else 0.9
        return status, priority, (self.rnd.choice(self.agents[slug]) if self.rnd.random() < share else None)

    def _thread(self, i, status, subject, common, slug, assignee, cust_id, created):
        """The messages: (time, kind, agent id, customer id, text), first one from the customer."""
        rnd = self.rnd
        body = _customer_text(rnd, common and COMMON_WORD not in subject)
        if i == self.rare_index:
            body += f" Nomor pesanan saya {RARE_TERM}, mohon dicek."
        thread = [(created, "reply", None, cust_id, body)]
        if status == "new":
            return thread
        span = min((self.now - created).total_seconds(), 14 * 86400) * 0.5
        t_agent = created + timedelta(seconds=int(rnd.random() * span))
        kind = "note" if rnd.random() < 0.1 else "reply"
        thread.append((t_agent, kind, assignee or self.agents[slug][0], None, rnd.choice(AGENT_REPLIES)))
        if rnd.random() < 0.35:
            thread.append((t_agent + timedelta(seconds=int(rnd.random() * span)), "reply", None, cust_id,
                           rnd.choice(FOLLOW_UPS)))
        return thread

    def batch(self, start, stop):
        """(ticket rows with their search document appended, message rows, tag rows)."""
        rnd, count = self.rnd, stop - start
        statuses = _weighted(rnd, STATUS_WEIGHTS, count)
        priorities = _weighted(rnd, PRIORITY_WEIGHTS, count)
        channels = _weighted(rnd, CHANNEL_WEIGHTS, count)
        tickets, messages, tags = [], [], []
        for j, i in enumerate(range(start, stop)):
            slug = AGENT_QUEUE if i == self.rare_index else self.queue_slugs[i % len(self.queue_slugs)]
            status, priority, assignee = self._status_priority_assignee(i, statuses[j], priorities[j], slug)
            common = rnd.random() < 0.25 and i != self.rare_index
            self.common_count += common
            tid, number = self.first_id + i, self.first_number + i
            cust_id, cust_name, cust_email = rnd.choice(self.customers)
            created = self.now - timedelta(seconds=rnd.randrange(HISTORY_DAYS * 86400))
            subject = rnd.choice(COMMON_SUBJECTS).format(w=COMMON_WORD) if common and rnd.random() < 0.4 \
                else rnd.choice(SUBJECTS)
            thread = self._thread(i, status, subject, common, slug, assignee, cust_id, created)
            last_activity = thread[-1][0] + (timedelta(hours=1) if status in ("resolved", "closed") else timedelta())
            last_reply = next(m for m in reversed(thread) if m[1] == "reply")
            agent_times = [_ts(m[0]) for m in thread if m[2] is not None]
            done = _ts(last_activity) if status in ("resolved", "closed") else None
            tickets.append((
                tid, number, subject, channels[j], status, priority, self.queue_ids[slug], assignee, cust_id,
                status == "pending_billing" and len(thread) == 3, _ts(created),
                agent_times[0] if agent_times else None,
                _ts(max(m[0] for m in thread if m[3] is not None)), agent_times[-1] if agent_times else None,
                _ts(last_activity), done, done if status == "closed" else None, preview(last_reply[4]), len(thread),
                compose_document(number, subject, cust_name, [cust_email], [m[4] for m in thread]),
            ))
            for at, kind, user_id, customer_id, body in thread:
                messages.append((self.next_msg_id, tid, kind, user_id, customer_id,
                                 channels[j] if customer_id else None, body, _ts(at)))
                self.next_msg_id += 1
            if rnd.random() < 0.3:
                tags.extend((tid, tag_id) for tag_id in rnd.sample(self.tag_ids, k=rnd.choice((1, 1, 2))))
        return tickets, messages, tags


class _Phases:
    """Seconds spent per phase of the load, for the log."""

    def __init__(self):
        self.seconds = {}

    @contextmanager
    def __call__(self, name):
        t0 = time.monotonic()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.monotonic() - t0

    def __str__(self):
        return ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())


def _load_batch(conn, tickets, messages, tags, phase):
    pg = conn.dialect.name == "postgresql"
    with phase("tickets"):
        if pg:
            _load(conn, Ticket.__table__, TICKET_COLUMNS, tickets, SEARCH_VECTOR)
        else:
            _load(conn, Ticket.__table__, TICKET_COLUMNS, [t[:-1] for t in tickets])
    with phase("messages"):
        _load(conn, Message.__table__, MESSAGE_COLUMNS, messages)
        _load(conn, ticket_tags, TAG_COLUMNS, tags)
    if not pg:
        with phase("search"):
            conn.exec_driver_sql("INSERT INTO ticket_fts(rowid, doc) VALUES (?, ?)", [(t[0], t[-1]) for t in tickets])


def seed(n_tickets, *, password=PASSWORD, rng_seed=20261128, analyze=True, log=None):
    """Load n_tickets tickets (with customers, messages, tags and the search index). Needs an app context."""
    started = time.monotonic()
    phase = _Phases()
    rnd = random.Random(rng_seed)
    queue_ids, agents = _staff(password)
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
        with _deferred_indexes(conn, ["customers", "customer_emails", "tickets", "messages", "ticket_tags"]):
            with phase("customers"):
                customers = _customers(conn, rnd, max(5, n_tickets // 10))
            first_number = (conn.execute(select(func.max(Ticket.number))).scalar() or 1000) + 1
            gen = _Generator(rnd, n_tickets, _next_id(conn, Ticket), first_number, _next_id(conn, Message),
                             queue_ids, agents, customers, _tags(conn))
            for start in range(0, n_tickets, BATCH_ROWS):
                with phase("generate"):
                    tickets, messages, tags = gen.batch(start, min(n_tickets, start + BATCH_ROWS))
                _load_batch(conn, tickets, messages, tags, phase)
                if log:
                    log(f"seeded {min(n_tickets, start + BATCH_ROWS)}/{n_tickets} tickets "
                        f"({time.monotonic() - started:.0f} s)")
            index_started = time.monotonic()
        phase.seconds["indexes"] = time.monotonic() - index_started
        conn.execute(update(Counter).where(Counter.name == "ticket").values(value=first_number + n_tickets - 1))
        _reset_sequences(conn, ["customers", "customer_emails", "tickets", "messages"])
    with phase("counts"):
        counts.rebuild(db.session)
        db.session.commit()
    if analyze:
        with phase("analyze"):
            _analyze()
    if log:
        log(f"phases: {phase}")
    return SeedResult(
        tickets=n_tickets, seconds=time.monotonic() - started, agent_email=f"bench.{AGENT_QUEUE}.0@example.com",
        agent_queue_slug=AGENT_QUEUE, password=password, rare_ticket_number=first_number + gen.rare_index,
        common_count=gen.common_count, first_number=first_number, queue_ids=queue_ids,
    )


def _analyze():
    """PostgreSQL: VACUUM ANALYZE the loaded tables, as autovacuum soon would after a load.

    SQLite gets no ANALYZE: the application never runs one, so the planner works without
    statistics in real use, and the benchmark and the tests measure that case.
    """
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE customers, customer_emails, tickets, messages, ticket_tags, "
                                 "ticket_counts")
