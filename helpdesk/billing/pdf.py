"""The invoice as a PDF (fpdf2, imported lazily: helpdesk/sales/pdf.py builds the file).

`invoice_document(invoice, company, lang)` gathers the texts in the invoice's language (call it inside
flask_babel.force_locale(lang), as `invoice_pdf` does): the issuer (COMPANY_* settings), the title
"INVOICE" with the number, who it is billed to (the company and its NPWP on B2B invoices), the issue
and due dates in words, the lines, subtotal / discount / tax with its rate / total, paid and balance,
the transfer amount with its unique code, how to pay (the bank account) and a PAID or VOID stamp.
`invoice_pdf(invoice, company)` -> (PDF bytes, file name); `pdf_response` wraps it for a view.
"""
from ..sales.pdf import build_pdf, company_lines, tax_label
from ..warranty.rules import format_date
from .money import format_rupiah

# the stamp's colours: paid green, void grey
STAMP_COLORS = {"paid": (20, 130, 60), "void": (110, 110, 110)}


def invoice_lang(invoice):
    return invoice.locale if invoice.locale in ("id", "en") else "id"


def _order_number(invoice):
    if invoice.source_type != "order" or not invoice.source_id:
        return None
    from ..extensions import db
    from ..sales.models import Order

    order = db.session.get(Order, invoice.source_id)
    return order.number if order is not None else None


def invoice_document(invoice, company, lang):
    """The texts of an invoice's PDF in the current locale (see the module doc)."""
    from flask_babel import gettext as _

    from ..web import INVOICE_STATUS_LABELS

    day = (lambda d: format_date(d, lang) if d is not None else "")
    party = [invoice.bill_to_name]
    if invoice.bill_to_company:
        party.append(invoice.bill_to_company)
    if invoice.npwp:
        party.append("NPWP " + invoice.npwp)
    meta = [(_("Invoice number"), invoice.number), (_("Date"), day(invoice.issued_on)),
            (_("Due date"), day(invoice.due_on)), (_("Status"), str(INVOICE_STATUS_LABELS.get(invoice.status,
                                                                                               invoice.status)))]
    order = _order_number(invoice)
    if order:
        meta.append((_("Order"), order))

    rows = []
    for ln in invoice.lines:
        text = ln.description
        if ln.covered_reason and not ln.amount:
            text += " (" + _("Covered") + ": " + ln.covered_reason + ")"
        rows.append((text, str(ln.quantity), format_rupiah(ln.unit_price),
                     format_rupiah(ln.discount) if ln.discount else "", format_rupiah(ln.amount)))

    subtotal = invoice.subtotal or sum((ln.amount or 0) + (ln.discount or 0) for ln in invoice.lines)
    totals = [(_("Subtotal"), format_rupiah(subtotal))]
    if invoice.discount:
        totals.append((_("Discount"), "- " + format_rupiah(invoice.discount)))
    if invoice.tax_rate_bp or invoice.tax:
        totals.append((_("Tax %(rate)s", rate=tax_label(invoice.tax_rate_bp)), format_rupiah(invoice.tax)))
    totals.append((_("Total"), format_rupiah(invoice.total), True))
    balance = max(0, invoice.total - invoice.amount_paid)
    if invoice.status != "void":
        totals.append((_("Paid"), format_rupiah(invoice.amount_paid)))
        totals.append((_("Balance due"), format_rupiah(balance)))

    sections = []
    if invoice.status in ("unpaid", "partially_paid"):
        pay = []
        if invoice.transfer_amount:
            pay.append(_("Transfer exactly %(amount)s: the balance plus the unique code %(code)s, so that we "
                         "recognise your payment.", amount=format_rupiah(invoice.transfer_amount),
                         code=f"{invoice.transfer_code or 0:03d}"))
        account = company.get("bank_account")
        if account:
            pay.append(_("Bank transfer to %(account)s: put the invoice number %(number)s in the transfer "
                         "description.", account=account, number=invoice.number))
        else:
            pay.append(_("Bank transfer to our company account: put the invoice number %(number)s in the "
                         "transfer description.", number=invoice.number))
        pay.append(_("Cash at our office, quoting the invoice number %(number)s.", number=invoice.number))
        pay.append(_("Please pay by %(date)s.", date=day(invoice.due_on)))
        sections.append((_("How to pay"), pay))
    elif invoice.status == "void" and invoice.void_reason:
        sections.append((_("Voided"), [invoice.void_reason]))

    stamp = {"paid": _("PAID"), "void": _("VOID")}.get(invoice.status)
    return {"title": "INVOICE", "number": invoice.number, "company": company_lines(company), "party": party,
            "meta": meta, "headers": [_("Description"), _("Qty"), _("Unit price"), _("Discount"), _("Amount")],
            "rows": rows, "totals": totals, "sections": sections, "stamp": stamp,
            "stamp_color": STAMP_COLORS.get(invoice.status), "notes_label": "", "notes": "",
            "footer": _("Prices in Indonesian rupiah.")}


def invoice_pdf(invoice, company):
    """(PDF bytes, file name) of the invoice in its own language."""
    from flask_babel import force_locale

    lang = invoice_lang(invoice)
    with force_locale(lang):
        doc = invoice_document(invoice, company, lang)
    return build_pdf(doc), invoice.number.replace("/", "-") + ".pdf"


def pdf_response(invoice, company, download=False):
    """The invoice's PDF as an HTTP answer (inline, or as a download)."""
    from flask import Response

    data, filename = invoice_pdf(invoice, company)
    disposition = "attachment" if download else "inline"
    return Response(data, mimetype="application/pdf", headers={
        "Content-Disposition": f'{disposition}; filename="{filename}"', "Cache-Control": "private, no-store"})
