"""Reading a CSV of leads (seminar attendee lists, print-campaign replies): pure code, no database.

- `decode(data)`: UTF-8 (with or without a byte order mark), UTF-16 with its mark, else cp1252
  (what Excel on Windows writes).
- `parse(text)`: finds the header row (the first of the first ten lines that names a name column
  and an email or phone column, in Indonesian or English, with synonyms), sniffs the delimiter
  ("," or ";" — Indonesian Excel writes ";" — or a tab), and returns every non-empty row as a
  `Row` with its line number in the file, its values and its problems. A row with problems is
  rejected at import; its warnings are not (an unknown product word is kept in the notes).
  Columns the importer does not know are kept in the notes as "Header: value", so nothing typed in
  the file is lost.
- Limits: MAX_BYTES (5 MB) and MAX_ROWS (10,000 rows); beyond them, or without a usable header,
  `ImportFileError` with a message for the user.

Problems are codes with the offending value (`Problem`), turned into words by `problem_text` at
display time, so a report stored by the background job shows in the reader's language.
"""
import csv
import io
import re
from dataclasses import dataclass, field

from email_validator import EmailNotValidError, validate_email

from ..auth.i18n import _
from ..customers.phone import InvalidPhone, normalise_phone
from ..errors import DomainError
from .models import LEAD_SOURCES

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 10_000
HEADER_SCAN_LINES = 10
DELIMITERS = (",", ";", "\t")
NAME_MAX, COMPANY_MAX, CAMPAIGN_MAX, NOTES_MAX = 200, 200, 80, 5000


class ImportFileError(DomainError):
    """The file cannot be imported at all (too big, no header, not text)."""


# ---------------------------------------------------------------- headers

HEADERS = {
    "name": ("nama", "name", "nama lengkap", "full name", "fullname", "nama peserta", "peserta", "contact name",
             "nama kontak", "contact person", "nama pelanggan", "customer name", "first name"),
    "company": ("perusahaan", "company", "nama perusahaan", "company name", "instansi", "organisasi", "organization",
                "organisation", "usaha", "nama usaha", "bisnis", "business", "toko", "nama toko"),
    "email": ("email", "e mail", "surel", "alamat email", "email address", "alamat e mail", "e mail address",
              "surat elektronik", "mail"),
    "phone": ("telepon", "telpon", "telp", "tel", "phone", "hp", "no hp", "nomor hp", "no telp", "no telepon",
              "nomor telepon", "nomor telp", "whatsapp", "wa", "no wa", "nomor wa", "nomor whatsapp", "no whatsapp",
              "mobile", "handphone", "ponsel", "phone number", "telephone", "mobile phone", "no handphone",
              "nomor handphone", "cell", "kontak"),
    "source": ("sumber", "source", "channel", "kanal", "sumber lead", "lead source"),
    "campaign": ("kampanye", "campaign", "kode promo", "promo", "promo code", "kode kampanye", "campaign code",
                 "kode voucher", "voucher code", "kupon", "kode kupon"),
    "product_lines": ("minat", "produk", "interest", "interests", "product", "products", "product line",
                      "product lines", "layanan", "service", "services", "minat produk", "produk diminati",
                      "tertarik", "kebutuhan"),
    "notes": ("catatan", "notes", "note", "keterangan", "komentar", "comment", "comments", "pesan", "message",
              "remarks", "ket"),
}
_HEADER_INDEX = {syn: key for key, syns in HEADERS.items() for syn in syns}


def normalise_header(text):
    """'No. HP*' -> 'no hp'; 'E-Mail' -> 'e mail'; 'Nama_Lengkap' -> 'nama lengkap'."""
    text = (text or "").replace("\ufeff", "").strip().lower()
    text = re.sub(r"[\s_\-.:*/()#]+", " ", text)
    return text.strip()


def header_key(text):
    """The lead field a column heading names, or None."""
    return _HEADER_INDEX.get(normalise_header(text))


# ---------------------------------------------------------------- values

PRODUCT_SYNONYMS = {
    "website": ("website", "websites", "web", "situs", "situs web", "site", "webpage", "landing page",
                "toko online", "online shop", "toko daring", "pembuatan website", "web design", "desain web"),
    "domain_hosting": ("domain_hosting", "domain hosting", "hosting", "domain", "server", "vps", "email hosting",
                       "cloud hosting", "webhosting"),
    "ads_seo": ("ads_seo", "ads seo", "seo", "iklan", "ads", "advertising", "adwords", "google ads", "sem",
                "facebook ads", "instagram ads", "iklan online", "digital marketing", "pemasaran digital"),
    "reseller_franchise": ("reseller_franchise", "reseller franchise", "reseller", "franchise", "waralaba", "mitra",
                           "kemitraan", "agen", "partner", "partnership"),
    "daily_deal": ("daily_deal", "daily deal", "daily deals", "dailydeal", "promo", "voucher", "deal", "deals",
                   "diskon", "kupon"),
}
# longest phrases first, so "daily deal" is found before "deal" and "google ads" before "ads"
_PRODUCT_PHRASES = sorted(((syn, line) for line, syns in PRODUCT_SYNONYMS.items() for syn in syns),
                          key=lambda p: -len(p[0]))

