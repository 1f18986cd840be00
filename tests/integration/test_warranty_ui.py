"""Products and guarantees in the agent UI: the customer page's items and contracts, the ticket
sidebar (badges, linking, category, complaint date, decision history), queue badges and the charge
filter, the item timeline, and the API's `eligibility`."""
import re
from contextlib import contextmanager
from datetime import date

import pytest
import time_machine
from sqlalchemy import event, select

from helpdesk.auth.services import create_api_token
from helpdesk.extensions import db
from helpdesk.tickets import services
from helpdesk.tickets.models import AuditEvent, Ticket
from helpdesk.warranty import services as warranty
from helpdesk.warranty.models import ContractPlan, IssueCategory, OwnedItem, Product
from tests.integration.test_warranty_services import wib


@pytest.fixture
def shop(make):
    q = make.queue(slug="technical-support", name="Technical Support")
    tech = make.user(roles=["technical_support"], queues=[q])
    cs = make.user(roles=["customer_support"], queues=[q])
    cust = make.customer(name="Toko Batik Ayu")
    # (code, name, line, price, warranty days, cashback days, bundle)
    website, hosting, seo = (Product(code=code, name=name, product_line=line, price=price, warranty_days=w,
                                     cashback_days=c, bundle=bundle) for code, name, line, price, w, c, bundle in (
        ("WEB-TOKO", "Website Toko Online", "website", 4_500_000, 90, 30, [{"target": "domain_hosting",
                                                                            "free_days": 365}]),
        ("HOST-1G", "Hosting 1 GB", "domain_hosting", 600_000, 30, 30, []),
        ("SEO-BASIC", "SEO Basic", "ads_seo", 1_500_000, 0, 0, [])))
    retired = Product(code="OLD-PKG", name="Paket Lama", product_line="website", active=False)
    plan = ContractPlan(name="Kontrak SEO Prioritas", coverage_days=365, covers_lines=["ads_seo"],
                        support_tier="premium", price=3_000_000)
    defect = IssueCategory(code="site_down", name_id="Situs tidak bisa dibuka", name_en="Site down", is_defect=True,
                           product_line="domain_hosting")
    content = IssueCategory(code="content_change", name_id="Ubah konten", name_en="Content change", is_defect=False)
    db.session.add_all([website, hosting, seo, retired, plan, defect, content])
    db.session.commit()
    return {"q": q, "tech": tech, "cs": cs, "cust": cust, "website": website, "hosting": hosting, "seo": seo,
            "retired": retired, "plan": plan, "defect": defect, "content": content}


@contextmanager
def at(auth, user, when):
    """Travel to a Jakarta moment and sign in there (a session signed in later does not hold earlier)."""
    with time_machine.travel(when, tick=False):
        auth.login(user)
        yield


def new_ticket(shop, now, subject="Masalah", body="Tolong dibantu"):
    t = services.create_ticket(customer_id=shop["cust"].id, subject=subject, body_text=body, channel="email",
                               queue_id=shop["q"].id, now=now)
    db.session.commit()
    return t


def item(shop, product, purchase, activation=None, identifier=None, status="active", with_bundle=True):
    it = warranty.create_item(customer_id=shop["cust"].id, product_id=shop[product].id, purchase_date=purchase,
                              activation_date=activation, identifier=identifier, status=status,
                              with_bundle=with_bundle)
    db.session.commit()
    return it


def sidebar(html):
    """The text of the ticket page's product-and-guarantee card."""
    m = re.search(r'<section class="card mb-3" id="warranty-panel".*?</section>', html, re.S)
    assert m, "no warranty panel"
    return m.group(0)


def badge_texts(fragment):
    return re.findall(r'<span class="badge (?:charge-badge|cashback-badge)[^"]*">([^<]+)</span>', fragment)


# ---------------------------------------------------------------- the customer page

