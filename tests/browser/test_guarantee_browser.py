"""The guarantee and paid-repair flows in a real browser (issue #6 §7), as the people involved see them.

1. Customer support links a ticket to a hosting bought five days ago and sees "Cashback possible";
   they request the cashback. Technical support verifies the defect; billing approves the amount
   and pays it from the billing queue; the ticket's claim card shows it paid with the reference.
2. An out-of-warranty website ticket: technical support drafts a repair quote (the service fee
   and a part), submits it to billing; billing approves it; the customer approves it through the
   signed link and gets invoice INV/<year>/000001; billing records the full payment, the invoice
   is paid and the repair goes to work.

Every page is checked for console errors, foreign requests and axe-core violations. Screenshots
for the README (test-output/browser/guarantee-0N-*.png, copied to docs/screenshots/)."""
from datetime import timedelta

import pytest
from flask_babel import force_locale, gettext
from sqlalchemy import select

from helpdesk.billing import money
from helpdesk.billing.models import Invoice, Payment
from helpdesk.claims.models import CashbackClaim
from helpdesk.extensions import db
from helpdesk.repairs import services as repairs
from helpdesk.repairs.models import RepairQuote
from helpdesk.tickets import services
from helpdesk.tickets.models import Ticket
from helpdesk.timeutil import utcnow
from helpdesk.warranty import admin_services as catalogue
from helpdesk.warranty import badges
from helpdesk.warranty import services as warranty
from tests.browser.helpers import SHOTS, People

pytestmark = pytest.mark.browser

LOCALE = "en"
CLAIM_REFERENCE = "TRF-BCA-20261129-0042"
PAYMENT_REFERENCE = "TRF-MANDIRI-7781203"
SHOT_NAMES = ("guarantee-01-cashback-possible", "guarantee-02-billing-queue", "guarantee-03-repair-quote",
              "guarantee-04-customer-approves", "guarantee-05-invoice-paid")


def _text(message, **kw):
    with force_locale(LOCALE):
        return gettext(message, **kw)



def _alert(page, message):
    return page.get_by_role("alert").filter(has_text=message)