SOURCE_SYNONYMS = {
    "seminar": ("seminar", "webinar", "workshop", "pameran", "expo", "event", "acara", "konferensi", "conference"),
    "print": ("print", "cetak", "media cetak", "print media", "koran", "majalah", "brosur", "flyer", "surat kabar",
              "newspaper", "magazine", "baliho", "spanduk"),
    "social": ("social", "social media", "sosmed", "media sosial", "medsos", "instagram", "facebook", "ig", "fb",
               "tiktok", "twitter", "linkedin", "youtube"),
    "sms": ("sms", "pesan singkat", "text message"),
    "chat": ("chat", "whatsapp", "wa", "live chat", "telegram", "line"),
    "website": ("website", "web", "situs", "form", "formulir", "site"),
    "referral": ("referral", "referensi", "rujukan", "rekomendasi", "teman", "friend", "word of mouth",
                 "recommendation"),
    "daily_deal": ("daily_deal", "daily deal", "dailydeal", "deal"),
    "other": ("other", "lainnya", "lain lain", "lain", "others"),
}
_SOURCE_INDEX = {syn: key for key, syns in SOURCE_SYNONYMS.items() for syn in syns}
_SPLIT = re.compile(r"\s*(?:[,;/+&|\n]|\bdan\b|\band\b|\batau\b|\bor\b)\s*", re.IGNORECASE)


def _norm_words(text):
    return re.sub(r"[\s_\-.]+", " ", (text or "").strip().lower()).strip()


def product_lines_of(text):
    """(product lines in PRODUCT_LINES order of appearance, unknown words) of a free-text interest
    cell: 'Website dan hosting' -> (['website', 'domain_hosting'], []), 'Jasa SEO' -> (['ads_seo'], [])."""
    lines, unknown = [], []
    for part in _SPLIT.split(text or ""):
        words = _norm_words(part)
        if not words:
            continue
        found = []
        rest = f" {words} "
        for phrase, line in _PRODUCT_PHRASES:
            token = f" {phrase.replace('_', ' ')} "
            if token in rest:
                found.append((rest.index(token), line))
                rest = rest.replace(token, " | ")
        if not found:
            unknown.append(part.strip())
        for _pos, line in sorted(found):
            if line not in lines:
                lines.append(line)
    return lines, unknown


def source_of(text):
    """The LEAD_SOURCES code a source cell names, or None (the import's own source then)."""
    words = _norm_words(text)
    if not words:
        return None
    if words.replace(" ", "_") in LEAD_SOURCES:
        return words.replace(" ", "_")
    return _SOURCE_INDEX.get(words)


# ---------------------------------------------------------------- rows

@dataclass
class Problem:
    code: str  # no_name, no_contact, bad_email, bad_phone (rejecting); unknown_product, unknown_source (warnings)
    value: str | None = None

    def as_dict(self):
        return {"code": self.code, "value": self.value}


REJECTING = ("no_name", "no_contact", "bad_email", "bad_phone")


def problem_text(code, value=None):
    """A problem in words (in the request's language; English in a job)."""
    if code == "no_name":
        return _("No name.")
    if code == "no_contact":
        return _("Neither an email address nor a phone number.")
    if code == "bad_email":
        return _("Not a valid email address: %(value)s", value=value or "")
    if code == "bad_phone":
        return _("Not a valid phone number: %(value)s", value=value or "")
    if code == "unknown_product":
        return _("Unknown product interest kept in the notes: %(value)s", value=value or "")
    if code == "unknown_source":
        return _("Unknown source, the import's source is used: %(value)s", value=value or "")
    return value or code


@dataclass
class Row:
    number: int  # the line in the file (the header is line 1 when it is the first)
    name: str | None = None
    company: str | None = None
    email: str | None = None
    phone: str | None = None
    source: str | None = None
    campaign: str | None = None
    product_lines: list = field(default_factory=list)
    notes: str | None = None
    problems: list = field(default_factory=list)  # [Problem] that reject the row
    warnings: list = field(default_factory=list)  # [Problem] that do not

    @property
    def ok(self):
        return not self.problems

    def capture_fields(self):
        """What services.capture takes from the row."""
        return {"name": self.name, "company": self.company, "email": self.email, "phone": self.phone,
                "campaign": self.campaign, "product_lines": list(self.product_lines), "notes": self.notes}


@dataclass
class Parsed:
    delimiter: str
    header_line: int
    columns: dict  # column index -> lead field (None: kept in the notes)
    headers: list
    rows: list  # [Row]

    @property
    def total(self):
        return len(self.rows)


def _clean(value, limit=None):
    value = re.sub(r"\s+", " ", (value or "").replace("\ufeff", "")).strip()
    return (value[:limit] if limit else value) or None


