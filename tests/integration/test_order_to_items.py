"""From an order to the customer's owned items (issue #7 §3–§4), through the agent UI: customer
support enters and confirms the order, billing records and confirms the full payment (the order is
paid), technical support fulfils it; the customer then owns the website and its bundled domain
and hosting, with the warranty, cashback and free-bundle ends counted from the activation date.
The invoice mail is received by a real SMTP server (aiosmtpd, tests/smtp_server.py), in the
customer's language, else in both."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from helpdesk.billing import services as billing
from helpdesk.billing.models import Invoice
from helpdesk.extensions import db
from helpdesk.sales.models import Order
from helpdesk.timeutil import utcnow
from helpdesk.warranty import rules
from helpdesk.warranty.models import OwnedItem, Product
from tests.smtp_server import shared_smtp, smtp_server  # noqa: F401  (fixtures)

BANK = "BCA 0123456789 a.n. PT Web Jogja Digital"


@pytest.fixture
def app(app_factory, smtp_server):
    app = app_factory(**smtp_server.mail_config(), COMPANY_BANK_ACCOUNT=BANK)
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def shop(make):
    users = {"cs": make.user(roles=["customer_support"], name="Sari CS", email="cs@shop.example"),
             "tech": make.user(roles=["technical_support"], name="Teknisi Tono", email="tech@shop.example"),
             "billing": make.user(roles=["billing"], name="Bella Billing", email="bill@shop.example")}
    jane = make.customer(name="Jane Doe", email="jane@example.com", language="en", kind="b2b",
                         npwp="01.234.567.8-901.000")
    budi = make.customer(name="Budi", email="budi@example.org")  # language unknown: bilingual mail
    domain = Product(code="DOM-COM", name="Domain .com", product_line="domain_hosting", price=200_000)
    hosting = Product(code="HOST-1G", name="Hosting 1 GB", product_line="domain_hosting", price=600_000,
                      warranty_days=30, cashback_days=30)
    web = Product(code="WEB-TOKO", name="Website Toko Online", product_line="website", price=4_500_000,
                  warranty_days=90, cashback_days=30,
                  bundle=[{"target": "DOM-COM", "free_days": 365}, {"target": "HOST-1G", "free_days": 365}])
    db.session.add_all([domain, hosting, web])
    db.session.commit()
    return {"jane": jane.id, "budi": budi.id, "web": web.id, "domain": domain.id, "hosting": hosting.id,
            **{k: u.email for k, u in users.items()}, "billing_id": users["billing"].id}


def order_form(customer_id, web_id, identifier):
    return {"customer_id": str(customer_id), "channel": "email",
            "lines-0-product_id": str(web_id), "lines-0-identifier": identifier, "lines-0-quantity": "1",
            "lines-0-unit_price": "", "lines-0-discount": "500.000", "voucher": "", "notes": ""}


def place_and_confirm(client, auth, shop, customer, identifier):
    auth.login(shop["cs"])
    resp = client.post("/orders/new", data=order_form(shop[customer], shop["web"], identifier))
    assert resp.status_code == 303, resp.data[:1000]
    order_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    assert client.post(f"/orders/{order_id}/confirm").status_code == 303
    auth.logout()
    return db.session.get(Order, order_id)


def test_order_paid_and_fulfilled_into_owned_items_and_the_invoice_mail(client, auth, shop, smtp_server,
                                                                          run_jobs):
    order = place_and_confirm(client, auth, shop, "jane", "janedoe.com")
    order_id, number = order.id, order.number
    invoice = db.session.get(Invoice, order.invoice_id)
    inv_id, inv_number = invoice.id, invoice.number
    line_amount = 4_500_000 - 500_000
    assert order.total == invoice.total == line_amount and order.status == "confirmed"

    # billing records and confirms the full payment: the order is paid
    today = rules.complaint_day(utcnow())
    billing.record_payment(invoice.id, shop["billing_id"], amount=invoice.total, method="bank_transfer",
                           paid_on=today, reference="TRF-9001", confirm=True)
    db.session.commit()
    assert db.session.get(Order, order_id).status == "paid"
    assert db.session.get(Invoice, invoice.id).status == "paid"

    # technical support fulfils it, activated in three days
    activation = today + timedelta(days=3)
    auth.login(shop["tech"])
    page = client.post(f"/orders/{order_id}/fulfil", data={"activation_date": activation.isoformat()},
                       follow_redirects=True)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    order = db.session.get(Order, order_id)
    assert order.status == "fulfilled"

    items = db.session.execute(select(OwnedItem).where(OwnedItem.customer_id == shop["jane"])
                               .order_by(OwnedItem.id)).scalars().all()
    by_product = {i.product_id: i for i in items}
    assert sorted(by_product) == sorted([shop["web"], shop["domain"], shop["hosting"]]) and len(items) == 3
    site = by_product[shop["web"]]
    assert order.lines[0].owned_item_id == site.id
    assert (site.reference, site.identifier, site.amount_paid) == (number, "janedoe.com", line_amount)
    assert site.activation_date == activation
    # warranty 90 days and cashback 30 days, the activation day being day 1
    assert site.warranty_end == activation + timedelta(days=90 - 1)
    assert site.cashback_end == activation + timedelta(days=30 - 1)
    for bundled in (by_product[shop["domain"]], by_product[shop["hosting"]]):
        assert bundled.bundle_parent_id == site.id and bundled.reference == number
        assert bundled.identifier == "janedoe.com"
        assert bundled.bundle_free_until == activation + timedelta(days=365 - 1)
    for item in items:  # the order page links every recorded item
        assert f'href="/items/{item.id}"' in html
    customer_page = client.get(f"/customers/{shop['jane']}").get_data(as_text=True)
    for name in ("Website Toko Online", "Domain .com", "Hosting 1 GB"):
        assert name in customer_page
    assert customer_page.count(number) >= 4  # three items' reference and the order list

    # the invoice mail, in English (Jane's language), received by the SMTP server
    run_jobs()
    [mail] = [m for m in smtp_server.to("jane@example.com") if "Invoice" in m["Subject"]]
    assert " ".join(mail["Subject"].split()) == f"Invoice {inv_number}"
    assert mail["Content-Language"] == "en"
    text = mail.text
    assert "Hello Jane Doe," in text and "Halo" not in text
    assert "Website Toko Online: 1 × Rp 4.500.000, discount Rp 500.000 = Rp 4.000.000" in text
    assert "Subtotal: Rp 4.500.000" in text and "Discount: -Rp 500.000" in text
    assert "Total: Rp 4.000.000" in text and "VAT" not in text
    assert "Tax ID (NPWP): 01.234.567.8-901.000" in text and BANK in text
    assert f"/portal/invoices/{inv_id}" in text
    assert "<strong>Rp 4.000.000</strong>" in mail.html and BANK in mail.html


def test_a_customer_without_a_language_gets_the_invoice_in_both(client, auth, shop, smtp_server, run_jobs):
    order = place_and_confirm(client, auth, shop, "budi", "budi.id")
    number = db.session.get(Invoice, order.invoice_id).number
    run_jobs()
    [mail] = smtp_server.to("budi@example.org")
    assert " ".join(mail["Subject"].split()) == f"Invoice {number} / Invoice {number}"
    text = mail.text
    assert text.index("Halo Budi,") < text.index("Hello Budi,")
    assert "Total: Rp 4.000.000" in text and "diskon Rp 500.000" in text and "discount Rp 500.000" in text
    assert "NPWP" not in text  # a B2C invoice
    assert re.search(r"Jatuh tempo: \d{1,2} \w+ \d{4}", text)
