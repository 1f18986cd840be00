"""JSON API v1, invoices: the list with its filters (status, customer, source, due_before,
updated_since, number) and keyset paging, one invoice by its number (the slashes as they are or
URL-encoded) with lines, totals and payments, and who may read them (billing and admins; other
agents 403, no token 401). The OpenAPI document describes the answers."""
from datetime import date, timedelta
from urllib.parse import quote

import pytest

from helpdesk.auth.services import create_api_token
from helpdesk.billing import services as billing
from helpdesk.extensions import db
from helpdesk.timeutil import utcnow
from tests.factories import wib
from tests.integration.test_api_leads import Api, _error

NOW = wib(2026, 11, 20, 10, 0)
LINE = {"description": "Biaya servis", "quantity": 1, "unit_price": 150_000}


@pytest.fixture
def desk(app, make, client):
    users = {"biller": make.user(roles=["billing"]), "admin": make.user(roles=["admin"]),
             "agent": make.user(roles=["technical_support"]), "marketer": make.user(roles=["marketing"]),
             "support": make.user(roles=["customer_support"])}
    org = make.organisation(name="PT Toko Maju", npwp="01.234.567.8-901.000")
    customers = {"dewi": make.customer(name="Dewi Lestari", email="dewi@tokodewi.co.id", language="id"),
                 "sari": make.customer(name="Sari", kind="b2b", organisation_id=org.id, language="en")}
    db.session.flush()
    tokens = {name: create_api_token(u.id, "test") for name, u in users.items()}
    db.session.commit()
    return {"users": users, "customers": customers, "api": {n: Api(client, t) for n, t in tokens.items()},
            "anonymous": Api(client, None)}


def invoice(desk, customer="dewi", source=None, now=NOW, lines=(LINE,), **kw):
    inv = billing.create_invoice(customer_id=desk["customers"][customer].id, lines=list(lines),
                                 actor_id=desk["users"]["biller"].id, source_type=source,
                                 source_id=1 if source else None, now=now, **kw)
    db.session.commit()
    return inv


def numbers(resp):
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    body = resp.get_json()
    assert set(body) == {"items", "next"}
    return [i["number"] for i in body["items"]]


# ---------------------------------------------------------------- who may read invoices

def test_no_token_is_401_and_other_agents_are_403(app, desk):
    inv = invoice(desk)
    for path in ("/invoices", f"/invoices/{inv.number}"):
        r = desk["anonymous"].get(path)
        _error(r, 401)
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        for who in ("agent", "marketer", "support"):
            _error(desk["api"][who].get(path), 403)
        for who in ("biller", "admin"):
            assert desk["api"][who].get(path).status_code == 200, who


# ---------------------------------------------------------------- GET /invoices

def test_list_filters(app, desk):
    old = invoice(desk, source="repair", now=NOW - timedelta(days=30))  # due 14 days after
    order = invoice(desk, source="order", customer="sari", now=NOW - timedelta(days=2))
    renewal = invoice(desk, source="renewal", now=NOW - timedelta(days=1))
    plain = invoice(desk, now=NOW)
    api = desk["api"]["biller"]
    assert numbers(api.get("/invoices")) == [plain.number, renewal.number, order.number, old.number]
    assert numbers(api.get("/invoices?source=order")) == [order.number]
    assert numbers(api.get("/invoices?source=renewal")) == [renewal.number]
    assert numbers(api.get("/invoices?source=repair")) == [old.number]
    assert numbers(api.get(f"/invoices?customer={desk['customers']['sari'].id}")) == [order.number]
    assert numbers(api.get(f"/invoices?customer={desk['customers']['dewi'].id}&source=repair")) == [old.number]
    assert numbers(api.get(f"/invoices?due_before={(old.due_on + timedelta(days=1)).isoformat()}")) == [old.number]
    assert numbers(api.get(f"/invoices?due_before={old.due_on.isoformat()}")) == []  # strictly before
    assert numbers(api.get(f"/invoices?number={order.number}")) == [order.number]
    assert numbers(api.get(f"/invoices?number={order.number.lower()}")) == [order.number]

    billing.record_payment(old.id, desk["users"]["biller"].id, amount=old.total, method="cash",
                           paid_on=old.issued_on, confirm=True, now=NOW - timedelta(days=25))
    billing.void_invoice(renewal.id, desk["users"]["biller"].id, "Salah pelanggan", now=NOW)
    db.session.commit()
    assert numbers(api.get("/invoices?status=paid")) == [old.number]
    assert numbers(api.get("/invoices?status=void")) == [renewal.number]
    assert numbers(api.get("/invoices?status=open")) == [plain.number, order.number]
    assert numbers(api.get("/invoices?status=unpaid&source=order")) == [order.number]

    # updated_since: created, paid, voided or a payment recorded at or after the time (ISO 8601, UTC)
    since = (NOW - timedelta(hours=1)).isoformat() + "Z"
    assert numbers(api.get(f"/invoices?updated_since={since}")) == [plain.number, renewal.number]
    since = (NOW - timedelta(days=26)).isoformat()
    assert numbers(api.get(f"/invoices?updated_since={since}")) == [
        plain.number, renewal.number, order.number, old.number]  # old: its payment 25 days ago


