"""SLA in the agent UI: queue badges in business time, the "due soonest" sort over the SLA index,
the ticket page's clocks and history, and the notification bell.

Times are set with `now=` on the services and with time-machine for the pages (the page measures
against the current time). The default policy runs on the office calendar: Mon-Fri 08:00-17:00,
Sat 08:00-12:00 WIB. Normal priority: first response 240, next response 240, resolution 1620
business minutes; urgent: first response 30.
"""
import re
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from sqlalchemy import bindparam, event, select, update

from helpdesk.extensions import db
from helpdesk.sla import notifications
from helpdesk.sla.models import Notification, SlaPolicy
from helpdesk.tickets import bulkseed, services
from helpdesk.tickets.models import Ticket
from tests.conftest import extract_csrf
from tests.factories import PASSWORD
from tests.integration.test_access_matrix import _customer_login
from tests.integration.test_query_budget import TICKET_TABLE, _full_scans, _plan


def wib(*args):
    """A WIB wall time as the naive UTC the database stores."""
    return datetime(*args) - timedelta(hours=7)


def travel(naive_utc):
    return time_machine.travel(naive_utc.replace(tzinfo=timezone.utc), tick=False)


@pytest.fixture
def desk(make):
    q = make.queue(slug="technical-support", name="Technical Support")
    agent = make.user(roles=["technical_support"], queues=[q], name="Agen Satu")
    other = make.user(roles=["technical_support"], queues=[q], name="Agen Dua")
    cust = make.customer()
    db.session.commit()
    return {"q": q, "agent": agent, "other": other, "cust": cust}


def new_ticket(desk, now, priority="normal", subject="Hosting down"):
    t = services.create_ticket(customer_id=desk["cust"].id, subject=subject, body_text="Tolong",
                               channel="web", queue_id=desk["q"].id, priority=priority, now=now)
    db.session.commit()
    return t


def row_of(html, ticket):
    """The list row of a ticket (from its checkbox to the end of the row)."""
    m = re.search(r'name="ticket_ids" value="%d".*?</tr>' % ticket.id, html, re.S)
    assert m, f"ticket {ticket.number} not listed"
    return m.group(0)


def badge(html, ticket):
    m = re.search(r'<span class="badge sla-badge sla-(\w+)[^"]*"[^>]*>([^<]*)</span>', row_of(html, ticket))
    return (m.group(1), m.group(2)) if m else None


def listed_ids(html):
    return [int(i) for i in re.findall(r'name="ticket_ids" value="(\d+)"', html)]


# ---------------------------------------------------------------- queue badges

def test_list_badges_show_business_time_left_and_overdue(app, client, auth, desk):
    ok = new_ticket(desk, wib(2026, 12, 7, 9, 0), subject="Ok")  # first response due Mon 13:00
    warn = new_ticket(desk, wib(2026, 12, 7, 8, 0), subject="Warn")  # due Mon 12:00
    late = new_ticket(desk, wib(2026, 12, 7, 10, 10), priority="urgent", subject="Late")  # due 10:40
    # Friday 16:40 + 240: 20 min on Friday, 220 on Saturday -> Sat 11:40; late by Sat 11:40-12:00
    # and Mon 08:00-11:20 in business time (the Sunday does not count)
    weekend = new_ticket(desk, wib(2026, 12, 4, 16, 40), subject="Weekend")
    paused = new_ticket(desk, wib(2026, 12, 7, 9, 0), subject="Paused")
    services.add_agent_message(paused.id, desk["agent"].id, body_text="Mohon kirim log", status="pending_customer",
                               now=wib(2026, 12, 7, 9, 30))
    db.session.commit()
    assert paused.next_sla_due is None
    with travel(wib(2026, 12, 7, 11, 20)):
        auth.login(desk["agent"])
        html = client.get("/?view=all").get_data(as_text=True)
    assert badge(html, ok) == ("ok", "1h 40m left")
    assert badge(html, warn) == ("warning", "40m left")
    assert badge(html, late) == ("overdue", "overdue 40m")
    assert badge(html, weekend) == ("overdue", "overdue 3h 40m")
    assert badge(html, paused) is None  # a paused clock has no deadline on the list
    assert 'title="SLA due: 7 Dec 2026 13:00"' in row_of(html, ok)  # the deadline in Asia/Jakarta


