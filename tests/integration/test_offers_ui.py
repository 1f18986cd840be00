"""Marketing's offer pages: an offer made from a lead page with catalogue and free-text lines,
discounts, a voucher and PPN 11 %, totals, sending (the offer mail, the lead moves to offer sent),
other roles refused, a rejected form keeps what was typed, the printable page and the PDF, and the
vouchers admin."""
import re
import zlib

import pytest
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.leads import services as lead_services
from helpdesk.leads.models import Lead
from helpdesk.mail.models import OutboundMail
from helpdesk.sales.models import Offer, Voucher
from helpdesk.warranty.models import Product


@pytest.fixture
def shop(app, make):
    marketing = make.user(email="maya@desk.example", name="Maya", roles=["marketing"])
    support = make.user(email="cs@desk.example", name="Cici", roles=["customer_support"])
    billing = make.user(email="bill@desk.example", name="Bayu", roles=["billing"])
    admin = make.user(email="admin@desk.example", name="Adi", roles=["admin"])
    product = Product(code="WEB-TOKO", name="Website Toko Online", product_line="website", price=4_500_000)
    voucher = Voucher(code="HEMAT10", kind="percent", value=1000, one_per_customer=True)
    db.session.add_all([product, voucher])
    lead, _created = lead_services.capture(name="Sari Wijaya", email="sari@tokosari.co.id", company="Toko Sari",
                                           source="seminar")
    db.session.commit()
    return {"marketing": marketing.email, "support": support.email, "billing": billing.email, "admin": admin.email,
            "product": product.id, "lead": lead.id}