@pytest.mark.parametrize("query, field", [("status=lost", "status"), ("source=shop", "source"),
                                          ("customer=dewi", "customer"), ("due_before=31-12-2026", "due_before"),
                                          ("updated_since=yesterday", "updated_since"), ("limit=0", "limit"),
                                          ("cursor=bm9wZQ", "cursor")])
def test_list_validation_errors(app, desk, query, field):
    err = _error(desk["api"]["biller"].get(f"/invoices?{query}"), 400)
    assert err["field"] == field


def test_paging_walks_every_invoice_exactly_once(app, desk):
    made = {invoice(desk, customer="dewi" if i % 2 else "sari", source="order").number for i in range(12)}
    invoice(desk, source="repair")  # filtered out
    seen, pages, url = [], 0, "/invoices?source=order&limit=5"
    while url:
        body = desk["api"]["admin"].get(url).get_json()
        assert len(body["items"]) <= 5
        seen += [i["number"] for i in body["items"]]
        url = body["next"]
        assert url is None or (url.startswith("http://localhost/api/v1/invoices?") and "limit=5" in url
                               and "source=order" in url)
        pages += 1
    assert pages == 3 and len(seen) == 12 and set(seen) == made
    assert seen == sorted(seen, reverse=True)  # newest first


# ---------------------------------------------------------------- GET /invoices/<number>

def test_one_invoice_by_number_with_lines_totals_and_payments(app, desk):
    lines = [{"description": "Website Toko Online", "quantity": 1, "unit_price": 4_500_000, "discount": 500_000},
             {"description": "Domain .co.id", "quantity": 2, "unit_price": 250_000}]
    inv = invoice(desk, customer="sari", source="order", lines=lines, discount=100_000, tax_rate_bp=1100)
    api = desk["api"]["biller"]
    r = api.get(f"/invoices/{inv.number}")  # the slashes as they are
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    body = r.get_json()
    assert body["number"] == inv.number and "/" in inv.number
    assert body["url"] == f"http://localhost/api/v1/invoices/{inv.number}"
    assert body["status"] == "unpaid" and body["source"] == {"type": "order", "id": 1}
    assert body["bill_to"] == {"name": "Sari", "company": "PT Toko Maju", "npwp": "01.234.567.8-901.000"}
    assert body["customer"]["id"] == desk["customers"]["sari"].id and body["locale"] == "en"
    # 5.000.000 - 500.000 line discount - 100.000 voucher = 4.400.000; PPN 11 % = 484.000
    assert {k: body[k] for k in ("subtotal", "discount", "tax_rate_bp", "tax", "total", "amount_paid", "balance")} == {
        "subtotal": 5_000_000, "discount": 600_000, "tax_rate_bp": 1100, "tax": 484_000, "total": 4_884_000,
        "amount_paid": 0, "balance": 4_884_000}
    assert body["issued_on"] == inv.issued_on.isoformat() and body["due_on"] == inv.due_on.isoformat()
    assert body["transfer_amount"] == inv.transfer_amount and body["transfer_code"] == inv.transfer_code
    assert [(ln["description"], ln["quantity"], ln["unit_price"], ln["discount"], ln["amount"])
            for ln in body["lines"]] == [("Website Toko Online", 1, 4_500_000, 500_000, 4_000_000),
                                         ("Domain .co.id", 2, 250_000, 0, 500_000)]
    assert body["payments"] == []

    encoded = api.get("/invoices/" + quote(inv.number, safe=""))  # INV%2F2026%2F000001
    assert "%2F" in quote(inv.number, safe="")
    assert encoded.status_code == 200 and encoded.get_json() == body
    assert api.get("/invoices/" + inv.number.lower()).get_json()["number"] == inv.number
    _error(api.get("/invoices/INV/1999/000001"), 404)
    _error(api.get("/invoices/nope"), 404)


