"""The mail of cashback claims, paid repairs and invoices, received by a real SMTP server
(aiosmtpd, tests/smtp_server.py): who gets what, in which language, with which amounts; the signed
quote link in the mail opens the quote and approving it there creates the invoice."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from helpdesk.billing import services as billing
from helpdesk.billing.models import Invoice
from helpdesk.claims import services as claims
from helpdesk.extensions import db
from helpdesk.mail.models import OutboundMail
from helpdesk.repairs import services as repairs
from helpdesk.repairs.models import RepairQuote
from helpdesk.timeutil import utcnow
from helpdesk.tickets import services as tickets
from helpdesk.warranty import rules
from helpdesk.warranty import services as warranty
from helpdesk.warranty.models import Product
from tests.conftest import extract_csrf, work_jobs as work
from tests.factories import Factories
from tests.smtp_server import shared_smtp, smtp_app, smtp_server  # noqa: F401  (fixtures)



@pytest.fixture
def mail_app(smtp_app):
    return smtp_app(COMPANY_BANK_ACCOUNT="BCA 0123456789 a.n. PT Web Jogja Digital")


@pytest.fixture
def shop(mail_app):
    make = Factories()
    q = make.queue(slug="technical-support", name="Technical Support")
    tech = make.user(email="rina@desk.example", name="Rina Wulandari", roles=["technical_support"], queues=[q])
    bq = make.queue(slug="billing", name="Billing")
    biller = make.user(email="bayu@desk.example", name="Bayu Saputra", roles=["billing"], queues=[bq])
    biller_en = make.user(email="john@desk.example", name="John Smith", roles=["billing"], queues=[bq], locale="en")
    dewi = make.customer(name="Dewi Lestari", email="dewi@tokodewi.co.id", language="id")
    jane = make.customer(name="Jane Doe", email="jane@example.com", language="en")
    budi = make.customer(name="Budi", email="budi@example.org")
    product = Product(code="WEB-TOKO", name="Website Toko Online", product_line="website", price=4_500_000,
                      warranty_days=90, cashback_days=30)
    db.session.add(product)
    db.session.commit()
    return {"q": q.id, "tech": tech.id, "biller": biller.id, "biller_en": biller_en.id, "dewi": dewi.id,
            "jane": jane.id, "budi": budi.id, "product": product.id}


def ticket_with_item(shop, customer, subject="Website tidak bisa dibuka", amount_paid=4_500_000):
    """A ticket about the customer's website, its cashback window open for ten more days."""
    today = rules.complaint_day(utcnow())
    item = warranty.create_item(customer_id=shop[customer], product_id=shop["product"],
                                purchase_date=today - timedelta(days=20), identifier="tokodewi.co.id",
                                amount_paid=amount_paid)
    t = tickets.create_ticket(customer_id=shop[customer], subject=subject, body_text="Error 500 sejak pagi.",
                              channel="web", queue_id=shop["q"])
    t.owned_item_id, t.cashback_until = item.id, today + timedelta(days=10)
    db.session.commit()
    return t.id, t.number


def subject(msg):
    return " ".join(msg["Subject"].split())  # a long subject is folded after "Subject:"


def received(server, addr, words):
    """The mails to addr whose subject has these words (agents also get the desk's own notifications)."""
    return [m for m in server.to(addr) if words in m["Subject"]]


# ---------------------------------------------------------------- cashback claims

