"""Badge texts of the eligibility decision, in Indonesian and English (like the engine's own
explanations, both languages live here rather than in the message catalogue).

They read only ticket columns (charge, charge_until, cashback_until), so a queue list shows them
without one query per row. "Days left" counts from today in Asia/Jakarta.
"""
from . import rules

CHARGE_TEXT = {
    rules.FREE_WARRANTY: ("Gratis — garansi s.d. {d}", "Free — warranty until {d}"),
    rules.FREE_CONTRACT: ("Gratis — kontrak", "Free — contract"),
    rules.FREE_BUNDLE: ("Gratis — paket", "Free — bundle"),
    rules.PAID: ("Layanan berbayar", "Paid service"),
    rules.NEEDS_CLASSIFICATION: ("Perlu kategori", "Needs a category"),
    rules.UNKNOWN_ITEM: ("Belum ada produk", "No product linked"),
}
# Bootstrap's text-bg-* pairs keep the 4.5:1 contrast the axe checks ask for.
CHARGE_CSS = {
    rules.FREE_WARRANTY: "text-bg-success", rules.FREE_CONTRACT: "text-bg-success",
    rules.FREE_BUNDLE: "text-bg-success", rules.PAID: "text-bg-danger",
    rules.NEEDS_CLASSIFICATION: "text-bg-warning", rules.UNKNOWN_ITEM: "text-bg-light border",
}
WARRANTY_NO_DATE = ("Gratis — garansi", "Free — warranty")


def lang_of(locale):
    """'id' or 'en' from a Babel locale or a language code."""
    code = str(getattr(locale, "language", locale) or "id")
    return "en" if code.startswith("en") else "id"


def charge_label(code, until=None, lang="id"):
    """'Free — warranty until 12 Jan' / 'Gratis — garansi s.d. 12 Jan', ... ; None for no decision."""
    if code not in CHARGE_TEXT:
        return None
    index = 0 if lang == "id" else 1
    if code == rules.FREE_WARRANTY and until is None:
        return WARRANTY_NO_DATE[index]
    text = CHARGE_TEXT[code][index]
    return text.format(d=rules.format_date(until, lang, short=True)) if until is not None else text


def charge_badge(code, until=None, lang="id"):
    """{code, text, css} for the charge decision, or None when the ticket was never evaluated."""
    text = charge_label(code, until, lang)
    return None if text is None else {"code": code, "text": text, "css": CHARGE_CSS[code]}


def cashback_days_left(cashback_until, today):
    """Whole days left after today (0 on the last day); None when not eligible or already over."""
    if cashback_until is None or today is None:
        return None
    left = (cashback_until - today).days
    return left if left >= 0 else None


def cashback_label(cashback_until, today, lang="id"):
    """'Cashback possible — 12 days left' / 'Cashback bisa — 12 hari lagi'; None when hidden."""
    left = cashback_days_left(cashback_until, today)
    if left is None:
        return None
    if lang == "id":
        return "Cashback bisa — hari terakhir" if left == 0 else f"Cashback bisa — {left} hari lagi"
    if left == 0:
        return "Cashback possible — last day"
    return f"Cashback possible — {left} day{'s' if left != 1 else ''} left"
