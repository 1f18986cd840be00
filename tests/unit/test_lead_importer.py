"""The lead CSV reader (helpdesk.leads.importer): encodings, delimiters, Indonesian and English
headers with synonyms, product line words, bad rows with their reasons, no header, the limits."""
import pytest

from helpdesk.leads import importer
from helpdesk.leads.importer import ImportFileError, decode, parse, parse_bytes, product_lines_of, source_of


def codes(row):
    return [p.code for p in row.problems]


def test_comma_file_in_english():
    rows = parse_bytes(b"Name,Company,Email,Phone\nBudi Santoso,PT Maju,Budi@Example.COM,0812-3456-7890\n").rows
    assert len(rows) == 1
    row = rows[0]
    assert (row.number, row.name, row.company, row.email, row.phone) == (
        2, "Budi Santoso", "PT Maju", "budi@example.com", "+6281234567890")
    assert row.ok and row.problems == []


def test_semicolon_file_from_indonesian_excel_with_bom():
    data = "\ufeffNama;Perusahaan;Surel;No. HP;Sumber;Kode Promo;Minat;Catatan\n" \
           "Siti Aminah;CV Sejahtera, Tbk;siti@contoh.co.id;62812 1111 2222;Seminar;SEMINAR-JKT;website, hosting;Datang ke booth\n"
    parsed = parse_bytes(data.encode("utf-8"))
    assert parsed.delimiter == ";"
    row = parsed.rows[0]
    # the comma inside a semicolon file stays in the company name
    assert row.company == "CV Sejahtera, Tbk"
    assert row.email == "siti@contoh.co.id"
    assert row.phone == "+6281211112222"
    assert row.source == "seminar"
    assert row.campaign == "SEMINAR-JKT"
    assert row.product_lines == ["website", "domain_hosting"]
    assert row.notes == "Datang ke booth"


def test_cp1252_file_is_read():
    data = "Nama;Email\nJosé Müller;jose@contoh.id\n".encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert decode(data).startswith("Nama;Email")
    assert parse_bytes(data).rows[0].name == "José Müller"


def test_utf8_without_bom_and_utf16_with_bom():
    text = "nama,email\nDewi Ayu,dewi@contoh.id\n"
    assert parse_bytes(text.encode("utf-8")).rows[0].name == "Dewi Ayu"
    assert parse_bytes(text.encode("utf-16")).rows[0].email == "dewi@contoh.id"


def test_tab_separated_file():
    assert parse("Nama\tWA\nAgus\t0813 9999 8888\n").rows[0].phone == "+6281399998888"


@pytest.mark.parametrize("header, field", [
    ("nama", "name"), ("Nama Lengkap", "name"), ("Full name", "name"),
    ("perusahaan", "company"), ("Nama Perusahaan", "company"), ("Instansi", "company"),
    ("E-mail", "email"), ("surel", "email"), ("Alamat Email", "email"),
    ("Telepon", "phone"), ("HP", "phone"), ("No HP", "phone"), ("No. HP", "phone"), ("WhatsApp", "phone"),
    ("WA", "phone"), ("Phone Number", "phone"),
    ("Sumber", "source"), ("source", "source"),
    ("Kampanye", "campaign"), ("Kode promo", "campaign"), ("promo", "campaign"),
    ("Minat", "product_lines"), ("Produk", "product_lines"), ("Interest", "product_lines"),
    ("product lines", "product_lines"),
    ("Catatan", "notes"), ("Notes", "notes"), ("Keterangan", "notes"),
    ("Kota", None),
])
def test_header_synonyms(header, field):
    assert importer.header_key(header) == field


@pytest.mark.parametrize("text, lines, unknown", [
    ("Website", ["website"], []),
    ("web, situs", ["website"], []),
    ("hosting / domain", ["domain_hosting"], []),
    ("SEO dan iklan", ["ads_seo"], []),
    ("Google Ads", ["ads_seo"], []),
    ("reseller; waralaba", ["reseller_franchise"], []),
    ("Franchise", ["reseller_franchise"], []),
    ("daily deal", ["daily_deal"], []),
    ("promo", ["daily_deal"], []),
    ("Jasa pembuatan website dan SEO", ["website", "ads_seo"], []),
    ("website, kursus memasak", ["website"], ["kursus memasak"]),
    ("", [], []),
])
def test_product_line_words(text, lines, unknown):
    assert product_lines_of(text) == (lines, unknown)


