"""The offer as a PDF (fpdf2, imported lazily so the app runs without it); `build_pdf`,
`company_lines` and `tax_label` are shared with the invoice PDF (helpdesk/billing/pdf.py).

`offer_document(offer, company, party, lang)` gathers what the page shows (in the caller's locale:
wrap it in flask_babel.force_locale); `build_pdf(doc)` is pure: a dict of texts in, PDF bytes out.
DejaVu Sans is embedded when the system has it (every character prints); otherwise a core font is
used and characters outside Latin-1 are replaced (`latin1_safe`).
"""
import os
import unicodedata

from ..billing.money import format_rupiah

DEJAVU_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/share/fonts/TTF")
_REPLACE = {"\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
            "\u2026": "...", "\u00d7": "x", "\u2022": "-", "\u20ac": "EUR", "\u00a0": " ", "\u0141": "L", "\u0142": "l"}


def latin1_safe(text):
    """Text a core PDF font can print: known punctuation mapped, accents dropped, others "?"."""
    out = []
    for ch in str(text or ""):
        ch = _REPLACE.get(ch, ch)
        try:
            ch.encode("latin-1")
            out.append(ch)
            continue
        except UnicodeEncodeError:
            pass
        base = unicodedata.normalize("NFKD", ch).encode("latin-1", "ignore").decode("latin-1")
        out.append(base or "?")
    return "".join(out)


def dejavu_path():
    for folder in DEJAVU_DIRS:
        path = os.path.join(folder, "DejaVuSans.ttf")
        if os.path.isfile(path):
            return path
    return None


