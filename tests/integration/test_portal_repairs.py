"""Cashback claims, repair quotes and invoices on the customer portal: request cashback on the
ticket page, approve or decline a quote there or through the signed mail link (GET never acts;
expired, forged and outdated links), the customer's own invoice page, and nobody else's."""
import re
from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import func, select

from helpdesk.billing import services as billing
from helpdesk.billing.models import Invoice
from helpdesk.claims import services as claims
from helpdesk.claims.models import CashbackClaim
from helpdesk.extensions import db
from helpdesk.portal import services as portal
from helpdesk.portal import tokens
from helpdesk.repairs import services as repairs
from helpdesk.repairs.models import RepairQuote
from helpdesk.tickets import services as tickets
from helpdesk.timeutil import utcnow
from helpdesk.warranty import rules
from helpdesk.warranty import services as warranty
from helpdesk.warranty.models import Product
from helpdesk.webform.tokens import _serializer

LINES = [{"kind": "service", "description": "Biaya servis", "quantity": 1, "unit_price": 150_000},
         {"kind": "part", "description": "Modul SSL", "quantity": 2, "unit_price": 425_000}]


def text_of(resp):
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", resp.get_data(as_text=True))).split())


@pytest.fixture
def shop(app, make):
    q = make.queue(slug="technical-support", name="Technical Support")
    tech = make.user(roles=["technical_support"], queues=[q])
    biller = make.user(roles=["billing"])
    dewi = make.customer(name="Dewi Lestari", email="dewi@tokodewi.co.id", language="id")
    budi = make.customer(name="Budi Santoso", email="budi@example.net")
    product = Product(code="WEB-TOKO", name="Website Toko Online", product_line="website", price=4_500_000,
                      warranty_days=90, cashback_days=30)
    db.session.add(product)
    db.session.commit()
    return {"q": q.id, "tech": tech.id, "biller": biller.id, "dewi": dewi.id, "budi": budi.id,
            "product": product.id}


def ticket_for(shop, customer="dewi", claimable=True, subject="Website mati"):
    today = rules.complaint_day(utcnow())
    t = tickets.create_ticket(customer_id=shop[customer], subject=subject, body_text="Error 500.", channel="web",
                              queue_id=shop["q"])
    if claimable:
        item = warranty.create_item(customer_id=shop[customer], product_id=shop["product"],
                                    purchase_date=today - timedelta(days=20), amount_paid=4_500_000)
        t.owned_item_id, t.cashback_until = item.id, today + timedelta(days=10)
    db.session.commit()
    return t.id, t.number


def pending_quote(shop, customer="dewi"):
    tid, number = ticket_for(shop, customer, claimable=False)
    quote = repairs.draft_quote(tid, shop["tech"])
    repairs.save_lines(quote.id, shop["tech"], LINES)
    repairs.submit(quote.id, shop["tech"])
    repairs.approve(quote.id, shop["biller"])
    db.session.commit()
    return tid, number, quote.id


def sign_in(client, customer_id):
    customer = portal.active_customer(customer_id)
    customer.login_nonce = customer.login_nonce or "n" * 32
    db.session.commit()
    resp = client.post(f"/portal/login/{tokens.make_sign_in_token(customer.id, customer.login_nonce)}")
    assert resp.status_code == 303


def claim_count(ticket_id):
    return db.session.execute(select(func.count()).select_from(CashbackClaim)
                              .where(CashbackClaim.ticket_id == ticket_id)).scalar_one()


# ---------------------------------------------------------------- cashback