def test_claim_cycle_english_customer_and_billing_in_their_languages(shop, smtp_server):
    tid, number = ticket_with_item(shop, "jane", subject="Website down")
    claim = claims.request_claim_by_customer(tid, shop["jane"], note="Down for three days")
    db.session.commit()
    claim_id = claim.id
    claims.verify(claim_id, shop["tech"], "Server error confirmed")
    db.session.commit()
    claims.approve(claim_id, shop["biller"], 1_250_000)
    db.session.commit()
    claims.mark_paid(claim_id, shop["biller_en"], "TRF-7781", rules.complaint_day(utcnow()))
    db.session.commit()
    work()

    mails = smtp_server.to("jane@example.com")
    subjects = [subject(m) for m in mails]
    assert subjects == [f"[#{number}] We received your cashback request: Website down",
                        f"Re: [#{number}] Your cashback request was verified: Website down",
                        f"Re: [#{number}] Your cashback was approved: Website down",
                        f"Re: [#{number}] Your cashback was paid: Website down"]
    for m in mails:
        assert m["Content-Language"] == "en"
        assert "Hello Jane Doe," in m.text and "Halo" not in m.text and "Halo" not in m.html
        assert "Website Toko Online (tokodewi.co.id)" in m.text
    approved, paid = mails[2], mails[3]
    assert "Cashback amount: Rp 1.250.000" in approved.text and "Price you paid: Rp 4.500.000" in approved.text
    assert "<strong>Rp 1.250.000</strong>" in approved.html
    assert "We paid your cashback of Rp 1.250.000" in paid.text and "Payment reference: TRF-7781" in paid.text
    portal_link = re.search(r"Follow your request: (http://\S+/portal/t/\S+)", mails[0].text)
    assert portal_link is not None

    # billing agents hear about the verified claim, each in their own language, with the desk link
    [bayu] = smtp_server.to("bayu@desk.example")
    assert bayu["Subject"].endswith("Klaim cashback menunggu persetujuan billing: Website down")
    assert f"/tickets/{number}" in bayu.text and "Harga yang dibayar: Rp 4.500.000" in bayu.text
    assert "Catatan verifikasi: Server error confirmed" in bayu.text
    [john] = smtp_server.to("john@desk.example")
    assert john["Subject"].endswith("Cashback claim awaits billing approval: Website down")
    assert "Price paid: Rp 4.500.000" in john.text and "Harga" not in john.text
    assert not received(smtp_server, "rina@desk.example", "ashback")


def test_claim_rejected_indonesian_customer_gets_the_reason(shop, smtp_server):
    tid, number = ticket_with_item(shop, "dewi")
    claim = claims.request_claim(tid, shop["tech"])
    db.session.commit()
    claims.reject(claim.id, shop["tech"], "Situs down karena domain belum diperpanjang, bukan cacat produk.")
    db.session.commit()
    work()
    requested, rejected = smtp_server.to("dewi@tokodewi.co.id")
    assert subject(requested) == f"[#{number}] Permintaan cashback Anda kami terima: Website tidak bisa dibuka"
    assert rejected["Subject"].endswith("Permintaan cashback Anda tidak dapat disetujui: Website tidak bisa dibuka")
    assert rejected["Content-Language"] == "id"
    assert "Halo Dewi Lestari," in rejected.text and "Hello" not in rejected.text
    assert "Alasan: Situs down karena domain belum diperpanjang, bukan cacat produk." in rejected.text
    assert "<strong>Alasan:</strong> Situs down karena domain belum diperpanjang" in rejected.html


def test_claim_mail_bilingual_for_unknown_language(shop, smtp_server):
    tid, number = ticket_with_item(shop, "budi", subject="Hosting penuh")
    claims.request_claim_by_customer(tid, shop["budi"])
    db.session.commit()
    work()
    [both] = smtp_server.to("budi@example.org")
    assert subject(both) == (f"[#{number}] Permintaan cashback Anda kami terima: Hosting penuh / "
                               "We received your cashback request: Hosting penuh")
    assert 0 <= both.text.index("Halo Budi,") < both.text.index("Hello Budi,")


# ---------------------------------------------------------------- paid repairs and invoices

LINES = [{"kind": "service", "description": "Biaya servis", "quantity": 1, "unit_price": 150_000},
         {"kind": "part", "description": "Modul SSL", "quantity": 2, "unit_price": "425.000"},
         {"kind": "service", "description": "Cek garansi", "quantity": 1, "unit_price": 0, "covered": True,
          "covered_reason": "Dalam garansi"}]


def quote_for_customer(shop, customer, subject="Website tidak bisa dibuka"):
    tid, number = ticket_with_item(shop, customer, subject=subject)
    quote = repairs.draft_quote(tid, shop["tech"])
    repairs.save_lines(quote.id, shop["tech"], LINES)
    repairs.submit(quote.id, shop["tech"])
    db.session.commit()
    qid = quote.id
    repairs.approve(qid, shop["biller"])
    db.session.commit()
    return tid, number, qid


