"""The products and guarantees report (issue #6 §6): tickets per charge decision and cashback possible,
claims by outcome, paid-repair money and approval times, items with repeated defects; Asia/Jakarta
month boundaries, the chart image, the CSV export, and who may see it.

Every expected number below is worked out by hand from the data the `december` fixture builds."""
import csv
import io
import re
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from helpdesk.billing import services as billing
from helpdesk.claims import services as claims
from helpdesk.extensions import db
from helpdesk.repairs import services as repairs
from helpdesk.tickets import services
from helpdesk.timeutil import to_local
from helpdesk.warranty import report
from helpdesk.warranty import services as warranty
from helpdesk.warranty.models import ContractPlan, IssueCategory, OwnedItem, Product
from tests.factories import wib

DEC, NOV, JAN = date(2026, 12, 1), date(2026, 11, 1), date(2027, 1, 1)


@pytest.fixture
def shop(make):
    q = make.queue(slug="technical-support", name="Technical Support")
    other = make.queue(slug="customer-support", name="Customer Support")
    admin = make.user(roles=["admin"], queues=[q])
    tech = make.user(roles=["technical_support"], queues=[q])
    billing_user = make.user(roles=["billing"], queues=[q])
    cs = make.user(roles=["customer_support"], queues=[other])
    lead = make.user(roles=["customer_support"], queues=[other])
    other.lead_id = lead.id
    cust = make.customer(name="Budi Santoso")
    # a customer-entered name that a spreadsheet would run as a formula
    cust2 = make.customer(name='=HYPERLINK("http://evil.example/","Klik")')
    website = Product(code="WEB-TOKO", name="Website Toko Online", product_line="website", price=4_500_000,
                      warranty_days=90, cashback_days=30, bundle=[{"target": "domain_hosting", "free_days": 365}])
    hosting = Product(code="HOST-1G", name="Hosting 1 GB", product_line="domain_hosting", price=600_000,
                      warranty_days=30, cashback_days=30)
    defect = IssueCategory(code="site_down", name_id="Situs tidak bisa dibuka", name_en="Site down", is_defect=True)
    content = IssueCategory(code="content_change", name_id="Ubah konten", name_en="Content change", is_defect=False)
    care = ContractPlan(name="Maintenance Website Basic", coverage_days=365, covers_lines=["website"])
    db.session.add_all([website, hosting, defect, content, care])
    db.session.commit()
    return {"q": q, "admin": admin, "tech": tech, "billing": billing_user, "cs": cs, "lead": lead, "cust": cust,
            "cust2": cust2, "website": website, "hosting": hosting, "defect": defect, "content": content,
            "care": care}


def ticket(shop, at, item=None, category=None, customer=None):
    columns = {}
    if item is not None:
        columns["owned_item_id"] = item.id
    if category is not None:
        columns["issue_category_id"] = shop[category].id
    t = services.create_ticket(customer_id=(customer or shop["cust"]).id, subject="Masalah", body_text="Tolong",
                               channel="web", queue_id=shop["q"].id, now=at, columns=columns)
    db.session.commit()
    return t


def quote(shop, t, lines, submitted, billed, decided=None, decision="approve"):
    """A repair quote drafted an hour before submission, approved by billing, decided by the customer."""
    tech, bill = shop["tech"].id, shop["billing"].id
    q = repairs.draft_quote(t.id, tech, now=submitted - timedelta(hours=1))
    repairs.save_lines(q.id, tech, [dict(kind=k, description=d, quantity=n, unit_price=p) for k, d, n, p in lines],
                       now=submitted - timedelta(hours=1))
    repairs.submit(q.id, tech, now=submitted)
    repairs.approve(q.id, bill, now=billed)
    if decided is not None:
        repairs.customer_decide(q.id, t.customer_id, decision, reason="Terlalu mahal", now=decided)
    db.session.commit()
    return q


def pay(shop, invoice_id, amount, at, confirm=True):
    """A bank transfer recorded at `at` (paid that Jakarta day), confirmed at once unless confirm=False."""
    p = billing.record_payment(invoice_id, shop["billing"].id, amount=amount, method="bank_transfer",
                               paid_on=to_local(at).date(), reference="TRF", confirm=confirm, now=at)
    db.session.commit()
    return p


