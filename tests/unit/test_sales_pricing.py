"""Offer and order arithmetic (helpdesk/sales/pricing.py), issue #7 §6: lines, typed discounts,
tax rounded half up once on the total, vouchers (percent or amount, validity, limits, once per
customer, minimum) and the totals; hypothesis properties over random lines."""
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpdesk.billing.money import MAX_AMOUNT
from helpdesk.sales import pricing
from helpdesk.sales.pricing import Line, PricingError, VoucherTerms, check_line, parse_discount, tax_of, totals

TODAY = date(2026, 11, 20)


def code_of(exc_info):
    return exc_info.value.code


# ---------------------------------------------------------------- lines

@pytest.mark.parametrize("quantity, unit_price, discount, gross, amount", [
    (1, 0, 0, 0, 0),
    (1, 150_000, 0, 150_000, 150_000),
    (3, 250_000, 50_000, 750_000, 700_000),
    (10_000, 1, 10_000, 10_000, 0),          # the largest quantity; a discount equal to the line
    (1, MAX_AMOUNT, 0, MAX_AMOUNT, MAX_AMOUNT),
    (2, 99, 198, 198, 0),
])
def test_check_line_accepts(quantity, unit_price, discount, gross, amount):
    line = check_line(quantity, unit_price, discount)
    assert (line.quantity, line.unit_price, line.discount) == (quantity, unit_price, discount)
    assert (line.gross, line.amount) == (gross, amount)


@pytest.mark.parametrize("quantity, unit_price, discount, code", [
    (0, 1000, 0, "quantity"),
    (-1, 1000, 0, "quantity"),
    (10_001, 1000, 0, "quantity"),
    (True, 1000, 0, "quantity"),              # a bool is not a number here
    (1.0, 1000, 0, "quantity"),               # nor a float
    ("2", 1000, 0, "quantity"),
    (None, 1000, 0, "quantity"),
    (1, -1, 0, "amount"),
    (1, 1000.0, 0, "amount"),
    (1, True, 0, "amount"),
    (1, "1000", 0, "amount"),
    (1, MAX_AMOUNT + 1, 0, "amount"),
    (2, MAX_AMOUNT, 0, "amount"),              # the line's gross is out of range
    (1, 1000, -1, "amount"),
    (1, 1000, 10.0, "amount"),
    (1, 1000, False, "amount"),
    (1, 1000, 1001, "discount"),               # more than the line
    (3, 100, 301, "discount"),
])
def test_check_line_refuses(quantity, unit_price, discount, code):
    with pytest.raises(PricingError) as exc:
        check_line(quantity, unit_price, discount)
    assert code_of(exc) == code


# ---------------------------------------------------------------- typed discounts

@pytest.mark.parametrize("text, gross, expected", [
    ("10%", 3_500_000, 350_000),
    ("10 %", 1_000_000, 100_000),
    (" 12,5% ", 1_000_000, 125_000),
    ("12.5%", 1_000_000, 125_000),
    ("12,5%", 1_001, 125),                     # 125,125 -> 125
    ("10%", 5, 1),                             # 0,5 -> 1 (half up)
    ("10%", 4, 0),                             # 0,4 -> 0
    ("100%", 750_000, 750_000),
    ("0%", 750_000, 0),
    ("50.000", 750_000, 50_000),
    ("Rp 50.000", 750_000, 50_000),
    ("50000", 750_000, 50_000),
    ("", 750_000, 0),
    ("   ", 750_000, 0),
    (None, 750_000, 0),
    ("0", 750_000, 0),
])
def test_parse_discount(text, gross, expected):
    assert parse_discount(text, gross) == expected


@pytest.mark.parametrize("text", ["101%", "-5%", "%", "abc%", "ten", "5,5", "1.5", "-50.000", "Rp", "50.000%%",
                                  "inf%", "nan%", "1e400%"])