def build_pdf(doc):
    """doc: {"title", "number", "company": [lines], "party": [lines], "meta": [(label, text)],
    "headers": [5 labels], "rows": [(description, qty, unit, discount, amount)], "totals": [(label, text)]
    (the last row bold; a row (label, text, True) is bold too), "notes_label", "notes", "footer"} -> PDF bytes.
    Optional: "stamp" (a word framed at the top right of the first page, e.g. PAID / VOID, in
    "stamp_color" (r, g, b)) and "sections": [(heading, [lines])] printed after the totals (e.g. how to pay)."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.set_title(doc.get("number") or "")
    font = dejavu_path()
    if font:
        pdf.add_font("DejaVu", "", font)
        bold = font.replace("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")
        pdf.add_font("DejaVu", "B", bold if os.path.isfile(bold) else font)
        family, clean = "DejaVu", (lambda s: str(s or ""))
    else:
        family, clean = "Helvetica", latin1_safe
    pdf.add_page()
    width = pdf.epw
    if doc.get("stamp"):
        _stamp(pdf, family, clean(doc["stamp"]), doc.get("stamp_color") or (200, 30, 30))

    pdf.set_font(family, "B", 14)
    for n, line in enumerate(doc.get("company") or []):
        pdf.multi_cell(width, 6, clean(line), new_x="LMARGIN", new_y="NEXT")
        if n == 0:
            pdf.set_font(family, "", 9)
    pdf.ln(4)
    pdf.set_font(family, "B", 16)
    pdf.cell(width, 9, clean(f"{doc.get('title', '')} {doc.get('number', '')}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 10)
    for line in doc.get("party") or []:
        pdf.multi_cell(width, 5, clean(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    for label, text in doc.get("meta") or []:
        pdf.cell(45, 5, clean(label))
        pdf.cell(width - 45, 5, clean(text), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)

    cols = [width - 4 * 30, 16, 30, 30, 44]
    cols[0] = width - sum(cols[1:])
    aligns = ["L", "R", "R", "R", "R"]
    pdf.set_font(family, "B", 9)
    for w, head, align in zip(cols, doc.get("headers") or [""] * 5, aligns):
        pdf.cell(w, 7, clean(head), border="B", align=align)
    pdf.ln(7)
    pdf.set_font(family, "", 9)
    for row in doc.get("rows") or []:
        height = 5 * max(1, len(pdf.multi_cell(cols[0], 5, clean(row[0]), dry_run=True, output="LINES")))
        if pdf.get_y() + height > pdf.page_break_trigger:
            pdf.add_page()
        y = pdf.get_y()
        pdf.multi_cell(cols[0], 5, clean(row[0]), new_x="RIGHT", new_y="TOP")
        pdf.set_xy(pdf.l_margin + cols[0], y)
        for w, value, align in zip(cols[1:], row[1:], aligns[1:]):
            pdf.cell(w, 5, clean(value), align=align)
        pdf.set_xy(pdf.l_margin, y + height + 1)
    pdf.ln(2)
    for row in doc.get("totals") or []:
        label, text = row[0], row[1]
        bold_row = (len(row) > 2 and row[2]) or label == (doc.get("totals") or [("", "")])[-1][0]
        pdf.set_font(family, "B" if bold_row else "", 10)
        pdf.cell(width - 50, 6, clean(label), align="R")
        pdf.cell(50, 6, clean(text), align="R", new_x="LMARGIN", new_y="NEXT")
    for heading, lines in doc.get("sections") or []:
        pdf.ln(4)
        pdf.set_font(family, "B", 10)
        pdf.multi_cell(width, 6, clean(heading), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(family, "", 9)
        for line in lines:
            pdf.multi_cell(width, 5, clean(line), new_x="LMARGIN", new_y="NEXT")
    if doc.get("notes"):
        pdf.ln(4)
        pdf.set_font(family, "B", 10)
        pdf.cell(width, 6, clean(doc.get("notes_label") or ""), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(family, "", 9)
        pdf.multi_cell(width, 5, clean(doc["notes"]), new_x="LMARGIN", new_y="NEXT")
    if doc.get("footer"):
        pdf.ln(4)
        pdf.set_font(family, "", 8)
        pdf.multi_cell(width, 4, clean(doc["footer"]), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _stamp(pdf, family, word, color):
    """A framed word at the top right of the current page, slightly turned (a rubber stamp)."""
    pdf.set_font(family, "B", 26)
    w, h = pdf.get_string_width(word) + 12, 14
    x, y = pdf.l_margin + pdf.epw - w - 4, pdf.t_margin + 2
    pdf.set_text_color(*color)
    pdf.set_draw_color(*color)
    pdf.set_line_width(0.8)
    with pdf.rotation(12, x + w / 2, y + h / 2):
        pdf.rect(x, y, w, h)
        pdf.set_xy(x, y)
        pdf.cell(w, h, word, align="C")
    pdf.set_text_color(0, 0, 0)
    pdf.set_draw_color(0, 0, 0)
    pdf.set_line_width(0.2)
    pdf.set_xy(pdf.l_margin, pdf.t_margin)


def offer_document(offer, company, party, day_format):
    """The texts of an offer's PDF in the current locale. `party`: [name, email/company lines];
    `day_format(date)`: the validity date as text."""
    from flask_babel import gettext as _

    rows = [(ln.description, str(ln.quantity), format_rupiah(ln.unit_price),
             format_rupiah(ln.discount) if ln.discount else "", format_rupiah(ln.amount)) for ln in offer.lines]
    totals = [(_("Subtotal"), format_rupiah(offer.subtotal))]
    line_discounts = (offer.discount_total or 0) - (offer.voucher_discount or 0)
    if line_discounts:
        totals.append((_("Line discounts"), "- " + format_rupiah(line_discounts)))
    if offer.voucher_discount:
        code = offer.voucher.code if offer.voucher is not None else ""
        totals.append((_("Voucher %(code)s", code=code), "- " + format_rupiah(offer.voucher_discount)))
    if offer.tax_rate_bp:
        totals.append((_("Tax %(rate)s", rate=tax_label(offer.tax_rate_bp)), format_rupiah(offer.tax)))
    totals.append((_("Total"), format_rupiah(offer.total)))
    return {"title": _("Offer"), "number": offer.number, "company": company_lines(company), "party": party,
            "meta": [(_("Offer number"), offer.number), (_("Valid until"), day_format(offer.valid_until))],
            "headers": [_("Description"), _("Qty"), _("Unit price"), _("Discount"), _("Amount")],
            "rows": rows, "totals": totals, "notes_label": _("Notes"), "notes": offer.notes or "",
            "footer": _("Prices in Indonesian rupiah.")}


def company_lines(company):
    """The issuer's lines (company() of helpdesk/web.py): name, address, NPWP."""
    return [company.get("name") or ""] + [x for x in (company.get("address"), company.get("npwp") and
                                                      "NPWP " + company["npwp"]) if x]


def tax_label(rate_bp):
    """1100 -> "11 %", 1250 -> "12,5 %"."""
    whole, rest = divmod(int(rate_bp or 0), 100)
    return f"{whole} %" if not rest else f"{whole},{rest:02d}".rstrip("0") + " %"