def test_repair_quote_link_from_the_mail_shows_then_approves_and_invoice_and_payments_follow(
        shop, smtp_server, mail_app):
    tid, number, qid = quote_for_customer(shop, "dewi")
    work()
    # billing heard about the submitted quote
    assert [m["Subject"] for m in smtp_server.to("bayu@desk.example")] == [
        f"[#{number}] Penawaran perbaikan menunggu pemeriksaan billing: Website tidak bisa dibuka"]
    for_john = smtp_server.to("john@desk.example")
    assert len(for_john) == 1 and "Quote total: Rp 1.000.000" in for_john[0].text

    [quote_mail] = smtp_server.to("dewi@tokodewi.co.id")
    assert quote_mail["Subject"].endswith("Penawaran biaya perbaikan: Website tidak bisa dibuka")
    assert quote_mail["Content-Language"] == "id" and "Hello" not in quote_mail.text
    assert "- Modul SSL: 2 × Rp 425.000 = Rp 850.000" in quote_mail.text
    assert "- Cek garansi: ditanggung (Dalam garansi)" in quote_mail.text
    assert "Total: Rp 1.000.000" in quote_mail.text
    approve_link = re.search(r"Setujui: (http://\S+)", quote_mail.text).group(1)
    decline_link = re.search(r"Tolak: (http://\S+)", quote_mail.text).group(1)
    assert approve_link.split("?")[0] == decline_link.split("?")[0]
    assert f'href="{approve_link}"' in quote_mail.html
    assert "<table" in quote_mail.html and "<td" in quote_mail.html and "Modul SSL" in quote_mail.html

    client = mail_app.test_client()
    path = approve_link[approve_link.index("/portal/"):]
    page = client.get(path)
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Modul SSL" in body and "Rp 1.000.000" in body
    client.get(decline_link[decline_link.index("/portal/"):])
    db.session.remove()
    assert db.session.get(RepairQuote, qid).status == "pending_customer"  # GET never decides

    resp = client.post(path.split("?")[0], data={"csrf_token": extract_csrf(body), "decision": "approve"})
    assert resp.status_code in (200, 303)
    db.session.remove()
    quote = db.session.get(RepairQuote, qid)
    assert quote.status == "awaiting_payment" and quote.invoice_id is not None
    invoice = db.session.get(Invoice, quote.invoice_id)
    inv_number, inv_id, due = invoice.number, invoice.id, invoice.due_on
    assert invoice.total == 1_000_000
    if resp.status_code == 303:
        resp = client.get(resp.headers["Location"])
    assert inv_number in resp.get_data(as_text=True)
    work()

    [_quote_mail, invoice_mail] = smtp_server.to("dewi@tokodewi.co.id")
    assert invoice_mail["Subject"].endswith("Invoice perbaikan: Website tidak bisa dibuka")
    assert f"Nomor invoice: {inv_number}" in invoice_mail.text
    months = ["Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
              "November", "Desember"]
    assert f"Jatuh tempo: {due.day} {months[due.month - 1]} {due.year}" in invoice_mail.text
    assert "Total: Rp 1.000.000" in invoice_mail.text
    # the account to pay into (COMPANY_BANK_ACCOUNT, set by the mail_app fixture)
    assert "Transfer bank ke rekening BCA 0123456789 a.n. PT Web Jogja Digital" in invoice_mail.text
    assert "<strong>BCA 0123456789 a.n. PT Web Jogja Digital</strong>" in invoice_mail.html
    assert f"/portal/invoices/{inv_id}" in invoice_mail.text
    [approved] = received(smtp_server, "rina@desk.example", "menyetujui penawaran")  # the drafter
    assert approved["Subject"].endswith("Pelanggan menyetujui penawaran perbaikan: Website tidak bisa dibuka")
    assert f"Invoice: {inv_number}" in approved.text

    # a partial payment, then the rest: the customer hears each, the drafter hears it is paid
    today = rules.complaint_day(utcnow())
    billing.record_payment(inv_id, shop["biller"], amount=400_000, method="bank_transfer", paid_on=today,
                           reference="BCA-1", confirm=True)
    db.session.commit()
    billing.record_payment(inv_id, shop["biller"], amount=600_000, method="cash", paid_on=today, confirm=True)
    db.session.commit()
    work()
    first, second = [m for m in smtp_server.to("dewi@tokodewi.co.id") if "Pembayaran diterima" in m["Subject"]]
    assert subject(first) == f"[#{number}] Pembayaran diterima untuk invoice {inv_number}"
    assert "Jumlah dibayar: Rp 400.000" in first.text and "Sisa tagihan: Rp 600.000" in first.text
    assert "Metode: transfer bank (BCA-1)" in first.text
    assert "Jumlah dibayar: Rp 600.000" in second.text and "Sisa tagihan: Rp 0" in second.text
    assert "Invoice ini sudah lunas." in second.text
    paid = received(smtp_server, "rina@desk.example", "sudah dibayar")
    assert len(paid) == 1 and f"/tickets/{number}" in paid[0].text
    assert db.session.get(RepairQuote, qid).status == "in_work"