def make_offer(client, shop):
    page = client.get(f"/leads/{shop['lead']}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="make-offer-form"' in html and f'name="lead_id" value="{shop["lead"]}"' in html
    resp = client.post("/offers/new", data={"lead_id": shop["lead"]})
    assert resp.status_code == 303
    offer_id = int(re.search(r"/offers/(\d+)$", resp.headers["Location"]).group(1))
    return offer_id


def lines_data(shop, **extra):
    data = {
        "lines-0-product_id": str(shop["product"]), "lines-0-description": "", "lines-0-quantity": "2",
        "lines-0-unit_price": "", "lines-0-discount": "10%",
        "lines-1-product_id": "", "lines-1-description": "Pelatihan admin toko", "lines-1-quantity": "1",
        "lines-1-unit_price": "1.250.000", "lines-1-discount": "50.000",
        "voucher": "hemat10", "tax_rate": "1100", "valid_days": "14", "locale": "id", "notes": "Termasuk domain.",
        "action": "save",
    }
    data.update(extra)
    return data


def test_marketing_makes_an_offer_from_a_lead_and_sends_it(app, client, auth, shop):
    auth.login(shop["marketing"])
    offer_id = make_offer(client, shop)
    offer = db.session.get(Offer, offer_id)
    assert offer.status == "draft" and offer.lead_id == shop["lead"] and offer.number.startswith("OFR/")

    resp = client.post(f"/offers/{offer_id}", data=lines_data(shop))
    assert resp.status_code == 303
    # by hand: 2 × 4.500.000 = 9.000.000 − 10 % (900.000) = 8.100.000; 1.250.000 − 50.000 = 1.200.000
    subtotal = 2 * 4_500_000 + 1_250_000                      # 10.250.000
    line_discounts = 900_000 + 50_000                         # 950.000
    after_lines = subtotal - line_discounts                   # 9.300.000
    voucher = after_lines * 10 // 100                         # 930.000
    taxable = after_lines - voucher                           # 8.370.000
    tax = taxable * 11 // 100                                 # 920.700 (exact: no rounding needed)
    total = taxable + tax                                     # 9.290.700
    db.session.remove()
    offer = db.session.get(Offer, offer_id)
    assert (offer.subtotal, offer.voucher_discount, offer.tax, offer.total) == (subtotal, voucher, tax, total)
    assert offer.discount_total == line_discounts + voucher and offer.tax_rate_bp == 1100
    assert [(ln.description, ln.quantity, ln.unit_price, ln.discount) for ln in offer.lines] == [
        ("Website Toko Online", 2, 4_500_000, 900_000), ("Pelatihan admin toko", 1, 1_250_000, 50_000)]
    assert offer.voucher.code == "HEMAT10" and offer.notes == "Termasuk domain."

    page = client.get(f"/offers/{offer_id}").get_data(as_text=True)
    for amount in (subtotal, line_discounts, voucher, tax, total):
        assert "Rp " + f"{amount:,}".replace(",", ".") in page
    assert "sari@tokosari.co.id" in page  # the send button names the recipient

    resp = client.post(f"/offers/{offer_id}/send")
    assert resp.status_code == 303
    db.session.remove()
    offer = db.session.get(Offer, offer_id)
    assert offer.status == "sent" and offer.sent_at is not None
    mails = db.session.execute(select(OutboundMail).where(OutboundMail.kind == "offer")).scalars().all()
    assert len(mails) == 1 and mails[0].to_addrs == ["sari@tokosari.co.id"] and offer.number in mails[0].subject
    assert db.session.get(Lead, shop["lead"]).stage == "offer_sent"
    page = client.get(f"/offers/{offer_id}").get_data(as_text=True)
    assert "/offers/view/" in page and 'id="offer-form"' not in page  # no editor once sent
    # the lead page lists the offer
    assert offer.number in client.get(f"/leads/{shop['lead']}").get_data(as_text=True)


def test_add_a_row_keeps_what_was_typed_and_a_rejected_line_too(app, client, auth, shop):
    auth.login(shop["marketing"])
    offer_id = make_offer(client, shop)
    data = lines_data(shop, action="add_row")
    resp = client.post(f"/offers/{offer_id}", data=data)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert 'name="lines-2-description"' in html  # a new empty row
    assert 'value="Pelatihan admin toko"' in html and 'value="1.250.000"' in html and 'value="10%"' in html
    assert db.session.get(Offer, offer_id).lines == []  # nothing saved

    bad = lines_data(shop, **{"lines-1-discount": "2.000.000"})  # a discount larger than its line
    resp = client.post(f"/offers/{offer_id}", data=bad)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert 'id="lines-error"' in html and "Line 2" in html
    assert 'value="Pelatihan admin toko"' in html and 'value="2.000.000"' in html and 'value="hemat10"' in html
    db.session.remove()
    assert db.session.get(Offer, offer_id).lines == []

    resp = client.post(f"/offers/{offer_id}", data=lines_data(shop, voucher="NOPE"))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'id="voucher-error"' in html and 'value="NOPE"' in html


@pytest.mark.parametrize("role", ["support", "billing"])
def test_other_roles_are_refused(app, client, auth, shop, role):
    from helpdesk.auth.models import User
    from helpdesk.sales import services

    marketing = db.session.execute(select(User).where(User.email == shop["marketing"])).scalar_one()
    offer = services.create_offer(marketing.id, lead_id=shop["lead"])
    db.session.commit()
    auth.login(shop[role])
    for url in ("/offers", f"/offers/{offer.id}", f"/offers/{offer.id}/print", f"/offers/{offer.id}.pdf",
                "/offers/vouchers", f"/offers/new?lead_id={shop['lead']}"):
        assert client.get(url).status_code == 403, url
    assert client.post("/offers/new", data={"lead_id": shop["lead"]}).status_code == 403
    assert client.post(f"/offers/{offer.id}/send").status_code == 403
    assert db.session.execute(select(Offer)).scalars().all() == [offer]


def pdf_text(data):
    """The uncompressed streams and the rest of a PDF, for a plain search."""
    chunks = [data]
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            chunks.append(zlib.decompress(m.group(1)))
        except zlib.error:
            pass
    return b"\n".join(chunks)


def test_print_page_and_pdf(app, client, auth, shop):
    auth.login(shop["admin"])
    offer_id = make_offer(client, shop)
    assert client.post(f"/offers/{offer_id}", data=lines_data(shop)).status_code == 303
    number = db.session.get(Offer, offer_id).number
    page = client.get(f"/offers/{offer_id}/print")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and number in html and "Rp 9.290.700" in html
    assert "Pelatihan admin toko" in html and "Sari Wijaya" in html and '<html lang="id">' in html

    pdf = client.get(f"/offers/{offer_id}.pdf")
    assert pdf.status_code == 200 and pdf.content_type == "application/pdf"
    assert pdf.data.startswith(b"%PDF")
    assert number.encode() in pdf_text(pdf.data)  # the document's title


def test_vouchers_admin_crud(app, client, auth, shop):
    auth.login(shop["marketing"])
    assert client.get("/offers/vouchers").status_code == 200
    assert client.get("/offers/vouchers/new").status_code == 200
    resp = client.post("/offers/vouchers/new", data={
        "code": "promo5", "description": "Promo Lebaran", "kind": "percent", "value": "5",
        "valid_from": "2026-01-01", "valid_until": "2026-12-31", "usage_limit": "100",
        "one_per_customer": "y", "min_subtotal": "1.000.000", "active": "y"})
    assert resp.status_code == 303
    v = db.session.execute(select(Voucher).where(Voucher.code == "PROMO5")).scalar_one()
    assert (v.kind, v.value, v.usage_limit, v.min_subtotal, v.one_per_customer, v.active) == (
        "percent", 500, 100, 1_000_000, True, True)
    assert str(v.valid_until) == "2026-12-31"

    page = client.get(f"/offers/vouchers/{v.id}").get_data(as_text=True)
    assert 'value="5"' in page and "PROMO5" in page
    resp = client.post(f"/offers/vouchers/{v.id}", data={"code": "PROMO5", "kind": "amount", "value": "75.000",
                                                         "min_subtotal": ""})
    assert resp.status_code == 303
    db.session.remove()
    v = db.session.get(Voucher, v.id)
    assert (v.kind, v.value, v.active, v.one_per_customer, v.min_subtotal) == ("amount", 75_000, False, False, 0)

    # refused: a percentage that is not one, a duplicate code (what was typed is kept)
    resp = client.post("/offers/vouchers/new", data={"code": "OTHER", "kind": "percent", "value": "sepuluh"})
    assert resp.status_code == 400 and 'value="sepuluh"' in resp.get_data(as_text=True)
    resp = client.post("/offers/vouchers/new", data={"code": "hemat10", "kind": "percent", "value": "10"})
    assert resp.status_code == 400 and 'id="code-error"' in resp.get_data(as_text=True)
    listing = client.get("/offers/vouchers").get_data(as_text=True)
    assert "PROMO5" in listing and "HEMAT10" in listing and 'data-used="0"' in listing
    assert db.session.execute(select(Voucher).where(Voucher.code == "OTHER")).scalar_one_or_none() is None


def test_configured_tax_rate_is_the_default_and_can_be_switched_off(app_factory):
    from tests.factories import Factories

    app = app_factory(SALES_TAX_RATE_BP=1200)
    with app.app_context():
        make = Factories()
        user = make.user(email="maya@desk.example", roles=["marketing"])
        lead, _created = lead_services.capture(name="Budi", email="budi@example.org", source="seminar")
        db.session.commit()
        client = app.test_client()
        client.post("/login", data={"email": user.email, "password": "correct-horse-battery"})
        resp = client.post("/offers/new", data={"lead_id": lead.id})
        offer_id = int(resp.headers["Location"].rsplit("/", 1)[1])
        html = client.get(f"/offers/{offer_id}").get_data(as_text=True)
        assert '<option selected value="1200">' in html and 'value="1100"' in html
        data = {"lines-0-description": "Konsultasi", "lines-0-quantity": "1", "lines-0-unit_price": "100.000",
                "tax_rate": "1200", "valid_days": "7", "locale": "en"}
        assert client.post(f"/offers/{offer_id}", data=data).status_code == 303
        offer = db.session.get(Offer, offer_id)
        assert (offer.tax_rate_bp, offer.tax, offer.total, offer.locale) == (1200, 12_000, 112_000, "en")
        assert client.post(f"/offers/{offer_id}", data={**data, "tax_rate": "0"}).status_code == 303
        db.session.remove()
        offer = db.session.get(Offer, offer_id)
        assert (offer.tax_rate_bp, offer.tax, offer.total) == (0, 0, 100_000)
        db.session.remove()


def test_customer_page_lists_offers_and_makes_one_for_marketing_only(app, client, auth, shop, make):
    customer = make.customer(name="Dewi Lestari", email="dewi@tokodewi.co.id", language="en")
    db.session.commit()
    auth.login(shop["support"])
    assert 'id="make-offer-form"' not in client.get(f"/customers/{customer.id}").get_data(as_text=True)
    auth.logout()
    auth.login(shop["marketing"])
    assert 'id="make-offer-form"' in client.get(f"/customers/{customer.id}").get_data(as_text=True)
    page = client.get(f"/offers/new?customer_id={customer.id}")
    assert page.status_code == 200 and "Dewi Lestari" in page.get_data(as_text=True)
    assert db.session.execute(select(Offer)).scalars().all() == []  # GET creates nothing
    resp = client.post("/offers/new", data={"customer_id": customer.id})
    assert resp.status_code == 303
    offer = db.session.execute(select(Offer)).scalar_one()
    assert offer.customer_id == customer.id and offer.locale == "en"  # the customer's language
    assert offer.number in client.get(f"/customers/{customer.id}").get_data(as_text=True)
    assert client.get("/offers/new").status_code == 400
    listing = client.get("/offers?status=draft").get_data(as_text=True)
    assert offer.number in listing and "Dewi Lestari" in listing
    assert offer.number not in client.get("/offers?status=sent").get_data(as_text=True)