def test_parse_discount_refuses(text):
    with pytest.raises(PricingError) as exc:
        parse_discount(text, 1_000_000)
    assert code_of(exc) == "discount"


# ---------------------------------------------------------------- tax

@pytest.mark.parametrize("taxable, rate_bp, expected", [
    (1_234_567, 1100, 135_802),               # 135.802,37 -> 135.802
    (50, 1100, 6),                            # 5,5 -> 6 (half up, not to even)
    (150, 1100, 17),                          # 16,5 -> 17
    (250, 1100, 28),                          # 27,5 -> 28
    (45, 1100, 5),                            # 4,95 -> 5
    (40, 1100, 4),                            # 4,4 -> 4
    (1_000_000, 1100, 110_000),
    (1_000_000, 0, 0),
    (0, 1100, 0),
    (999, 10_000, 999),                       # 100 %
    (1, 5000, 1),                             # 0,5 -> 1
    (1, 4999, 0),
])
def test_tax_of_rounds_half_up(taxable, rate_bp, expected):
    assert tax_of(taxable, rate_bp) == expected


@pytest.mark.parametrize("rate", [-1, 10_001, 11.0, True, "1100", None])
def test_tax_of_refuses_a_bad_rate(rate):
    with pytest.raises(PricingError) as exc:
        tax_of(1000, rate)
    assert code_of(exc) == "tax"


# ---------------------------------------------------------------- totals

def test_totals_with_line_discounts_a_percent_voucher_and_tax():
    """Worked by hand:
    website 1 × 3.500.000, 10 % off      -> gross 3.500.000, discount 350.000
    hosting 2 ×   600.000, Rp 50.000 off -> gross 1.200.000, discount  50.000
    subtotal 4.700.000; line discounts 400.000; after the lines 4.300.000
    voucher 12,5 % of 4.300.000 = 537.500; taxable 3.762.500
    PPN 11 % of 3.762.500 = 413.875; total 4.176.375."""
    lines = [check_line(1, 3_500_000, parse_discount("10%", 3_500_000)),
             check_line(2, 600_000, parse_discount("Rp 50.000", 1_200_000))]
    voucher = VoucherTerms(code="HEMAT", kind="percent", value=1250)
    t = totals(lines, voucher, 1100, today=TODAY)
    assert t == pricing.Totals(subtotal=4_700_000, line_discounts=400_000, voucher_discount=537_500,
                               taxable=3_762_500, tax=413_875, total=4_176_375)
    assert t.discount == 937_500


def test_totals_with_an_amount_voucher_and_rounding():
    """3 × 33.333 = 99.999, minus 1.000 on the line -> 98.999; voucher Rp 10.000 -> 88.999;
    11 % = 9.789,89 -> 9.790; total 98.789."""
    t = totals([check_line(3, 33_333, 1_000)], VoucherTerms(code="POT10", kind="amount", value=10_000), 1100)
    assert (t.subtotal, t.line_discounts, t.voucher_discount, t.taxable, t.tax, t.total) == (
        99_999, 1_000, 10_000, 88_999, 9_790, 98_789)


def test_totals_without_anything():
    assert totals([]) == pricing.Totals(0, 0, 0, 0, 0, 0)
    assert totals([Line(2, 1_000)]) == pricing.Totals(2_000, 0, 0, 2_000, 0, 2_000)


def test_a_percent_voucher_rounds_half_up():
    # 10 % of 1.005 = 100,5 -> 101
    assert pricing.voucher_discount(VoucherTerms(code="X", kind="percent", value=1000), 1_005) == 101
    assert pricing.voucher_discount(VoucherTerms(code="X", kind="percent", value=1000), 1_004) == 100


