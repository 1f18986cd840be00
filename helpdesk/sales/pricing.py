"""Offer and order arithmetic, pure: integer rupiah, computed in one place.

- A line: quantity × unit price − its discount (a rupiah amount, at most the line's gross).
  `parse_discount("10%", gross)` / `parse_discount("50.000", gross)` turn what was typed into rupiah.
- A voucher (daily deal or promo code) takes a percentage or an amount off the subtotal, within
  its validity dates, its usage limit and (optionally) once per customer: `voucher_discount`.
- Tax (PPN, off by default) is computed once, on the total after discounts, rounded half up to
  the rupiah: `tax_of(taxable, rate_bp)` (rate in basis points: 1100 = 11 %).
- `totals(lines, voucher=None, tax_rate_bp=0)` -> Totals(subtotal, line_discounts, voucher_discount,
  taxable, tax, total).
"""
from dataclasses import dataclass
from datetime import date

from ..billing.money import MAX_AMOUNT, MoneyError, check_amount, parse_rupiah

BP = 10_000  # basis points in 100 %


class PricingError(ValueError):
    """A line, discount, voucher or tax rate that cannot be priced; `code` says which rule."""

    def __init__(self, code, message=None):
        super().__init__(message or code)
        self.code = code


@dataclass(frozen=True)
class Line:
    quantity: int
    unit_price: int
    discount: int = 0

    @property
    def gross(self):
        return self.quantity * self.unit_price

    @property
    def amount(self):
        return self.gross - self.discount


@dataclass(frozen=True)
class VoucherTerms:
    code: str
    kind: str  # "percent" (value in basis points) or "amount" (rupiah)
    value: int
    valid_from: date | None = None
    valid_until: date | None = None
    usage_limit: int | None = None  # None: unlimited
    used: int = 0
    one_per_customer: bool = False
    min_subtotal: int = 0


@dataclass(frozen=True)
class Totals:
    subtotal: int  # sum of the lines' gross amounts
    line_discounts: int
    voucher_discount: int
    taxable: int
    tax: int
    total: int

    @property
    def discount(self):
        return self.line_discounts + self.voucher_discount


def check_line(quantity, unit_price, discount=0):
    """A Line, or PricingError (quantity 1..10000, price and discount whole rupiah, discount ≤ gross)."""
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 10_000:
        raise PricingError("quantity", "quantity must be a whole number from 1 to 10000")
    try:
        check_amount(unit_price)
        check_amount(discount)
    except MoneyError as exc:
        raise PricingError("amount", str(exc)) from None
    line = Line(quantity, unit_price, discount)
    if line.gross > MAX_AMOUNT:
        raise PricingError("amount", "amount out of range")
    if discount > line.gross:
        raise PricingError("discount", "the discount is larger than the line")
    return line


def parse_discount(text, gross):
    """"10%" -> 10 % of gross (rounded half up); "50.000" / "Rp 50.000" -> 50000; "" -> 0."""
    raw = (text or "").strip()
    if not raw:
        return 0
    if raw.endswith("%"):
        number = raw[:-1].strip().replace(",", ".")
        try:
            percent_bp = round(float(number) * 100)
        except (ValueError, OverflowError):  # "abc%", "nan%"; "inf%", "1e400%"
            raise PricingError("discount", "not a percentage") from None
        if not 0 <= percent_bp <= BP:
            raise PricingError("discount", "a percentage from 0 to 100")
        return (gross * percent_bp + BP // 2) // BP
    try:
        return parse_rupiah(raw) or 0
    except MoneyError:
        raise PricingError("discount", "not a whole number of rupiah") from None


def tax_of(taxable, rate_bp):
    """The tax on an amount, rounded half up to the rupiah, once."""
    if isinstance(rate_bp, bool) or not isinstance(rate_bp, int) or not 0 <= rate_bp <= BP:
        raise PricingError("tax", "a tax rate from 0 to 100 %")
    return (taxable * rate_bp + BP // 2) // BP


def voucher_problem(voucher, subtotal, today, customer_uses=0):
    """Why the voucher cannot be used (a code), or None."""
    if voucher.valid_from is not None and today < voucher.valid_from:
        return "not_yet_valid"
    if voucher.valid_until is not None and today > voucher.valid_until:
        return "expired"
    if voucher.usage_limit is not None and voucher.used >= voucher.usage_limit:
        return "used_up"
    if voucher.one_per_customer and customer_uses > 0:
        return "already_used"
    if subtotal < voucher.min_subtotal:
        return "below_minimum"
    return None


def voucher_discount(voucher, amount):
    """What the voucher takes off `amount` (never more than the amount)."""
    if voucher.kind == "percent":
        off = (amount * voucher.value + BP // 2) // BP
    elif voucher.kind == "amount":
        off = voucher.value
    else:
        raise PricingError("voucher", "unknown voucher kind")
    return max(0, min(off, amount))


def totals(lines, voucher=None, tax_rate_bp=0, today=None, customer_uses=0):
    """The totals of priced lines (Line), with an optional voucher (checked when `today` is given)."""
    lines = list(lines)
    subtotal = sum(ln.gross for ln in lines)
    line_discounts = sum(ln.discount for ln in lines)
    after_lines = subtotal - line_discounts
    off = 0
    if voucher is not None:
        if today is not None:
            problem = voucher_problem(voucher, after_lines, today, customer_uses)
            if problem:
                raise PricingError(problem)
        off = voucher_discount(voucher, after_lines)
    taxable = after_lines - off
    tax = tax_of(taxable, tax_rate_bp)
    return Totals(subtotal=subtotal, line_discounts=line_discounts, voucher_discount=off, taxable=taxable, tax=tax,
                  total=taxable + tax)
