"""SLA at scale: seed N open tickets with running clocks, then time the sweep, the sorted queue page
and the monthly SLA report.

    python bench/sla_sweep.py --tickets 100000                       # a fresh SQLite file
    python bench/sla_sweep.py --tickets 1000000 \\
        --database-url postgresql://postgres@127.0.0.1:5432/bench_sla  # schema dropped and migrated

1. Loads N tickets with helpdesk.tickets.bulkseed (customers, messages, search index), then gives
   every open ticket a running first-response clock whose deadline lies between 4 hours ago and 3
   weeks ahead (uniformly), with its warning an hour before: about 1 % of the clocks have an alert
   due now. Resolved tickets get stopped clock runs over the last 30 days (85 % met) for the report.
2. Times one sweep (helpdesk.sla.jobs.sweep: claiming the due alerts and recording their alert jobs
   in the outbox, in batches, then the push to Redis; the jobs' sending is not included), and a
   second sweep right after it (nothing due: the idle cost of the every-minute cron).
3. Times the queue page sorted by "due soonest" (`sort=sla_due`) as an agent of the queue, and the
   SLA report for the current month as an admin, through the Flask test client.

Output: name=value lines, times in milliseconds. Redis: --redis-url (default the local server, db 14).
"""
import argparse
import os
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select, text  # noqa: E402

from bench.web_latency import StatementCounter, bench_workdir, emit, log, make_app, timed  # noqa: E402
from config import _normalise_db_url  # noqa: E402

HORIZON = timedelta(days=21)
OVERDUE = timedelta(hours=4)
WARN_BEFORE = timedelta(hours=1)


def _ts(value):
    return value.isoformat(sep=" ", timespec="microseconds")


