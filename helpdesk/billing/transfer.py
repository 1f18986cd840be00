"""Bank transfers, pure (no database): unique transfer codes, bank statement CSVs and their matching.

- `pick_code(total, taken, rng)`: a code 1–999 such that total + code is not in `taken` (the open
  invoices' transfer amounts); None when all 999 are taken.
- `parse_statement(data)` -> [StatementLine] (credits and debits): BCA/Mandiri-style exports, a
  date column (dd/mm/yyyy, dd-mm-yyyy or yyyy-mm-dd), a description, an amount column with a
  "CR"/"DB" marker (or a sign), or separate debit/credit columns; Indonesian ("1.250.123,00") and
  English ("1,250,123.00") number formats; header lines above the table are skipped.
- `fingerprint(line, occurrence=0)`: sha256 of (date, amount, normalised description, reference);
  the n-th identical line of one file adds its occurrence, so two equal transfers on one day are two lines.
- `invoice_numbers(text)`: the invoice numbers named in a text ("INV/2026/000123", "INV2026000123").
- `match(line, by_amount, by_number)` -> (invoice_id, rule) or (None, None).
"""
import csv
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import date

CODE_MIN, CODE_MAX = 1, 999
MAX_BYTES = 5 * 1024 * 1024
MAX_LINES = 20000


class StatementError(ValueError):
    """A file that is not a readable bank statement."""


@dataclass(frozen=True)
class StatementLine:
    booked_on: date
    amount: int  # rupiah, positive
    credit: bool
    description: str
    reference: str


# ---------------------------------------------------------------- codes

def pick_code(total, taken, rng, prefer=None):
    """A code whose total + code is free: `prefer` when free, else a random free one (None: all taken)."""
    taken = set(taken)
    if prefer is not None and CODE_MIN <= prefer <= CODE_MAX and total + prefer not in taken:
        return prefer
    free = [c for c in range(CODE_MIN, CODE_MAX + 1) if total + c not in taken]
    return rng.choice(free) if free else None


# ---------------------------------------------------------------- numbers and dates

_ID_NUM = re.compile(r"^\d{1,3}(\.\d{3})+(,\d{1,2})?$|^\d+,\d{1,2}$")
_EN_NUM = re.compile(r"^\d{1,3}(,\d{3})+(\.\d{1,2})?$|^\d+\.\d{1,2}$")
_PLAIN = re.compile(r"^\d+$")


def parse_amount(text):
    """"1.250.123,00" / "1,250,123.00" / "1250123" / "Rp 1.250.123" / "150.123,00 CR" -> (amount, marker):
    marker "CR", "DB" or None; a leading "-" or "(..)" is "DB".
    Cents are dropped (rupiah statements carry ",00"). Raises StatementError."""
    raw = (text or "").strip().upper().replace("RP", "").replace("IDR", "").replace(" ", "").replace("\u00a0", "")
    marker = None
    for tag in ("CR", "DB", "D", "K", "C"):
        if raw.endswith(tag) and len(raw) > len(tag):
            marker = {"CR": "CR", "C": "CR", "K": "CR", "DB": "DB", "D": "DB"}[tag]
            raw = raw[: -len(tag)]
            break
    if raw.startswith("(") and raw.endswith(")"):
        raw, marker = raw[1:-1], "DB"
    if raw.startswith("-"):
        raw, marker = raw[1:], "DB"
    elif raw.startswith("+"):
        raw = raw[1:]
    if not raw:
        raise StatementError("no amount")
    if _PLAIN.match(raw):
        value = int(raw)
    elif _ID_NUM.match(raw):
        value = int(raw.split(",")[0].replace(".", ""))
    elif _EN_NUM.match(raw):
        value = int(raw.split(".")[0].replace(",", "")) if "." in raw else int(raw.replace(",", ""))
    else:
        raise StatementError(f"not an amount: {text!r}")
    return value, marker


_DATE_DMY = re.compile(r"^(\d{1,2})[/\-.](\d{1,2})[/\-.](\d{2}|\d{4})$")
_DATE_YMD = re.compile(r"^(\d{4})[/\-.](\d{1,2})[/\-.](\d{1,2})$")


def parse_date(text):
    raw = (text or "").strip().strip("'").split(" ")[0]
    m = _DATE_YMD.match(raw)
    try:
        if m:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        m = _DATE_DMY.match(raw)
        if m:
            year = int(m.group(3))
            return date(year + 2000 if year < 100 else year, int(m.group(2)), int(m.group(1)))
    except ValueError:
        pass
    raise StatementError(f"not a date: {text!r}")


# ---------------------------------------------------------------- the CSV

def decode(data):
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