def test_cashback_claim_and_paid_repair(app, make, live_server, browser, axe_source):
    from playwright.sync_api import expect

    base = live_server
    now = utcnow()
    today = warranty.local_today(now)

    # ---- the desk: a queue, customer support and technical support in it, billing outside it
    queue = make.queue(slug="technical-support", name="Technical Support")
    admin = make.user(email="ani.admin@example.com", name="Ani Admin", roles=["admin"])
    cs = make.user(email="sari.cs@example.com", name="Sari Customer Support", roles=["customer_support"],
                   queues=[queue])
    tech = make.user(email="tono.teknisi@example.com", name="Tono Teknisi", roles=["technical_support"],
                     queues=[queue])
    billing_agent = make.user(email="bella.billing@example.com", name="Bella Billing", roles=["billing"])
    # ---- the catalogue (as the admin pages save it)
    email_cat = catalogue.save_category(None, admin.id, code="email_not_working", name_id="Email tidak berfungsi",
                                        name_en="Email not working", is_defect=True, product_line="domain_hosting")
    bug_cat = catalogue.save_category(None, admin.id, code="bug_error", name_id="Bug atau error",
                                      name_en="Bug or error", is_defect=True, product_line="website")
    hosting = catalogue.save_product(None, admin.id, now, code="HOST-1G", name="Hosting 1 GB",
                                     product_line="domain_hosting", price=600_000, warranty_days=30,
                                     cashback_days=30)
    website = catalogue.save_product(None, admin.id, now, code="WEB-COMPRO", name="Website Company Profile",
                                     product_line="website", price=3_500_000, warranty_days=90, cashback_days=30)
    db.session.commit()
    # ---- the customer: a hosting in its first month, a website bought over a year ago
    cust = make.customer(name="Dewi Lestari", language="en", email="dewi@batikayu.co.id")
    host_item = warranty.create_item(customer_id=cust.id, product_id=hosting.id,
                                     purchase_date=today - timedelta(days=5), activation_date=today - timedelta(days=5),
                                     identifier="batikayu.co.id", amount_paid=600_000)
    web_item = warranty.create_item(customer_id=cust.id, product_id=website.id,
                                    purchase_date=today - timedelta(days=400),
                                    activation_date=today - timedelta(days=400),
                                    identifier="dewilestari.com", amount_paid=3_500_000)
    # Ticket A: the mailbox stopped receiving; its category is set, the product is not linked yet
    ticket_a = services.create_ticket(customer_id=cust.id, subject="Email tidak bisa menerima pesan",
                                      body_text="Sejak kemarin kotak masuk kami tidak menerima email apa pun.",
                                      channel="email", queue_id=queue.id, now=now)
    warranty.set_category(ticket_a.id, tech.id, email_cat.id, now=now)
    # Ticket B: the old website's contact form fails: out of warranty, the repair is paid
    ticket_b = services.create_ticket(customer_id=cust.id, subject="Formulir kontak website error",
                                      body_text="Formulir kontak menampilkan error 500 saat dikirim.",
                                      channel="web", queue_id=queue.id, now=now)
    warranty.set_item(ticket_b.id, tech.id, web_item.id, now=now)
    warranty.set_category(ticket_b.id, tech.id, bug_cat.id, now=now)
    db.session.commit()
    assert ticket_a.owned_item_id is None and ticket_a.cashback_until is None
    assert ticket_b.charge == "paid" and ticket_b.cashback_until is None
    a_number, a_id, b_number, b_id = ticket_a.number, ticket_a.id, ticket_b.number, ticket_b.id
    host_id, cust_id = host_item.id, cust.id
    cs_id, tech_id, billing_id = cs.id, tech.id, billing_agent.id
    year = today.year
    invoice_number = money.format_number(year, 1)
    price_all = money.format_rupiah(600_000)

    agent = People(browser, base, axe_source)  # each person in their own browser context

    try:
        # ================================================================ 1. cashback
        # Customer support links ticket A to the hosting bought five days ago: cashback possible
        page, watch, shot = agent(cs.email)
        page.goto(f"{base}/tickets/{a_number}")
        panel = page.locator("#warranty-panel")
        expect(panel.locator(".cashback-badge")).to_have_count(0)
        expect(page.locator("#claim-panel")).to_have_count(0)  # nothing to claim before the link
        panel.get_by_label(_text("Product")).select_option(str(host_id))
        panel.get_by_role("button", name=_text("Link"), exact=True).click()
        db.session.expire_all()
        linked = db.session.get(Ticket, a_id)
        assert linked.owned_item_id == host_id and linked.cashback_until is not None
        cashback_text = badges.cashback_label(linked.cashback_until, today, LOCALE)
        assert cashback_text.startswith("Cashback possible")
        badge = page.locator("#warranty-panel .cashback-badge")
        expect(badge).to_be_visible()
        expect(badge).to_have_text(cashback_text)
        expect(page.locator("#warranty-item")).to_contain_text("Hosting 1 GB")
        watch.assert_clean("linking the ticket to the hosting")

        # ... and requests the cashback in the claim card
        claim_card = page.locator("#claim-panel")
        claim_card.get_by_label(_text("Note (optional)")).fill("Email hosting mati sejak kemarin, pelanggan "
                                                                "minta cashback.")
        claim_card.get_by_role("button", name=_text("Request cashback")).click()
        expect(_alert(page, _text("Cashback claim requested."))).to_be_visible()
        claim_card = page.locator("#claim-panel")
        expect(claim_card.locator(".claim-status")).to_have_text(_text("Requested"))
        expect(claim_card).to_contain_text(cs.name)
        expect(claim_card).to_contain_text(_text("Waiting for technical support to verify the defect."))
        expect(page.locator("#warranty-panel .cashback-badge")).to_have_text(cashback_text)
        watch.assert_clean("the cashback request")
        shot(SHOT_NAMES[0])

        # Technical support verifies the defect with a note
        tpage, watch_tech, tshot = agent(tech.email)
        tpage.goto(f"{base}/tickets/{a_number}")
        tcard = tpage.locator("#claim-panel")
        tcard.get_by_label(_text("Defect confirmed")).fill("MX record hosting terhapus saat migrasi server; "
                                                           "email tidak masuk selama 26 jam.")
        tcard.get_by_role("button", name=_text("Verify"), exact=True).click()
        expect(_alert(tpage, _text("Claim verified: it now waits for billing."))).to_be_visible()
        tcard = tpage.locator("#claim-panel")
        expect(tcard.locator(".claim-status")).to_have_text(_text("Verified"))
        expect(tcard.locator(".claim-verify-note")).to_contain_text("MX record hosting terhapus")
        expect(tcard).to_contain_text(_text("Waiting for billing to approve."))
        expect(tcard.locator("#claim-verify-form")).to_have_count(0)
        watch_tech.assert_clean("the verification")

        # Billing sees the claim in the billing queue, approves the amount and pays it
        bpage, watch_billing, bshot = agent(billing_agent.email)
        bpage.get_by_role("link", name=_text("Billing"), exact=True).click()
        expect(bpage.get_by_role("heading", name=_text("Billing queue"))).to_be_visible()
        claim_id = db.session.execute(select(CashbackClaim.id).where(CashbackClaim.ticket_id == a_id)).scalar_one()
        row = bpage.locator(f"#billing-claim-{claim_id}")
        expect(row).to_contain_text(f"#{a_number}")
        expect(row).to_contain_text("Dewi Lestari")
        expect(row).to_contain_text("Hosting 1 GB")
        expect(row).to_contain_text(price_all)  # paid for the item
        expect(row).to_contain_text(_text("Verified"))
        expect(row).to_contain_text("Tono Teknisi")
        watch_billing.assert_clean("the billing queue with the verified claim")
        bshot(SHOT_NAMES[1])

        row.get_by_label(_text("Cashback amount (Rp)")).fill("600.000")
        row.get_by_role("button", name=_text("Approve"), exact=True).click()
        expect(_alert(bpage, _text("Claim approved."))).to_be_visible()
        row = bpage.locator(f"#billing-claim-{claim_id}")
        expect(row).to_contain_text(_text("Approved"))
        expect(row).to_contain_text(price_all)
        row.get_by_label(_text("Payment reference")).fill(CLAIM_REFERENCE)
        expect(row.get_by_label(_text("Paid on"))).to_have_value(today.isoformat())
        row.get_by_role("button", name=_text("Mark paid")).click()
        expect(_alert(bpage, _text("Claim marked paid."))).to_be_visible()
        expect(bpage.locator(f"#billing-claim-{claim_id}")).to_have_count(0)
        expect(bpage.locator("#billing-claims")).to_contain_text(_text("No claims wait for billing."))
        watch_billing.assert_clean("approving and paying the claim")

        # The ticket's claim card: paid, with the amount and the reference
        tpage.reload()
        tcard = tpage.locator("#claim-panel")
        expect(tcard.locator(".claim-status")).to_have_text(_text("Paid"))
        expect(tcard.locator(".claim-amount")).to_have_text(price_all)
        expect(tcard.locator(".claim-reference")).to_have_text(CLAIM_REFERENCE)
        expect(tcard).to_contain_text("Bella Billing")
        watch_tech.assert_clean("the paid claim on the ticket")

        # ================================================================ 2. the paid repair
        # Technical support drafts the quote of the out-of-warranty website, adds a part, submits it
        tpage.goto(f"{base}/tickets/{b_number}")
        expect(tpage.locator("#warranty-panel .charge-badge")).to_be_visible()
        expect(tpage.locator("#warranty-panel .cashback-badge")).to_have_count(0)
        rcard = tpage.locator("#repair-panel")
        rcard.get_by_role("button", name=_text("Start repair quote")).click()
        expect(_alert(tpage, _text("Repair quote started: check its lines, then submit it to billing."))
               ).to_be_visible()
        rcard = tpage.locator("#repair-panel")
        expect(rcard.locator(".repair-status")).to_have_text(_text("Draft"))
        expect(rcard.locator("#lines-0-description")).to_have_value("Service fee")
        expect(rcard.locator("#lines-0-unit_price")).to_have_value("150000")
        rcard.locator("#lines-1-kind").select_option("part")
        rcard.locator("#lines-1-description").fill("SSD 240 GB")
        rcard.locator("#lines-1-quantity").fill("1")
        rcard.locator("#lines-1-unit_price").fill("450.000")
        rcard.get_by_role("button", name=_text("Save lines")).click()
        expect(_alert(tpage, _text("Quote lines saved."))).to_be_visible()
        rcard = tpage.locator("#repair-panel")
        expect(rcard.locator("#repair-lines tbody tr")).to_have_count(2)
        expect(rcard.locator("#repair-lines")).to_contain_text("SSD 240 GB")
        expect(rcard.locator("#repair-total")).to_have_text(price_all)
        rcard.get_by_role("button", name=_text("Submit to billing")).click()
        expect(_alert(tpage, _text("Quote submitted: the ticket waits for billing."))).to_be_visible()
        rcard = tpage.locator("#repair-panel")
        expect(rcard.locator(".repair-status")).to_have_text(_text("Waiting for billing"))
        expect(rcard.locator('#repair-steps [aria-current="step"]')).to_contain_text(_text("Billing approval"))
        expect(rcard.locator("#repair-total")).to_have_text(price_all)
        expect(rcard.locator("#repair-lines-form")).to_have_count(0)
        watch_tech.assert_clean("the repair quote submitted to billing")
        tshot(SHOT_NAMES[2])

        # Billing approves the quote from the billing queue's link to the ticket
        bpage.goto(f"{base}/billing")
        quote_id = db.session.execute(select(RepairQuote.id).where(RepairQuote.ticket_id == b_id)).scalar_one()
        qrow = bpage.locator(f"#billing-quote-{quote_id}")
        expect(qrow).to_contain_text(price_all)
        expect(qrow).to_contain_text("Tono Teknisi")
        qrow.get_by_role("link", name=f"#{b_number}").click()
        bcard = bpage.locator("#repair-panel")
        expect(bcard.locator(".repair-status")).to_have_text(_text("Waiting for billing"))
        watch_billing.assert_clean("the quote on the ticket page, for billing")
        bcard.get_by_role("button", name=_text("Approve and send to the customer")).click()
        expect(_alert(bpage, _text("Quote approved: it was sent to the customer."))).to_be_visible()
        expect(bpage.locator(f"#billing-quote-{quote_id}")).to_have_count(0)
        watch_billing.assert_clean("the approved quote")

        # The customer opens the signed link of the quote mail (a fresh browser, not signed in)
        db.session.expire_all()
        quote = db.session.get(RepairQuote, quote_id)
        assert quote.status == "pending_customer"
        token = repairs.make_token(quote)
        cpage, cwatch, cshot = agent(None)
        cpage.goto(f"{base}/portal/quote/{token}?lang=en")
        expect(cpage.get_by_role("heading", name=_text("Repair quote"))).to_be_visible()
        expect(cpage.locator("#quote-status")).to_have_text(_text("Waiting for your answer"))
        lines = cpage.locator("#lines tbody tr")
        expect(lines).to_have_count(2)
        expect(lines.nth(0)).to_contain_text("Service fee")
        expect(lines.nth(0)).to_contain_text(money.format_rupiah(150_000))
        expect(lines.nth(1)).to_contain_text("SSD 240 GB")
        expect(lines.nth(1)).to_contain_text(money.format_rupiah(450_000))
        expect(cpage.locator("#total")).to_have_text(price_all)
        cwatch.assert_clean("the quote link")
        cpage.get_by_role("button", name=_text("Approve the quote")).click()
        expect(_alert(cpage, _text("Thank you. You approved the quote."))).to_be_visible()
        summary = cpage.locator("#invoice-summary")
        expect(summary).to_contain_text(invoice_number)
        expect(summary).to_contain_text(price_all)
        expect(cpage.locator("#quote-status")).to_have_text(_text("Approved: waiting for your payment"))
        expect(cpage.locator("#how-to-pay")).to_contain_text(invoice_number)
        cwatch.assert_clean("the customer's approval")
        cshot(SHOT_NAMES[3])

        # Billing records the full payment on the invoice page: paid
        bpage.goto(f"{base}/billing")
        bpage.locator("#billing-open-invoices").get_by_role("link", name=invoice_number).click()
        expect(bpage.locator("#invoice-number")).to_have_text(invoice_number)
        expect(bpage.locator("#invoice-status")).to_contain_text(_text("Unpaid"))
        expect(bpage.locator("#invoice-total")).to_have_text(price_all)
        expect(bpage.locator("#invoice-lines")).to_contain_text("SSD 240 GB")
        form = bpage.locator("#payment-form")
        expect(form.get_by_label(_text("Amount (Rp)"))).to_have_value("600000")
        form.get_by_label(_text("Method")).select_option(label=_text("Bank transfer"))
        form.get_by_label(_text("Reference")).fill(PAYMENT_REFERENCE)
        expect(form.get_by_label(_text("Confirm now (the money has arrived)"))).to_be_checked()
        form.get_by_role("button", name=_text("Record payment")).click()
        expect(_alert(bpage, _text("Payment confirmed."))).to_be_visible()
        expect(bpage.locator("#invoice-status")).to_contain_text(_text("Paid"))
        expect(bpage.locator("#invoice-status")).not_to_contain_text(_text("Unpaid"))
        expect(bpage.locator("#invoice-paid")).to_have_text(price_all)
        expect(bpage.locator("#invoice-balance")).to_have_text(money.format_rupiah(0))
        payments = bpage.locator("#invoice-payments tbody tr")
        expect(payments).to_have_count(1)
        expect(payments.first).to_contain_text(PAYMENT_REFERENCE)
        expect(payments.first).to_contain_text(_text("Bank transfer"))
        expect(payments.first).to_contain_text(_text("Confirmed"))
        expect(bpage.locator("#payment-form")).to_have_count(0)
        watch_billing.assert_clean("the paid invoice")
        bshot(SHOT_NAMES[4])

        # The ticket's repair card: in work, the invoice paid
        tpage.goto(f"{base}/tickets/{b_number}")
        rcard = tpage.locator("#repair-panel")
        expect(rcard.locator(".repair-status")).to_have_text(_text("In work"))
        expect(rcard.locator('#repair-steps [aria-current="step"]')).to_contain_text(_text("Work"))
        expect(rcard.locator("#repair-invoice")).to_contain_text(invoice_number)
        expect(rcard.locator("#repair-invoice")).to_contain_text(_text("Paid"))
        expect(rcard.get_by_role("button", name=_text("Mark work done"))).to_be_visible()
        watch_tech.assert_clean("the repair in work")
    finally:
        agent.close()

    # ---- what was stored
    db.session.remove()
    claim = db.session.execute(select(CashbackClaim).where(CashbackClaim.ticket_id == a_id)).scalar_one()
    assert (claim.status, claim.amount, claim.payment_reference, claim.paid_on) == (
        "paid", 600_000, CLAIM_REFERENCE, today)
    assert claim.requested_by_id == cs_id and claim.verified_by_id == tech_id
    assert claim.approved_by_id == claim.paid_by_id == billing_id
    assert claim.owned_item_id == host_id and claim.customer_id == cust_id
    quote = db.session.execute(select(RepairQuote).where(RepairQuote.ticket_id == b_id)).scalar_one()
    assert (quote.status, quote.total, quote.drafted_by_id, quote.billing_by_id) == (
        "in_work", 600_000, tech_id, billing_id)
    assert [(ln.kind, ln.description, ln.quantity, ln.unit_price) for ln in quote.lines] == [
        ("service", "Service fee", 1, 150_000), ("part", "SSD 240 GB", 1, 450_000)]
    invoice = db.session.get(Invoice, quote.invoice_id)
    assert (invoice.number, invoice.status, invoice.total, invoice.amount_paid) == (
        invoice_number, "paid", 600_000, 600_000)
    payment = db.session.execute(select(Payment).where(Payment.invoice_id == invoice.id)).scalar_one()
    assert (payment.status, payment.method, payment.reference, payment.amount) == (
        "confirmed", "bank_transfer", PAYMENT_REFERENCE, 600_000)
    assert db.session.get(Ticket, b_id).status == "open"
    for name in SHOT_NAMES:
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000