@pytest.fixture
def december(shop):
    """The data, times in WIB (UTC+7) unless said otherwise. Charges in December 2026:
    free_warranty T1 T2 T12 T18 · free_contract T7 T8 · free_bundle T9 · paid T3 T4 T5 T6 T17 ·
    needs_classification T10 · unknown_item T11 T13 (T14 is January, T16 merged away)."""
    s = shop
    cust, cust2 = s["cust"], s["cust2"]
    host_new = warranty.create_item(customer_id=cust.id, product_id=s["hosting"].id, purchase_date=date(2026, 11, 20),
                                    activation_date=date(2026, 11, 20), identifier="batikayu.com",
                                    amount_paid=600_000)  # warranty and cashback until 19 Dec
    site_old = warranty.create_item(customer_id=cust.id, product_id=s["website"].id, purchase_date=date(2026, 1, 5),
                                    identifier="tokobatik.co.id", with_bundle=False)  # warranty ended in April
    bundled_site = warranty.create_item(customer_id=cust.id, product_id=s["website"].id,
                                        purchase_date=date(2026, 6, 1), identifier="kopi.id")
    bundled_host = db.session.execute(select(OwnedItem).where(
        OwnedItem.bundle_parent_id == bundled_site.id)).scalar_one()  # free until 31 May 2027
    host_b = warranty.create_item(customer_id=cust.id, product_id=s["hosting"].id, purchase_date=date(2026, 12, 1),
                                  identifier="sayur.id", amount_paid=600_000)
    host_nov = warranty.create_item(customer_id=cust.id, product_id=s["hosting"].id, purchase_date=date(2026, 11, 1),
                                    identifier="nov.id", amount_paid=300_000)
    site2 = warranty.create_item(customer_id=cust2.id, product_id=s["website"].id, purchase_date=date(2025, 3, 1),
                                 identifier="contract.id", with_bundle=False)
    warranty.add_contract(customer_id=cust2.id, plan_id=s["care"].id, start=date(2026, 6, 1))
    db.session.commit()

    t = {}
    t[1] = ticket(s, wib(2026, 12, 5, 10, 0), host_new, "defect")
    t[2] = ticket(s, wib(2026, 12, 12, 10, 0), host_new, "defect")
    t[3] = ticket(s, wib(2026, 12, 3, 9, 0), site_old, "defect")
    t[4] = ticket(s, wib(2026, 12, 10, 8, 0), site_old, "defect")
    t[5] = ticket(s, wib(2026, 12, 20, 7, 0), site_old, "defect")
    t[6] = ticket(s, wib(2026, 12, 8, 9, 0), site_old, "content")  # paid, but not a defect
    t[7] = ticket(s, wib(2026, 12, 2, 9, 0), site2, "defect", customer=cust2)
    t[8] = ticket(s, wib(2026, 12, 15, 9, 0), site2, "defect", customer=cust2)
    t[9] = ticket(s, wib(2026, 12, 7, 9, 0), bundled_host, "defect")
    t[10] = ticket(s, wib(2026, 12, 9, 9, 0), site_old)  # no category yet
    t[11] = ticket(s, wib(2026, 12, 11, 9, 0))  # no item
    # 2026-11-30 17:30 UTC is 1 December 00:30 in Jakarta: December
    t[12] = ticket(s, datetime(2026, 11, 30, 17, 30), host_new, "defect")
    t[13] = ticket(s, wib(2026, 12, 31, 23, 59))  # the month's last minute
    t[14] = ticket(s, wib(2027, 1, 1, 0, 0))  # 2026-12-31 17:00 UTC: January
    t[15] = ticket(s, wib(2026, 11, 20, 10, 0), site_old, "defect")  # November, paid
    t[16] = ticket(s, wib(2026, 12, 11, 9, 5))  # a duplicate of T11, merged into it
    services.merge(t[16].id, t[11].id, s["admin"].id, now=wib(2026, 12, 11, 9, 30))
    t[17] = ticket(s, wib(2026, 12, 22, 8, 0), site_old, "defect")
    t[18] = ticket(s, wib(2026, 12, 14, 9, 0), host_b, "defect")
    t[19] = ticket(s, datetime(2026, 11, 30, 16, 59))  # 30 November 23:59 in Jakarta: November
    t[20] = ticket(s, wib(2026, 11, 10, 9, 0), host_nov, "defect")  # November, free_warranty + cashback
    db.session.commit()

    # the engine's answers the expectations rest on
    expected = {1: "free_warranty", 2: "free_warranty", 12: "free_warranty", 18: "free_warranty",
                20: "free_warranty", 7: "free_contract", 8: "free_contract", 9: "free_bundle", 3: "paid", 4: "paid",
                5: "paid", 6: "paid", 15: "paid", 17: "paid", 10: "needs_classification", 11: "unknown_item",
                13: "unknown_item", 14: "unknown_item", 16: "unknown_item", 19: "unknown_item"}
    assert {n: t[n].charge for n in expected} == expected
    assert {n for n in t if t[n].cashback_until is not None} == {1, 2, 12, 18, 20}

    tech, bill = s["tech"].id, s["billing"].id
    # claims requested in December: C1 paid 600.000, C2 approved 450.000, C3 rejected, C5 requested, C6 verified
    c1 = claims.request_claim(t[1].id, tech, now=wib(2026, 12, 5, 11, 0))
    claims.verify(c1.id, tech, "Rusak", now=wib(2026, 12, 6, 9, 0))
    claims.approve(c1.id, bill, 600_000, now=wib(2026, 12, 7, 9, 0))
    claims.mark_paid(c1.id, bill, "TRF-1", date(2026, 12, 8), now=wib(2026, 12, 8, 9, 0))
    c2 = claims.request_claim(t[2].id, tech, now=wib(2026, 12, 12, 11, 0))
    claims.verify(c2.id, tech, "Rusak", now=wib(2026, 12, 13, 9, 0))
    claims.approve(c2.id, bill, 450_000, now=wib(2026, 12, 13, 10, 0))
    # 2026-11-30 17:45 UTC = 1 December 00:45 WIB
    c3 = claims.request_claim(t[12].id, tech, now=datetime(2026, 11, 30, 17, 45))
    claims.reject(c3.id, tech, "Bukan cacat", now=wib(2026, 12, 1, 9, 0))
    claims.request_claim(t[12].id, tech, now=wib(2026, 12, 2, 9, 0))  # C5: asked again, waiting
    c6 = claims.request_claim(t[18].id, tech, now=wib(2026, 12, 14, 10, 0))
    claims.verify(c6.id, tech, "Rusak", now=wib(2026, 12, 15, 9, 0))
    # C4 was requested in November (approved 300.000): not December's
    c4 = claims.request_claim(t[20].id, tech, now=wib(2026, 11, 10, 10, 0))
    claims.verify(c4.id, tech, "Rusak", now=wib(2026, 11, 11, 9, 0))
    claims.approve(c4.id, bill, 300_000, now=wib(2026, 11, 12, 9, 0))
    db.session.commit()

    fee = ("service", "Biaya servis", 1, 150_000)
    # Q0 (T15): billing approved 30 Nov 23:00 (November); the customer approved 1 Dec 01:00 (2 h later): the
    # invoice (150.000) is issued 1 December, paid and confirmed 1 December 10:00
    q0 = quote(s, t[15], [fee], wib(2026, 11, 20, 11, 0), wib(2026, 11, 30, 23, 0), wib(2026, 12, 1, 1, 0))
    pay(s, q0.invoice_id, 150_000, wib(2026, 12, 1, 10, 0))
    # Q1 (T3): billing 2 h, customer 24 h; invoice 500.000 paid 5 December
    q1 = quote(s, t[3], [fee, ("part", "SSL", 1, 350_000)], wib(2026, 12, 3, 11, 0), wib(2026, 12, 3, 13, 0),
               wib(2026, 12, 4, 13, 0))
    pay(s, q1.invoice_id, 500_000, wib(2026, 12, 5, 9, 0))
    # Q2 (T4): billing 6 h, declined by the customer after 12 h (no invoice)
    quote(s, t[4], [fee, ("part", "Plugin", 1, 800_000)], wib(2026, 12, 10, 9, 0), wib(2026, 12, 10, 15, 0),
          wib(2026, 12, 11, 3, 0), decision="decline")
    # Q3 (T5): billing 24 h, customer 48 h; invoice 200.000: 100.000 confirmed 24 December, 100.000 recorded
    # 31 December but confirmed 2 January (January's revenue)
    q3 = quote(s, t[5], [("service", "Perbaikan", 1, 200_000)], wib(2026, 12, 20, 8, 0), wib(2026, 12, 21, 8, 0),
               wib(2026, 12, 23, 8, 0))
    pay(s, q3.invoice_id, 100_000, wib(2026, 12, 24, 9, 0))
    late = pay(s, q3.invoice_id, 100_000, wib(2026, 12, 31, 9, 0), confirm=False)
    billing.confirm_payment(late.id, bill, now=wib(2027, 1, 2, 9, 0))
    # Q4 (T17): rejected by billing once, submitted again 23 Dec 09:00, approved 12:00 (3 h); no answer yet
    q4 = repairs.draft_quote(t[17].id, tech, now=wib(2026, 12, 22, 8, 30))
    repairs.submit(q4.id, tech, now=wib(2026, 12, 22, 9, 0))
    repairs.reject(q4.id, bill, "Harga salah", now=wib(2026, 12, 22, 10, 0))
    repairs.submit(q4.id, tech, now=wib(2026, 12, 23, 9, 0))
    repairs.approve(q4.id, bill, now=wib(2026, 12, 23, 12, 0))
    # an invoice that is not a repair's, paid in December: not repair revenue
    other = billing.create_invoice(customer_id=cust.id, lines=[{"description": "Domain", "unit_price": 250_000}],
                                   now=wib(2026, 12, 6, 9, 0))
    pay(s, other.id, 250_000, wib(2026, 12, 6, 10, 0))
    db.session.commit()
    return {"tickets": t, "host_new": host_new, "site_old": site_old, "site2": site2}


