"""The SLA report: % met, business-hour median and p90, breaches, CSAT, the chart, CSV, and who may see it."""
import csv
import io
from datetime import timedelta

import pytest

from helpdesk.extensions import db
from helpdesk.sla.models import CsatResponse
from helpdesk.tickets import services
from tests.factories import wib



@pytest.fixture
def desk(make):
    support = make.queue(slug="customer-support", name="Customer Support")
    tech = make.queue(slug="technical-support", name="Technical Support")
    admin = make.user(roles=["admin"], queues=[support, tech])
    agent = make.user(roles=["technical_support"], queues=[tech, support], name="Budi Santoso")
    lead = make.user(roles=["customer_support"], queues=[support], name="Siti Lead")
    support.lead_id = lead.id
    cust = make.customer()
    db.session.commit()
    return {"support": support, "tech": tech, "admin": admin, "agent": agent, "lead": lead, "cust": cust}


def ticket(desk, queue, created, reply_after_min, resolve_after_min=None, priority="normal"):
    t = services.create_ticket(customer_id=desk["cust"].id, subject="Domain tidak aktif", body_text="Tolong",
                               channel="web", queue_id=queue.id, priority=priority, now=created)
    services.assign(t.id, desk["admin"].id, desk["agent"].id, now=created)
    services.add_agent_message(t.id, desk["agent"].id, body_text="Kami cek",
                               now=created + timedelta(minutes=reply_after_min))
    if resolve_after_min is not None:
        services.change_status(t.id, desk["agent"].id, "resolved", now=created + timedelta(minutes=resolve_after_min))
    db.session.commit()
    return t


@pytest.fixture
def history(desk):
    """Three tickets in Technical Support (Monday 7 Dec 2026, 09:00 WIB, normal: first response 240 min):
    replies after 60, 120 and 300 minutes (the last one breached by 60), two resolved; one urgent in
    Customer Support answered after 45 minutes (target 30: breached)."""
    mon = wib(2026, 12, 7, 9, 0)
    a = ticket(desk, desk["tech"], mon, 60, 180)
    b = ticket(desk, desk["tech"], mon, 120, 240)
    c = ticket(desk, desk["tech"], mon, 300)
    d = ticket(desk, desk["support"], mon, 45, priority="urgent")
    db.session.add_all([
        CsatResponse(ticket_id=a.id, cycle=1, rating="good", queue_id=desk["tech"].id, agent_id=desk["agent"].id,
                     created_at=wib(2026, 12, 8, 10, 0), updated_at=wib(2026, 12, 8, 10, 0)),
        CsatResponse(ticket_id=b.id, cycle=1, rating="bad", queue_id=desk["tech"].id, agent_id=desk["agent"].id,
                     created_at=wib(2026, 12, 8, 11, 0), updated_at=wib(2026, 12, 8, 11, 0)),
    ])
    db.session.commit()
    return a, b, c, d


PERIOD = {"from": "2026-12-01", "to": "2026-12-31"}


def row_cells(html, label):
    """The cell texts of the table row whose header is `label`."""
    import re

    m = re.search(r"<th scope=\"row\">" + re.escape(label) + r"</th>(.*?)</tr>", html, re.S)
    assert m, f"no row {label!r}"
    return [" ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in re.findall(r"<td>(.*?)</td>", m.group(1), re.S)]


def test_report_per_queue_shows_met_percent_median_p90_and_breaches(app, client, auth, desk, history):
    a, b, c, d = history
    auth.login(desk["admin"])
    html = client.get("/reports/sla", query_string={**PERIOD, "group": "queue"}).get_data(as_text=True)
    # Technical Support: first responses 60, 120 (met), 300 (breached) min -> 66.7 %, median 2.0 h, p90 5.0 h;
    # resolutions 180 and 240 min, both met -> 100 %, median (nearest rank) 3.0 h
    assert row_cells(html, "Technical Support") == ["66.7% (2/3)", "1", "2.0 h", "5.0 h",
                                                     "100.0% (2/2)", "0", "3.0 h", "4.0 h"]
    assert row_cells(html, "Customer Support")[:4] == ["0.0% (0/1)", "1", "0.8 h", "0.8 h"]
    # the breaches, with how late (business time)
    breaches = html.split('id="sla-breaches"')[1]
    assert f"#{c.number}" in breaches and f"#{d.number}" in breaches and f"#{a.number}" not in breaches
    assert "1.0 h" in breaches and "0.2 h" in breaches  # 60 min late, 15 min late
    # the chart is an SVG drawn on the server, with a title for screen readers
    assert "<svg role=\"img\"" in html and "Targets met per queue" in html
    # CSAT per queue / agent / month
    csat = html.split('id="csat-queue"')[1]
    assert "Technical Support" in csat and "50.0%" in csat
    assert "2026-12" in html.split('id="csat-month"')[1]


def test_report_per_priority_and_agent(app, client, auth, desk, history):
    auth.login(desk["admin"])
    html = client.get("/reports/sla", query_string={**PERIOD, "group": "priority"}).get_data(as_text=True)
    assert row_cells(html, "urgent")[0] == "0.0% (0/1)" and row_cells(html, "normal")[0] == "66.7% (2/3)"
    html = client.get("/reports/sla", query_string={**PERIOD, "group": "agent"}).get_data(as_text=True)
    assert row_cells(html, "Budi Santoso")[0] == "50.0% (2/4)"


def test_period_outside_has_nothing(app, client, auth, desk, history):
    auth.login(desk["admin"])
    html = client.get("/reports/sla", query_string={"from": "2026-11-01", "to": "2026-11-30"}).get_data(as_text=True)
    assert "No breaches in this period." in html and "Technical Support" not in html


def test_csv_export(app, client, auth, desk, history):
    auth.login(desk["admin"])
    resp = client.get("/reports/sla.csv", query_string={**PERIOD, "group": "queue"})
    assert resp.mimetype == "text/csv" and "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    assert rows[0][:4] == ["group", "first_response_met", "first_response_breached", "first_response_pct_met"]
    tech = next(r for r in rows if r[0] == "Technical Support")
    assert tech[1:6] == ["2", "1", "66.7", "2.0", "5.0"]
    assert rows[-1][0] == "TOTAL" and rows[-1][1:3] == ["2", "2"]


def test_queue_lead_sees_only_their_queue_and_agents_none(app, client, auth, desk, history):
    auth.login(desk["lead"])
    html = client.get("/reports/sla", query_string=PERIOD).get_data(as_text=True)
    assert "Customer Support" in html and "Technical Support" not in html
    assert 'href="/reports/sla"' in html  # the menu link
    auth.logout()
    auth.login(desk["agent"])
    assert client.get("/reports/sla", query_string=PERIOD).status_code == 403
    assert client.get("/reports/sla.csv", query_string=PERIOD).status_code == 403
    assert 'href="/reports/sla"' not in client.get("/").get_data(as_text=True)