HEADERS = {
    "date": ("tanggal transaksi", "tanggal", "tgl", "date", "transaction date", "tgl transaksi", "posting date",
             "tanggal posting", "value date"),
    "description": ("keterangan", "description", "deskripsi", "uraian", "remarks", "transaction description",
                    "uraian transaksi", "berita"),
    "reference": ("reference", "referensi", "ref", "ref no", "no referensi", "reference no",
                  "reference number", "cabang"),
    "amount": ("jumlah", "amount", "mutasi", "nominal", "nilai"),
    "marker": ("cr/db", "db/cr", "d/k", "d/c", "type", "jenis", "tipe"),
    "debit": ("debit", "debet", "mutasi debet", "mutasi debit", "withdrawal", "keluar"),
    "credit": ("credit", "kredit", "mutasi kredit", "deposit", "masuk"),
}


def _norm_header(text):
    return re.sub(r"\s+", " ", re.sub(r"[._:]", " ", (text or "").strip().strip("\ufeff").lower())).strip()


def _columns(row):
    """The columns of a header row ({"date": i, ...}) or None when it is not the table's header."""
    cols = {}
    for i, cell in enumerate(row):
        name = _norm_header(cell)
        for key, names in HEADERS.items():
            if key not in cols and name in names:
                cols[key] = i
                break
    if "date" in cols and "description" in cols and ("amount" in cols or "credit" in cols):
        return cols
    return None


def _cell(row, cols, key):
    i = cols.get(key)
    return row[i].strip() if i is not None and i < len(row) and row[i] is not None else ""


def parse_statement(data):
    """The lines of a statement (see the module doc). Raises StatementError for an unreadable file."""
    if len(data) > MAX_BYTES:
        raise StatementError("file too large")
    text = decode(data)
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    cols = None
    out = []
    for row in rows:
        if cols is None:
            cols = _columns(row)
            continue
        if not any(c.strip() for c in row):
            continue
        try:
            booked = parse_date(_cell(row, cols, "date"))
        except StatementError:
            continue  # a footer (balances, totals) or a note line
        description = re.sub(r"\s+", " ", _cell(row, cols, "description"))[:500]
        reference = _cell(row, cols, "reference")[:200]
        try:
            if "credit" in cols and _cell(row, cols, "credit") not in ("", "0", "0,00", "0.00", "-"):
                amount, _m = parse_amount(_cell(row, cols, "credit"))
                credit = True
            elif "debit" in cols and _cell(row, cols, "debit") not in ("", "0", "0,00", "0.00", "-"):
                amount, _m = parse_amount(_cell(row, cols, "debit"))
                credit = False
            elif "amount" in cols:
                amount, marker = parse_amount(_cell(row, cols, "amount"))
                marker_cell = _cell(row, cols, "marker").upper()
                if marker_cell in ("CR", "C", "K", "KREDIT", "CREDIT"):
                    marker = "CR"
                elif marker_cell in ("DB", "D", "DEBET", "DEBIT"):
                    marker = "DB"
                if marker is None:  # no marker: BCA puts " CR"/" DB" in the description's end at times
                    tail = description.upper().split()[-1:] if description else []
                    marker = "DB" if tail == ["DB"] else "CR"
                credit = marker == "CR"
            else:
                continue
        except StatementError:
            continue
        if amount <= 0:
            continue
        out.append(StatementLine(booked, amount, credit, description, reference))
        if len(out) > MAX_LINES:
            raise StatementError("too many lines")
    if cols is None:
        raise StatementError("no table with a date, a description and an amount column")
    return out


def credits(lines):
    return [ln for ln in lines if ln.credit]


def normalise(text):
    return re.sub(r"\s+", " ", (text or "").strip().upper())


def fingerprint(line, occurrence=0):
    parts = [line.booked_on.isoformat(), str(line.amount), normalise(line.description), normalise(line.reference)]
    if occurrence:
        parts.append(f"#{occurrence}")
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def fingerprints(lines):
    """(line, fingerprint) for each line; an identical line repeated in one file gets its occurrence."""
    seen = {}
    out = []
    for ln in lines:
        base = fingerprint(ln)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.append((ln, base if n == 0 else fingerprint(ln, n)))
    return out


# ---------------------------------------------------------------- matching

_INVOICE_RE = re.compile(r"INV[\s/\-.]?(\d{4})[\s/\-.]?(\d{6})(?!\d)", re.IGNORECASE)


def invoice_numbers(text):
    """The invoice numbers ("INV/yyyy/nnnnnn") a text names, in order, once each."""
    found = []
    for m in _INVOICE_RE.finditer(text or ""):
        number = f"INV/{m.group(1)}/{m.group(2)}"
        if number not in found:
            found.append(number)
    return found


def match(line, by_amount, by_number):
    """(invoice_id, rule): the one open invoice whose transfer amount is the credit's amount
    (by_amount: {amount: [invoice ids]}), else the open invoice named in the description or the
    reference (by_number: {number: invoice id}, open invoices only); else (None, None)."""
    ids = by_amount.get(line.amount) or []
    if len(ids) == 1:
        return ids[0], "transfer_amount"
    named = [by_number[n] for n in invoice_numbers(f"{line.description} {line.reference}") if n in by_number]
    if len(set(named)) == 1:
        return named[0], "reference"
    return None, None
