"""The customer's "My purchases" page on the portal: their offers (sent, accepted, declined,
expired; never a draft) with the signed link to the offer and its PDF, also the offers made to the
lead they were before; their orders and invoices (with the invoice page and its PDF); nothing of
another customer's. The PDF of their own invoice (another's: 404; agents 403)."""
import re
from datetime import timedelta
from html import unescape
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from helpdesk.billing import services as billing
from helpdesk.billing.money import format_rupiah
from helpdesk.extensions import db
from helpdesk.leads import services as leads
from helpdesk.leads.models import Lead
from helpdesk.sales import services as sales
from helpdesk.sales.models import Offer, Order
from helpdesk.timeutil import utcnow
from helpdesk.warranty import rules
from tests.integration.test_invoice_pdf import pdf_text
from tests.integration.test_portal_repairs import sign_in, text_of

LINES = [{"description": "Website Toko Online", "quantity": 1, "unit_price": 4_500_000}]


@pytest.fixture
def shop(app, make):
    w = {"mk": make.user(roles=["marketing"]), "biller": make.user(roles=["billing"]),
         "tech": make.user(roles=["technical_support"]),
         "dewi": make.customer(name="Dewi Lestari", email="dewi@tokodewi.co.id", language="en"),
         "budi": make.customer(name="Budi Santoso", email="budi@example.net", language="en")}
    db.session.commit()
    return {k: v.id for k, v in w.items()}


def offer(shop, *, customer=None, lead_id=None, price=1_000_000, send=True, valid_days=14, desc="Paket"):
    o = sales.create_offer(shop["mk"], customer_id=shop[customer] if customer else None, lead_id=lead_id,
                           valid_days=valid_days)
    sales.save_lines(o.id, shop["mk"], [{"description": desc, "quantity": 1, "unit_price": price}])
    if send:
        sales.send(o.id, shop["mk"])
    db.session.commit()
    return o


def decide(o, decision):
    o, order = sales.customer_decide(o.id, o.version, decision, reason="Terlalu mahal")
    db.session.commit()
    return order


def confirmed_order(shop, customer, price):
    order = sales.create_order(shop["mk"], customer_id=shop[customer], channel="phone",
                               lines=[{"description": "Hosting 1 GB", "quantity": 1, "unit_price": price}])
    sales.confirm(order.id, shop["mk"])
    db.session.commit()
    return order


@pytest.fixture
def dewis(shop):
    """Dewi: a sent, an accepted, a declined and an expired offer, a draft; an order from the
    accepted offer and a confirmed direct order (its invoice), and a repair invoice."""
    made = {"sent": offer(shop, customer="dewi", price=1_100_000, desc="Paket toko"),
            "accepted": offer(shop, customer="dewi", price=1_200_000),
            "declined": offer(shop, customer="dewi", price=1_300_000),
            "expired": offer(shop, customer="dewi", price=1_400_000, valid_days=1),
            "draft": offer(shop, customer="dewi", price=1_500_000, send=False)}
    made["offer_order"] = decide(made["accepted"], "accept")
    decide(made["declined"], "decline")
    sales.expire_offers(utcnow() + timedelta(days=5))
    db.session.commit()
    made["order"] = confirmed_order(shop, "dewi", 600_000)
    made["repair_invoice"] = billing.create_invoice(customer_id=shop["dewi"], lines=LINES, source_type="repair")
    db.session.commit()
    made["order_invoice"] = billing.get_invoice(db.session.get(Order, made["order"].id).invoice_id)
    # Budi's own purchases, never on Dewi's page
    made["budi_offer"] = offer(shop, customer="budi", price=9_100_000)
    made["budi_order"] = confirmed_order(shop, "budi", 9_200_000)
    made["budi_invoice"] = billing.get_invoice(db.session.get(Order, made["budi_order"].id).invoice_id)
    return made


def offer_links(html):
    return sorted(set(re.findall(r'href="(http://[^"]*/offers/view/[^"/]+)"', unescape(html))))