def test_customer_page_lists_items_and_a_new_website_brings_its_hosting(app, client, auth, shop):
    auth.login(shop["cs"])
    cid = shop["cust"].id
    page = client.get(f"/customers/{cid}").get_data(as_text=True)
    assert "No products recorded." in page
    options = re.findall(r'<option value="\d+">([^<]+)</option>', page.split('id="add-item-form"')[1])
    assert "Website Toko Online (WEB-TOKO)" in options and not any("Paket Lama" in o for o in options)

    resp = client.post(f"/customers/{cid}/items", data={
        "product_id": shop["website"].id, "purchase_date": "2026-11-01", "activation_date": "2026-11-03",
        "identifier": "https://www.tokobatik.co.id/", "reference": "SO-1001", "status": "active"})
    assert resp.status_code == 302
    resp = client.post(f"/customers/{cid}/contracts", data={"plan_id": shop["plan"].id, "start": "2026-11-10"})
    assert resp.status_code == 302

    with at(auth, shop["cs"], wib(2026, 11, 20, 10, 0)):
        page = client.get(f"/customers/{cid}").get_data(as_text=True)
    section = page.split('id="owned-items"')[1]
    rows = re.findall(r"<tr>(.*?)</tr>", section.split("<tbody>")[1].split("</tbody>")[0], re.S)
    cells = [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", r, re.S)] for r in rows]
    by_product = {c[0]: c for c in cells}
    assert by_product["Website Toko Online"][1:10] == [
        "tokobatik.co.id", "Active", "1 November 2026", "3 November 2026", "31 January 2027", "2 December 2026",
        "—", "—", "SO-1001"]  # ... free with a bundle until, paid until (a one-off product), reference
    # the bundled hosting came with it, free for 365 days from the activation day
    assert by_product["Hosting 1 GB"][1] == "tokobatik.co.id"
    assert by_product["Hosting 1 GB"][7] == "2 November 2027"
    assert by_product["Website Toko Online"][10] == "—"  # the SEO contract does not cover a website
    assert "Kontrak SEO Prioritas: 10 November 2026 – 9 November 2027" in section
    assert "Support tier today: premium (from a service contract)" in page
    hosting = db.session.execute(select(OwnedItem).where(OwnedItem.product_id == shop["hosting"].id)).scalar_one()
    assert f'href="/items/{hosting.id}"' in section


def test_customer_page_shows_the_contracts_covering_an_item(app, client, auth, shop):
    item(shop, "seo", date(2026, 1, 5), identifier="batikayu.com")
    warranty.add_contract(customer_id=shop["cust"].id, plan_id=shop["plan"].id, start=date(2026, 2, 1))
    db.session.commit()
    auth.login(shop["cs"])
    page = client.get(f"/customers/{shop['cust'].id}").get_data(as_text=True)
    row = re.search(r"<tr>\s*<td><a[^>]*>SEO Basic</a>.*?</tr>", page, re.S).group(0)
    assert "Kontrak SEO Prioritas (1 February 2026 – 31 January 2027)" in row


def test_a_rejected_item_form_keeps_what_was_typed(app, client, auth, shop):
    auth.login(shop["cs"])
    cid = shop["cust"].id
    typed = {"product_id": shop["hosting"].id, "purchase_date": "2026-11-10", "activation_date": "2026-11-01",
             "identifier": "kopiluwak.id", "reference": "INV-77", "status": "suspended"}
    resp = client.post(f"/customers/{cid}/items", data=typed)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert "The activation date cannot be before the purchase date." in page
    form = page.split('id="add-item-form"')[1].split("</form>")[0]
    assert 'value="kopiluwak.id"' in form and 'value="INV-77"' in form
    assert 'value="2026-11-10"' in form and 'value="2026-11-01"' in form
    assert re.search(rf'<option selected value="{shop["hosting"].id}">', form)
    assert '<option selected value="suspended">' in form
    # a missing purchase date: refused by the form, input kept, nothing created
    resp = client.post(f"/customers/{cid}/items", data={**typed, "purchase_date": "", "activation_date": ""})
    assert resp.status_code == 400 and 'value="kopiluwak.id"' in resp.get_data(as_text=True)
    assert db.session.execute(select(OwnedItem)).first() is None
    resp = client.post(f"/customers/{cid}/contracts", data={"plan_id": shop["plan"].id, "start": "",
                                                            "contract_reference": "KTR-9"})
    assert resp.status_code == 400 and 'value="KTR-9"' in resp.get_data(as_text=True)


# ---------------------------------------------------------------- the ticket sidebar

def decisions(shop):
    """One ticket per charge decision (complaints on 20 Nov 2026, Jakarta)."""
    now = wib(2026, 11, 20, 9, 0)
    tech = shop["tech"].id
    hosting = item(shop, "hosting", date(2026, 11, 3), identifier="hosting-baru.id")
    site = item(shop, "website", date(2025, 12, 1), identifier="lama.co.id")  # bundled hosting free until 30 Nov 2026
    bundled = db.session.execute(select(OwnedItem).where(OwnedItem.bundle_parent_id == site.id)).scalar_one()
    seo_contract = item(shop, "seo", date(2026, 1, 1), identifier="seo-kontrak.id")
    warranty.add_contract(customer_id=shop["cust"].id, plan_id=shop["plan"].id, start=date(2026, 6, 1))
    db.session.commit()
    out = {}
    for key, it, category in (("unknown_item", None, None), ("needs_classification", hosting, None),
                              ("free_warranty", hosting, "defect"), ("free_bundle", bundled, "defect"),
                              ("free_contract", seo_contract, "content"), ("paid", site, "content")):
        t = new_ticket(shop, now, subject=f"Tiket {key}")
        if it is not None:
            warranty.set_item(t.id, tech, it.id, now=now)
        if category:
            warranty.set_category(t.id, tech, shop[category].id, now=now)
        db.session.commit()
        assert t.charge == key, (key, t.eligibility)
        out[key] = t
    return out


def test_sidebar_shows_the_badge_of_each_charge_decision(app, client, auth, shop):
    tickets = decisions(shop)
    auth.login(shop["tech"])
    expected = {"unknown_item": ["No product linked"], "needs_classification": ["Needs a category"],
                "free_warranty": ["Free — warranty until 2 Dec", "Cashback possible — 12 days left"],
                "free_bundle": ["Free — bundle"], "free_contract": ["Free — contract"], "paid": ["Paid service"]}
    with at(auth, shop["tech"], wib(2026, 11, 20, 23, 59)):  # still the 20th in Jakarta
        for key, t in tickets.items():
            panel = sidebar(client.get(f"/tickets/{t.number}").get_data(as_text=True))
            assert badge_texts(panel) == expected[key], key
    auth.login(shop["tech"])
    panel = sidebar(client.get(f"/tickets/{tickets['unknown_item'].number}").get_data(as_text=True))
    assert '<span class="text-body-secondary">No product linked</span>' in panel
    # the explanation in the page's language, the linked item links to its timeline
    panel = sidebar(client.get(f"/tickets/{tickets['free_warranty'].number}").get_data(as_text=True))
    assert "Free — in warranty until 2 December 2026" in panel
    link = f'href="/items/{tickets["free_warranty"].owned_item_id}">Hosting 1 GB · hosting-baru.id (Active)</a>'
    assert link in panel
    with at(auth, shop["tech"], wib(2026, 11, 21, 0, 1)):  # the next day in Jakarta: one day less
        panel = sidebar(client.get(f"/tickets/{tickets['free_warranty'].number}?lang=id").get_data(as_text=True))
    assert badge_texts(panel) == ["Gratis — garansi s.d. 2 Des", "Cashback bisa — 11 hari lagi"]
    assert "Gratis — masih garansi sampai 2 Desember 2026" in panel
    with at(auth, shop["tech"], wib(2026, 11, 20, 12, 0)):
        panel = sidebar(client.get(f"/tickets/{tickets['paid'].number}?lang=id").get_data(as_text=True))
    assert badge_texts(panel) == ["Layanan berbayar"]


def test_cashback_badge_counts_down_and_disappears_after_the_last_day(app, client, auth, shop):
    tickets = decisions(shop)
    t = tickets["free_warranty"]
    assert t.cashback_until == date(2026, 12, 2)
    auth.login(shop["tech"])
    for day, shown in ((date(2026, 12, 1), ["Cashback possible — 1 day left"]),
                       (date(2026, 12, 2), ["Cashback possible — last day"]),
                       (date(2026, 12, 3), [])):
        with at(auth, shop["tech"], wib(day.year, day.month, day.day, 8, 0)):
            html = client.get(f"/tickets/{t.number}").get_data(as_text=True)
        assert badge_texts(sidebar(html))[1:] == shown, day


def test_linking_and_categorising_through_the_forms_evaluates_again(app, client, auth, make, shop):
    hosting = item(shop, "hosting", date(2026, 11, 3), identifier="hosting-baru.id")
    stranger = make.customer(name="Orang Lain")
    db.session.commit()
    other = warranty.create_item(customer_id=stranger.id, product_id=shop["hosting"].id,
                                 purchase_date=date(2026, 11, 3))
    db.session.commit()
    t = new_ticket(shop, wib(2026, 11, 20, 9, 0))
    assert t.charge == "unknown_item"
    auth.login(shop["cs"])
    html = client.get(f"/tickets/{t.number}").get_data(as_text=True)
    select_html = sidebar(html).split('id="warranty-item-select"')[1].split("</select>")[0]
    assert f'value="{hosting.id}"' in select_html and f'value="{other.id}"' not in select_html
    resp = client.post(f"/tickets/{t.number}/item", data={"item_id": str(hosting.id)})
    assert resp.status_code == 302
    db.session.expire_all()
    t = db.session.get(Ticket, t.id)
    assert (t.owned_item_id, t.charge) == (hosting.id, "needs_classification")
    resp = client.post(f"/tickets/{t.number}/category", data={"category_id": str(shop["defect"].id)})
    assert resp.status_code == 302
    db.session.expire_all()
    assert db.session.get(Ticket, t.id).charge == "free_warranty"
    with at(auth, shop["cs"], wib(2026, 11, 20, 10, 0)):
        panel = sidebar(client.get(f"/tickets/{t.number}").get_data(as_text=True))
    auth.login(shop["cs"])
    assert badge_texts(panel) == ["Free — warranty until 2 Dec", "Cashback possible — 12 days left"]
    history = panel.split('id="warranty-history"')[1]
    assert history.index("Category changed") < history.index("Product linked") < history.index("At intake")
    assert "<strong>Free — warranty until 2 Dec</strong>" in history and "<strong>No product linked</strong>" in history
    # another customer's item is refused, nothing changes
    resp = client.post(f"/tickets/{t.number}/item", data={"item_id": str(other.id)}, follow_redirects=True)
    assert "That item does not belong to this customer." in resp.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Ticket, t.id).owned_item_id == hosting.id
    # unlinking
    client.post(f"/tickets/{t.number}/item", data={"item_id": ""})
    db.session.expire_all()
    assert db.session.get(Ticket, t.id).charge == "unknown_item"