def test_customer_requests_cashback_on_their_ticket_once(shop, client):
    tid, number = ticket_for(shop)
    sign_in(client, shop["dewi"])
    page = client.get(f"/portal/tickets/{number}")
    assert page.status_code == 200 and "Request cashback" in text_of(page)
    resp = client.post(f"/portal/tickets/{number}/cashback", data={"note": "Situs mati tiga hari"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/portal/tickets/{number}#repairs")
    db.session.remove()
    claim = db.session.execute(select(CashbackClaim).where(CashbackClaim.ticket_id == tid)).scalar_one()
    assert (claim.status, claim.requested_by_customer_id, claim.request_note) == \
        ("requested", shop["dewi"], "Situs mati tiga hari")
    page = text_of(client.get(f"/portal/tickets/{number}"))
    assert "We received your cashback request" in page  # the flash
    assert "Received: our technical team is checking it" in page and "Request cashback" not in page
    # asking again: a message, still one claim
    resp = client.post(f"/portal/tickets/{number}/cashback", data={}, follow_redirects=True)
    assert "already has a cashback claim" in text_of(resp)
    assert claim_count(tid) == 1


def test_no_cashback_button_when_not_claimable_and_the_post_is_refused(shop, client):
    tid, number = ticket_for(shop, claimable=False)
    sign_in(client, shop["dewi"])
    page = text_of(client.get(f"/portal/tickets/{number}"))
    assert "Request cashback" not in page and "Cashback guarantee" not in page
    resp = client.post(f"/portal/tickets/{number}/cashback", data={}, follow_redirects=True)
    assert "cannot be claimed" in text_of(resp)
    assert claim_count(tid) == 0


def test_claim_card_shows_amount_then_rejection_reason(shop, client):
    tid, number = ticket_for(shop)
    claim = claims.request_claim(tid, shop["tech"])
    db.session.commit()
    claims.verify(claim.id, shop["tech"], "Cacat terkonfirmasi")
    claims.approve(claim.id, shop["biller"], 1_250_000)
    db.session.commit()
    sign_in(client, shop["dewi"])
    page = text_of(client.get(f"/portal/tickets/{number}"))
    assert "Approved: the cashback will be paid shortly" in page and "Rp 1.250.000" in page
    assert "Request cashback" not in page

    tid2, number2 = ticket_for(shop, subject="Domain mati")
    claim2 = claims.request_claim(tid2, shop["tech"])
    db.session.commit()
    claims.reject(claim2.id, shop["tech"], "Domain belum diperpanjang")
    db.session.commit()
    page = text_of(client.get(f"/portal/tickets/{number2}"))
    assert "Not approved" in page and "Domain belum diperpanjang" in page
    assert "Request cashback" in page  # a rejected claim does not block a new request in the window


# ---------------------------------------------------------------- the quote on the ticket page

def test_customer_approves_quote_on_ticket_page_and_sees_the_invoice(shop, client):
    tid, number, qid = pending_quote(shop)
    sign_in(client, shop["dewi"])
    page = text_of(client.get(f"/portal/tickets/{number}"))
    assert "Repair quote" in page and "Waiting for your answer" in page
    assert "Modul SSL" in page and "Rp 850.000" in page and "Rp 1.000.000" in page
    assert "Approve the quote" in page and "Decline the quote" in page
    resp = client.post(f"/portal/tickets/{number}/quote", data={"decision": "approve"})
    assert resp.status_code == 303
    db.session.remove()
    quote = db.session.get(RepairQuote, qid)
    invoice = db.session.get(Invoice, quote.invoice_id)
    assert quote.status == "awaiting_payment" and invoice.total == 1_000_000 and invoice.customer_id == shop["dewi"]
    assert resp.headers["Location"].endswith(f"/portal/invoices/{invoice.id}")
    page = text_of(client.get(resp.headers["Location"]))
    assert invoice.number in page and "Unpaid" in page and "Rp 1.000.000" in page
    # the due day in words, in the page's language ("13 December 2026")
    from helpdesk.warranty.rules import format_date

    assert format_date(invoice.due_on, "en") in page and "How to pay" in page
    ticket_page = client.get(f"/portal/tickets/{number}").get_data(as_text=True)
    assert f'href="/portal/invoices/{invoice.id}"' in ticket_page
    assert "Approved: waiting for your payment" in text_of(client.get(f"/portal/tickets/{number}"))
    # paid in part: the invoice page shows what was paid and what remains
    billing.record_payment(invoice.id, shop["biller"], amount=400_000, method="bank_transfer",
                           paid_on=rules.complaint_day(utcnow()), reference="BCA-77", confirm=True)
    db.session.commit()
    page = text_of(client.get(f"/portal/invoices/{invoice.id}"))
    assert "Partly paid" in page and "Rp 400.000" in page and "Rp 600.000" in page and "BCA-77" in page


def test_customer_declines_quote_with_a_reason(shop, client):
    tid, number, qid = pending_quote(shop)
    sign_in(client, shop["dewi"])
    resp = client.post(f"/portal/tickets/{number}/quote", data={"decision": "decline", "reason": "Terlalu mahal"},
                       follow_redirects=True)
    assert "You declined the quote" in text_of(resp)
    db.session.remove()
    quote = db.session.get(RepairQuote, qid)
    assert (quote.status, quote.decline_reason, quote.invoice_id) == ("declined", "Terlalu mahal", None)
    page = text_of(client.get(f"/portal/tickets/{number}"))
    assert "Declined" in page and "Approve the quote" not in page
    # a second answer: the quote no longer waits
    resp = client.post(f"/portal/tickets/{number}/quote", data={"decision": "approve"}, follow_redirects=True)
    assert "no longer waiting for your answer" in text_of(resp)
    assert db.session.get(RepairQuote, qid).status == "declined"


def test_quote_under_billing_review_is_not_shown(shop, client):
    tid, number = ticket_for(shop, claimable=False)
    quote = repairs.draft_quote(tid, shop["tech"])
    repairs.save_lines(quote.id, shop["tech"], LINES)
    repairs.submit(quote.id, shop["tech"])
    db.session.commit()
    sign_in(client, shop["dewi"])
    page = text_of(client.get(f"/portal/tickets/{number}"))
    assert "Repair quote" not in page and "Modul SSL" not in page
    client.post(f"/portal/tickets/{number}/quote", data={"decision": "approve"})
    assert db.session.get(RepairQuote, quote.id).status == "pending_billing"


# ---------------------------------------------------------------- other customers

def test_another_customer_cannot_see_or_answer_dewis_quote_and_invoice(shop, client):
    tid, number, qid = pending_quote(shop)
    invoice = billing.create_invoice(customer_id=shop["dewi"], ticket_id=tid,
                                     lines=[{"description": "Biaya servis", "quantity": 1, "unit_price": 150_000}])
    db.session.commit()
    inv_id = invoice.id
    sign_in(client, shop["budi"])
    assert client.get(f"/portal/invoices/{inv_id}").status_code == 404
    assert client.get("/portal/invoices/999999").status_code == 404
    assert client.post(f"/portal/tickets/{number}/quote", data={"decision": "approve"}).status_code == 404
    assert client.post(f"/portal/tickets/{number}/cashback", data={}).status_code == 404
    # a link signed for Budi that names Dewi's quote
    forged = _serializer(repairs.LINK_SALT).dumps({"q": qid, "c": shop["budi"], "v": 1})
    assert client.get(f"/portal/quote/{forged}").status_code == 404
    assert client.post(f"/portal/quote/{forged}", data={"decision": "approve"}).status_code == 404
    db.session.remove()
    assert db.session.get(RepairQuote, qid).status == "pending_customer"


def test_b2b_invoice_shows_company_and_npwp(shop, client, make):
    org = make.organisation(name="PT Toko Maju", npwp="01.234.567.8-901.000")
    cust = make.customer(name="Sari", kind="b2b", organisation_id=org.id)
    invoice = billing.create_invoice(customer_id=cust.id, lines=[
        {"description": "Perpanjangan domain", "quantity": 1, "unit_price": 250_000}])
    db.session.commit()
    sign_in(client, cust.id)
    page = text_of(client.get(f"/portal/invoices/{invoice.id}"))
    assert "PT Toko Maju" in page and "01.234.567.8-901.000" in page and "Perpanjangan domain" in page


def test_invoice_names_the_company_and_the_account_to_pay_into(shop, client, app):
    """With COMPANY_* set, the invoice says who issues it and which account to transfer to;
    without them, the generic "our company account"."""
    cust = shop["dewi"]
    invoice = billing.create_invoice(customer_id=cust, lines=[
        {"description": "Perpanjangan domain", "quantity": 1, "unit_price": 250_000}])
    db.session.commit()
    sign_in(client, cust)
    page = text_of(client.get(f"/portal/invoices/{invoice.id}?lang=en"))
    assert "our company account" in page and "NPWP" not in page
    app.config.update(COMPANY_NAME="PT Web Jogja Digital", COMPANY_ADDRESS="Jl. Kaliurang Km 5, Yogyakarta",
                      COMPANY_NPWP="09.876.543.2-541.000", COMPANY_BANK_ACCOUNT="BCA 0123456789 a.n. PT Web Jogja Digital")
    page = text_of(client.get(f"/portal/invoices/{invoice.id}"))
    assert "PT Web Jogja Digital" in page and "Jl. Kaliurang Km 5, Yogyakarta" in page
    assert "NPWP 09.876.543.2-541.000" in page
    assert "Bank transfer to BCA 0123456789 a.n. PT Web Jogja Digital" in page
    assert "our company account" not in page


# ---------------------------------------------------------------- the signed link

def test_signed_link_get_shows_post_approves_without_signing_in(shop, client):
    tid, number, qid = pending_quote(shop)
    quote = db.session.get(RepairQuote, qid)
    path = repairs.link_url(quote).split("localhost:5000", 1)[-1]
    path = path[path.index("/portal/"):]
    for _ in range(2):  # a mail scanner opens the link twice
        page = client.get(path + "?d=approve")
        assert page.status_code == 200
    body = text_of(page)
    assert "Modul SSL" in body and "Rp 1.000.000" in body and "Approve the quote" in body
    db.session.remove()
    assert db.session.get(RepairQuote, qid).status == "pending_customer"
    resp = client.post(path, data={"decision": "approve"})
    assert resp.status_code == 303
    page = text_of(client.get(resp.headers["Location"]))
    db.session.remove()
    quote = db.session.get(RepairQuote, qid)
    invoice = db.session.get(Invoice, quote.invoice_id)
    assert quote.status == "awaiting_payment"
    assert f"Invoice {invoice.number}, total Rp 1.000.000" in page and "How to pay" in page
    assert "Approve the quote" not in page
    # answering again through the link: the quote no longer waits, nothing changes
    resp = client.post(path, data={"decision": "decline"})
    assert resp.status_code == 409 and "no longer waiting" in text_of(resp)
    assert db.session.get(RepairQuote, qid).status == "awaiting_payment"


def test_expired_invalid_and_outdated_links(shop, app, client):
    tid, number, qid = pending_quote(shop)
    quote = db.session.get(RepairQuote, qid)
    token = repairs.make_token(quote)
    resp = client.get("/portal/quote/not-a-valid-token")
    assert resp.status_code == 400 and "This link is not valid" in text_of(resp)
    app.config["REPAIR_LINK_MAX_AGE"] = -1  # every link is too old
    resp = client.get(f"/portal/quote/{token}")
    assert resp.status_code == 400 and "This link has expired" in text_of(resp)
    resp = client.post(f"/portal/quote/{token}", data={"decision": "approve"})
    assert resp.status_code == 400
    app.config["REPAIR_LINK_MAX_AGE"] = 30 * 24 * 3600
    # the quote changed after the mail: the old link is refused, the new one works
    quote = db.session.get(RepairQuote, qid)
    quote.version += 1
    db.session.commit()
    resp = client.get(f"/portal/quote/{token}")
    assert resp.status_code == 409 and "This quote has changed since this link was sent" in text_of(resp)
    resp = client.post(f"/portal/quote/{token}", data={"decision": "approve"})
    assert resp.status_code == 409
    db.session.remove()
    assert db.session.get(RepairQuote, qid).status == "pending_customer"
    fresh = repairs.make_token(db.session.get(RepairQuote, qid))
    assert client.get(f"/portal/quote/{fresh}").status_code == 200
