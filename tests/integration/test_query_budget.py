"""Query budget: list pages cost the same number of statements at 50 and at 50,000 tickets, and
their queries read indexes, never a whole tickets table.

The data comes from the benchmark's bulk loader (helpdesk.tickets.bulkseed). One module-wide
database is loaded with 50 tickets, every page is requested, then it is topped up to 50,000 and
the pages are requested again. SQLite runs without planner statistics (the application never runs
ANALYZE); PostgreSQL is vacuumed and analysed, as autovacuum would do.
"""
import re

import pytest
from sqlalchemy import event

from helpdesk import create_app
from helpdesk.extensions import db
from helpdesk.tickets import bulkseed
from helpdesk.tickets.listing import encode_cursor
from helpdesk.timeutil import utcnow
from tests.conftest import _truncate, make_config

SMALL, BIG = 50, 50_000
QUEUE = "technical-support"
TICKET_TABLE = re.compile(r"\b(FROM|JOIN)\s+tickets\b")


def pages(seeded, ticket_number):
    """The list pages of the desk (and one ticket page), by name."""
    cursor = encode_cursor(utcnow(), 2**31 - 1)  # keyset condition present, first page's rows
    return {
        "mine": "/?view=mine",
        "unassigned": "/?view=unassigned",
        "queue": f"/?view=queue:{QUEUE}",
        "queue_cursor": f"/?view=queue:{QUEUE}&cursor={cursor}",
        "all": "/?view=all",
        "all_created": "/?view=all&sort=-created",
        "filtered": f"/?view=queue:{QUEUE}&status=open&priority=high",
        "charge": f"/?view=queue:{QUEUE}&charge=paid",  # ix_tickets_open_charge_activity
        "search_rare": f"/?view=all&status=any&q={seeded.rare_term}",
        "search_common": f"/?view=all&status=any&q={seeded.common_word}",
        "search_common_open": f"/?view=all&q={seeded.common_word}",
        "ticket": f"/tickets/{ticket_number}",
    }


class Recorder:
    """Every statement sent to the database while recording, with its parameters."""

    def __init__(self, engine):
        self.statements = None
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, _conn, _cursor, statement, parameters, _context, _executemany):
        if self.statements is not None:
            self.statements.append((statement, parameters))

    def request(self, client, url):
        """GET url (after one warm-up GET); the statements of the second request."""
        assert client.get(url).status_code == 200
        self.statements = []
        try:
            resp = client.get(url)
        finally:
            statements, self.statements = self.statements, None
        assert resp.status_code == 200, url
        return resp.get_data(as_text=True), statements


@pytest.fixture(scope="module")
def budget(database_url, redis_url, tmp_root):
    """Pages requested as an admin and as a queue agent at SMALL, then at BIG tickets."""
    app = create_app(make_config(database_url, redis_url, tmp_root))
    try:
        with app.app_context():
            small = bulkseed.seed(SMALL)
            recorder = Recorder(db.engine)
        clients = {}
        for role, email in (("admin", small.admin_email), ("agent", small.agent_email)):
            clients[role] = app.test_client()
            assert clients[role].post("/login", data={"email": email, "password": small.password}).status_code == 302
        # The first open ticket of the agent's queue: it exists at both sizes.
        urls = pages(small, small.first_number + 1)
        at = {SMALL: {}, BIG: {}}
        for role, client in clients.items():
            for name, url in urls.items():
                at[SMALL][role, name] = recorder.request(client, url)
        with app.app_context():
            big = bulkseed.seed(BIG - SMALL)
        for role, client in clients.items():
            for name, url in urls.items():
                at[BIG][role, name] = recorder.request(client, url)
        yield {"app": app, "at": at, "seeded": (small, big)}
    finally:
        _truncate(app)
        with app.app_context():
            db.engine.dispose()


def test_statement_count_per_page_does_not_grow_with_tickets(budget):
    small = {key: len(stmts) for key, (_html, stmts) in budget["at"][SMALL].items()}
    big = {key: len(stmts) for key, (_html, stmts) in budget["at"][BIG].items()}
    assert big == small
    assert max(n for (_role, page), n in big.items() if page != "ticket") <= 20, big
    # The ticket page also reads the customer's owned items, the issue categories and the
    # eligibility decision history (its warranty card): three constant statements more; and
    # whether the ticket has cashback claims or repair quotes (one statement for both cards); and the
    # maintenance windows the ticket is linked to (one statement).
    assert max(n for (_role, page), n in big.items() if page == "ticket") <= 25, big


def test_pages_show_the_seeded_tickets(budget):
    small, big = budget["seeded"]
    for role in ("admin", "agent"):
        html = {name: h for (r, name), (h, _s) in budget["at"][BIG].items() if r == role}
        assert html["queue"].count('name="ticket_ids"') == 25
        assert html["filtered"].count('name="ticket_ids"') == 25
        assert html["search_common"].count('name="ticket_ids"') == 25
        assert ">200+</span>" in html["search_common"]  # a capped count, not a count of 12,500 rows
        assert ">1000+</span>" in html["queue"]
        # The rare order number is in one ticket per load: both are found, and nothing else.
        assert html["search_rare"].count('name="ticket_ids"') == 2
        for seeded in (small, big):
            assert f">{seeded.rare_ticket_number}</a>" in html["search_rare"]
    assert budget["at"][BIG]["agent", "mine"][0].count('name="ticket_ids"') == 25
    assert big.common_count > BIG // 5


def _plan(conn, statement, parameters):
    """The plan as text lines: EXPLAIN QUERY PLAN on SQLite, EXPLAIN on PostgreSQL."""
    cursor = conn.connection.driver_connection.cursor()
    if conn.dialect.name == "postgresql":
        cursor.execute("EXPLAIN " + statement, parameters)
        return [row[0] for row in cursor.fetchall()]
    cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
    return [row[3] for row in cursor.fetchall()]


def _full_scans(dialect, plan):
    if dialect == "postgresql":
        return [line for line in plan if "Seq Scan on tickets" in line]
    return [line for line in plan if re.match(r"\s*SCAN tickets(_\d+)?\s*$", line)]


def test_list_and_search_queries_use_indexes(budget):
    with budget["app"].app_context():
        with db.engine.connect() as conn:
            checked = 0
            for (role, name), (_html, statements) in budget["at"][BIG].items():
                for statement, parameters in statements:
                    if not TICKET_TABLE.search(statement):
                        continue
                    plan = _plan(conn, statement, parameters)
                    assert not _full_scans(conn.dialect.name, plan), (role, name, statement, plan)
                    nothing_to_read = any("One-Time Filter: false" in line for line in plan)  # e.g. id IN ()
                    assert nothing_to_read or any("Index" in line or "INDEX" in line or "PRIMARY KEY" in line
                                                  for line in plan), (role, name, statement, plan)
                    checked += 1
    assert checked >= 2 * 10 * 2  # page and count queries of every list page, for both roles