def test_only_technical_support_changes_the_complaint_date_with_a_reason(app, client, auth, shop):
    hosting = item(shop, "hosting", date(2026, 11, 3))
    t = new_ticket(shop, wib(2026, 12, 5, 9, 0))
    warranty.set_item(t.id, shop["tech"].id, hosting.id)
    warranty.set_category(t.id, shop["tech"].id, shop["defect"].id)
    db.session.commit()
    assert t.charge == "paid"  # the 30-day warranty ended on 2 Dec
    auth.login(shop["cs"])
    html = client.get(f"/tickets/{t.number}").get_data(as_text=True)
    assert 'id="complaint-date-form"' not in html and "5 December 2026" in sidebar(html)
    resp = client.post(f"/tickets/{t.number}/complaint-date", data={"complaint_date": "2026-12-01", "reason": "x"})
    assert resp.status_code == 403
    auth.logout()

    auth.login(shop["tech"])
    html = client.get(f"/tickets/{t.number}").get_data(as_text=True)
    assert 'id="complaint-date-form"' in html
    resp = client.post(f"/tickets/{t.number}/complaint-date", data={"complaint_date": "2026-12-01", "reason": " "})
    assert resp.status_code == 400
    form = resp.get_data(as_text=True).split('id="complaint-date-form"')[1].split("</form>")[0]
    assert "This field is required." in form and 'value="2026-12-01"' in form
    db.session.expire_all()
    assert db.session.get(Ticket, t.id).complaint_date == date(2026, 12, 5)
    resp = client.post(f"/tickets/{t.number}/complaint-date",
                       data={"complaint_date": "2026-12-01", "reason": "Pelanggan menelepon tanggal 1"})
    assert resp.status_code == 302
    db.session.expire_all()
    t = db.session.get(Ticket, t.id)
    assert (t.complaint_date, t.charge) == (date(2026, 12, 1), "free_warranty")
    ev = db.session.execute(select(AuditEvent).where(AuditEvent.ticket_id == t.id,
                                                     AuditEvent.action == "complaint_date")).scalar_one()
    assert ev.note == "Pelanggan menelepon tanggal 1"
    panel = sidebar(client.get(f"/tickets/{t.number}").get_data(as_text=True))
    assert "Complaint date changed" in panel and "1 December 2026" in panel