def test_payments_in_the_answer_after_a_confirmed_payment(app, desk):
    inv = invoice(desk)
    biller = desk["users"]["biller"].id
    paid_on = date(2026, 11, 21)
    billing.record_payment(inv.id, biller, amount=50_000, method="bank_transfer", reference="BCA 12345",
                           paid_on=paid_on, now=NOW + timedelta(days=1))  # pending
    db.session.commit()
    body = desk["api"]["biller"].get(f"/invoices/{inv.number}").get_json()
    assert [(p["amount"], p["status"]) for p in body["payments"]] == [(50_000, "pending")]
    assert body["amount_paid"] == 0 and body["status"] == "unpaid"

    billing.confirm_payment(body["payments"][0]["id"], biller, now=NOW + timedelta(days=1))
    billing.record_payment(inv.id, biller, amount=100_000, method="cash", paid_on=paid_on, confirm=True,
                           now=NOW + timedelta(days=1))
    db.session.commit()
    body = desk["api"]["admin"].get(f"/invoices/{inv.number}").get_json()
    assert [{k: p[k] for k in ("amount", "method", "reference", "paid_on", "status")} for p in body["payments"]] == [
        {"amount": 50_000, "method": "bank_transfer", "reference": "BCA 12345", "paid_on": "2026-11-21",
         "status": "confirmed"},
        {"amount": 100_000, "method": "cash", "reference": None, "paid_on": "2026-11-21", "status": "confirmed"}]
    assert body["status"] == "paid" and body["amount_paid"] == 150_000 and body["balance"] == 0
    assert body["paid_at"] is not None and body["transfer_amount"] is None


# ---------------------------------------------------------------- the OpenAPI document

def test_openapi_invoice_schemas_match_the_answers(app, desk):
    inv = invoice(desk, source="order")
    billing.record_payment(inv.id, desk["users"]["biller"].id, amount=10_000, method="cash",
                           paid_on=utcnow().date(), confirm=True)
    db.session.commit()
    api = desk["api"]["biller"]
    doc = api.get("/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    assert {"/invoices", "/invoices/{invoice_number}"} <= set(doc["paths"])
    params = {p["name"] for p in doc["paths"]["/invoices"]["get"]["parameters"]}
    assert {"status", "customer", "source", "due_before", "updated_since", "number", "limit", "cursor"} <= params
    item = api.get("/invoices").get_json()["items"][0]
    assert set(item) == set(schemas["Invoice"]["properties"])
    assert set(item) >= set(schemas["Invoice"]["required"])
    detail = api.get(item["url"]).get_json()
    assert set(detail) == set(schemas["Invoice"]["properties"]) | set(
        schemas["InvoiceDetail"]["allOf"][1]["properties"])
    assert set(detail["lines"][0]) == set(schemas["InvoiceLine"]["properties"])
    assert set(detail["payments"][0]) == set(schemas["Payment"]["properties"])