def test_the_customer_sees_their_offers_orders_and_invoices(app, client, shop, dewis):
    sign_in(client, shop["dewi"])
    resp = client.get("/portal/purchases")
    assert resp.status_code == 200
    html, page = resp.get_data(as_text=True), text_of(resp)
    assert 'href="/portal/purchases"' in html  # the nav link
    for status in ("sent", "accepted", "declined", "expired"):
        o = db.session.get(Offer, dewis[status].id)
        assert o.status == status and o.number in page, status
    assert dewis["draft"].number not in page
    assert "Waiting for your answer" in page and "Declined" in page and "Expired" in page
    # orders: number, status, total
    for order, status in ((dewis["offer_order"], "Placed"), (dewis["order"], "Confirmed")):
        row = re.search(rf'<tr id="order-{order.id}">(.*?)</tr>', html, re.S).group(1)
        assert order.number in row and status in row and format_rupiah(order.total) in row
    assert "Rp 1.200.000" in page and "Rp 600.000" in page
    # invoices: number linking to the invoice page, status, total, due date, PDF
    for inv in (dewis["order_invoice"], dewis["repair_invoice"]):
        row = re.search(rf'<tr id="invoice-{inv.id}">(.*?)</tr>', html, re.S).group(1)
        assert f'href="/portal/invoices/{inv.id}"' in row and inv.number in row and "Unpaid" in row
        assert f'href="/portal/invoices/{inv.id}/pdf"' in row
        assert rules.format_date(inv.due_on, "en") in row
    assert "Rp 4.500.000" in page
    # nothing of Budi's
    for number in (dewis["budi_offer"].number, dewis["budi_order"].number, dewis["budi_invoice"].number):
        assert number not in page
    assert "Rp 9.100.000" not in page and "Rp 9.200.000" not in page


def test_the_offer_links_show_the_offer_and_its_pdf(app, client, shop, dewis):
    sign_in(client, shop["dewi"])
    html = client.get("/portal/purchases").get_data(as_text=True)
    links = offer_links(html)
    assert len(links) == 4  # sent, accepted, declined, expired
    shown = set()
    for url in links:
        path = urlsplit(url).path
        view = client.get(path)
        assert view.status_code in (200, 409), path  # the expired one says so
        shown |= {o.number for o in (dewis["sent"], dewis["accepted"], dewis["declined"]) if o.number in text_of(view)}
        assert f'href="{url}/pdf"' in html
    assert shown == {dewis["sent"].number, dewis["accepted"].number, dewis["declined"].number}
    sent_link = next(u for u in links if dewis["sent"].number in text_of(client.get(urlsplit(u).path)))
    pdf = client.get(urlsplit(sent_link).path + "/pdf")
    assert pdf.status_code == 200 and pdf.content_type == "application/pdf"
    assert dewis["sent"].number.encode() in pdf_text(pdf.data)


def test_offers_made_to_the_lead_they_were_before(app, client, shop):
    lead, _created = leads.capture(name="Rina Wati", email="rina@example.com", source="seminar")
    db.session.commit()
    first = offer(shop, lead_id=lead.id, price=2_100_000)
    decide(first, "decline")
    second = offer(shop, lead_id=lead.id, price=2_200_000)
    decide(second, "accept")  # Rina becomes a customer
    customer_id = db.session.execute(select(Lead.customer_id).where(Lead.id == lead.id)).scalar()
    assert customer_id and db.session.get(Offer, first.id).customer_id is None
    sign_in(client, customer_id)
    page = text_of(client.get("/portal/purchases"))
    assert first.number in page and second.number in page


def test_nothing_yet(app, client, shop):
    sign_in(client, shop["budi"])
    page = text_of(client.get("/portal/purchases"))
    assert "My purchases" in page and page.count("None.") == 3


def test_the_pdf_of_their_own_invoice_and_never_anothers(app, client, shop, dewis):
    sign_in(client, shop["dewi"])
    inv = dewis["order_invoice"]
    page = client.get(f"/portal/invoices/{inv.id}").get_data(as_text=True)
    assert f'href="/portal/invoices/{inv.id}/pdf"' in page  # "Download PDF"
    r = client.get(f"/portal/invoices/{inv.id}/pdf")
    assert r.status_code == 200 and r.content_type == "application/pdf" and r.data.startswith(b"%PDF")
    assert inv.number.encode() in pdf_text(r.data)
    assert r.headers["Content-Disposition"].startswith("attachment")
    assert client.get(f"/portal/invoices/{dewis['budi_invoice'].id}/pdf").status_code == 404
    assert client.get("/portal/invoices/999999/pdf").status_code == 404


def test_agents_and_strangers_get_no_portal_pdf(app, client, auth, shop, dewis):
    url = f"/portal/invoices/{dewis['order_invoice'].id}/pdf"
    r = client.get(url)
    assert r.status_code == 302 and "/portal/login" in r.headers["Location"]
    r = client.get("/portal/purchases")
    assert r.status_code == 302 and "/portal/login" in r.headers["Location"]
    from helpdesk.auth.models import User

    auth.login(db.session.get(User, shop["biller"]))
    assert client.get(url).status_code == 403
    assert client.get("/portal/purchases").status_code == 403