# ---------------------------------------------------------------- queue lists

class Statements:
    def __init__(self):
        self.seen = None
        event.listen(db.engine, "before_cursor_execute", self._record)

    def _record(self, _conn, _cursor, statement, parameters, _context, _executemany):
        if self.seen is not None:
            self.seen.append((statement, parameters))

    def get(self, client, url):
        self.seen = []
        try:
            resp = client.get(url)
        finally:
            seen, self.seen = self.seen, None
        assert resp.status_code == 200
        return resp.get_data(as_text=True), seen

    def close(self):
        event.remove(db.engine, "before_cursor_execute", self._record)


def _plan(statement, parameters):
    conn = db.session.connection()
    cursor = conn.connection.driver_connection.cursor()
    if conn.dialect.name == "postgresql":
        # The table is tiny: forbid the sequential scan to see whether the index can serve the query
        # (its partial predicate is implied by the query's terms).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + statement, parameters)
        return "\n".join(row[0] for row in cursor.fetchall())
    cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
    return "\n".join(row[3] for row in cursor.fetchall())


def test_queue_list_shows_badges_and_filters_by_charge(app, client, auth, shop):
    tickets = decisions(shop)
    auth.login(shop["tech"])
    with at(auth, shop["tech"], wib(2026, 11, 20, 10, 0)):
        html = client.get("/?view=all").get_data(as_text=True)
    auth.login(shop["tech"])
    rows = {m.group(1): badge_texts(m.group(2)) for m in
            re.finditer(r'<tr>.*?>(Tiket \w+)</a>(.*?)</td>', html, re.S)}
    assert rows["Tiket free_warranty"] == ["Free — warranty until 2 Dec", "Cashback possible — 12 days left"]
    assert rows["Tiket paid"] == ["Paid service"] and rows["Tiket unknown_item"] == ["No product linked"]
    assert rows["Tiket free_bundle"] == ["Free — bundle"] and rows["Tiket free_contract"] == ["Free — contract"]
    assert re.search(r'<option value="paid"\s*>Paid service</option>', html)

    recorder = Statements()
    try:
        client.get("/?view=all")  # warm-up
        _html, unfiltered = recorder.get(client, "/?view=all")
        for code, t in tickets.items():
            page, statements = recorder.get(client, f"/?view=all&charge={code}")
            shown = re.findall(r'name="ticket_ids" value="(\d+)"', page)
            assert shown == [str(t.id)], code
            assert f'<option value="{code}" selected>' in page
            # the same statements as the unfiltered list: badges read only the ticket's columns
            assert len(statements) == len(unfiltered), code
        # more tickets: still the same number of statements
        for i in range(5):
            new_ticket(shop, wib(2026, 11, 20, 9, i), subject=f"Tambahan {i}")
        client.get("/?view=all&charge=unknown_item")  # warm-up (the commits expired the test's session)
        _page, more = recorder.get(client, "/?view=all&charge=unknown_item")
        assert len(more) == len(unfiltered)
        listing_statements = [(s, p) for s, p in more if re.search(r"\bFROM tickets\b", s) and "charge" in s
                              and "ORDER BY" in s]
    finally:
        recorder.close()
    assert listing_statements
    plan = _plan(*listing_statements[0])
    assert "ix_tickets_open_charge_activity" in plan, plan
    db.session.rollback()
    # an unknown value is ignored (the whole list)
    page = client.get("/?view=all&charge=bogus").get_data(as_text=True)
    assert len(re.findall(r'name="ticket_ids"', page)) == len(tickets) + 5


