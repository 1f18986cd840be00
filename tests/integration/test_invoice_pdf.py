"""The invoice PDF (helpdesk/billing/pdf.py): billing downloads it from the invoice page (other
agents 403), in the invoice's language: the issuer, INVOICE and the number, the bill-to company and
NPWP on B2B invoices, dates in words, lines, subtotal / discount / tax with its rate / total, paid and
balance, the transfer amount with its unique code, how to pay, and the PAID / VOID stamp."""
import re
import zlib
from datetime import timedelta

import pytest
from flask_babel import force_locale

from helpdesk.billing import services as billing
from helpdesk.billing.pdf import invoice_document
from helpdesk.extensions import db
from helpdesk.sales import pdf as sales_pdf
from tests.factories import wib

pytest.importorskip("fpdf")

NOW = wib(2026, 11, 20, 10, 0)  # issued 20 November 2026, due 14 days later: 4 December 2026
COMPANY = dict(COMPANY_NAME="PT Web Jogja Digital", COMPANY_ADDRESS="Jl. Kaliurang Km 5, Yogyakarta",
               COMPANY_NPWP="09.876.543.2-541.000", COMPANY_BANK_ACCOUNT="BCA 0123456789 a.n. PT Web Jogja Digital")
LINES = [{"description": "Website Toko Online", "quantity": 1, "unit_price": 4_500_000, "discount": 500_000},
         {"description": "Domain .co.id", "quantity": 2, "unit_price": 250_000}]


def pdf_text(data):
    """The uncompressed streams and the rest of a PDF, for a plain search."""
    chunks = [data]
    for m in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S):
        # a decompressor object reads what it can: a stream whose last byte looks like the line end
        # before "endstream" (a CR) still decompresses
        try:
            chunks.append(zlib.decompressobj().decompress(m.group(1)))
        except zlib.error:
            pass
    return b"\n".join(chunks)


@pytest.fixture
def shop(app, make):
    app.config.update(COMPANY)
    org = make.organisation(name="PT Toko Maju", npwp="01.234.567.8-901.000")
    w = {"biller": make.user(roles=["billing"]), "admin": make.user(roles=["admin"]),
         "tech": make.user(roles=["technical_support"]), "marketer": make.user(roles=["marketing"]),
         "support": make.user(roles=["customer_support"]),
         "dewi": make.customer(name="Dewi Lestari", language="id"),
         "sari": make.customer(name="Sari", kind="b2b", organisation_id=org.id, language="en")}
    db.session.commit()
    return w


def invoice(shop, customer="dewi", lines=LINES, **kw):
    inv = billing.create_invoice(customer_id=shop[customer].id, lines=lines, actor_id=shop["biller"].id, now=NOW,
                                 due_days=14, **kw)
    db.session.commit()
    return inv


def document(app, inv):
    lang = inv.locale
    with force_locale(lang):
        return invoice_document(inv, app.jinja_env.globals["company"](), lang)


def test_billing_gets_the_pdf_from_the_invoice_page(app, client, auth, shop):
    inv = invoice(shop)
    auth.login(shop["biller"])
    page = client.get(f"/billing/invoices/{inv.id}").get_data(as_text=True)
    assert f'href="/billing/invoices/{inv.id}/pdf"' in page
    r = client.get(f"/billing/invoices/{inv.id}/pdf")
    assert r.status_code == 200 and r.content_type == "application/pdf"
    assert r.data.startswith(b"%PDF") and r.data.rstrip().endswith(b"%%EOF")
    assert inv.number.encode() in pdf_text(r.data)  # the document's title
    assert inv.number.replace("/", "-") + ".pdf" in r.headers["Content-Disposition"]
    assert client.get("/billing/invoices/999999/pdf").status_code == 404


@pytest.mark.parametrize("role", ["tech", "marketer", "support", "admin"])
def test_other_agents_are_refused(app, client, auth, shop, role):
    inv = invoice(shop)
    auth.login(shop[role])
    r = client.get(f"/billing/invoices/{inv.id}/pdf")
    assert r.status_code == 403 and not r.data.startswith(b"%PDF")


