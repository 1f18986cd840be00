"""The sales path in a real browser (issue #7 §6), as the people involved see it.

A lead from a seminar CSV → offer → the customer accepts by the link of the offer mail → order →
invoice → the customer uploads a proof of transfer on the portal → billing confirms it → the
payment confirmation mail (on the SMTP test server) → the order is fulfilled, and the customer's
new website shows its free domain and hosting with the warranty, cashback and free-until dates.

Every page is checked for console errors, foreign requests and axe-core violations. Screenshots
for the README (test-output/browser/sales-0N-*.png, copied to docs/screenshots/)."""
import base64
import re
from datetime import timedelta

import pytest
from flask_babel import force_locale, gettext
from sqlalchemy import select

from helpdesk.billing import money
from helpdesk.billing.models import Invoice, Payment
from helpdesk.extensions import db
from helpdesk.leads.models import Lead, LeadImport
from helpdesk.sales.models import Offer, Order
from helpdesk.timeutil import utcnow
from helpdesk.warranty import admin_services as catalogue
from helpdesk.warranty import rules
from helpdesk.warranty import services as warranty
from helpdesk.warranty.models import OwnedItem
from tests.browser.helpers import SHOTS, People
from tests.smtp_server import shared_smtp, smtp_server  # noqa: F401

pytestmark = pytest.mark.browser

LOCALE = "en"
SHOT_NAMES = ("sales-01-import", "sales-02-offer", "sales-03-accepted", "sales-04-proof", "sales-05-fulfilled")
LEAD_NAME = "Budi Santoso"
LEAD_EMAIL = "budi@kopinusantara.co.id"
# A seminar attendee list as Excel saves it: Indonesian headers, semicolons; row 3 is Budi again
# (the same phone written differently), row 4 has no email and no phone.
SEMINAR_CSV = ("nama;email;telepon;minat\n"
               f"{LEAD_NAME};{LEAD_EMAIL};0812-3456-7890;website\n"
               "Pak Budi;;+62 812 3456 7890;hosting\n"
               "Rina Kartika;;;website\n")
PROOF_REFERENCE = "TRF-BCA-20261129-0815"
# a 16x16 red PNG: the customer's screenshot of the bank transfer
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAFklEQVR4nGP8z8DAQApgIkn1qIZhowEAmVMBH3eUzdsAAAAASUVORK5CYII=")


def _text(message, **kw):
    with force_locale(LOCALE):
        return gettext(message, **kw)


def _day(day):
    return rules.format_date(day, LOCALE)



def _alert(page, message):
    return page.get_by_role("alert").filter(has_text=message)


@pytest.fixture
def mail_server(mail_live_server, smtp_server):  # noqa: F811
    """The real app (CSRF on) that sends real mail to the test SMTP server."""
    return mail_live_server(smtp_server, "sales@helpdesk.test")