@pytest.mark.parametrize("kind, value, amount, expected", [
    ("amount", 100_000, 60_000, 60_000),      # never more than the amount
    ("amount", 100_000, 0, 0),
    ("amount", 60_000, 60_000, 60_000),
    ("amount", 59_999, 60_000, 59_999),
    ("percent", 10_000, 60_000, 60_000),      # 100 %
    ("percent", 20_000, 60_000, 60_000),      # a wrong 200 % still takes at most the amount
    ("percent", 0, 60_000, 0),
])
def test_a_voucher_never_takes_more_than_the_amount(kind, value, amount, expected):
    assert pricing.voucher_discount(VoucherTerms(code="X", kind=kind, value=value), amount) == expected


def test_an_amount_voucher_larger_than_the_order_makes_it_free_not_negative():
    t = totals([check_line(1, 40_000, 5_000)], VoucherTerms(code="BIG", kind="amount", value=100_000), 1100)
    assert (t.voucher_discount, t.taxable, t.tax, t.total) == (35_000, 0, 0, 0)


def test_an_unknown_voucher_kind_is_refused():
    with pytest.raises(PricingError) as exc:
        pricing.voucher_discount(VoucherTerms(code="X", kind="gift", value=1), 100)
    assert code_of(exc) == "voucher"


# ---------------------------------------------------------------- voucher rules

def terms(**kw):
    kw.setdefault("code", "PROMO")
    kw.setdefault("kind", "percent")
    kw.setdefault("value", 1000)
    return VoucherTerms(**kw)


DAY = timedelta(days=1)


@pytest.mark.parametrize("voucher, subtotal, today, uses, problem", [
    (terms(), 0, TODAY, 0, None),
    # validity days are inclusive at both ends
    (terms(valid_from=TODAY), 100, TODAY, 0, None),
    (terms(valid_from=TODAY + DAY), 100, TODAY, 0, "not_yet_valid"),
    (terms(valid_until=TODAY), 100, TODAY, 0, None),
    (terms(valid_until=TODAY - DAY), 100, TODAY, 0, "expired"),
    (terms(valid_from=TODAY, valid_until=TODAY), 100, TODAY, 0, None),
    (terms(valid_from=TODAY - 10 * DAY, valid_until=TODAY - DAY), 100, TODAY, 0, "expired"),
    # usage limit
    (terms(usage_limit=5, used=4), 100, TODAY, 0, None),
    (terms(usage_limit=5, used=5), 100, TODAY, 0, "used_up"),
    (terms(usage_limit=5, used=6), 100, TODAY, 0, "used_up"),
    (terms(usage_limit=0, used=0), 100, TODAY, 0, "used_up"),
    (terms(usage_limit=None, used=10_000), 100, TODAY, 0, None),
    # once per customer
    (terms(one_per_customer=True), 100, TODAY, 0, None),
    (terms(one_per_customer=True), 100, TODAY, 1, "already_used"),
    (terms(one_per_customer=False), 100, TODAY, 3, None),
    # minimum
    (terms(min_subtotal=500_000), 500_000, TODAY, 0, None),
    (terms(min_subtotal=500_000), 499_999, TODAY, 0, "below_minimum"),
])
def test_voucher_problem(voucher, subtotal, today, uses, problem):
    assert pricing.voucher_problem(voucher, subtotal, today, uses) == problem


def test_totals_checks_the_voucher_only_with_a_day():
    expired = terms(valid_until=TODAY - DAY)
    lines = [check_line(1, 100_000)]
    with pytest.raises(PricingError) as exc:
        totals(lines, expired, today=TODAY)
    assert code_of(exc) == "expired"
    assert totals(lines, expired).voucher_discount == 10_000  # an accepted offer keeps its voucher


def test_the_minimum_is_checked_after_the_line_discounts():
    voucher = terms(min_subtotal=100_000)
    assert totals([check_line(1, 100_000)], voucher, today=TODAY).voucher_discount == 10_000
    with pytest.raises(PricingError) as exc:
        totals([check_line(1, 100_000, 1)], voucher, today=TODAY)
    assert code_of(exc) == "below_minimum"