def build_row(number, cells, columns, headers):
    """One Row from a line's cells (pure; validates the email and the phone)."""
    values = {}
    extra = []
    for index, cell in enumerate(cells):
        key = columns.get(index)
        text = (cell or "").strip()
        if not text:
            continue
        if key is None:
            label = headers[index].strip() if index < len(headers) and headers[index].strip() else f"#{index + 1}"
            extra.append(f"{label}: {text}")
        elif key in ("notes", "product_lines"):
            values.setdefault(key, []).append(text)
        else:
            values.setdefault(key, text)  # the first non-empty of two columns of the same field
    row = Row(number=number)
    row.name = _clean(values.get("name"), NAME_MAX)
    row.company = _clean(values.get("company"), COMPANY_MAX)
    row.campaign = _clean(values.get("campaign"), CAMPAIGN_MAX)
    notes = list(values.get("notes", []))
    for text in values.get("product_lines", []):
        lines, unknown = product_lines_of(text)
        row.product_lines += [ln for ln in lines if ln not in row.product_lines]
        for word in unknown:
            row.warnings.append(Problem("unknown_product", word))
            notes.append(f"{_('Interest')}: {word}")
    raw_source = _clean(values.get("source"))
    if raw_source:
        row.source = source_of(raw_source)
        if row.source is None:
            row.warnings.append(Problem("unknown_source", raw_source))
            notes.append(f"{_('Source')}: {raw_source}")
    notes += extra
    row.notes = "\n".join(notes)[:NOTES_MAX] or None
    if not row.name:
        row.problems.append(Problem("no_name"))
    raw_email, raw_phone = _clean(values.get("email")), _clean(values.get("phone"))
    if raw_email:
        try:
            row.email = validate_email(raw_email, check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            row.problems.append(Problem("bad_email", raw_email))
    if raw_phone:
        try:
            row.phone = normalise_phone(raw_phone)
        except InvalidPhone:
            row.problems.append(Problem("bad_phone", raw_phone))
    if not raw_email and not raw_phone:
        row.problems.append(Problem("no_contact"))
    return row


# ---------------------------------------------------------------- the file

def decode(data):
    """The uploaded bytes as text: UTF-8 (a byte order mark is dropped), UTF-16 with its mark, else cp1252."""
    if isinstance(data, str):
        return data.lstrip("\ufeff")
    if len(data) > MAX_BYTES:
        raise ImportFileError(_("The file is larger than %(mb)d MB.", mb=MAX_BYTES // (1024 * 1024)))
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ImportFileError(_("The file is not a text (CSV) file.")) from exc
    if b"\x00" in data[:4096]:
        raise ImportFileError(_("The file is not a text (CSV) file."))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _split_line(line, delimiter):
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return []


def _find_header(lines):
    """(line index, delimiter, {column: field}) of the header row, or None."""
    for index, line in enumerate(lines[:HEADER_SCAN_LINES]):
        if not line.strip():
            continue
        best = None
        for delimiter in DELIMITERS:
            cells = _split_line(line, delimiter)
            keys = [header_key(c) for c in cells]
            known = {k for k in keys if k}
            if "name" in known and ({"email", "phone"} & known):
                score = (len(known), len(cells))
                if best is None or score > best[0]:
                    columns = {}
                    seen_name = False
                    for i, k in enumerate(keys):
                        if k == "name" and seen_name:
                            columns[i] = None  # a second name column goes to the notes
                            continue
                        seen_name = seen_name or k == "name"
                        columns[i] = k
                    best = (score, delimiter, columns, cells)
        if best:
            return index, best[1], best[2], best[3]
    return None


def parse(text):
    """The header and every non-empty row of the CSV text (see the module's docstring)."""
    text = (text or "").lstrip("\ufeff")
    if len(text.encode("utf-8", errors="replace")) > MAX_BYTES * 2:  # cp1252 text grows a little as UTF-8
        raise ImportFileError(_("The file is larger than %(mb)d MB.", mb=MAX_BYTES // (1024 * 1024)))
    lines = text.splitlines()
    found = _find_header(lines)
    if found is None:
        raise ImportFileError(_("No usable header row: the first row must name the columns, with at least a name "
                                "(nama) and an email (email) or a phone (telepon / HP / WA) column."))
    header_index, delimiter, columns, headers = found
    body = "\n".join(lines[header_index + 1:])
    reader = csv.reader(io.StringIO(body), delimiter=delimiter)
    rows = []
    try:
        for record in reader:
            if not any((c or "").strip() for c in record):
                continue
            if len(rows) >= MAX_ROWS:
                raise ImportFileError(_("The file has more than %(max)d rows; split it into smaller files.",
                                        max=MAX_ROWS))
            # the line number of the record's first line in the file (1-based)
            number = header_index + 1 + reader.line_num - _lines_in(record) + 1
            rows.append(build_row(number, record, columns, headers))
    except csv.Error as exc:
        raise ImportFileError(_("The file could not be read as CSV near line %(line)d.",
                                line=header_index + 1 + reader.line_num)) from exc
    return Parsed(delimiter=delimiter, header_line=header_index + 1, columns=columns, headers=headers, rows=rows)


def _lines_in(record):
    """How many physical lines a record spans (quoted cells may hold line breaks)."""
    return 1 + sum(c.count("\n") for c in record)


def parse_bytes(data):
    return parse(decode(data))
