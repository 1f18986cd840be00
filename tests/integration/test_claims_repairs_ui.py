"""Cashback claims, paid repairs and billing in the agent UI: the ticket page's claim and repair
cards, the billing queue and the invoice page, walked through by technical support, customer
support and billing with the Flask test client (CSRF is off in the `app` fixture).

The customer's side (the signed quote link, the portal) is another module's: the customer's
decision is taken here with repairs.services.customer_decide. Mail jobs are not run."""
import re
from datetime import date
from html import unescape

import pytest
import time_machine
from sqlalchemy import select

from helpdesk.billing import services as billing
from helpdesk.billing.models import Invoice, Payment
from helpdesk.claims.models import CashbackClaim
from helpdesk.extensions import db
from helpdesk.repairs import services as repairs
from helpdesk.repairs.models import RepairQuote
from helpdesk.tickets import services
from helpdesk.tickets.models import AuditEvent, Ticket
from helpdesk.warranty import services as warranty
from helpdesk.warranty.models import IssueCategory, OwnedItem, Product
from tests.factories import wib

NOW = wib(2026, 11, 20, 10, 0)


@pytest.fixture
def desk(make):
    q = make.queue(slug="technical-support", name="Technical Support")
    users = {
        "tech": make.user(roles=["technical_support"], queues=[q], name="Teknisi Tono", email="tech@ex.com"),
        "cs": make.user(roles=["customer_support"], queues=[q], name="Sari CS", email="cs@ex.com"),
        # technical support who also works in billing: verifies, so may not approve
        "techbill": make.user(roles=["technical_support", "billing"], queues=[q], name="Budi Dua Peran",
                              email="techbill@ex.com"),
        # billing in the queue (sees the ticket page) and billing outside it (works from /billing)
        "bill": make.user(roles=["billing"], queues=[q], name="Bella Billing", email="bill@ex.com"),
        "bill2": make.user(roles=["billing"], name="Bima Billing", email="bill2@ex.com"),
        "admin": make.user(roles=["admin"], name="Ani Admin", email="admin@ex.com"),
    }
    cust = make.customer(name="Toko Batik Ayu")
    hosting = Product(code="HOST-1G", name="Hosting 1 GB", product_line="domain_hosting", price=600_000,
                      warranty_days=30, cashback_days=30)
    defect = IssueCategory(code="site_down", name_id="Situs mati", name_en="Site down", is_defect=True,
                           product_line="domain_hosting")
    db.session.add_all([hosting, defect])
    db.session.commit()
    return {"q": q, "cust": cust, "hosting": hosting, "defect": defect, **users}


@pytest.fixture
def frozen():
    """Every test here runs on 20 November 2026, 10:00 in Jakarta."""
    with time_machine.travel(NOW, tick=False):
        yield


def new_ticket(desk, subject="Situs mati"):
    t = services.create_ticket(customer_id=desk["cust"].id, subject=subject, body_text="Tolong dibantu",
                               channel="email", queue_id=desk["q"].id)
    db.session.commit()
    return t


def claimable_ticket(desk):
    """A ticket on a hosting activated on 3 November: cashback possible until 2 December."""
    item = warranty.create_item(customer_id=desk["cust"].id, product_id=desk["hosting"].id,
                                purchase_date=date(2026, 11, 3), activation_date=date(2026, 11, 3))
    t = new_ticket(desk)
    warranty.set_item(t.id, desk["tech"].id, item.id)
    warranty.set_category(t.id, desk["tech"].id, desk["defect"].id)
    db.session.commit()
    assert t.cashback_until == date(2026, 12, 2) and item.amount_paid is None
    return t, item


def card(html, panel):
    m = re.search(rf'<section class="card mb-3" id="{panel}".*?</section>', html, re.S)
    return m.group(0) if m else ""


def text(fragment):
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)).strip())


def page(client, number):
    resp = client.get(f"/tickets/{number}")
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def claim_of(ticket):
    db.session.expire_all()
    return db.session.execute(select(CashbackClaim).where(CashbackClaim.ticket_id == ticket.id)).scalar_one()