def test_december_numbers(app, december):
    data = report.guarantee_report(DEC)
    assert data["tickets"]["charges"] == {"free_warranty": 4, "free_contract": 2, "free_bundle": 1, "paid": 5,
                                          "needs_classification": 1, "unknown_item": 2}
    assert data["tickets"]["total"] == 15 and data["tickets"]["cashback"] == 4  # T1 T2 T12 T18
    assert data["claims"]["by_status"] == {
        "requested": {"count": 1, "amount": None}, "verified": {"count": 1, "amount": None},
        "approved": {"count": 1, "amount": 450_000}, "paid": {"count": 1, "amount": 600_000},
        "rejected": {"count": 1, "amount": None}}
    assert (data["claims"]["count"], data["claims"]["amount"]) == (5, 1_050_000)
    rep = data["repairs"]
    # confirmed in December: Q0 150.000 + Q1 500.000 + Q3 100.000 (the other 100.000 in January; the domain
    # invoice is not a repair)
    assert rep["collected"] == {"count": 3, "amount": 750_000}
    assert rep["invoiced"] == {"count": 3, "amount": 850_000}  # Q0 (issued 1 Dec), Q1, Q3
    # billing decisions in December: 2, 6, 24 and 3 h -> sorted 2 3 6 24: median (nearest rank) 3, p90 24
    assert (rep["billing_time"].count, rep["billing_time"].median_hours, rep["billing_time"].p90_hours) == (4, 3, 24)
    # customer decisions in December: Q0 2 h, Q1 24 h, Q2 12 h (declined), Q3 48 h -> median 12, p90 48
    assert (rep["customer_time"].count, rep["customer_time"].median_hours,
            rep["customer_time"].p90_hours) == (4, 12, 48)
    assert (rep["customer_approved"], rep["customer_declined"]) == (3, 1)
    # defects per item in December: site_old T3 T4 T5 T17 (T6 is a content change, T10 has no category),
    # host_new T1 T2 T12, site2 T7 T8; bundled hosting and host_b have one each
    assert [(d["item_id"], d["count"]) for d in data["defects"]] == [
        (december["site_old"].id, 4), (december["host_new"].id, 3), (december["site2"].id, 2)]
    first = data["defects"][0]
    assert (first["product"], first["identifier"], first["customer"]) == ("Website Toko Online", "tokobatik.co.id",
                                                                          "Budi Santoso")
    assert [d["item_id"] for d in report.repeated_defects(DEC, limit=2)] == [december["site_old"].id,
                                                                           december["host_new"].id]