def test_english_customer_quote_and_decline_tells_the_drafter(shop, smtp_server, mail_app):
    tid, number, qid = quote_for_customer(shop, "jane", subject="Shop is slow")
    work()
    [quote_mail] = smtp_server.to("jane@example.com")
    assert quote_mail["Subject"].endswith("Repair quote: Shop is slow")
    assert "- Cek garansi: covered (Dalam garansi)" in quote_mail.text and "Setujui" not in quote_mail.text
    decline_link = re.search(r"Decline: (http://\S+)", quote_mail.text).group(1)
    client = mail_app.test_client()
    page = client.get(decline_link[decline_link.index("/portal/"):])
    body = page.get_data(as_text=True)
    resp = client.post(decline_link[decline_link.index("/portal/"):].split("?")[0],
                       data={"csrf_token": extract_csrf(body), "decision": "decline", "reason": "Too expensive"})
    assert resp.status_code in (200, 303)
    db.session.remove()
    assert db.session.get(RepairQuote, qid).status == "declined"
    work()
    [declined] = received(smtp_server, "rina@desk.example", "penawaran perbaikan")
    assert declined["Subject"].endswith("Pelanggan menolak penawaran perbaikan: Shop is slow")
    assert "Alasan pelanggan: Too expensive" in declined.text


def test_billing_rejects_quote_drafter_hears_the_reason(shop, smtp_server):
    tid, number = ticket_with_item(shop, "dewi")
    quote = repairs.draft_quote(tid, shop["tech"])
    repairs.save_lines(quote.id, shop["tech"], LINES)
    repairs.submit(quote.id, shop["tech"])
    db.session.commit()
    repairs.reject(quote.id, shop["biller"], "Harga modul terlalu tinggi")
    db.session.commit()
    work()
    [rejected] = received(smtp_server, "rina@desk.example", "dikembalikan billing")
    assert rejected["Subject"].endswith("Penawaran perbaikan dikembalikan billing: Website tidak bisa dibuka")
    assert "Alasan: Harga modul terlalu tinggi" in rejected.text and f"/tickets/{number}" in rejected.text
    assert not smtp_server.to("dewi@tokodewi.co.id")


def test_payment_confirmation_of_an_invoice_without_ticket_goes_to_its_customer(shop, smtp_server):
    invoice = billing.create_invoice(customer_id=shop["jane"], lines=[
        {"description": "Domain renewal", "quantity": 1, "unit_price": 250_000}], actor_id=shop["biller"])
    db.session.commit()
    inv_id, inv_number = invoice.id, invoice.number
    billing.record_payment(inv_id, shop["biller"], amount=100_000, method="bank_transfer",
                           paid_on=rules.complaint_day(utcnow()), confirm=True)
    db.session.commit()
    work()
    [mail] = smtp_server.to("jane@example.com")
    assert subject(mail) == f"Payment received for invoice {inv_number}"
    assert "Hello Jane Doe," in mail.text and "Amount paid: Rp 100.000" in mail.text
    assert "Remaining balance: Rp 150.000" in mail.text and "Please pay the remaining balance by" in mail.text
    assert mail["X-Helpdesk-Ticket"] is None
    row = db.session.execute(select(OutboundMail).where(OutboundMail.kind == "payment_confirmed")).scalar_one()
    assert row.status == "sent" and row.ticket_id is None


def test_quote_lines_and_names_are_escaped_in_the_html_part(shop, smtp_server):
    tid, number = ticket_with_item(shop, "jane", subject="Shop <b>down</b>")
    quote = repairs.draft_quote(tid, shop["tech"])
    repairs.save_lines(quote.id, shop["tech"], [
        {"kind": "part", "description": "<img src=x onerror=alert(1)>", "quantity": 1, "unit_price": 100_000},
        {"kind": "service", "description": "Check", "quantity": 1, "unit_price": 0, "covered": True,
         "covered_reason": "<script>alert(2)</script>"}])
    repairs.submit(quote.id, shop["tech"])
    repairs.approve(quote.id, shop["biller"])
    db.session.commit()
    work()
    [mail] = smtp_server.to("jane@example.com")
    assert "<img src=x" not in mail.html and "&lt;img src=x onerror=alert(1)&gt;" in mail.html
    assert "<script>" not in mail.html and "&lt;script&gt;alert(2)&lt;/script&gt;" in mail.html
    assert "<b>down</b>" not in mail.html
    assert "- <img src=x onerror=alert(1)>: 1 × Rp 100.000 = Rp 100.000" in mail.text  # plain text stays as typed