def quote_of(ticket):
    db.session.expire_all()
    return db.session.execute(select(RepairQuote).where(RepairQuote.ticket_id == ticket.id)).scalar_one()


def as_(auth, desk, who):
    auth.logout()
    auth.login(desk[who])


# ---------------------------------------------------------------- cashback claims

def test_claim_flow_through_the_pages(app, client, auth, desk, frozen):
    t, item = claimable_ticket(desk)
    n = t.number

    # customer support sees the request form while the guarantee can be claimed, and asks
    auth.login(desk["cs"])
    claim_card = card(page(client, n), "claim-panel")
    assert 'id="claim-request-form"' in claim_card and "claim-verify-form" not in claim_card
    resp = client.post(f"/tickets/{n}/claims", data={"note": "Situs mati 3 hari"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/tickets/{n}")
    claim = claim_of(t)
    assert (claim.status, claim.requested_by_id, claim.request_note) == ("requested", desk["cs"].id,
                                                                         "Situs mati 3 hari")
    shown = card(page(client, n), "claim-panel")
    assert "Requested" in text(shown) and "Sari CS" in shown and "Situs mati 3 hari" in shown
    assert "claim-request-form" not in shown and "claim-verify-form" not in shown
    assert "Waiting for technical support to verify the defect." in shown
    # customer support cannot verify (403, nothing changes)
    assert client.post(f"/claims/{claim.id}/verify", data={"note": "ok"}).status_code == 403
    assert claim_of(t).status == "requested"

    # technical support verifies: a note is required, and a refused form keeps what was typed
    as_(auth, desk, "techbill")
    shown = card(page(client, n), "claim-panel")
    assert 'id="claim-verify-form"' in shown and 'id="claim-reject-form"' in shown
    resp = client.post(f"/claims/{claim.id}/verify", data={"note": "   "})
    assert resp.status_code == 400
    assert "claim-verify-note" in resp.get_data(as_text=True) and "is-invalid" in card(
        resp.get_data(as_text=True), "claim-panel")
    assert claim_of(t).status == "requested"
    resp = client.post(f"/claims/{claim.id}/verify", data={"note": "Server down confirmed in the logs"})
    assert resp.status_code == 302
    claim = claim_of(t)
    assert (claim.status, claim.verified_by_id) == ("verified", desk["techbill"].id)
    # the verifier also has the billing role, but may not approve: no form, and a refused POST
    shown = card(page(client, n), "claim-panel")
    assert "claim-approve-form" not in shown and "Server down confirmed in the logs" in shown
    assert "You verified this claim, so someone else in billing must decide on it." in shown
    resp = client.post(f"/claims/{claim.id}/approve", data={"amount": "100000", "item_paid": "600000"})
    assert resp.status_code == 403
    assert claim_of(t).status == "verified"
    # technical support alone cannot approve either
    as_(auth, desk, "tech")
    assert client.post(f"/claims/{claim.id}/approve", data={"amount": "1"}).status_code == 403
    # and an admin is not billing
    as_(auth, desk, "admin")
    assert client.post(f"/claims/{claim.id}/approve", data={"amount": "1"}).status_code == 403
    assert client.get("/billing").status_code == 403
    assert claim_of(t).status == "verified"

    # billing outside the ticket's queue works from the billing queue
    as_(auth, desk, "bill2")
    assert client.get(f"/tickets/{n}").status_code == 404
    queue = client.get("/billing").get_data(as_text=True)
    row = re.search(rf'<tr id="billing-claim-{claim.id}">.*?</tr>', queue, re.S).group(0)
    assert f"#{n}" in row and "Toko Batik Ayu" in row and "Server down confirmed in the logs" in row
    assert 'name="item_paid"' in row  # nobody has entered what the item cost
    # more than was paid for the item: refused with the message, nothing changes
    resp = client.post(f"/claims/{claim.id}/approve", data={"amount": "700.000", "item_paid": "600.000",
                                                            "back": "billing"}, follow_redirects=True)
    assert "The cashback cannot be more than the Rp 600.000 paid for the item." in resp.get_data(as_text=True)
    assert claim_of(t).status == "verified" and db.session.get(OwnedItem, item.id).amount_paid is None
    resp = client.post(f"/claims/{claim.id}/approve", data={"amount": "600.000", "item_paid": "600.000",
                                                            "back": "billing"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/billing")
    claim = claim_of(t)
    assert (claim.status, claim.amount, claim.approved_by_id) == ("approved", 600_000, desk["bill2"].id)
    assert db.session.get(OwnedItem, item.id).amount_paid == 600_000
    queue = client.get("/billing").get_data(as_text=True)
    row = re.search(rf'<tr id="billing-claim-{claim.id}">.*?</tr>', queue, re.S).group(0)
    assert "Rp 600.000" in row and "billing-claim-pay" in row and "billing-claim-approve" not in row

    # customer support cannot pay; billing in the queue pays from the ticket page
    as_(auth, desk, "cs")
    assert "Waiting for billing to pay." in card(page(client, n), "claim-panel")
    assert client.post(f"/claims/{claim.id}/pay", data={"reference": "TRF-1", "paid_on": "2026-11-20"}
                       ).status_code == 403
    as_(auth, desk, "bill")
    shown = card(page(client, n), "claim-panel")
    assert 'id="claim-pay-form"' in shown and "Rp 600.000" in shown and "Bima Billing" in shown
    resp = client.post(f"/claims/{claim.id}/pay", data={"reference": "TRF-1", "paid_on": "2026-11-21"})
    assert resp.status_code == 400  # a date in the future: the page again, with the error
    assert "The payment date cannot be in the future." in resp.get_data(as_text=True)
    assert claim_of(t).status == "approved"
    resp = client.post(f"/claims/{claim.id}/pay", data={"reference": "BCA-TRF-0042", "paid_on": "2026-11-20"})
    assert resp.status_code == 302
    claim = claim_of(t)
    assert (claim.status, claim.payment_reference, claim.paid_on) == ("paid", "BCA-TRF-0042", date(2026, 11, 20))
    shown = text(card(page(client, n), "claim-panel"))
    assert "Paid" in shown and "BCA-TRF-0042" in shown and "20 November 2026" in shown
    assert "Request cashback" not in shown  # one claim per ticket
    assert f"billing-claim-{claim.id}" not in client.get("/billing").get_data(as_text=True)
    # every step is in the ticket's audit trail
    steps = db.session.execute(select(AuditEvent.new_value).where(AuditEvent.object_type == "claim",
                                                                  AuditEvent.object_id == claim.id)
                               .order_by(AuditEvent.id)).scalars().all()
    assert steps == ["requested", "verified", "approved", "paid"]


def test_claim_rejections_and_the_window(app, client, auth, desk, frozen):
    t, _item = claimable_ticket(desk)
    auth.login(desk["tech"])
    assert client.post(f"/tickets/{t.number}/claims", data={}).status_code == 302
    claim = claim_of(t)
    # billing cannot reject at verification; technical support can, with a reason
    as_(auth, desk, "bill")
    assert client.post(f"/claims/{claim.id}/reject", data={"reason": "no"}).status_code == 403
    as_(auth, desk, "tech")
    resp = client.post(f"/claims/{claim.id}/reject", data={"reason": ""})
    assert resp.status_code == 400 and claim_of(t).status == "requested"
    client.post(f"/claims/{claim.id}/reject", data={"reason": "The site works; the customer's DNS was wrong"})
    claim = claim_of(t)
    assert (claim.status, claim.rejected_stage) == ("rejected", "verification")
    shown = text(card(page(client, t.number), "claim-panel"))
    assert "Rejected" in shown and "at verification" in shown and "the customer's DNS was wrong" in shown
    # a rejected claim does not block a new request while the window is open
    assert "Request cashback" in shown
    # after the window, the request form is gone and a POST is refused with the service's message
    with time_machine.travel(wib(2026, 12, 3, 9, 0), tick=False):
        auth.login(desk["cs"])
        assert "claim-request-form" not in page(client, t.number)
        resp = client.post(f"/tickets/{t.number}/claims", data={"note": "late"})
        assert resp.status_code == 400
        assert "The cashback guarantee cannot be claimed for this ticket." in resp.get_data(as_text=True)
    assert len(db.session.execute(select(CashbackClaim)).scalars().all()) == 1


# ---------------------------------------------------------------- paid repairs and the invoice

def line_rows(html):
    return re.findall(r'<fieldset class="border rounded p-1 mb-1 repair-line-row">', html)


def steps(html):
    """The stepper's (step, state) pairs."""
    return re.findall(r'class="repair-step repair-step-(\w+)" data-step="(\w+)"', card(html, "repair-panel"))


def current_step(html):
    return [key for state, key in steps(html) if state == "current"]


def test_repair_flow_through_the_pages_up_to_work(app, client, auth, desk, frozen):
    t = new_ticket(desk, "Minta perbaikan tema")
    assert t.charge == "unknown_item"
    n = t.number

    # only technical support starts a quote
    auth.login(desk["cs"])
    assert "repair-draft-form" not in page(client, n)
    assert client.post(f"/tickets/{n}/repairs").status_code == 403
    as_(auth, desk, "tech")
    assert 'id="repair-draft-form"' in page(client, n)
    assert client.post(f"/tickets/{n}/repairs").status_code == 302
    quote = quote_of(t)
    html = page(client, n)
    assert current_step(html) == ["quote"]
    assert text(card(html, "repair-panel")).count("Rp 150.000") >= 2  # the service fee and the total
    assert len(line_rows(html)) == 2  # the fee and one blank row

    # "Add a row" keeps what was typed and adds a blank row; nothing is saved
    typed = {"lines-0-kind": "service", "lines-0-description": "Service fee", "lines-0-quantity": "1",
             "lines-0-unit_price": "150000",
             "lines-1-kind": "part", "lines-1-description": "Premium theme licence", "lines-1-quantity": "2",
             "lines-1-unit_price": "250.000"}
    resp = client.post(f"/repairs/{quote.id}/lines", data=dict(typed, add_row="1"))
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert len(line_rows(html)) == 3 and 'value="Premium theme licence"' in html
    assert len(quote_of(t).lines) == 1
    # a covered line needs its reason: refused, the typed lines stay on the page
    bad = dict(typed, **{"lines-2-kind": "product", "lines-2-description": "Backup plugin",
                         "lines-2-quantity": "1", "lines-2-covered": "y"})
    resp = client.post(f"/repairs/{quote.id}/lines", data=bad)
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert "Line 3: say why it is covered." in html and 'value="Backup plugin"' in html
    assert quote_of(t).total == 150_000
    good = dict(bad, **{"lines-2-covered_reason": "Bundled with the website", "lines-3-description": "",
                        "lines-3-unit_price": ""})
    assert client.post(f"/repairs/{quote.id}/lines", data=good).status_code == 302
    quote = quote_of(t)
    assert quote.total == 650_000 and [ln.amount for ln in quote.lines] == [150_000, 500_000, 0]
    shown = card(page(client, n), "repair-panel")
    assert "Rp 650.000" in shown and "Bundled with the website" in shown

    # billing cannot edit the lines, nor approve a draft (the ticket page again, with the message)
    as_(auth, desk, "bill")
    assert client.post(f"/repairs/{quote.id}/lines", data=typed).status_code == 403
    resp = client.post(f"/repairs/{quote.id}/approve")
    assert resp.status_code == 409
    assert "This repair quote is no longer waiting for that step." in resp.get_data(as_text=True)
    assert quote_of(t).status == "draft"

    as_(auth, desk, "tech")
    assert client.post(f"/repairs/{quote.id}/submit").status_code == 302
    db.session.expire_all()
    assert (quote_of(t).status, db.session.get(Ticket, t.id).status) == ("pending_billing", "pending_billing")
    html = page(client, n)
    assert current_step(html) == ["billing"] and "repair-lines-form" not in html
    assert "repair-approve-form" not in html  # technical support does not decide

    # billing: the queue lists the quote; a price change with its reason; approve
    as_(auth, desk, "bill2")
    queue = client.get("/billing").get_data(as_text=True)
    assert f'id="billing-quote-{quote.id}"' in queue and "Rp 650.000" in queue
    html = page(client, n)  # billing sees a ticket waiting for billing, whichever queue
    assert 'id="repair-approve-form"' in html and "repair-price-form" in html
    part = quote_of(t).lines[1]
    resp = client.post(f"/repairs/{quote.id}/price", data={"line_id": str(part.id), "unit_price": "200.000",
                                                           "reason": ""})
    assert resp.status_code == 400 and quote_of(t).total == 650_000
    resp = client.post(f"/repairs/{quote.id}/price", data={"line_id": str(part.id), "unit_price": "200.000",
                                                           "reason": "Partner discount"})
    assert resp.status_code == 302 and quote_of(t).total == 550_000
    resp = client.post(f"/repairs/{quote.id}/reject", data={"reason": ""})
    assert resp.status_code == 400 and quote_of(t).status == "pending_billing"
    resp = client.post(f"/repairs/{quote.id}/approve")
    # the ticket now waits for the customer: billing outside the queue no longer sees it
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/billing")
    db.session.expire_all()
    assert (quote_of(t).status, db.session.get(Ticket, t.id).status) == ("pending_customer", "pending_customer")

    as_(auth, desk, "cs")
    html = page(client, n)
    assert current_step(html) == ["customer"]
    assert "Sent to the customer for approval" in card(html, "repair-panel")

    # the customer approves (the portal's side): the invoice is created
    quote = quote_of(t)
    repairs.customer_decide(quote.id, desk["cust"].id, "approve", version=quote.version)
    db.session.commit()
    quote = quote_of(t)
    invoice = db.session.get(Invoice, quote.invoice_id)
    assert invoice.number == "INV/2026/000001" and invoice.total == 550_000
    html = page(client, n)
    assert current_step(html) == ["payment"]
    shown = card(html, "repair-panel")
    assert "INV/2026/000001" in shown and "Unpaid" in shown
    assert f"/billing/invoices/{invoice.id}" not in shown  # the invoice page is billing's
    assert client.get(f"/billing/invoices/{invoice.id}").status_code == 403

    # billing: the invoice page; a payment recorded, then confirmed; then the rest, confirmed at once
    as_(auth, desk, "bill")
    assert f'href="/billing/invoices/{invoice.id}"' in card(page(client, n), "repair-panel")
    inv_page = client.get(f"/billing/invoices/{invoice.id}").get_data(as_text=True)
    assert "INV/2026/000001" in inv_page and "Toko Batik Ayu" in inv_page and "Premium theme licence" in inv_page
    assert "4 December 2026" in inv_page  # due in 14 days
    # the issuer, from the COMPANY_* settings
    assert 'id="invoice-issuer"></div>' in inv_page
    client.application.config.update(COMPANY_NAME="PT Web Jogja Digital", COMPANY_NPWP="09.876.543.2-541.000")
    issuer = client.get(f"/billing/invoices/{invoice.id}").get_data(as_text=True)
    assert re.search(r'id="invoice-issuer"><strong>PT Web Jogja Digital</strong><br>NPWP 09.876.543.2-541.000</div>',
                     issuer)
    assert re.search(r'id="invoice-total"><strong>Rp 550.000</strong>', inv_page)
    assert re.search(r'name="confirm"[^>]*checked|checked[^>]*name="confirm"', inv_page)
    assert "bank_transfer" in inv_page and "cash" in inv_page
    resp = client.post(f"/billing/invoices/{invoice.id}/payments", data={
        "amount": "200.000", "method": "bank_transfer", "reference": "BCA-001", "paid_on": "2026-11-20"})
    assert resp.status_code == 302
    payment = db.session.execute(select(Payment).where(Payment.invoice_id == invoice.id)).scalar_one()
    assert payment.status == "pending"
    queue = client.get("/billing").get_data(as_text=True)
    assert f'id="billing-payment-{payment.id}"' in queue and f'id="billing-invoice-{invoice.id}"' in queue
    assert client.post(f"/billing/payments/{payment.id}/confirm").status_code == 302
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).status == "partially_paid" and quote_of(t).status == "awaiting_payment"
    # a wrong method is refused on the page, keeping what was typed
    resp = client.post(f"/billing/invoices/{invoice.id}/payments", data={
        "amount": "350.000", "method": "bitcoin", "reference": "X-9", "paid_on": "2026-11-20", "confirm": "y"})
    assert resp.status_code == 400 and 'value="X-9"' in resp.get_data(as_text=True)
    resp = client.post(f"/billing/invoices/{invoice.id}/payments", data={
        "amount": "350.000", "method": "cash", "reference": "KAS-7", "paid_on": "2026-11-20", "confirm": "y"})
    assert resp.status_code == 302
    db.session.expire_all()
    invoice = db.session.get(Invoice, invoice.id)
    assert (invoice.status, invoice.amount_paid) == ("paid", 550_000)
    assert (quote_of(t).status, db.session.get(Ticket, t.id).status) == ("in_work", "open")
    inv_page = client.get(f"/billing/invoices/{invoice.id}").get_data(as_text=True)
    assert "Paid" in text(re.search(r'id="invoice-status".*?</p>', inv_page, re.S).group(0))
    assert "BCA-001" in inv_page and "KAS-7" in inv_page and 'id="payment-form"' not in inv_page
    assert f'id="billing-invoice-{invoice.id}"' not in client.get("/billing").get_data(as_text=True)

    # technical support sees the repair in work and marks it done
    as_(auth, desk, "tech")
    html = page(client, n)
    assert current_step(html) == ["work"] and 'id="repair-complete-form"' in html
    assert "Paid" in card(html, "repair-panel")
    assert client.post(f"/repairs/{quote.id}/complete", data={"note": "Theme installed"}).status_code == 302
    html = page(client, n)
    assert quote_of(t).status == "completed"
    assert [s for s, _k in steps(html)] == ["done"] * 7


def test_billing_does_not_decide_on_a_quote_they_drafted(app, client, auth, desk, frozen):
    t = new_ticket(desk)
    auth.login(desk["techbill"])
    client.post(f"/tickets/{t.number}/repairs")
    quote = quote_of(t)
    assert client.post(f"/repairs/{quote.id}/submit").status_code == 302
    html = page(client, t.number)
    assert "repair-approve-form" not in html and "repair-reject-form" not in html
    assert "You drafted this quote, so someone else in billing must decide on it." in html
    assert client.post(f"/repairs/{quote.id}/approve").status_code == 403
    assert client.post(f"/repairs/{quote.id}/reject", data={"reason": "x"}).status_code == 403
    assert quote_of(t).status == "pending_billing"
    # another billing agent rejects with a reason: the ticket opens again, the drafter sees why
    as_(auth, desk, "bill")
    assert client.post(f"/repairs/{quote.id}/reject", data={"reason": "Use the 2026 price list"}).status_code == 302
    db.session.expire_all()
    assert (quote_of(t).status, db.session.get(Ticket, t.id).status) == ("rejected", "open")
    as_(auth, desk, "tech")
    html = page(client, t.number)
    assert "Use the 2026 price list" in card(html, "repair-panel")
    assert ("failed", "billing") in steps(html) and current_step(html) == ["quote"]
    assert 'id="repair-lines-form"' in html  # editable again
    # cancelling needs a reason
    assert client.post(f"/repairs/{quote.id}/cancel", data={"reason": ""}).status_code == 400
    assert client.post(f"/repairs/{quote.id}/cancel", data={"reason": "Customer fixed it"}).status_code == 302
    assert quote_of(t).status == "cancelled"
    assert 'id="repair-draft-form"' in page(client, t.number)  # a new quote may start


def test_invoice_page_b2b_bill_to_filter_and_void(app, client, auth, desk, make, frozen):
    org = make.organisation(name="PT Maju Jaya", npwp="01.234.567.8-901.000")
    contact = make.customer(name="Dewi Kontak", kind="b2b", organisation_id=org.id)
    db.session.flush()
    paid = billing.create_invoice(customer_id=contact.id, lines=[
        {"description": "Domain renewal", "quantity": 1, "unit_price": 250_000}])
    billing.record_payment(paid.id, desk["bill"].id, amount=250_000, method="cash", paid_on=date(2026, 11, 20),
                           confirm=True)
    open_one = billing.create_invoice(customer_id=contact.id, lines=[
        {"description": "Server migration", "quantity": 3, "unit_price": 100_000}])
    db.session.commit()
    auth.login(desk["bill2"])
    html = client.get(f"/billing/invoices/{open_one.id}").get_data(as_text=True)
    assert "PT Maju Jaya" in html and "Dewi Kontak" in html and "NPWP 01.234.567.8-901.000" in html
    assert "Rp 300.000" in html and "d-print-none" in html
    listed = client.get("/billing/invoices?status=paid").get_data(as_text=True)
    assert paid.number in listed and open_one.number not in listed
    listed = client.get("/billing/invoices?status=open").get_data(as_text=True)
    assert open_one.number in listed and paid.number not in listed
    # an invoice with confirmed payments cannot be voided; the other can, with a reason
    assert 'id="void-form"' not in client.get(f"/billing/invoices/{paid.id}").get_data(as_text=True)
    resp = client.post(f"/billing/invoices/{paid.id}/void", data={"reason": "duplicate"})
    assert resp.status_code == 400
    assert "An invoice with confirmed payments cannot be voided." in resp.get_data(as_text=True)
    assert client.post(f"/billing/invoices/{open_one.id}/void", data={"reason": ""}).status_code == 400
    assert client.post(f"/billing/invoices/{open_one.id}/void", data={"reason": "Sent twice"}).status_code == 302
    db.session.expire_all()
    assert (db.session.get(Invoice, paid.id).status, db.session.get(Invoice, open_one.id).status) == ("paid", "void")
    # a payment recorded for later is rejected with a reason and never counts
    third = billing.create_invoice(customer_id=contact.id, lines=[
        {"description": "SSL", "quantity": 1, "unit_price": 90_000}])
    db.session.commit()
    client.post(f"/billing/invoices/{third.id}/payments", data={"amount": "90000", "method": "bank_transfer",
                                                               "paid_on": "2026-11-19"})
    payment = db.session.execute(select(Payment).where(Payment.invoice_id == third.id)).scalar_one()
    assert client.post(f"/billing/payments/{payment.id}/reject", data={"reason": ""}).status_code == 400
    assert client.post(f"/billing/payments/{payment.id}/reject",
                       data={"reason": "Not on the statement"}).status_code == 302
    db.session.expire_all()
    assert (db.session.get(Payment, payment.id).status, db.session.get(Invoice, third.id).amount_paid) == (
        "rejected", 0)
    # the nav shows Billing to billing only
    assert 'href="/billing"' in client.get("/").get_data(as_text=True)
    as_(auth, desk, "admin")
    assert 'href="/billing"' not in client.get("/").get_data(as_text=True)
    assert client.get(f"/billing/invoices/{paid.id}").status_code == 403


def test_item_timeline_shows_claims_and_repairs(app, client, auth, desk, frozen):
    t, item = claimable_ticket(desk)
    auth.login(desk["tech"])
    client.post(f"/tickets/{t.number}/claims", data={})
    client.post(f"/tickets/{t.number}/repairs")
    events = client.get(f"/items/{item.id}").get_data(as_text=True).split('id="item-events"')[1]
    assert "Cashback claim" in events and f"#{t.number}: Requested" in events
    assert "Paid repair" in events and f"#{t.number}: Draft" in events
