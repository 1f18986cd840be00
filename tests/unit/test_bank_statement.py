"""Bank transfers, pure (helpdesk/billing/transfer.py): transfer codes, statement CSVs (BCA/Mandiri
styles, credit/debit, Indonesian and English numbers), fingerprints and the matching rules."""
import random
from datetime import date

import pytest

from helpdesk.billing import transfer
from helpdesk.billing.transfer import StatementLine

# ---------------------------------------------------------------- codes


def test_two_invoices_with_the_same_total_get_different_codes():
    rng = random.Random(7)
    taken = set()
    codes = []
    for _ in range(50):
        code = transfer.pick_code(150_000, taken, rng)
        assert 1 <= code <= 999
        taken.add(150_000 + code)
        codes.append(code)
    assert len(set(codes)) == 50  # no two open invoices share a transfer amount


def test_a_free_preferred_code_is_kept_and_a_taken_one_is_replaced():
    rng = random.Random(1)
    assert transfer.pick_code(100_000, {100_123}, rng, prefer=45) == 45
    other = transfer.pick_code(100_000, {100_045}, rng, prefer=45)
    assert other != 45 and 1 <= other <= 999


def test_no_code_when_all_999_are_taken():
    taken = {200_000 + c for c in range(1, 1000)}
    assert transfer.pick_code(200_000, taken, random.Random(0)) is None
    assert transfer.pick_code(200_000, taken - {200_777}, random.Random(0)) == 777


# ---------------------------------------------------------------- numbers and dates

@pytest.mark.parametrize("text, expected", [
    ("1.250.123,00", (1_250_123, None)),
    ("1,250,123.00", (1_250_123, None)),
    ("1250123", (1_250_123, None)),
    ("Rp 1.250.123", (1_250_123, None)),
    ("150.123,00 CR", (150_123, "CR")),
    ("150.123,00 DB", (150_123, "DB")),
    ("-75.000,00", (75_000, "DB")),
    ("(75,000.00)", (75_000, "DB")),
    ("250000.00", (250_000, None)),
    ("150,00", (150, None)),
])
def test_amount_formats(text, expected):
    assert transfer.parse_amount(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "12,34,56"])
def test_bad_amounts(text):
    with pytest.raises(transfer.StatementError):
        transfer.parse_amount(text)


@pytest.mark.parametrize("text, expected", [("05/11/2026", date(2026, 11, 5)), ("2026-11-05", date(2026, 11, 5)),
                                            ("05-11-2026", date(2026, 11, 5)), ("'05/11/26", date(2026, 11, 5))])
def test_dates(text, expected):
    assert transfer.parse_date(text) == expected


def test_a_bad_date_is_refused():
    with pytest.raises(transfer.StatementError):
        transfer.parse_date("31/02/2026")


# ---------------------------------------------------------------- statements

BCA = """Informasi Rekening - Mutasi Rekening
No. rekening : 0123456789
Nama : PT WEB JOGJA DIGITAL

Tanggal Transaksi,Keterangan,Cabang,Jumlah,
'05/11/2026,TRSF E-BANKING CR 0511/FTSCY/WS95031 150123.00 DEWI LESTARI,0000,"150,123.00 CR",
'05/11/2026,BIAYA ADM,0000,"15,000.00 DB",
'06/11/2026,SETORAN TUNAI INV2026000042,0998,"500,000.00 CR",

Saldo Awal,"1,000,000.00"
Mutasi Kredit,"650,123.00"
"""

MANDIRI = """Account No;Date;Description;Reference No.;Debit;Credit
1370012345678;2026-11-05;Transfer dari BUDI INV/2026/000007;REF001;0,00;1.250.456,00
1370012345678;2026-11-05;Pembayaran listrik;REF002;350.000,00;0,00
1370012345678;2026-11-06;Transfer dari SARI;REF003;;75.000,00
"""


def test_bca_style_with_header_lines_markers_and_a_footer():
    lines = transfer.parse_statement(BCA.encode("cp1252"))
    assert [(ln.booked_on, ln.amount, ln.credit) for ln in lines] == [
        (date(2026, 11, 5), 150_123, True), (date(2026, 11, 5), 15_000, False), (date(2026, 11, 6), 500_000, True)]
    credits = transfer.credits(lines)
    assert [ln.amount for ln in credits] == [150_123, 500_000]
    assert credits[0].description.startswith("TRSF E-BANKING CR") and credits[0].reference == "0000"