# ---------------------------------------------------------------- the item timeline

def test_item_timeline_lists_every_ticket_about_it_newest_first(app, client, auth, shop):
    hosting = item(shop, "hosting", date(2026, 11, 3), identifier="batikayu.com")
    first = new_ticket(shop, wib(2026, 11, 5, 9, 0), subject="Email tidak masuk", body="batikayu.com")
    second = new_ticket(shop, wib(2026, 11, 9, 9, 0), subject="Situs lambat", body="www.batikayu.com lambat")
    unrelated = new_ticket(shop, wib(2026, 11, 10, 9, 0), subject="Pertanyaan tagihan")
    closed = new_ticket(shop, wib(2026, 11, 6, 9, 0), subject="Sudah selesai")
    warranty.set_item(closed.id, shop["tech"].id, hosting.id)
    services.change_status(closed.id, shop["tech"].id, "resolved")
    db.session.commit()
    assert first.owned_item_id == second.owned_item_id == hosting.id and unrelated.owned_item_id is None
    auth.login(shop["cs"])
    html = client.get(f"/items/{hosting.id}").get_data(as_text=True)
    listed = re.findall(r'<a href="/tickets/(\d+)">#\d+</a> ([^<]+?) <span', html)
    assert listed == [(str(second.number), "Situs lambat"), (str(closed.number), "Sudah selesai"),
                      (str(first.number), "Email tidak masuk")]
    assert "Resolved" in html.split(f"#{closed.number}</a>")[1].split("</li>")[0]
    details = html.split('id="item-details"')[1].split("</dl>")[0]
    assert "batikayu.com" in details and "2 December 2026" in details and "3 November 2026" in details
    assert 'id="item-events"' in html and "None recorded." in html
    assert client.get("/items/999999").status_code == 404


