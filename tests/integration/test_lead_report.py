"""The leads funnel report (issue #7 §1): leads, offers, won, conversion rate and median days to
convert per source and per campaign, over Asia/Jakarta days; the chart image, the CSV export, and
who may see it.

Every expected number is worked out by hand from the leads the `funnel` fixture creates (`now=`)."""
import csv
import io
from datetime import date

import pytest

from helpdesk.extensions import db
from helpdesk.leads import report, services
from tests.factories import wib

FORMULA = '=HYPERLINK("http://evil.example/","Klik")'


@pytest.fixture
def funnel(make):
    mkt = make.user(roles=["marketing"])
    admin = make.user(roles=["admin"])
    cs = make.user(roles=["customer_support"])

    def lead(n, created, source, campaign=None, offer=None, won=None, lost=None):
        row, _ = services.capture(name=f"Lead {n}", email=f"lead{n}@contoh.id", source=source, campaign=campaign,
                                  now=created)
        if offer:
            services.change_stage(row.id, mkt.id, "offer_sent", now=offer)
        if won:
            services.change_stage(row.id, mkt.id, "won", now=won)
        if lost:
            services.change_stage(row.id, mkt.id, "lost", reason="Terlalu mahal", now=lost)
        return row

    # L1: 00:30 on 1 December in Jakarta is still 30 November in UTC: December's; won after 10 days
    lead(1, wib(2026, 12, 1, 0, 30), "seminar", "SEM-DES", offer=wib(2026, 12, 5, 9, 0), won=wib(2026, 12, 11, 0, 30))
    # L2: 23:30 on 30 November in Jakarta: November's, although it was won in December
    lead(2, wib(2026, 11, 30, 23, 30), "seminar", "SEM-DES", offer=wib(2026, 12, 2, 9, 0), won=wib(2026, 12, 3, 9, 0))
    # L3: the last minute of December in Jakarta (already 31 December 16:59 UTC); no offer yet
    lead(3, wib(2026, 12, 31, 23, 59), "seminar", "SEM-DES")
    # L4: midnight of 1 January in Jakarta: January's
    lead(4, wib(2027, 1, 1, 0, 0), "seminar", "SEM-DES")
    # L5: social media, a campaign a spreadsheet would run as a formula; won after 4 days
    lead(5, wib(2026, 12, 3, 9, 0), "social", FORMULA, offer=wib(2026, 12, 4, 9, 0), won=wib(2026, 12, 7, 9, 0))
    # L6: seminar, won after 20 days
    lead(6, wib(2026, 12, 4, 10, 0), "seminar", "SEM-DES", offer=wib(2026, 12, 6, 10, 0), won=wib(2026, 12, 24, 10, 0))
    # L7: social media, no campaign, lost
    lead(7, wib(2026, 12, 10, 8, 0), "social", lost=wib(2026, 12, 12, 8, 0))
    db.session.commit()
    return {"mkt": mkt.email, "admin": admin.email, "cs": cs.email}


def numbers(f):
    return (f.leads, f.offers, f.won, f.conversion, f.median_days)


def test_december_by_hand(app, funnel):
    data = report.funnel_report(date(2026, 12, 1), date(2026, 12, 31))
    # L1, L3, L5, L6, L7; offers L1, L5, L6; won the same three: 10, 4 and 20 days, median 10
    assert numbers(data["total"]) == (5, 3, 3, 60.0, 10.0)
    # seminar: L1, L3, L6; won L1 (10 days) and L6 (20 days): the nearest-rank median is the lower one
    assert numbers(data["by_source"]["seminar"]) == (3, 2, 2, 66.7, 10.0)
    assert numbers(data["by_source"]["social"]) == (2, 1, 1, 50.0, 4.0)
    assert numbers(data["by_source"]["print"]) == (0, 0, 0, None, None)
    assert list(data["by_source"]) == ["seminar", "print", "social", "sms", "chat", "website", "referral",
                                       "daily_deal", "other"]
    assert {k: numbers(f) for k, f in data["by_campaign"].items()} == {
        "SEM-DES": (3, 2, 2, 66.7, 10.0), FORMULA: (1, 1, 1, 100.0, 4.0), "": (1, 0, 0, 0.0, None)}
    assert list(data["by_campaign"])[-1] == ""  # "no campaign" comes last