def test_month_boundaries_are_jakarta_months(app, december):
    nov = report.guarantee_report(NOV)
    # T15 (paid), T20 (free_warranty, cashback) and T19 (30 Nov 23:59 WIB); T12 (30 Nov 17:30 UTC) is December's
    assert nov["tickets"]["charges"] == {"free_warranty": 1, "free_contract": 0, "free_bundle": 0, "paid": 1,
                                         "needs_classification": 0, "unknown_item": 1}
    assert (nov["tickets"]["total"], nov["tickets"]["cashback"]) == (3, 1)
    assert nov["claims"]["by_status"]["approved"] == {"count": 1, "amount": 300_000} and nov["claims"]["count"] == 1
    # Q0's billing approval (30 Nov 23:00 WIB, 10 days 12 h after submission) is November's
    assert (nov["repairs"]["billing_time"].count, nov["repairs"]["billing_time"].median_hours) == (1, 252)
    assert nov["repairs"]["collected"] == {"count": 0, "amount": 0} and nov["defects"] == []
    jan = report.guarantee_report(JAN)
    assert jan["tickets"]["total"] == 1 and jan["tickets"]["charges"]["unknown_item"] == 1  # T14
    assert jan["repairs"]["collected"] == {"count": 1, "amount": 100_000}
    # the six months up to December, oldest first; July to October are empty
    assert data_months(report.guarantee_report(DEC)) == [
        ("2026-07", 0), ("2026-08", 0), ("2026-09", 0), ("2026-10", 0), ("2026-11", 3), ("2026-12", 15)]
    # a ticket created exactly at the month's first instant (1 Dec 00:00 WIB) counts in December
    lo, hi = report.month_bounds(DEC)
    assert (lo, hi) == (datetime(2026, 11, 30, 17, 0), datetime(2026, 12, 31, 17, 0))


