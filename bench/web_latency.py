"""Agent-page latency at scale: seed N tickets in bulk, then time the desk's pages.

    python bench/web_latency.py --tickets 100000                       # a fresh SQLite file
    python bench/web_latency.py --tickets 1000000 \\
        --database-url postgresql://postgres@127.0.0.1:5432/bench_perf  # schema dropped and migrated

Pages are requested through the Flask test client (the full stack: routing, login, SQL and
templates, no network), logged in as an admin and as a queue agent. Each figure is taken over
--requests requests after a warm-up. Output is name=value lines; times are milliseconds.
"""
import argparse
import re
from contextlib import contextmanager
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, event, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from config import TestConfig, _normalise_db_url  # noqa: E402

DEEP_PAGES = 50
WARMUP = 3
NEXT_LINK = re.compile(r'rel="next" href="([^"]+)"')


def log(msg):
    print(f"# {msg}", file=sys.stderr, flush=True)


def emit(results):
    """The results as name=value lines on stdout."""
    for key, value in results.items():
        print(f"{key}={value}")


@contextmanager
def bench_workdir(prefix, keep=False):
    """A temporary directory (the SQLite file, attachments), removed afterwards unless `keep`."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        if keep:
            log(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def make_app(url, workdir):
    """The app on an empty database migrated with the real migrations (`flask db upgrade`)."""
    if url.startswith("postgresql"):
        _ensure_pg_database(url)
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    from flask_migrate import upgrade

    from helpdesk import create_app, init_migrations

    app = create_app(TestConfig(SQLALCHEMY_DATABASE_URI=url, INSTANCE_PATH=str(workdir / "instance"),
                                ATTACHMENT_DIR=str(workdir / "attachments"), WTF_CSRF_ENABLED=False))
    init_migrations(app)
    with app.app_context():
        upgrade()
    return app


def _ensure_pg_database(url):
    name = make_url(url).database
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


class StatementCounter:
    """Counts SQL statements sent to the database (before_cursor_execute)."""

    def __init__(self, engine):
        self.n = 0
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *_args):
        self.n += 1


def percentile(values, p):
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def fetch(client, url):
    resp = client.get(url)
    if resp.status_code != 200:
        sys.exit(f"GET {url} answered {resp.status_code}")
    return resp.get_data(as_text=True)


def timed(client, url, requests, counter):
    """(p50 ms, p95 ms, statements per request) over `requests` GETs after a warm-up."""
    for _ in range(WARMUP):
        fetch(client, url)
    samples = []
    before = counter.n
    for _ in range(requests):
        t0 = time.perf_counter()
        fetch(client, url)
        samples.append((time.perf_counter() - t0) * 1000)
    return percentile(samples, 50), percentile(samples, 95), (counter.n - before) / requests


def deep_page_url(client, first_url, pages=DEEP_PAGES):
    """Follow the `next` link up to `pages` times from the first page: (URL reached, depth)."""
    url, depth = first_url, 0
    for depth in range(1, pages + 1):
        m = NEXT_LINK.search(fetch(client, url))
        if not m:  # a small data set has fewer pages: the last one is the deepest
            return url, depth - 1
        url = m.group(1).replace("&amp;", "&")
    return url, depth


def scenarios(seeded, ticket_number):
    q = seeded.agent_queue_slug
    return {
        "queue_first_page": f"/?view=queue:{q}",
        "queue_deep_page": None,  # filled in by following the cursor
        "ticket_page": f"/tickets/{ticket_number}",
        "filtered_list": f"/?view=queue:{q}&status=open&priority=high",
        "search_rare": f"/?view=all&status=any&q={seeded.rare_term}",
        "search_common": f"/?view=all&status=any&q={seeded.common_word}",
    }


def measure(app, seeded, requests, counter):
    """Every scenario for the admin and the queue agent. Returns {name: value}."""
    from helpdesk.extensions import db
    from helpdesk.tickets.models import Ticket

    with app.app_context():
        qid = seeded.queue_ids[seeded.agent_queue_slug]
        ticket_number = db.session.execute(
            select(Ticket.number).where(Ticket.queue_id == qid, Ticket.message_count == 3)
            .order_by(Ticket.id).limit(1).offset(seeded.tickets // 10)).scalar() or seeded.rare_ticket_number
    results = {}
    for role, email in (("admin", seeded.admin_email), ("agent", seeded.agent_email)):
        client = app.test_client()
        resp = client.post("/login", data={"email": email, "password": seeded.password})
        if resp.status_code != 302:
            sys.exit(f"login of {email} failed ({resp.status_code})")
        urls = scenarios(seeded, ticket_number)
        urls["queue_deep_page"], results["deep_page_depth"] = deep_page_url(client, urls["queue_first_page"])
        rare_html = fetch(client, urls["search_rare"])
        results[f"{role}_search_rare_found"] = int(f">{seeded.rare_ticket_number}<" in rare_html)
        for name, url in urls.items():
            p50, p95, statements = timed(client, url, requests, counter)
            results[f"{role}_{name}_p50_ms"] = round(p50, 1)
            results[f"{role}_{name}_p95_ms"] = round(p95, 1)
            results[f"{role}_{name}_statements"] = round(statements, 1)
            log(f"{role} {name}: p50 {p50:.1f} ms, p95 {p95:.1f} ms, {statements:.0f} statements")
    for name in urls:
        for stat in ("p50", "p95"):
            results[f"{name}_{stat}_ms"] = max(results[f"{r}_{name}_{stat}_ms"] for r in ("admin", "agent"))
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tickets", type=int, default=10_000)
    ap.add_argument("--database-url", default=None,
                    help="PostgreSQL URL of a database of your own (its public schema is dropped); "
                         "default: a fresh SQLite file in a temporary directory")
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (SQLite file)")
    args = ap.parse_args(argv)

    with bench_workdir("helpdesk-bench-", args.keep) as workdir:
        url = _normalise_db_url(args.database_url) if args.database_url else f"sqlite:///{workdir}/bench.db"
        app = make_app(url, workdir)
        from helpdesk.extensions import db
        from helpdesk.tickets import bulkseed

        with app.app_context():
            seeded = bulkseed.seed(args.tickets, log=log)
            counter = StatementCounter(db.engine)
            dialect = db.engine.dialect.name
        log(f"seeded {args.tickets} tickets in {seeded.seconds:.1f} s")
        results = {"db": dialect, "tickets": args.tickets, "seed_seconds": round(seeded.seconds, 1),
                   "requests": args.requests}
        results.update(measure(app, seeded, args.requests, counter))
        emit(results)
        with app.app_context():
            db.engine.dispose()

if __name__ == "__main__":
    main()