def test_anonymous_is_sent_to_the_login_page(app, client, shop):
    inv = invoice(shop)
    r = client.get(f"/billing/invoices/{inv.id}/pdf")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_an_indonesian_invoice_in_words(app, shop):
    inv = invoice(shop, tax_rate_bp=1100, discount=100_000)
    doc = document(app, inv)
    assert doc["title"] == "INVOICE" and doc["number"] == inv.number
    assert doc["company"] == ["PT Web Jogja Digital", "Jl. Kaliurang Km 5, Yogyakarta", "NPWP 09.876.543.2-541.000"]
    assert doc["party"] == ["Dewi Lestari"]  # B2C: no company, no NPWP
    meta = dict(doc["meta"])
    assert "20 November 2026" in meta.values() and "4 Desember 2026" in meta.values()
    assert [r[0] for r in doc["rows"]] == ["Website Toko Online", "Domain .co.id"]
    assert doc["rows"][0][1:] == ("1", "Rp 4.500.000", "Rp 500.000", "Rp 4.000.000")
    assert doc["rows"][1][1:] == ("2", "Rp 250.000", "", "Rp 500.000")
    amounts = [t[1] for t in doc["totals"]]
    # 5.000.000 - 600.000 (line discount and the voucher) = 4.400.000; PPN 11 % = 484.000
    assert amounts == ["Rp 5.000.000", "- Rp 600.000", "Rp 484.000", "Rp 4.884.000", "Rp 0", "Rp 4.884.000"]
    assert any("11 %" in t[0] for t in doc["totals"])  # the tax with its rate
    assert doc["stamp"] is None
    how_to_pay = " ".join(doc["sections"][0][1])
    assert "BCA 0123456789 a.n. PT Web Jogja Digital" in how_to_pay and inv.number in how_to_pay


def test_a_b2b_invoice_names_the_company_and_its_npwp(app, client, auth, shop, monkeypatch):
    inv = invoice(shop, customer="sari")
    doc = document(app, inv)
    assert doc["party"] == ["Sari", "PT Toko Maju", "NPWP 01.234.567.8-901.000"]
    meta = dict(doc["meta"])
    assert meta["Due date"] == "4 December 2026" and meta["Date"] == "20 November 2026"  # English
    # with a core font the page's text is plain in the PDF: search it
    monkeypatch.setattr(sales_pdf, "dejavu_path", lambda: None)
    auth.login(shop["biller"])
    text = pdf_text(client.get(f"/billing/invoices/{inv.id}/pdf").data)
    for expected in ("INVOICE " + inv.number, "PT Toko Maju", "NPWP 01.234.567.8-901.000", "4 December 2026",
                     "PT Web Jogja Digital", "Website Toko Online", "Rp 5.000.000"):
        assert expected.encode() in text, expected


def test_the_transfer_amount_with_its_code(app, shop):
    inv = invoice(shop, customer="sari", lines=[{"description": "Hosting", "quantity": 1, "unit_price": 300_000}])
    inv.transfer_code, inv.transfer_amount = 417, 300_417
    db.session.commit()
    pay = " ".join(document(app, inv)["sections"][0][1])
    assert "Rp 300.417" in pay and "417" in pay


def test_a_paid_invoice_has_the_paid_stamp_and_no_balance(app, client, auth, shop, monkeypatch):
    inv = invoice(shop, customer="sari")
    billing.record_payment(inv.id, shop["biller"].id, amount=inv.total, method="bank_transfer",
                           paid_on=NOW.date(), confirm=True, now=NOW + timedelta(hours=1))
    db.session.commit()
    doc = document(app, inv)
    assert doc["stamp"] == "PAID" and dict(doc["meta"])["Status"] == "Paid"
    totals = {t[0]: t[1] for t in doc["totals"]}
    assert totals["Paid"] == "Rp 4.500.000" and totals["Balance due"] == "Rp 0"  # 5.000.000 - 500.000
    assert doc["sections"] == []  # nothing left to pay: no instructions
    monkeypatch.setattr(sales_pdf, "dejavu_path", lambda: None)
    auth.login(shop["biller"])
    r = client.get(f"/billing/invoices/{inv.id}/pdf")
    assert r.status_code == 200 and b"PAID" in pdf_text(r.data)


def test_a_void_invoice_has_the_void_stamp(app, shop):
    inv = invoice(shop, customer="sari")
    billing.void_invoice(inv.id, shop["biller"].id, "Wrong customer", now=NOW + timedelta(hours=1))
    db.session.commit()
    doc = document(app, inv)
    assert doc["stamp"] == "VOID"
    assert [t[0] for t in doc["totals"]][-1] == "Total"  # no paid / balance rows
    assert doc["sections"] == [("Voided", ["Wrong customer"])]


def test_a_repair_invoice_with_a_covered_line(app, shop):
    inv = invoice(shop, customer="sari", lines=[
        {"description": "Service fee", "quantity": 1, "unit_price": 150_000, "covered_reason": "Warranty"},
        {"kind": "part", "description": "SSL module", "quantity": 1, "unit_price": 425_000}])
    doc = document(app, inv)
    assert doc["rows"][0][0] == "Service fee (Covered: Warranty)" and doc["rows"][0][-1] == "Rp 0"
    assert [t[0] for t in doc["totals"]] == ["Subtotal", "Total", "Paid", "Balance due"]  # no discount, no tax