def test_totals_passes_the_customers_uses():
    with pytest.raises(PricingError) as exc:
        totals([check_line(1, 100_000)], terms(one_per_customer=True), today=TODAY, customer_uses=1)
    assert code_of(exc) == "already_used"


# ---------------------------------------------------------------- tax once on the total

def test_tax_is_computed_once_on_the_total_not_per_line():
    """Two lines of 50 at 11 %: per line 5,5 -> 6 each would make 12; once on 100 it is 11."""
    lines = [check_line(1, 50), check_line(1, 50)]
    per_line = sum(tax_of(ln.amount, 1100) for ln in lines)
    t = totals(lines, None, 1100)
    assert per_line == 12
    assert (t.taxable, t.tax, t.total) == (100, 11, 111)


def test_tax_is_on_what_is_left_after_the_voucher():
    # 200.000 - 25 % = 150.000; 11 % = 16.500 (not 22.000 on the subtotal)
    t = totals([check_line(2, 100_000)], terms(value=2500), 1100)
    assert (t.voucher_discount, t.taxable, t.tax, t.total) == (50_000, 150_000, 16_500, 166_500)


# ---------------------------------------------------------------- properties

@st.composite
def priced_lines(draw):
    out = []
    for _ in range(draw(st.integers(0, 6))):
        quantity = draw(st.integers(1, 20))
        unit_price = draw(st.integers(0, 50_000_000))
        discount = draw(st.integers(0, quantity * unit_price))
        out.append(check_line(quantity, unit_price, discount))
    return out


vouchers = st.one_of(
    st.none(),
    st.builds(VoucherTerms, code=st.just("P"), kind=st.just("percent"), value=st.integers(0, 10_000)),
    st.builds(VoucherTerms, code=st.just("A"), kind=st.just("amount"), value=st.integers(0, 10 ** 9)),
)
rates = st.integers(0, 10_000)


@settings(max_examples=300, deadline=None)
@given(priced_lines(), vouchers, rates)
def test_totals_add_up(lines, voucher, rate):
    t = totals(lines, voucher, rate)
    assert t.subtotal == sum(ln.gross for ln in lines)
    assert t.line_discounts == sum(ln.discount for ln in lines)
    assert t.taxable == t.subtotal - t.line_discounts - t.voucher_discount
    assert t.total == t.taxable + t.tax
    assert 0 <= t.tax <= t.taxable
    assert 0 <= t.voucher_discount <= t.subtotal - t.line_discounts
    assert t.taxable >= 0 and t.total >= 0  # no discount makes it negative
    assert t.discount == t.line_discounts + t.voucher_discount


@settings(max_examples=300, deadline=None)
@given(priced_lines(), vouchers, rates)
def test_tax_is_the_rounded_rate_of_the_taxable_amount(lines, voucher, rate):
    """Once on the total, half up: |tax − taxable × rate| ≤ ½ rupiah, and the exact half goes up."""
    t = totals(lines, voucher, rate)
    exact_times_bp = t.taxable * rate  # the tax × 10.000, exactly
    diff = t.tax * pricing.BP - exact_times_bp
    assert -pricing.BP // 2 < diff <= pricing.BP // 2
    assert t.tax == tax_of(t.taxable, rate)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, MAX_AMOUNT), rates)
def test_tax_of_bounds(taxable, rate):
    tax = tax_of(taxable, rate)
    assert 0 <= tax <= taxable
    assert abs(tax * pricing.BP - taxable * rate) <= pricing.BP // 2


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10 ** 12), st.integers(0, 10_000))
def test_a_typed_percentage_is_that_share_of_the_line(gross, bp):
    text = f"{bp // 100},{bp % 100:02d}%"
    off = parse_discount(text, gross)
    assert 0 <= off <= gross
    assert -pricing.BP // 2 < off * pricing.BP - gross * bp <= pricing.BP // 2