def seed_clocks(now, rng_seed=20261129):
    """Running clocks on the open tickets, stopped runs on the resolved ones. Returns (open, due now)."""
    from helpdesk.extensions import db
    from helpdesk.sla.models import SlaClock, SlaPolicy
    from helpdesk.tickets.bulkseed import _deferred_indexes, _load, _next_id, _reset_sequences
    from helpdesk.tickets.models import Ticket

    rnd = random.Random(rng_seed)
    policy_id = db.session.execute(select(SlaPolicy.id).where(SlaPolicy.is_default.is_(True))).scalar_one()
    db.session.commit()  # end the read: the load below drops foreign keys that reference sla_policies
    with db.engine.begin() as conn:
        pg = conn.dialect.name == "postgresql"
        rows = conn.execute(select(Ticket.id, Ticket.status, Ticket.created_at, Ticket.queue_id, Ticket.priority,
                                   Ticket.assignee_id)).all()
        clock_id = _next_id(conn, SlaClock)
        clocks, dues, due_now = [], [], 0
        cols = ["id", "ticket_id", "policy_id", "target", "cycle", "state", "started_at", "target_minutes",
                "due_at", "warn_at", "alert_at", "paused_seconds", "stopped_at", "margin_seconds", "elapsed_seconds",
                "queue_id", "priority", "assignee_id"]
        for tid, status, created, queue_id, priority, assignee_id in rows:
            if status in ("resolved", "closed"):
                stopped = now - timedelta(seconds=rnd.randrange(30 * 86400))
                for target, minutes in (("first_response", 240), ("resolution", 1620)):
                    met = rnd.random() < 0.85
                    elapsed = rnd.randrange(60, minutes * 60) if met else minutes * 60 + rnd.randrange(60, 7200)
                    clocks.append((clock_id, tid, policy_id, target, 1, "met" if met else "breached",
                                   _ts(stopped - timedelta(seconds=elapsed)), minutes, _ts(stopped), None, None, 0,
                                   _ts(stopped), minutes * 60 - elapsed, elapsed, queue_id, priority, assignee_id))
                    clock_id += 1
                continue
            due = now - OVERDUE + HORIZON * rnd.random()
            warn = due - WARN_BEFORE
            due_now += warn <= now
            clocks.append((clock_id, tid, policy_id, "first_response", 1, "running", _ts(created), 240, _ts(due),
                           _ts(warn), _ts(warn), 0, None, None, None, None, None, None))
            dues.append((tid, _ts(due)))
            clock_id += 1
        with _deferred_indexes(conn, ["sla_clocks"]):
            _load(conn, SlaClock.__table__, cols, clocks)
        _reset_sequences(conn, ["sla_clocks"])
        if pg:
            conn.exec_driver_sql("CREATE TEMP TABLE sla_dues (id integer, due timestamp) ON COMMIT DROP")
            with conn.connection.driver_connection.cursor() as cur:
                with cur.copy("COPY sla_dues (id, due) FROM STDIN") as copy:
                    for row in dues:
                        copy.write_row(row)
            conn.exec_driver_sql("UPDATE tickets t SET next_sla_due = s.due, first_response_due = s.due, "
                                 "sla_policy_id = %s FROM sla_dues s WHERE t.id = s.id" % int(policy_id))
            conn.exec_driver_sql("ANALYZE tickets")
            conn.exec_driver_sql("ANALYZE sla_clocks")
        else:
            conn.exec_driver_sql(f"UPDATE tickets SET next_sla_due = ?, first_response_due = ?, "
                                 f"sla_policy_id = {int(policy_id)} WHERE id = ?",
                                 [(d, d, tid) for tid, d in dues])
            conn.exec_driver_sql("ANALYZE")
    return len(dues), due_now


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tickets", type=int, default=10_000)
    ap.add_argument("--database-url", default=None,
                    help="PostgreSQL URL of a database of your own (its public schema is dropped); "
                         "default: a fresh SQLite file in a temporary directory")
    ap.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)

    with bench_workdir("helpdesk-bench-sla-", args.keep) as workdir:
        url = _normalise_db_url(args.database_url) if args.database_url else f"sqlite:///{workdir}/bench.db"
        app = make_app(url, workdir)
        app.config["REDIS_URL"] = args.redis_url
        from helpdesk.extensions import db
        from helpdesk.jobs import OutboxJob, get_redis
        from helpdesk.sla.jobs import sweep
        from helpdesk.sla.models import SlaAlert
        from helpdesk.tickets import bulkseed
        from helpdesk.timeutil import utcnow

        with app.app_context():
            get_redis().flushdb()
            seeded = bulkseed.seed(args.tickets, log=log)
            now = utcnow()
            t0 = time.monotonic()
            open_clocks, due_now = seed_clocks(now)
            log(f"seeded {args.tickets} tickets in {seeded.seconds:.1f} s, {open_clocks} running clocks "
                f"({due_now} alerts due) in {time.monotonic() - t0:.1f} s")
            counter = StatementCounter(db.engine)
            dialect = db.engine.dialect.name
            db.session.remove()
            t0 = time.perf_counter()
            sweep(now)
            sweep_ms = (time.perf_counter() - t0) * 1000
            db.session.remove()
            claimed = db.session.execute(select(text("count(*)")).select_from(SlaAlert)).scalar()
            jobs = db.session.execute(select(text("count(*)")).select_from(OutboxJob)).scalar()
            db.session.remove()
            t0 = time.perf_counter()
            sweep(now + timedelta(seconds=1))
            idle_ms = (time.perf_counter() - t0) * 1000
            db.session.remove()
        log(f"sweep: {sweep_ms:.0f} ms for {claimed} alerts in {jobs} job(s); idle sweep {idle_ms:.0f} ms")
        results = {"db": dialect, "tickets": args.tickets, "open_clocks": open_clocks, "alerts_due": due_now,
                   "sweep_ms": round(sweep_ms, 1), "sweep_claimed": claimed, "sweep_jobs": jobs,
                   "sweep_idle_ms": round(idle_ms, 1)}
        queue = f"/?view=queue:{seeded.agent_queue_slug}&sort=sla_due"
        month = now.date().replace(day=1).isoformat()
        for role, email, page, n in (("agent", seeded.agent_email, queue, args.requests),
                                     ("admin", seeded.admin_email, f"/reports/sla?from={month}&group=queue", 5)):
            client = app.test_client()
            if client.post("/login", data={"email": email, "password": seeded.password}).status_code != 302:
                sys.exit(f"login of {email} failed")
            with app.app_context():
                p50, p95, statements = timed(client, page, n, counter)
            name = "queue_sorted_by_due" if role == "agent" else "report_month"
            results.update({f"{name}_p50_ms": round(p50, 1), f"{name}_p95_ms": round(p95, 1),
                            f"{name}_statements": round(statements, 1)})
            log(f"{name}: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        emit(results)
        with app.app_context():
            db.engine.dispose()


if __name__ == "__main__":
    main()