def test_mandiri_style_separate_debit_and_credit_columns_semicolons_and_a_bom():
    lines = transfer.parse_statement(b"\xef\xbb\xbf" + MANDIRI.encode())
    assert [(ln.booked_on, ln.amount, ln.credit, ln.reference) for ln in lines] == [
        (date(2026, 11, 5), 1_250_456, True, "REF001"), (date(2026, 11, 5), 350_000, False, "REF002"),
        (date(2026, 11, 6), 75_000, True, "REF003")]


def test_a_marker_column_and_a_signed_amount():
    data = b"date,description,amount,type\n2026-11-05,In,100.000,K\n2026-11-05,Out,200.000,D\n" \
           b"2026-11-06,Refund,-5.000,\n2026-11-07,Plain,7.000,\n"
    lines = transfer.parse_statement(data)
    assert [(ln.amount, ln.credit) for ln in lines] == [(100_000, True), (200_000, False), (5_000, False),
                                                        (7_000, True)]


def test_a_file_without_a_table_is_refused():
    with pytest.raises(transfer.StatementError):
        transfer.parse_statement(b"hello,world\n1,2\n")
    with pytest.raises(transfer.StatementError):
        transfer.parse_statement(b"\x00" * (transfer.MAX_BYTES + 1))


# ---------------------------------------------------------------- fingerprints

def line(amount=150_123, description="TRSF DEWI", reference="", day=date(2026, 11, 5), credit=True):
    return StatementLine(day, amount, credit, description, reference)


def test_fingerprint_ignores_case_and_spaces_but_not_the_amount_date_or_reference():
    base = transfer.fingerprint(line())
    assert transfer.fingerprint(line(description="  trsf   dewi ")) == base
    assert transfer.fingerprint(line(amount=150_124)) != base
    assert transfer.fingerprint(line(day=date(2026, 11, 6))) != base
    assert transfer.fingerprint(line(reference="R1")) != base
    assert len(base) == 64


def test_two_identical_lines_in_one_file_are_two_lines_and_the_same_in_an_overlapping_file():
    first = transfer.fingerprints([line(), line(), line(amount=1)])
    assert len({fp for _ln, fp in first}) == 3
    again = transfer.fingerprints([line(amount=1), line(), line()])
    assert {fp for _ln, fp in again} == {fp for _ln, fp in first}


# ---------------------------------------------------------------- matching

def test_invoice_numbers_with_and_without_slashes():
    assert transfer.invoice_numbers("bayar inv/2026/000123 dan INV2026000124, INV-2026-000125") == [
        "INV/2026/000123", "INV/2026/000124", "INV/2026/000125"]
    assert transfer.invoice_numbers("INV20260001234") == []  # 7 digits: not an invoice number
    assert transfer.invoice_numbers("") == []


def test_matching_rules():
    by_amount = {150_123: [1], 250_045: [2, 3]}  # 250_045 twice cannot happen (unique index): no match by amount
    by_number = {"INV/2026/000005": 5, "INV/2026/000002": 2}
    assert transfer.match(line(150_123), by_amount, by_number) == (1, "transfer_amount")
    # the amount wins over a number in the text
    assert transfer.match(line(150_123, "INV/2026/000005"), by_amount, by_number) == (1, "transfer_amount")
    assert transfer.match(line(99_000, "bayar INV2026000005"), by_amount, by_number) == (5, "reference")
    assert transfer.match(line(99_000, "x", reference="INV/2026/000002"), by_amount, by_number) == (2, "reference")
    assert transfer.match(line(250_045, "x"), by_amount, by_number) == (None, None)
    assert transfer.match(line(99_000, "INV/2026/000009"), by_amount, by_number) == (None, None)  # not open
    # two open invoices named: ambiguous
    assert transfer.match(line(99_000, "INV/2026/000005 INV/2026/000002"), by_amount, by_number) == (None, None)
    assert transfer.match(line(99_000, "no number"), by_amount, by_number) == (None, None)
