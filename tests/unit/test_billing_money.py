"""Invoice arithmetic and rupiah text (helpdesk/billing/money.py): pure, integer rupiah."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpdesk.billing.money import (
    MAX_AMOUNT, MoneyError, check_amount, format_number, format_rupiah, invoice_status, line_amount, parse_rupiah,
    total,
)

# ---------------------------------------------------------------- line_amount


@pytest.mark.parametrize("quantity, price, covered, expected", [
    (1, 150_000, False, 150_000),
    (3, 250_000, False, 750_000),
    (10_000, 1, False, 10_000),               # the largest quantity
    (1, 0, False, 0),                          # a free line is allowed
    (1, MAX_AMOUNT, False, MAX_AMOUNT),        # the largest price
    (2, 250_000, True, 0),                     # covered: 0 whatever the price
    (10_000, MAX_AMOUNT, True, 0),
])
def test_line_amount(quantity, price, covered, expected):
    assert line_amount(quantity, price, covered) == expected


@pytest.mark.parametrize("quantity, price", [
    (0, 1000), (-1, 1000), (10_001, 1000),     # quantity out of 1..10000
    (True, 1000), (1.0, 1000), ("2", 1000), (None, 1000),  # quantity not an int
    (1, -1), (1, MAX_AMOUNT + 1),              # price out of range
    (1, True), (1, False), (1, 1000.0), (1, 0.5), (1, "1000"), (1, None),  # price not an int
    (2, MAX_AMOUNT // 2 + 1),                  # the product over the maximum
])
def test_line_amount_refuses(quantity, price):
    with pytest.raises(MoneyError):
        line_amount(quantity, price)


def test_a_covered_line_still_needs_a_valid_quantity_and_price():
    with pytest.raises(MoneyError):
        line_amount(0, 1000, covered=True)
    with pytest.raises(MoneyError):
        line_amount(1, 1.5, covered=True)


def test_check_amount_and_total():
    assert check_amount(0) == 0 and check_amount(MAX_AMOUNT) == MAX_AMOUNT
    with pytest.raises(MoneyError):
        check_amount(0, allow_zero=False)
    assert check_amount(1, allow_zero=False) == 1
    for bad in (True, 1.0, -1, MAX_AMOUNT + 1, "5", None):
        with pytest.raises(MoneyError):
            check_amount(bad)
    assert total([150_000, 0, 500_000]) == 650_000 and total([]) == 0


# ---------------------------------------------------------------- invoice_status

@pytest.mark.parametrize("total_amount, paid, voided, expected", [
    (650_000, 0, False, "unpaid"),
    (650_000, 1, False, "partially_paid"),
    (650_000, 649_999, False, "partially_paid"),
    (650_000, 650_000, False, "paid"),
    (650_000, 650_001, False, "paid"),        # overpaid still counts as paid
    (0, 0, False, "paid"),                    # nothing to pay
    (650_000, 0, True, "void"),
    (650_000, 650_000, True, "void"),         # void wins
])
def test_invoice_status(total_amount, paid, voided, expected):
    assert invoice_status(total_amount, paid, voided) == expected


# ---------------------------------------------------------------- numbers and rupiah text

@pytest.mark.parametrize("year, seq, expected", [
    (2026, 1, "INV/2026/000001"),
    (2026, 123, "INV/2026/000123"),
    (2027, 999_999, "INV/2027/999999"),
    (2027, 1_000_000, "INV/2027/1000000"),    # never truncated
])
def test_format_number(year, seq, expected):
    assert format_number(year, seq) == expected


@pytest.mark.parametrize("amount, expected", [
    (1_250_000, "Rp 1.250.000"),
    (0, "Rp 0"),
    (999, "Rp 999"),
    (1000, "Rp 1.000"),
    (150_000, "Rp 150.000"),
    (MAX_AMOUNT, "Rp 10.000.000.000.000"),
    (-50_000, "-Rp 50.000"),
    (None, "—"),
])
def test_format_rupiah(amount, expected):
    assert format_rupiah(amount) == expected


@pytest.mark.parametrize("text, expected", [
    ("Rp 1.250.000", 1_250_000),
    ("Rp1.250.000", 1_250_000),
    ("rp 1.250.000", 1_250_000),
    ("1.250.000", 1_250_000),
    ("1250000", 1_250_000),
    ("  1250000  ", 1_250_000),
    ("Rp 1.250.000,00", 1_250_000),
    ("1.250.000,-", 1_250_000),
    ("Rp 150.000", 150_000),
    ("1 250 000", 1_250_000),
    ("0", 0),
    ("999", 999),
    ("", None),
    ("   ", None),
    (None, None),
])
def test_parse_rupiah(text, expected):
    assert parse_rupiah(text) == expected


@pytest.mark.parametrize("text", [
    "abc", "-5", "Rp -5", "1,5", "1.000,50", "12,000",
    "150000.00",         # an English decimal point: not 15.000.000
    "1.5", "1.250.00",   # dots that are not thousands groups
    ".000", "1..000", "1.000.", "1.0000",
    "²", "١٢٣",          # digits, but not ASCII ones (must be a MoneyError, not a bare ValueError)
    "10.000.000.000.001",  # above MAX_AMOUNT
    "Rp", "Rp ,00",
])
def test_parse_rupiah_refuses(text):
    with pytest.raises(MoneyError):
        parse_rupiah(text)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=MAX_AMOUNT))
def test_parse_reads_what_format_writes(amount):
    assert parse_rupiah(format_rupiah(amount)) == amount
    assert parse_rupiah(str(amount)) == amount


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789.,Rp -", max_size=20))
def test_parse_rupiah_either_reads_an_amount_or_says_money_error(text):
    try:
        value = parse_rupiah(text)
    except MoneyError:
        return
    assert value is None or (isinstance(value, int) and 0 <= value <= MAX_AMOUNT)
    if value is not None:
        # whatever was accepted reads back the same from its canonical form
        assert parse_rupiah(format_rupiah(value)) == value