# ---------------------------------------------------------------- the API

def test_api_ticket_has_the_eligibility_object(app, client, shop):
    hosting = item(shop, "hosting", date(2026, 11, 3), identifier="batikayu.com")
    t = new_ticket(shop, wib(2026, 11, 20, 9, 0), body="batikayu.com mati")
    warranty.set_category(t.id, shop["tech"].id, shop["defect"].id, now=wib(2026, 11, 20, 9, 5))
    bare = services.create_ticket(customer_id=shop["cust"].id, subject="Tanpa evaluasi", body_text="x",
                                  channel="email", queue_id=shop["q"].id)
    bare.eligibility = None
    token = create_api_token(shop["tech"].id)
    db.session.commit()
    assert t.owned_item_id == hosting.id
    headers = {"Authorization": f"Bearer {token}"}
    body = client.get(f"/api/v1/tickets/{t.number}", headers=headers).get_json()
    assert body["eligibility"] == {
        "charge": "free_warranty", "rule": "warranty_period", "until": "2026-12-02",
        "explanation": {"id": "Gratis — masih garansi sampai 2 Desember 2026",
                        "en": "Free — in warranty until 2 December 2026"},
        "cashback": {"eligible": True, "until": "2026-12-02", "days_left": 12,
                     "reason": {"id": "Garansi cashback: Hosting 1 GB dibeli 3 November 2026, sisa 12 hari "
                                      "(sampai 2 Desember 2026)",
                                "en": "Cashback guarantee: the Hosting 1 GB was purchased on 3 November 2026, "
                                      "12 days left (until 2 December 2026)"}},
    }
    listed = client.get("/api/v1/tickets?status=any", headers=headers).get_json()["items"]
    by_number = {i["number"]: i for i in listed}
    assert by_number[t.number]["eligibility"]["charge"] == "free_warranty"
    assert by_number[bare.number]["eligibility"] is None
    schema = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["Eligibility"]
    assert set(schema["properties"]) == set(body["eligibility"])
    assert set(schema["properties"]["cashback"]["properties"]) == set(body["eligibility"]["cashback"])