def test_jakarta_day_boundaries(app, funnel):
    def total(start, end):
        return numbers(report.funnel_report(start, end)["total"])

    assert total(date(2026, 12, 1), date(2026, 12, 1)) == (1, 1, 1, 100.0, 10.0)  # L1 only
    assert total(date(2026, 11, 30), date(2026, 11, 30)) == (1, 1, 1, 100.0, 2.4)  # L2: 30 Nov 23:30 to 3 Dec 09:00 = 2 days 9.5 h
    assert total(date(2026, 12, 31), date(2026, 12, 31)) == (1, 0, 0, 0.0, None)  # L3
    assert total(date(2027, 1, 1), date(2027, 1, 31)) == (1, 0, 0, 0.0, None)  # L4
    assert total(date(2026, 11, 1), date(2026, 11, 29)) == (0, 0, 0, None, None)


def test_the_page_month_and_range(app, funnel, auth, client):
    auth.login(funnel["mkt"])
    html = client.get("/reports/leads?month=2026-12").get_data(as_text=True)
    assert 'value="2026-12-01"' in html and 'value="2026-12-31"' in html
    assert '<tr data-source="seminar"><th scope="row">Seminar</th><td class="text-end" data-col="leads">3</td>' in html
    assert '<tr data-source="total" class="fw-bold"><th scope="row">Total</th><td class="text-end" data-col="leads">5</td>' in html
    assert "66.7%" in html and "10.0 days" in html
    assert 'src="/reports/leads/chart.svg?from=2026-12-01&amp;to=2026-12-31"' in html
    assert "<svg" not in html  # the chart is an image, never inline
    assert "&lt;svg" not in html and 'data-campaign="=HYPERLINK(&#34;http://evil.example/&#34;,&#34;Klik&#34;)"' in html
    one_day = client.get("/reports/leads?from=2026-11-30&to=2026-11-30").get_data(as_text=True)
    assert '<tr data-source="total" class="fw-bold"><th scope="row">Total</th><td class="text-end" data-col="leads">1</td>' in one_day
    # a reversed range is put right
    swapped = client.get("/reports/leads?from=2026-12-31&to=2026-12-01").get_data(as_text=True)
    assert 'value="2026-12-01"' in swapped and 'value="2026-12-31"' in swapped


def test_chart_is_svg(app, funnel, auth, client):
    auth.login(funnel["admin"])
    resp = client.get("/reports/leads/chart.svg?month=2026-12")
    assert resp.status_code == 200 and resp.mimetype == "image/svg+xml"
    assert resp.headers["Content-Security-Policy"] == "default-src 'none'"
    svg = resp.get_data(as_text=True)
    assert svg.startswith("<svg") and "<script" not in svg
    assert "Seminar — Leads: 3" in svg and "Seminar — Offers: 2" in svg and "Seminar — Won: 2" in svg
    assert "Social media — Won: 1" in svg
    assert "Print media" not in svg  # sources without leads have no bars
    empty = client.get("/reports/leads/chart.svg?month=2025-01").get_data(as_text=True)
    assert "No leads in this period." in empty


def test_csv(app, funnel, auth, client):
    auth.login(funnel["mkt"])
    resp = client.get("/reports/leads.csv?month=2026-12")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert 'filename="leads-funnel-2026-12-01-2026-12-31.csv"' in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == report.CSV_HEADER
    by_key = {(r[2], r[3]): r[4:] for r in rows[1:]}
    assert by_key[("source", "seminar")] == ["3", "2", "2", "66.7", "10.0"]
    assert by_key[("source", "print")] == ["0", "0", "0", "", ""]
    assert by_key[("campaign", "'" + FORMULA)] == ["1", "1", "1", "100.0", "4.0"]  # never a formula
    assert by_key[("campaign", "(none)")] == ["1", "0", "0", "0.0", ""]
    assert by_key[("total", "total")] == ["5", "3", "3", "60.0", "10.0"]
    assert all(r[:2] == ["2026-12-01", "2026-12-31"] for r in rows[1:])


def test_access(app, funnel, auth, client):
    urls = ("/reports/leads", "/reports/leads/chart.svg", "/reports/leads.csv")
    for url in urls:
        resp = client.get(url)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    auth.login(funnel["cs"])
    assert [client.get(u).status_code for u in urls] == [403, 403, 403]
    assert "Leads report" not in client.get("/customers/").get_data(as_text=True)
    auth.logout()
    for who in ("mkt", "admin"):
        auth.login(funnel[who])
        assert [client.get(u).status_code for u in urls] == [200, 200, 200]
        assert 'href="/reports/leads"' in client.get("/customers/").get_data(as_text=True)
        auth.logout()
