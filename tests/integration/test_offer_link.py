"""The customer's signed offer link: GET shows and changes nothing; accepting places the order
(the lead is won and becomes a customer); declining records the reason; an expired offer, an
outdated version and a forged token are clear 400/409 pages; the offer mail sent to the real SMTP
test server carries a working link."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.leads import services as lead_services
from helpdesk.leads.models import Lead
from helpdesk.sales import services
from helpdesk.sales.models import Offer, Order
from helpdesk.timeutil import utcnow
from helpdesk.warranty import rules
from helpdesk.warranty.models import Product
from tests.conftest import extract_csrf, work_jobs as work
from tests.factories import Factories
from tests.smtp_server import shared_smtp, smtp_app, smtp_server  # noqa: F401  (fixtures)



@pytest.fixture
def mail_app(smtp_app):
    return smtp_app(COMPANY_NAME="PT Web Jogja Digital")


@pytest.fixture
def offer(mail_app):
    """A sent offer to a lead: a catalogue product with 10 % off and a free-text line."""
    make = Factories()
    maya = make.user(email="maya@desk.example", name="Maya", roles=["marketing"])
    product = Product(code="WEB-TOKO", name="Website Toko Online", product_line="website", price=4_500_000)
    db.session.add(product)
    lead, _created = lead_services.capture(name="Sari Wijaya", email="sari@tokosari.co.id", source="seminar")
    db.session.flush()
    o = services.create_offer(maya.id, lead_id=lead.id)
    services.save_lines(o.id, maya.id, [
        {"product_id": product.id, "quantity": 2, "discount": "10%"},
        {"description": "Pelatihan admin toko", "quantity": 1, "unit_price": "1.250.000"}])
    services.send(o.id, maya.id)
    db.session.commit()
    return {"id": o.id, "lead": lead.id, "user": maya.id, "number": o.number, "total": o.total}


def path_of(offer_id):
    return "/offers/view/" + services.make_token(db.session.get(Offer, offer_id))


def post(client, path, page_html, **data):
    token = extract_csrf(page_html)
    if token:
        data["csrf_token"] = token
    return client.post(path, data=data)


def test_get_shows_and_changes_nothing(mail_app, offer):
    client = mail_app.test_client()
    path = path_of(offer["id"])
    for _n in range(2):
        page = client.get(path)
        html = page.get_data(as_text=True)
        assert page.status_code == 200
        assert offer["number"] in html and "Rp 9.350.000" in html and "PT Web Jogja Digital" in html
        assert 'value="accept"' in html and 'value="decline"' in html
    db.session.remove()
    assert db.session.get(Offer, offer["id"]).status == "sent"
    assert db.session.execute(select(Order)).scalars().all() == []
    pdf = client.get(path + "/pdf")
    assert pdf.status_code == 200 and pdf.content_type == "application/pdf" and pdf.data.startswith(b"%PDF")


def test_accept_places_the_order_and_wins_the_lead(mail_app, offer):
    client = mail_app.test_client()
    path = path_of(offer["id"])
    html = client.get(path).get_data(as_text=True)
    resp = post(client, path, html, decision="accept")
    assert resp.status_code == 303
    db.session.remove()
    o = db.session.get(Offer, offer["id"])
    order = db.session.execute(select(Order).where(Order.offer_id == o.id)).scalar_one()
    assert o.status == "accepted" and order.status == "placed" and order.channel == "offer"
    assert order.total == o.total == 9_350_000 and order.subtotal == o.subtotal
    assert [(ln.description, ln.quantity, ln.unit_price, ln.discount, ln.amount) for ln in order.lines] == [
        (ln.description, ln.quantity, ln.unit_price, ln.discount, ln.amount) for ln in o.lines]
    lead = db.session.get(Lead, offer["lead"])
    assert lead.stage == "won" and lead.customer_id is not None and order.customer_id == lead.customer_id
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert order.number in page and "invoice" in page.lower()
    # answered: no buttons any more, and a second POST is refused with a clear page
    assert 'value="accept"' not in page
    again = client.post(path, data={"decision": "decline"})
    assert again.status_code == 409 and 'id="link-error"' in again.get_data(as_text=True)
    assert db.session.execute(select(Order)).scalars().all() == [order]
    # marketing sees the answer and the order it became on the offer page
    agent = mail_app.test_client()
    assert agent.post("/login", data={"email": "maya@desk.example", "password": "correct-horse-battery"}
                      ).status_code == 302
    page = agent.get(f"/offers/{o.id}").get_data(as_text=True)
    assert 'id="offer-order"' in page and order.number in page and f"/orders/{order.id}" in page


def test_decline_with_a_reason(mail_app, offer):
    client = mail_app.test_client()
    path = path_of(offer["id"])
    html = client.get(path).get_data(as_text=True)
    resp = post(client, path, html, decision="decline", reason="Anggaran belum ada.")
    assert resp.status_code == 303
    db.session.remove()
    o = db.session.get(Offer, offer["id"])
    assert o.status == "declined" and o.decline_reason == "Anggaran belum ada."
    assert db.session.execute(select(Order)).scalars().all() == []
    page = client.get(path).get_data(as_text=True)
    assert 'id="offer-result"' in page and 'value="accept"' not in page


def test_an_expired_offer_is_a_409_page(mail_app, offer):
    o = db.session.get(Offer, offer["id"])
    o.valid_until = rules.complaint_day(utcnow()) - timedelta(days=1)
    db.session.commit()
    client = mail_app.test_client()
    path = path_of(offer["id"])
    page = client.get(path)
    assert page.status_code == 200 and 'value="accept"' not in page.get_data(as_text=True)
    resp = client.post(path, data={"decision": "accept"})
    assert resp.status_code == 409 and 'id="link-error"' in resp.get_data(as_text=True)
    db.session.remove()
    assert db.session.get(Offer, offer["id"]).status == "expired"
    assert db.session.execute(select(Order)).scalars().all() == []


def test_an_outdated_version_and_a_forged_token(mail_app, offer):
    client = mail_app.test_client()
    old_path = path_of(offer["id"])
    services.send(offer["id"], offer["user"])  # sent again: the earlier link is outdated
    db.session.commit()
    assert client.get(old_path).status_code == 409
    resp = client.post(old_path, data={"decision": "accept"})
    assert resp.status_code == 409 and 'id="link-error"' in resp.get_data(as_text=True)
    assert client.get(path_of(offer["id"])).status_code == 200
    for bad in ("/offers/view/not-a-token", old_path[:-3] + "abc", "/offers/view/not-a-token/pdf"):
        resp = client.get(bad)
        assert resp.status_code == 400 and 'id="link-error"' in resp.get_data(as_text=True), bad
    assert client.post("/offers/view/forged", data={"decision": "accept"}).status_code == 400
    db.session.remove()
    assert db.session.get(Offer, offer["id"]).status == "sent"


def test_the_offer_mail_carries_a_link_that_works(mail_app, offer, smtp_server):
    work()
    [mail] = smtp_server.to("sari@tokosari.co.id")
    assert offer["number"] in mail["Subject"] and "PT Web Jogja Digital" in mail["Subject"]
    assert mail["Content-Language"] == "id"
    text = mail.text
    assert "Halo Sari Wijaya" in text and "Total: Rp 9.350.000" in text
    assert "- Website Toko Online: 2 × Rp 4.500.000 - diskon Rp 900.000 = Rp 8.100.000" in text
    link = re.search(r"(http://\S+/offers/view/\S+)", text).group(1)
    assert f'href="{link}"' in mail.html and "Pelatihan admin toko" in mail.html
    client = mail_app.test_client()
    path = link[link.index("/offers/"):]
    page = client.get(path)
    assert page.status_code == 200 and offer["number"] in page.get_data(as_text=True)
    resp = post(client, path, page.get_data(as_text=True), decision="accept")
    assert resp.status_code == 303
    db.session.remove()
    assert db.session.get(Offer, offer["id"]).status == "accepted"
