"""Pure helpers of the offer PDF: text a core font can print, the tax label, and a PDF built from
plain texts (with the embedded DejaVu font when the system has it, else a core font)."""
import re

import pytest

from helpdesk.sales import pdf


def test_latin1_safe_keeps_indonesian_and_replaces_the_rest():
    assert pdf.latin1_safe("Penawaran untuk Toko Sari – 2 × paket “Basic”") == \
        'Penawaran untuk Toko Sari - 2 x paket "Basic"'
    assert pdf.latin1_safe("Café Ñ") == "Café Ñ"  # Latin-1 already
    assert pdf.latin1_safe("Łódź 日本") == "Lódz ??"  # ó is Latin-1; Ł mapped, ź without its accent
    assert pdf.latin1_safe(None) == ""
    pdf.latin1_safe("ẞ€…\u2603").encode("latin-1")  # never raises


@pytest.mark.parametrize("rate, label", [(1100, "11 %"), (1250, "12,5 %"), (1205, "12,05 %"), (0, "0 %")])
def test_tax_label(rate, label):
    assert pdf.tax_label(rate) == label


def doc(**extra):
    base = {"title": "Penawaran", "number": "OFR/2026/000042", "company": ["PT Web Jogja Digital", "Yogyakarta"],
            "party": ["Sari Wijaya", "sari@tokosari.co.id"], "meta": [("Berlaku sampai", "12 Desember 2026")],
            "headers": ["Uraian", "Jml", "Harga satuan", "Diskon", "Jumlah"],
            "rows": [("Website Toko Online – paket “Pro” " * 4, "2", "Rp 4.500.000", "Rp 900.000", "Rp 8.100.000")]
            * 40,
            "totals": [("Subtotal", "Rp 9.000.000"), ("Total", "Rp 8.100.000")], "notes_label": "Catatan",
            "notes": "Łódź ☃ termasuk domain", "footer": "Harga dalam rupiah."}
    base.update(extra)
    return base


@pytest.mark.parametrize("embedded", [True, False])
def test_build_pdf_with_or_without_the_dejavu_font(monkeypatch, embedded):
    pytest.importorskip("fpdf")
    if not embedded:
        monkeypatch.setattr(pdf, "dejavu_path", lambda: None)
    elif pdf.dejavu_path() is None:
        pytest.skip("DejaVu Sans is not installed")
    data = pdf.build_pdf(doc())
    assert data.startswith(b"%PDF") and data.rstrip().endswith(b"%%EOF")
    assert len(re.findall(rb"/Type\s*/Page(?![a-z])", data)) >= 2  # 40 long rows need more than one page
    assert b"OFR/2026/000042" in data  # the document's title