def test_list_badges_cost_one_policy_query_per_page(app, client, auth, desk):
    for hour in range(8, 14):
        new_ticket(desk, wib(2026, 12, 7, hour, 0))
    engine = db.engine
    seen = []

    def record(_conn, _cursor, statement, _params, _ctx, _many):
        seen.append(statement)

    with travel(wib(2026, 12, 7, 14, 0)):
        auth.login(desk["agent"])
        client.get("/?view=all")
        event.listen(engine, "before_cursor_execute", record)
        try:
            html = client.get("/?view=all").get_data(as_text=True)
        finally:
            event.remove(engine, "before_cursor_execute", record)
    assert html.count("sla-badge") == 6
    assert len([s for s in seen if "FROM sla_policies" in s]) == 1
    assert not [s for s in seen if "FROM sla_clocks" in s]  # the list never reads the clock runs


# ---------------------------------------------------------------- sort by due soonest

def test_sort_due_soonest_orders_by_deadline_and_paginates(app, client, auth, desk):
    app.config["PAGE_SIZE"] = 2
    made = [new_ticket(desk, wib(2026, 12, 7, 9, 0), subject="Third"),  # due 13:00
            new_ticket(desk, wib(2026, 12, 7, 8, 0), subject="First"),  # due 12:00
            new_ticket(desk, wib(2026, 12, 7, 8, 0), subject="Second"),  # due 12:00, later id
            new_ticket(desk, wib(2026, 12, 7, 10, 0), subject="Fourth"),  # due 14:00
            new_ticket(desk, wib(2026, 12, 7, 8, 30), priority="urgent", subject="Zeroth")]  # due 09:00
    paused = new_ticket(desk, wib(2026, 12, 7, 7, 0), subject="Paused")
    services.add_agent_message(paused.id, desk["agent"].id, body_text="Tunggu", status="pending_customer",
                               now=wib(2026, 12, 7, 9, 0))
    db.session.commit()
    expected = [t.id for t in sorted(made, key=lambda t: (t.next_sla_due, t.id))]
    assert expected == [made[4].id, made[1].id, made[2].id, made[0].id, made[3].id]
    with travel(wib(2026, 12, 7, 8, 45)):
        auth.login(desk["agent"])
        got, url, pages = [], "/?view=all&sort=sla_due", 0
        while url:
            html = client.get(url).get_data(as_text=True)
            got += listed_ids(html)
            pages += 1
            m = re.search(r'rel="next" href="([^"]+)"', html)
            url = m.group(1).replace("&amp;", "&") if m else None
            if pages == 1:
                assert 'id="sla-sort-note"' in html and "Only tickets with a running SLA clock" in html
                assert '<option value="sla_due" selected>' in html
        queue = client.get("/?view=queue:technical-support&sort=sla_due").get_data(as_text=True)
    assert got == expected and pages == 3  # the paused ticket has no due time: not in this sort
    assert listed_ids(queue) == expected[:2]
    app.config["PAGE_SIZE"] = 25
    with travel(wib(2026, 12, 7, 8, 45)):
        assert paused.id in listed_ids(client.get("/?view=all").get_data(as_text=True))  # other sorts list it


BULK = 20_000


def test_sorted_queue_pages_read_the_sla_index(app):
    """The due-soonest pages of a queue and of all queues, as an admin and as a queue agent, over
    20,000 bulk-loaded tickets with deadlines: the ordered statement walks an SLA partial index (it
    repeats the index's predicate), and no statement scans the tickets table. SQLite without
    statistics, PostgreSQL analysed (as in tests/integration/test_query_budget.py)."""
    seeded = bulkseed.seed(BULK, analyze=False)
    policy_id = db.session.execute(select(SlaPolicy.id).where(SlaPolicy.is_default.is_(True))).scalar_one()
    with db.engine.begin() as conn:  # a deadline on every open ticket: three days after its creation
        rows = conn.execute(select(Ticket.id, Ticket.created_at)
                            .where(Ticket.status.notin_(("resolved", "closed")))).all()
        conn.execute(update(Ticket).where(Ticket.id == bindparam("tid")).values(sla_policy_id=policy_id),
                     [{"tid": tid, "next_sla_due": created + timedelta(days=3)} for tid, created in rows])
    bulkseed._analyze()
    engine = db.engine
    for email in (seeded.agent_email, bulkseed.ADMIN_EMAIL):
        client = app.test_client()
        assert client.post("/login", data={"email": email, "password": seeded.password}).status_code == 302
        for view, index in (("all", "ix_tickets_open_sla"), (f"queue:{seeded.agent_queue_slug}",
                                                              "ix_tickets_open_queue_sla")):
            first = client.get(f"/?view={view}&sort=sla_due").get_data(as_text=True)
            assert first.count('name="ticket_ids"') == 25 and first.count("sla-badge") == 25
            nxt = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
            seen = []

            def record(_conn, _cursor, statement, params, _ctx, _many, seen=seen):
                seen.append((statement, params))

            event.listen(engine, "before_cursor_execute", record)
            try:
                assert client.get(f"/?view={view}&sort=sla_due").status_code == 200
                page2 = client.get(nxt).get_data(as_text=True)
            finally:
                event.remove(engine, "before_cursor_execute", record)
            assert page2.count('name="ticket_ids"') == 25 and not set(listed_ids(page2)) & set(listed_ids(first))
            ordered = [(st, p) for st, p in seen if "next_sla_due IS NOT NULL" in st and TICKET_TABLE.search(st)]
            assert len(ordered) >= 2
            with engine.connect() as conn:
                used = 0
                for statement, params in ordered:
                    plan = _plan(conn, statement, params)
                    assert not _full_scans(conn.dialect.name, plan), (email, view, statement, plan)
                    used += any(f"{index} " in line or line.endswith(index) for line in plan)
            assert used >= 2, (email, view, [_plan_text(engine, st, p) for st, p in ordered])