@pytest.mark.parametrize("text, source", [
    ("Seminar", "seminar"), ("webinar", "seminar"), ("Koran", "print"), ("Media Sosial", "social"),
    ("Instagram", "social"), ("SMS", "sms"), ("referensi", "referral"), ("daily_deal", "daily_deal"),
    ("Lainnya", "other"), ("pos merpati", None), ("", None),
])
def test_source_words(text, source):
    assert source_of(text) == source


def test_bad_rows_carry_their_reasons_and_good_rows_are_kept():
    text = ("Nama,Email,Telepon,Minat,Kota\n"
            "Budi,budi@contoh.id,,website,Bandung\n"
            ",tanpa.nama@contoh.id,,,\n"
            "Tanpa Kontak,,,,\n"
            "Email Salah,bukan-email,,,\n"
            "Telepon Salah,,12,,\n"
            "Dua Salah,x@,abc,,\n"
            "Minat Aneh,aneh@contoh.id,,kursus menjahit,\n")
    rows = parse(text).rows
    assert [r.number for r in rows] == [2, 3, 4, 5, 6, 7, 8]
    assert [codes(r) for r in rows] == [[], ["no_name"], ["no_contact"], ["bad_email"], ["bad_phone"],
                                       ["bad_email", "bad_phone"], []]
    # an unknown column and an unknown product word are kept in the notes, as warnings, not rejections
    assert rows[0].notes == "Kota: Bandung"
    assert rows[6].ok and [w.code for w in rows[6].warnings] == ["unknown_product"]
    assert "kursus menjahit" in rows[6].notes
    # the reasons in words carry the offending value
    assert "bukan-email" in importer.problem_text(rows[3].problems[0].code, rows[3].problems[0].value)
    assert importer.problem_text("no_contact") == "Neither an email address nor a phone number."


def test_unknown_source_falls_back_and_is_noted():
    row = parse("Nama,Email,Sumber\nAni,ani@contoh.id,pos merpati\n").rows[0]
    assert row.ok and row.source is None
    assert [w.code for w in row.warnings] == ["unknown_source"]
    assert "pos merpati" in row.notes


def test_empty_lines_are_skipped_and_line_numbers_follow_the_file():
    text = 'Nama,Email,Catatan\n\nAni,ani@contoh.id,"baris satu\nbaris dua"\n,,\nBudi,budi@contoh.id,\n'
    rows = parse(text).rows
    assert [(r.number, r.name) for r in rows] == [(3, "Ani"), (6, "Budi")]
    assert rows[0].notes == "baris satu\nbaris dua"


def test_header_after_a_title_row_is_found():
    parsed = parse("Daftar peserta seminar 12 Desember\n\nNama;Email\nAni;ani@contoh.id\n")
    assert parsed.header_line == 3
    assert [(r.number, r.email) for r in parsed.rows] == [(4, "ani@contoh.id")]


@pytest.mark.parametrize("text", [
    "",
    "Budi,budi@contoh.id\nAni,ani@contoh.id\n",  # no header at all
    "Nama,Kota\nBudi,Bandung\n",  # a name but neither email nor phone column
    "Email,Telepon\nbudi@contoh.id,0812\n",  # no name column
])
def test_a_file_without_a_usable_header_is_refused(text):
    with pytest.raises(ImportFileError) as exc:
        parse(text)
    assert "header" in exc.value.message


def test_binary_file_is_refused():
    with pytest.raises(ImportFileError):
        decode(b"PK\x03\x04\x00\x00binary")


def test_row_limit(monkeypatch):
    monkeypatch.setattr(importer, "MAX_ROWS", 3)
    ok = "Nama,Email\n" + "".join(f"Orang {i},o{i}@contoh.id\n" for i in range(3))
    assert len(parse(ok).rows) == 3
    with pytest.raises(ImportFileError) as exc:
        parse(ok + "Satu Lagi,lagi@contoh.id\n")
    assert "3" in exc.value.message


def test_the_real_row_limit_is_ten_thousand():
    text = "Nama,Email\n" + "".join(f"Orang {i},o{i}@contoh.id\n" for i in range(importer.MAX_ROWS + 1))
    with pytest.raises(ImportFileError):
        parse(text)


def test_size_limit():
    header = b"Nama,Email\n"
    big = header + b"x" * (importer.MAX_BYTES - len(header) + 1)
    with pytest.raises(ImportFileError) as exc:
        decode(big)
    assert "5 MB" in exc.value.message


def test_two_phone_columns_take_the_first_filled_one():
    row = parse("Nama,HP,WhatsApp\nAni,,0812 3333 4444\n").rows[0]
    assert row.phone == "+6281233334444"