def test_seminar_lead_to_fulfilled_website(app, make, mail_server, smtp_server, browser, axe_source,  # noqa: F811
                                           run_jobs, tmp_path):
    from playwright.sync_api import expect

    server_app, base = mail_server
    now = utcnow()
    today = warranty.local_today(now)
    year = today.year

    def send_mail():
        """Run the queued jobs (the mails) with the app that talks to the SMTP server."""
        with server_app.app_context():
            run_jobs()

    # ---- the people and the catalogue (as the admin pages save it)
    admin = make.user(email="ani.admin@example.com", name="Ani Admin", roles=["admin"])
    marketing = make.user(email="maya.marketing@example.com", name="Maya Marketing", roles=["marketing"])
    cs = make.user(email="sari.cs@example.com", name="Sari Customer Support", roles=["customer_support"])
    billing_agent = make.user(email="bella.billing@example.com", name="Bella Billing", roles=["billing"])
    hosting = catalogue.save_product(None, admin.id, now, code="DOMHOST-1", name="Domain + Hosting 1 GB",
                                     product_line="domain_hosting", price=780_000, warranty_days=30,
                                     cashback_days=30, term_days=365)
    website = catalogue.save_product(None, admin.id, now, code="WEB-COMPRO", name="Website Company Profile",
                                     product_line="website", price=3_500_000, warranty_days=90, cashback_days=30,
                                     bundle=[{"target": "domain_hosting", "free_days": 365}])
    db.session.commit()
    website_id, hosting_id = website.id, hosting.id
    billing_id = billing_agent.id
    marketing_email, cs_email, billing_email = marketing.email, cs.email, billing_agent.email
    total = 3_150_000  # 3.500.000 less 10 %
    offer_number = f"OFR/{year}/000001"
    order_number = f"ORD/{year}/000001"
    invoice_number = money.format_number(year, 1)
    csv_path = tmp_path / "peserta-seminar-umkm-go-digital.csv"
    csv_path.write_text(SEMINAR_CSV, encoding="utf-8")
    proof_path = tmp_path / "bukti-transfer-bca.png"
    proof_path.write_bytes(PNG)
    smtp_server.clear()

    person = People(browser, base, axe_source)  # each person in their own browser context

    try:
        # ================================================================ 1. the seminar CSV
        mpage, mwatch, mshot = person(marketing_email)
        mpage.goto(f"{base}/leads/import")
        expect(mpage.get_by_role("heading", name=_text("Import leads from a CSV file"))).to_be_visible()
        form = mpage.locator("#lead-import-form")
        form.locator("input[type=file]").set_input_files(str(csv_path))
        form.locator("select[name=source]").select_option("seminar")
        form.locator("input[name=campaign]").fill("UMKM Go Digital 2026")
        mwatch.assert_clean("the import form")
        form.get_by_role("button", name=_text("Upload and preview")).click()

        # the preview: one new lead, one merged into it, one rejected with the reason
        expect(mpage.get_by_role("heading", name=_text("Import preview"))).to_be_visible()
        totals = mpage.locator("#preview-totals")
        expect(totals.locator('[data-total="total"]')).to_have_text(_text("%(n)s rows", n=3))
        expect(totals.locator('[data-total="new"]')).to_have_text(_text("%(n)s new leads", n=1))
        expect(totals.locator('[data-total="merge"]')).to_have_text(_text("%(n)s merged into known leads", n=1))
        expect(totals.locator('[data-total="rejected"]')).to_have_text(_text("%(n)s rejected", n=1))
        rows = mpage.locator("#preview-table tbody tr")
        expect(rows).to_have_count(3)
        expect(rows.nth(0)).to_have_attribute("data-outcome", "new")
        expect(rows.nth(0)).to_contain_text(LEAD_EMAIL)
        expect(rows.nth(0)).to_contain_text(_text("New lead"))
        expect(rows.nth(1)).to_have_attribute("data-outcome", "merge")
        expect(rows.nth(1)).to_contain_text("Pak Budi")
        first_row = rows.nth(0).get_attribute("data-row")
        expect(rows.nth(1)).to_contain_text(_text("Merge with row %(n)s", n=first_row))
        expect(rows.nth(2)).to_have_attribute("data-outcome", "rejected")
        expect(rows.nth(2)).to_contain_text("Rina Kartika")
        expect(rows.nth(2)).to_contain_text(_text("Neither an email address nor a phone number."))
        mwatch.assert_clean("the import preview")
        mpage.get_by_role("button", name=_text("Start the import")).click()
        expect(mpage.locator("#import-progress")).to_be_visible()
        run_jobs()  # the import job: the page polls its status and shows the report when it is done
        counts = mpage.locator("#import-counts")
        expect(counts.locator('[data-count="created"]')).to_have_text("1")
        expect(counts.locator('[data-count="merged"]')).to_have_text("1")
        expect(counts.locator('[data-count="rejected"]')).to_have_text("1")
        expect(mpage.locator("#import-count")).to_have_text(_text("%(processed)s of %(total)s rows",
                                                                  processed=3, total=3))
        expect(mpage.locator("#rejected-rows")).to_contain_text(_text("Neither an email address nor a phone number."))
        expect(mpage.locator("#merged-rows")).to_contain_text(LEAD_NAME)
        mwatch.assert_clean("the import report")
        mshot(SHOT_NAMES[0])

        lead = db.session.execute(select(Lead)).scalar_one()  # the merge made no second lead
        assert (lead.name, lead.email, lead.phone, lead.source, lead.merge_count) == (
            LEAD_NAME, LEAD_EMAIL, "+6281234567890", "seminar", 1)
        assert sorted(lead.product_lines) == ["domain_hosting", "website"]
        lead_id = lead.id

        # ================================================================ 2. the offer
        mpage.get_by_role("link", name=_text("Go to the leads")).click()
        mpage.locator(f'tr[data-lead="{lead_id}"]').get_by_role("link", name=LEAD_NAME).click()
        expect(mpage.get_by_role("heading", name=LEAD_NAME, exact=True)).to_be_visible()
        mwatch.assert_clean("the new lead")
        mpage.locator("#make-offer-form").get_by_role("button", name=_text("Make an offer")).click()
        expect(_alert(mpage, _text("Offer %(number)s created. Add its lines.", number=offer_number))).to_be_visible()
        editor = mpage.locator("#offer-form")
        editor.locator("#lines-0-product_id").select_option(str(website_id))
        editor.locator("#lines-0-discount").fill("10%")
        editor.get_by_label(_text("Language")).select_option("en")
        editor.get_by_role("button", name=_text("Save")).click()
        expect(_alert(mpage, _text("Offer saved."))).to_be_visible()
        saved = mpage.locator("#offer-saved")
        expect(saved).to_contain_text("Website Company Profile")
        expect(saved).to_contain_text(money.format_rupiah(3_500_000))
        expect(saved).to_contain_text(money.format_rupiah(total))
        mpage.locator("#send-form").get_by_role("button", name=_text("Send to %(email)s", email=LEAD_EMAIL)).click()
        expect(_alert(mpage, _text("Offer %(number)s sent to %(to)s.", number=offer_number, to=LEAD_EMAIL))
               ).to_be_visible()
        expect(mpage.locator("#offer-state")).to_contain_text(_text("Sent"))
        mwatch.assert_clean("the sent offer")
        mshot(SHOT_NAMES[1])

        # the offer mail arrives; its signed link is what the customer opens
        send_mail()
        offer_mails = [m for m in smtp_server.to(LEAD_EMAIL) if offer_number in (m["Subject"] or "")]
        assert len(offer_mails) == 1, [m["Subject"] for m in smtp_server.messages]
        offer_mail = offer_mails[0].text
        assert money.format_rupiah(total) in offer_mail
        link_path = re.search(r"https?://[^/\s]+(/offers/view/\S+)", offer_mail).group(1)

        # ================================================================ 3. the customer accepts
        cpage, cwatch, cshot = person(None)
        cpage.goto(base + link_path)
        expect(cpage.get_by_role("heading", name=f"{_text('Offer')} {offer_number}")).to_be_visible()
        expect(cpage.locator("main")).to_contain_text("Website Company Profile")
        expect(cpage.locator("main")).to_contain_text(money.format_rupiah(total))
        cwatch.assert_clean("the offer link")
        cpage.get_by_role("button", name=_text("Accept the offer")).click()
        expect(cpage.locator("#offer-result")).to_have_text(_text(
            "Thank you, your order %(number)s is placed. An invoice follows by email.", number=order_number))
        cwatch.assert_clean("the accepted offer")
        cshot(SHOT_NAMES[2])

        db.session.expire_all()
        order = db.session.execute(select(Order)).scalar_one()
        assert (order.number, order.status, order.total, order.channel) == (order_number, "placed", total, "offer")
        order_id, customer_id = order.id, order.customer_id

        # ================================================================ 4. the order is confirmed
        spage, swatch, sshot = person(cs_email)
        spage.goto(f"{base}/orders/{order_id}")
        expect(spage.locator("#order-number")).to_have_text(order_number)
        expect(spage.locator("#order-status")).to_have_text(_text("Placed"))
        expect(spage.locator("#order-total")).to_have_text(money.format_rupiah(total))
        swatch.assert_clean("the placed order")
        spage.get_by_role("button", name=_text("Confirm and send the invoice")).click()
        expect(_alert(spage, _text("Order confirmed: invoice %(number)s created and sent to the customer.",
                                   number=invoice_number))).to_be_visible()
        expect(spage.locator("#order-status")).to_have_text(_text("Confirmed"))
        expect(spage.locator("#order-invoice-number")).to_have_text(invoice_number)
        swatch.assert_clean("the confirmed order")

        db.session.expire_all()
        invoice = db.session.execute(select(Invoice)).scalar_one()
        invoice_id, transfer_amount = invoice.id, invoice.transfer_amount
        assert invoice.total == total and total < transfer_amount < total + 1000
        send_mail()
        invoice_mails = [m for m in smtp_server.to(LEAD_EMAIL) if invoice_number in (m["Subject"] or "")]
        assert len(invoice_mails) == 1, [m["Subject"] for m in smtp_server.messages]
        assert money.format_rupiah(transfer_amount) in invoice_mails[0].text

        # ================================================================ 5. the proof of transfer
        cpage.goto(f"{base}/portal/login?lang=en")
        cpage.locator("#email").fill(LEAD_EMAIL)
        cpage.get_by_role("button", name=_text("Send me a sign-in link")).click()
        expect(cpage.locator("#link-sent")).to_be_visible()
        send_mail()
        sign_in = [m for m in smtp_server.to(LEAD_EMAIL) if "/portal/login/" in (m.text or "")]
        assert len(sign_in) == 1, [m["Subject"] for m in smtp_server.messages]
        cpage.goto(base + re.search(r"https?://[^/\s]+(/portal/login/\S+)", sign_in[0].text).group(1))
        cpage.get_by_role("button", name=_text("Sign in")).click()
        cpage.goto(f"{base}/portal/purchases")
        cpage.locator("#invoices").get_by_role("link", name=invoice_number).first.click()
        expect(cpage.locator("#invoice-status")).to_have_text(_text("Unpaid"))
        expect(cpage.locator("#transfer-amount")).to_contain_text(money.format_rupiah(transfer_amount))
        cwatch.assert_clean("the customer's invoice")
        proof = cpage.locator("#proof-form")
        proof.locator("#proof-amount").fill(str(transfer_amount))
        proof.locator("#proof-date").fill(today.isoformat())
        proof.locator("#proof-ref").fill(PROOF_REFERENCE)
        proof.locator("#proof-file").set_input_files(str(proof_path))
        proof.get_by_role("button", name=_text("Send the proof")).click()
        expect(_alert(cpage, _text("Thank you: we received your proof of transfer. We will email you once the "
                                   "payment is confirmed."))).to_be_visible()
        pending = cpage.locator("#pay-transfer")
        expect(pending.locator("#proofs-pending")).to_be_visible()
        expect(pending).to_contain_text(proof_path.name)
        expect(pending).to_contain_text(money.format_rupiah(transfer_amount))
        cwatch.assert_clean("the proof of transfer sent")
        cshot(SHOT_NAMES[3])

        # ================================================================ 6. billing confirms
        db.session.expire_all()
        payment_id = db.session.execute(select(Payment.id)).scalar_one()
        bpage, bwatch, bshot = person(billing_email)
        bpage.goto(f"{base}/billing")
        row = bpage.locator(f"#billing-payment-{payment_id}")
        expect(row).to_contain_text(invoice_number)
        expect(row).to_contain_text(LEAD_NAME)
        expect(row).to_contain_text(_text("sent by the customer"))
        expect(row).to_contain_text(PROOF_REFERENCE)
        expect(row).to_contain_text(money.format_rupiah(transfer_amount))
        expect(row.locator("a.payment-proof")).to_have_text(proof_path.name)
        bwatch.assert_clean("the payment waiting with its proof")
        row.get_by_role("button", name=_text("Confirm")).click()
        expect(_alert(bpage, _text("Payment confirmed."))).to_be_visible()
        expect(bpage.locator("#invoice-status")).to_contain_text(_text("Paid"))
        expect(bpage.locator("#invoice-status")).not_to_contain_text(_text("Unpaid"))
        bwatch.assert_clean("the paid invoice")
        send_mail()
        # the customer made from the lead has no language yet: the mail is bilingual (Indonesian / English)
        confirmations = [m for m in smtp_server.to(LEAD_EMAIL)
                         if f"Payment received for invoice {invoice_number}" in (m["Subject"] or "")]
        assert len(confirmations) == 1, [m["Subject"] for m in smtp_server.messages]
        assert LEAD_EMAIL in confirmations[0]["To"]
        assert f"Amount paid: {money.format_rupiah(transfer_amount)}" in confirmations[0].text
        assert "This invoice is now fully paid." in confirmations[0].text

        # ================================================================ 7. fulfilment
        spage.reload()
        expect(spage.locator("#order-status")).to_have_text(_text("Paid"))
        expect(spage.locator("#order-invoice-status")).to_have_text(_text("Paid"))
        expect(spage.locator("#order-activation")).to_have_value(today.isoformat())
        spage.get_by_role("button", name=_text("Fulfil: record the products")).click()
        expect(_alert(spage, _text("Order fulfilled: the customer's products are recorded."))).to_be_visible()
        expect(spage.locator("#order-status")).to_have_text(_text("Fulfilled"))
        warranty_end = today + timedelta(days=89)
        cashback_end = today + timedelta(days=29)
        free_until = today + timedelta(days=364)
        items = spage.locator("#order-items li.order-item")
        expect(items).to_have_count(2)
        expect(items.filter(has_text="Website Company Profile")).to_contain_text(
            f"{_text('warranty until')} {_day(warranty_end)}")
        expect(items.filter(has_text="Domain + Hosting 1 GB")).to_contain_text(
            f"{_text('free with the bundle until')} {_day(free_until)}")
        swatch.assert_clean("the fulfilled order")

        items.filter(has_text="Website Company Profile").get_by_role("link").click()
        details = spage.locator("#item-details")
        expect(details).to_contain_text(_day(today))
        expect(details).to_contain_text(_day(warranty_end))
        expect(details).to_contain_text(_day(cashback_end))
        expect(details).to_contain_text(order_number)
        expect(details.get_by_role("link", name="Domain + Hosting 1 GB")).to_be_visible()
        swatch.assert_clean("the website item")
        spage.goto(f"{base}/customers/{customer_id}")
        owned = spage.locator("#owned-items table").first.locator("tbody tr")
        expect(owned).to_have_count(2)
        web_row = owned.filter(has_text="Website Company Profile")
        expect(web_row).to_contain_text(_day(warranty_end))
        expect(web_row).to_contain_text(_day(cashback_end))
        host_row = owned.filter(has_text="Domain + Hosting 1 GB")
        expect(host_row).to_contain_text(_day(free_until))
        swatch.assert_clean("the customer's products")
        sshot(SHOT_NAMES[4])
    finally:
        person.close()

    # ---- what was stored
    db.session.remove()
    imp = db.session.execute(select(LeadImport)).scalar_one()
    assert (imp.status, imp.total, imp.created, imp.merged, imp.rejected, imp.source, imp.filename) == (
        "done", 3, 1, 1, 1, "seminar", csv_path.name)
    lead = db.session.get(Lead, lead_id)
    assert (lead.stage, lead.customer_id) == ("won", customer_id)
    offer = db.session.execute(select(Offer)).scalar_one()
    assert (offer.number, offer.status, offer.lead_id, offer.total, offer.discount_total) == (
        offer_number, "accepted", lead_id, total, 350_000)
    order = db.session.get(Order, order_id)
    assert (order.status, order.offer_id, order.invoice_id, order.customer_id) == (
        "fulfilled", offer.id, invoice_id, customer_id)
    invoice = db.session.get(Invoice, invoice_id)
    assert (invoice.status, invoice.total, invoice.amount_paid, invoice.source_type, invoice.source_id) == (
        "paid", total, transfer_amount, "order", order_id)
    payment = db.session.get(Payment, payment_id)
    assert (payment.status, payment.source, payment.amount, payment.reference, payment.confirmed_by_id,
            payment.customer_id, payment.proof_name) == (
        "confirmed", "portal", transfer_amount, PROOF_REFERENCE, billing_id, customer_id, proof_path.name)
    web_item = db.session.execute(select(OwnedItem).where(OwnedItem.product_id == website_id)).scalar_one()
    host_item = db.session.execute(select(OwnedItem).where(OwnedItem.product_id == hosting_id)).scalar_one()
    assert (web_item.customer_id, web_item.activation_date, web_item.warranty_end, web_item.cashback_end,
            web_item.reference, web_item.amount_paid) == (
        customer_id, today, today + timedelta(days=89), today + timedelta(days=29), order_number, total)
    assert (host_item.bundle_parent_id, host_item.bundle_free_until, host_item.expires_on) == (
        web_item.id, today + timedelta(days=364), today + timedelta(days=364))
    for name in SHOT_NAMES:
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000