def _plan_text(engine, statement, params):
    with engine.connect() as conn:
        return _plan(conn, statement, params)


# ---------------------------------------------------------------- the ticket page

def test_ticket_page_shows_each_clock_and_the_history(app, client, auth, desk):
    t = new_ticket(desk, wib(2026, 12, 7, 9, 0))  # Monday
    # 10:00 reply, waiting for the customer: first response met 3 h early, resolution paused
    services.add_agent_message(t.id, desk["agent"].id, body_text="Mohon kirim log", status="pending_customer",
                               now=wib(2026, 12, 7, 10, 0))
    db.session.commit()
    with travel(wib(2026, 12, 7, 10, 30)):
        auth.login(desk["agent"])
        html = client.get(f"/tickets/{t.number}").get_data(as_text=True)
    clocks = _clock_rows(html)
    assert clocks["First response"] == ("met", "7 Dec 2026 13:00", "met 3h 0m early")
    assert clocks["Resolution"] == ("paused", "26h 0m left when resumed")  # 27 h target, 1 h used
    assert 'id="sla-policy">Standar<' in html

    # 11:00 the customer answers: the resolution clock resumes (1 h paused, 2 h 15 min used at 12:15), next response starts
    services.add_customer_message(t.id, desk["cust"].id, body_text="Ini lognya", now=wib(2026, 12, 7, 11, 0))
    db.session.commit()
    with travel(wib(2026, 12, 7, 12, 15)):
        html = client.get(f"/tickets/{t.number}").get_data(as_text=True)
    clocks = _clock_rows(html)
    assert clocks["Next response"] == ("running", "7 Dec 2026 15:00", "2h 45m left")
    assert clocks["Resolution"][0] == "running"
    history = _history_rows(html)
    assert [(r[0], r[5]) for r in history] == [("First response", "met met 3h 0m early"),
                                               ("Resolution", "running 24h 45m left"),
                                               ("Next response", "running 2h 45m left")]
    assert history[1][6] == "1h 0m"  # paused 10:00-11:00 in business time
    assert history[0][3] == "7 Dec 2026 09:00" and history[0][4] == "7 Dec 2026 10:00"


def test_ticket_page_shows_a_breached_clock_by_how_much(app, client, auth, desk):
    t = new_ticket(desk, wib(2026, 12, 7, 9, 0), priority="urgent")  # first response due 09:30
    services.add_agent_message(t.id, desk["agent"].id, body_text="Maaf terlambat", now=wib(2026, 12, 7, 10, 10))
    db.session.commit()
    with travel(wib(2026, 12, 7, 10, 20)):
        auth.login(desk["agent"])
        html = client.get(f"/tickets/{t.number}").get_data(as_text=True)
    assert _clock_rows(html)["First response"] == ("breached", "7 Dec 2026 09:30", "breached by 40m")


def _cells(row):
    cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", c)).strip() for c in cells]


def _clock_rows(html):
    table = re.search(r'<table class="table table-sm mb-2" id="sla-clocks">(.*?)</table>', html, re.S).group(1)
    rows = re.findall(r'<tr class="sla-clock[^"]*">(.*?)</tr>', table, re.S)
    out = {}
    for row in rows:
        label, state, due, left = _cells(row)
        out[label] = (state, due, left) if due != "—" else (state, left)
    return out


