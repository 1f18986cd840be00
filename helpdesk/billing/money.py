"""Invoice arithmetic and numbering, pure: integer rupiah, no database.

- `line_amount(quantity, unit_price, covered)`: a covered line is 0; otherwise quantity × price.
- `invoice_status(total, paid, voided)`: void, paid (paid ≥ total), partially_paid (0 < paid), unpaid.
- `format_number(year, seq)`: "INV/2026/000123".
- `format_rupiah(amount)`: "Rp 1.250.000" (the Indonesian thousands separator, in both languages).
"""

import re

NUMBER_PREFIX = "INV"
NUMBER_DIGITS = 6
MAX_AMOUNT = 10 ** 13  # Rp 10 trillion: anything above is a typing mistake
_PLAIN = re.compile(r"[0-9]+")
_GROUPED = re.compile(r"[0-9]{1,3}(?:\.[0-9]{3})+")


class MoneyError(ValueError):
    """An amount or quantity that cannot be on an invoice."""


def check_amount(value, *, allow_zero=True):
    """An integer number of rupiah (0 ≤ value ≤ MAX_AMOUNT); bool and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MoneyError("amount must be a whole number of rupiah")
    if value < 0 or value > MAX_AMOUNT or (value == 0 and not allow_zero):
        raise MoneyError("amount out of range")
    return value


def line_amount(quantity, unit_price, covered=False):
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 10000:
        raise MoneyError("quantity must be a whole number from 1 to 10000")
    check_amount(unit_price)
    if covered:
        return 0
    amount = quantity * unit_price
    if amount > MAX_AMOUNT:
        raise MoneyError("amount out of range")
    return amount


def total(amounts):
    return sum(amounts)


def invoice_status(total_amount, paid, voided=False):
    if voided:
        return "void"
    if paid >= total_amount:
        return "paid"
    if paid > 0:
        return "partially_paid"
    return "unpaid"


def format_number(year, seq):
    return f"{NUMBER_PREFIX}/{year:04d}/{seq:0{NUMBER_DIGITS}d}"


def format_rupiah(amount):
    if amount is None:
        return "—"
    sign = "-" if amount < 0 else ""
    return f"{sign}Rp {abs(int(amount)):,}".replace(",", ".")


def parse_rupiah(text):
    """"Rp 1.250.000", "1250000", "1.250.000" -> 1250000; None for empty; MoneyError otherwise."""
    raw = (text or "").strip()
    if not raw:
        return None
    raw = raw.replace("Rp", "").replace("rp", "").replace(" ", "")
    if raw.endswith(",00") or raw.endswith(",-"):
        raw = raw[:-3] if raw.endswith(",00") else raw[:-2]
    # ASCII digits, plain or in thousands groups: "150000.00" or "1.5" is not read as 15000000 or 15
    if not (_PLAIN.fullmatch(raw) or _GROUPED.fullmatch(raw)):
        raise MoneyError("not a whole number of rupiah")
    return check_amount(int(raw.replace(".", "")))