def data_months(data):
    return [(m.strftime("%Y-%m"), data["trend"][m]["total"]) for m in data["months"]]


def test_month_helpers():
    assert report.parse_month("2026-12") == DEC
    assert report.parse_month("2026-13") is None and report.parse_month("x") is None and report.parse_month("") is None
    assert report.add_months(DEC, 1) == JAN and report.add_months(JAN, -2) == NOV
    assert report.months_ending(date(2027, 2, 1), 3) == [DEC, JAN, date(2027, 2, 1)]
    assert report.this_month(datetime(2026, 11, 30, 17, 30)) == DEC
    assert report.safe_cell("=1+1") == "'=1+1" and report.safe_cell("-5") == "'-5" and report.safe_cell("@a") == "'@a"
    assert report.safe_cell("+62 812") == "'+62 812" and report.safe_cell("Budi") == "Budi"
    assert report.safe_cell(-5) == -5 and report.safe_cell(None) == ""


def cells(html, table_id, attr, key):
    """The cell texts of the row with data-<attr>=key in the table with that id."""
    table = re.search(r'<table[^>]*id="' + table_id + r'".*?</table>', html, re.S).group(0)
    row = re.search(r'<tr data-' + attr + '="' + key + r'"[^>]*>(.*?)</tr>', table, re.S).group(1)
    return [" ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]


def test_page_shows_the_numbers_and_the_chart_image(app, client, auth, shop, december):
    auth.login(shop["billing"])
    resp = client.get("/reports/guarantees?month=2026-12&lang=en")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    # the six months' columns, December last
    assert cells(html, "charge-table", "charge", "free_warranty")[1:] == ["0", "0", "0", "0", "1", "4"]
    assert cells(html, "charge-table", "charge", "paid")[1:] == ["0", "0", "0", "0", "1", "5"]
    assert cells(html, "charge-table", "charge", "total")[1:] == ["0", "0", "0", "0", "3", "15"]
    assert cells(html, "charge-table", "charge", "cashback")[1:] == ["0", "0", "0", "0", "1", "4"]
    assert cells(html, "claims-table", "status", "paid")[1:] == ["1", "Rp 600.000"]
    assert cells(html, "claims-table", "status", "total")[1:] == ["5", "Rp 1.050.000"]
    assert cells(html, "repairs-table", "key", "collected")[1:] == ["Rp 750.000", "3 payments"]
    assert cells(html, "approval-times", "key", "billing_time")[1:] == ["4", "3.0 h", "24.0 h"]
    assert cells(html, "approval-times", "key", "customer_time")[1:] == ["4", "12.0 h", "48.0 h"]
    assert cells(html, "defects-table", "item", str(december["site_old"].id)) == [
        "Website Toko Online", "tokobatik.co.id", "Budi Santoso", "4"]
    assert "&#34;" in html or "&quot;" in html  # the formula-like name is escaped on the page
    # the chart is an <img> of an SVG route, never inline SVG in the page
    assert "<svg" not in html
    src = re.search(r'<img src="([^"]+)"[^>]*id="guarantees-chart"', html).group(1)
    assert src == "/reports/guarantees/chart.svg?month=2026-12"
    from tests.integration.test_security import assert_page_inert
    assert_page_inert(html)
    svg = client.get(src + "&lang=en")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert svg.headers["Content-Security-Policy"] == "default-src 'none'"
    body = svg.get_data(as_text=True)
    assert body.startswith("<svg") and "<script" not in body
    assert "Tickets per charge decision, Jul 2026 – Dec 2026" in body
    # December's stack: one segment per decision with its count
    for name, n in (("Free — warranty", 4), ("Free — contract", 2), ("Free — bundle", 1), ("Paid service", 5),
                    ("Needs a category", 1), ("No product linked", 2)):
        assert f"Dec 2026 — {name}: {n}</title>" in body, name
    assert "Nov 2026 — Paid service: 1</title>" in body
    # an empty stretch of months says so
    empty = client.get("/reports/guarantees/chart.svg?month=2025-01&lang=en").get_data(as_text=True)
    assert "No tickets in these months." in empty and "<rect x=" in empty
    # a bad month falls back to this month (no error)
    assert client.get("/reports/guarantees?month=nonsense").status_code == 200


def test_csv_export(app, client, auth, shop, december):
    auth.login(shop["admin"])
    resp = client.get("/reports/guarantees.csv?month=2026-12")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="guarantees-2026-12.csv"'
    raw = resp.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["month", "section", "key", "detail", "count", "amount_idr", "hours"]
    by_key = {(r[1], r[2]): r for r in rows[1:]}
    assert all(r[0] == "2026-12" for r in rows[1:])
    assert by_key[("tickets", "free_warranty")][4] == "4" and by_key[("tickets", "paid")][4] == "5"
    assert by_key[("tickets", "total")][4] == "15" and by_key[("tickets", "cashback_possible")][4] == "4"
    assert by_key[("cashback_claims", "approved")][4:6] == ["1", "450000"]
    assert by_key[("cashback_claims", "requested")][4:6] == ["1", ""]
    assert by_key[("cashback_claims", "total")][4:6] == ["5", "1050000"]
    assert by_key[("repairs", "revenue_collected")][4:6] == ["3", "750000"]
    assert by_key[("repairs", "invoiced")][4:6] == ["3", "850000"]
    assert by_key[("repairs", "billing_time_median")][4:] == ["4", "", "3.0"]
    assert by_key[("repairs", "customer_time_p90")][4:] == ["4", "", "48.0"]
    site2 = by_key[("repeated_defects", f"item {december['site2'].id}")]
    # the customer's formula-like name starts the cell: neutralised with an apostrophe
    assert site2[3] == '\'=HYPERLINK("http://evil.example/","Klik") / Website Toko Online / contract.id'
    assert site2[4] == "2"
    assert [r[2] for r in rows if r[1] == "repeated_defects"] == [
        f"item {december['site_old'].id}", f"item {december['host_new'].id}", f"item {december['site2'].id}"]


@pytest.mark.parametrize("who,code", [("admin", 200), ("billing", 200), ("lead", 200), ("cs", 403), ("tech", 403)])
def test_access(app, client, auth, shop, who, code):
    auth.login(shop[who])
    for url in ("/reports/guarantees?month=2026-12", "/reports/guarantees.csv?month=2026-12",
                "/reports/guarantees/chart.svg?month=2026-12"):
        assert client.get(url).status_code == code, url
    nav = client.get("/?lang=en").get_data(as_text=True)
    assert ('href="/reports/guarantees"' in nav) == (code == 200)


def test_anonymous_is_sent_to_login(app, client):
    resp = client.get("/reports/guarantees")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