def _history_rows(html):
    table = re.search(r'id="sla-history">(.*?)</table>', html, re.S).group(1)
    return [_cells(r) for r in re.findall(r'<tr class="sla-run[^"]*">(.*?)</tr>', table, re.S)]


# ---------------------------------------------------------------- the bell

def _bell(html):
    m = re.search(r'<a class="nav-link text-nowrap bell" id="bell" href="/notifications" aria-label="([^"]+)"', html)
    return m.group(1) if m else None


def test_bell_counts_unread_and_mark_all_read(csrf_app, make):
    q = make.queue(slug="technical-support", name="Technical Support")
    agent = make.user(roles=["technical_support"], queues=[q])
    other = make.user(roles=["technical_support"], queues=[q])
    cust = make.customer()
    db.session.commit()
    t = services.create_ticket(customer_id=cust.id, subject="Server mati", body_text="Tolong", channel="web",
                               queue_id=q.id, now=wib(2026, 12, 7, 9, 0))
    for body in ("Peringatan SLA #1", "SLA terlampaui #2", "Eskalasi #3"):
        notifications.notify([agent.id], t.id, "sla_warning", body)
    notifications.notify([other.id], t.id, "sla_breach", "Rahasia agen lain")
    db.session.commit()

    client = csrf_app.test_client()
    token = extract_csrf(client.get("/login").get_data(as_text=True))
    assert _bell(client.get("/login").get_data(as_text=True)) is None  # no bell before login
    client.post("/login", data={"email": agent.email, "password": PASSWORD, "csrf_token": token})
    html = client.get("/").get_data(as_text=True)
    assert _bell(html) == "Notifications: 3 unread"
    assert re.search(r'<span class="badge rounded-pill text-bg-danger bell-count"[^>]*>3</span>', html)

    page = client.get("/notifications").get_data(as_text=True)
    for body in ("Peringatan SLA #1", "SLA terlampaui #2", "Eskalasi #3"):
        assert body in page
    assert "Rahasia agen lain" not in page  # only one's own notifications
    assert f'href="/tickets/{t.number}">#{t.number}</a>' in page
    assert '<span id="unread-count">3</span>' in page

    # the POST needs the CSRF token
    assert client.post("/notifications/read").status_code == 400
    assert notifications.unread_count(agent.id) == 3
    resp = client.post("/notifications/read", data={"csrf_token": extract_csrf(page)})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/notifications")
    page = client.get("/notifications").get_data(as_text=True)
    assert "3 notification(s) marked read." in page
    assert '<span id="unread-count">0</span>' in page and "Mark all read" not in page
    assert _bell(page) == "Notifications: 0 unread" and "bell-count" not in page
    db.session.expire_all()
    assert notifications.unread_count(agent.id) == 0
    assert notifications.unread_count(other.id) == 1  # the other agent's stay unread
    read = db.session.execute(select(Notification.read_at).where(Notification.user_id == agent.id)).scalars().all()
    assert len(read) == 3 and None not in read


def test_bell_caps_at_99_and_is_not_on_the_portal(app, client, auth, desk):
    t = new_ticket(desk, wib(2026, 12, 7, 9, 0))
    for i in range(120):
        notifications.notify([desk["agent"].id], t.id, "sla_warning", f"n{i}")
    db.session.commit()
    auth.login(desk["agent"])
    html = client.get("/").get_data(as_text=True)
    assert _bell(html) == "Notifications: 99+ unread"
    auth.logout()
    portal = app.test_client()
    _customer_login(portal, desk["cust"].id)
    page = portal.get("/portal/").get_data(as_text=True)
    assert t.subject in page and 'id="bell"' not in page and "Notifications" not in page
    # a customer is anonymous on the desk: the notifications page sends them to the agents' login
    resp = portal.get("/notifications")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_notification_rows_of_another_agent_are_never_marked(app, client, auth, desk):
    t = new_ticket(desk, wib(2026, 12, 7, 9, 0))
    notifications.notify([desk["other"].id], t.id, "sla_breach", "Punya agen dua")
    db.session.commit()
    auth.login(desk["agent"])
    page = client.get("/notifications").get_data(as_text=True)
    assert "Punya agen dua" not in page and "No notifications yet." in page
    client.post("/notifications/read")
    db.session.expire_all()
    assert notifications.unread_count(desk["other"].id) == 1
    assert db.session.get(Ticket, t.id) is not None
