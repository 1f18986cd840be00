"""helpdesk.mail.parser on messages built here: charsets, broken headers, spoofing, MIME shapes."""
import base64
import binascii
import hashlib
import time
from datetime import datetime, timezone
from email.message import EmailMessage

import pytest

from helpdesk.mail.parser import ParseError, decode_bytes, decode_header_value, parse


def mail(headers: str, body: bytes | str = b"Halo\n", crlf: bool = False) -> bytes:
    body = body.encode() if isinstance(body, str) else body
    raw = headers.strip("\n").encode("utf-8") + b"\n\n" + body
    return raw.replace(b"\n", b"\r\n") if crlf else raw


BASIC = """From: Budi Santoso <Budi@Example.co.id>
To: support@example.com, "Tim CS" <cs@example.com>
Cc: boss@example.com
Reply-To: budi.reply@example.co.id
Subject: Website tidak bisa dibuka
Date: Tue, 03 Mar 2026 09:15:00 +0700
Message-ID: <abc.123@mail.example.co.id>
In-Reply-To: <prev-1@example.com>
References: <root-0@example.com>
 <prev-1@example.com>
Delivered-To: support+t12.sig@example.com
X-Original-To: support@example.com
Content-Type: text/plain; charset=utf-8
"""


def test_basic_fields():
    m = parse(mail(BASIC, "Selamat pagi,\nwebsite kami mati.\n"))
    assert m.message_id == "abc.123@mail.example.co.id"
    assert m.in_reply_to == ["prev-1@example.com"]
    assert m.references == ["root-0@example.com", "prev-1@example.com"]
    assert m.subject == "Website tidak bisa dibuka"
    assert (m.from_addr, m.from_name) == ("budi@example.co.id", "Budi Santoso")
    assert m.to == ["support@example.com", "cs@example.com"]
    assert m.cc == ["boss@example.com"]
    assert m.reply_to == ["budi.reply@example.co.id"]
    assert m.delivered_to == ["support+t12.sig@example.com", "support@example.com"]
    assert m.date == datetime(2026, 3, 3, 2, 15, tzinfo=timezone.utc)
    assert m.body_text == "Selamat pagi,\nwebsite kami mati."
    assert m.body_html is None
    assert m.attachments == []
    assert m.header("SUBJECT") == "Website tidak bisa dibuka"
    assert m.header_all("references") == ["<root-0@example.com> <prev-1@example.com>"]
    assert m.headers[0] == ("From", "Budi Santoso <Budi@Example.co.id>")
    assert len(m.content_hash) == 64


def test_mbox_from_line_and_crlf_are_tolerated():
    raw = b"From budi@example.com Tue Mar  3 09:15:00 2026\n" + mail(BASIC, "Isi\n")
    m = parse(raw)
    assert m.from_addr == "budi@example.co.id" and m.subject == "Website tidak bisa dibuka"
    assert parse(mail(BASIC, "Isi\n", crlf=True)).body_text == "Isi"
    # a real "From:" header first is not an mbox line
    assert parse(b"From: a@example.com\nSubject: x\n\nbody").from_addr == "a@example.com"


def test_missing_everything():
    m = parse(b"\n\njust a body")
    assert (m.message_id, m.subject, m.from_addr, m.date) == (None, "", None, None)
    assert m.body_text == "just a body"
    empty = parse(b"")
    assert empty.body_text == "" and empty.attachments == []


def test_blank_message_id_is_none_and_duplicates_take_the_first():
    m = parse(b"Message-ID:   \nSubject: one\nSubject: two\nFrom: a@example.com\nFrom: b@example.com\n\nx")
    assert m.message_id is None
    assert m.subject == "one"
    assert m.from_addr == "a@example.com"
    assert m.header_all("subject") == ["one", "two"]
    assert parse(b"Message-ID: bare-id@host\n\nx").message_id == "bare-id@host"


def test_broken_date_is_none_and_naive_date_is_utc():
    assert parse(b"Date: someday soon\n\nx").date is None
    assert parse(b"Date: 3 Mar 2026 10:00:00\n\nx").date == datetime(2026, 3, 3, 10, 0, tzinfo=timezone.utc)


def test_encoded_words_subject_and_names():
    raw = mail("""From: =?utf-8?q?Dewi_Lestari?= <dewi@example.com>
Subject: =?utf-8?b?VGVyaW1hIGthc2loIPCfmYI=?= =?ISO-8859-1?Q?caf=E9?=
Content-Type: text/plain
""")
    m = parse(raw)
    assert m.subject == "Terima kasih 🙂café"
    assert m.from_name == "Dewi Lestari"


def test_encoded_words_in_odd_places():
    m = parse(mail('From: "=?utf-8?q?Budi_S=C3=A4ntoso?=" <budi@example.com>\n'
                   "Subject: Re:=?utf-8?q?_Tagihan?=\nTo: =?utf-8?q?Tim?= <cs@example.com>"))
    assert (m.from_name, m.from_addr) == ("Budi Säntoso", "budi@example.com")
    assert m.subject == "Re: Tagihan"
    assert m.to == ["cs@example.com"]


def test_encoded_word_split_multibyte_character_and_spaces_inside():
    # one UTF-8 character split over two words; an (illegal) encoded-word with spaces inside
    word1 = "=?utf-8?b?" + base64.b64encode("Halo é".encode()[:-1]).decode() + "?="
    word2 = "=?utf-8?b?" + base64.b64encode("Halo é".encode()[-1:]).decode() + "?="
    assert decode_header_value(f"{word1} {word2}") == "Halo é"
    assert decode_header_value("=?us-ascii?Q?ABC / 123 / West?=") == "ABC / 123 / West"
    assert decode_header_value("Re: =?utf-7?Q?+ANw-bermittlung?= ok") == "Re: Übermittlung ok"


def test_raw_8bit_headers_use_the_declared_charset():
    subject = "Pesan penting café".encode("cp1252")
    raw = b"Subject: " + subject + b"\nContent-Type: text/plain; charset=windows-1252\n\nx"
    assert parse(raw).subject == "Pesan penting café"
    raw = "Subject: Ümlaut überall\n\nx".encode("utf-8")
    assert parse(raw).subject == "Ümlaut überall"


def test_charset_aliases_and_mislabels():
    ks = "Привет, мир".encode("cp949")
    m = parse(b"Content-Type: text/plain; charset=ks_c_5601-1987\n\n" + ks)
    assert m.body_text == "Привет, мир"
    # GB2312 text labelled ISO-8859-1 (common in spam and old Chinese mailers)
    gb = "转发：整体提升企业服务水平".encode("gb2312")
    m = parse(b"Subject: " + gb + b"\nContent-Type: text/plain; charset=iso-8859-1\n\n" + gb)
    assert m.subject == "转发：整体提升企业服务水平"
    assert m.body_text == "转发：整体提升企业服务水平"
    # UTF-8 labelled Latin-1
    assert parse(b"Content-Type: text/plain; charset=iso-8859-1\n\n" + "Grüße".encode()).body_text == "Grüße"
    # a real Latin-1 text stays Latin-1
    assert parse(b"Content-Type: text/plain; charset=iso-8859-1\n\n" + "Grüße".encode("latin-1")).body_text == "Grüße"


def test_unknown_charset_falls_back_without_losing_text():
    m = parse(b"Content-Type: text/plain; charset=x-no-such-charset\n\n" + "Gr\xfc\xdfe".encode("latin-1"))
    assert m.body_text == "Grüße"
    assert any("read as" in d for d in m.defects)
    m = parse(b"Content-Type: text/plain; charset=x-no-such-charset\n\n" + "naïve".encode())
    assert m.body_text == "naïve"
    # never fails: every byte value survives somehow
    text = decode_bytes(bytes(range(256)), "utf-8")
    assert len(text) >= 128


def test_iso_2022_jp_and_shift_jis_mislabelled():
    body = "このアドレス".encode("iso2022_jp")
    m = parse(b"Subject: =?ISO-2022-JP?B?" + base64.b64encode("メルマガ解除".encode("iso2022_jp")) +
              b"?=\nContent-Type: text/plain; charset=iso-2022-jp\n\n" + body)
    assert m.subject == "メルマガ解除" and m.body_text == "このアドレス"
    sjis = "ツール".encode("cp932")
    m = parse(b"Subject: " + sjis + b"\nContent-Type: text/html; charset=iso-2022-jp\n\n<p>x</p>")
    assert m.subject == "ツール"


def test_utf8_mixed_with_latin1_in_one_part():
    data = "UTF-8 äöü 差出人 / ".encode() + "Latin-1 äöü".encode("latin-1") + b" \x81"
    assert decode_bytes(data, "iso-gb2312") == "UTF-8 äöü 差出人 / Latin-1 äöü \x81"


def test_microsoft_iso_2022_jp_with_nec_specials():
    # CP50220 writes ① as JIS row 13, which Python's iso2022 codecs refuse
    body = b"\x1b$B-!\x1b(B 1\x1b$B!\"\x1b(B ok"
    m = parse(b"Content-Type: text/plain; charset=iso-2022-jp\n\n" + body)
    assert m.body_text == "① 1、 ok"


def test_gb2312_inside_mostly_ascii_text_without_charset():
    gb = "机房环境法规".encode("gb2312")
    m = parse(b"Subject: x\n\n" + gb + b"\nMessage-ID: <a@b>\nFrom: someone@example.com\n" + b"ascii " * 50)
    assert m.body_text.startswith("机房环境法规")
    # a German word is not mistaken for Chinese
    assert parse(b"\n\nDas M\xe4dchen und die Gr\xfc\xdfe aus M\xfcnchen").body_text == \
        "Das Mädchen und die Grüße aus München"


def test_nul_bytes_are_stripped_from_text():
    m = parse(b"Subject: a\x00b\nFrom: c\x00d@example.com\n\nhe\x00llo")
    assert "\x00" not in m.subject and "\x00" not in m.body_text
    assert m.body_text == "hello"


def test_header_that_policy_default_cannot_parse():
    raw = (b"From: \"unterminated <x@example.com>\nTo: ,,,<<@>>, \"\nCc: =?utf-8?q?broken\n"
           b"Content-Type: text/plain; charset=\"utf-8; name*=utf-8''%E2\nContent-Disposition: ;;;\n\nbody")
    m = parse(raw)
    assert m.body_text == "body"
    assert m.to == []


def test_garbled_header_lines_do_not_end_the_header_block():
    raw = (b"---- Original email message ----\nX-Spam: a\nlost folding line without colon\n"
           b"Subject: Contact from Server\nFro : spaced@example.com\nFrom: real@example.com\n\nbody text")
    m = parse(raw)
    assert m.subject == "Contact from Server"
    assert m.header("Fro") == "spaced@example.com"  # "Fro :" is a garbled name, not From
    assert m.from_addr == "real@example.com"
    assert m.body_text == "body text"


# ---------------------------------------------------------------- spoofing


@pytest.mark.parametrize(("from_header", "expected"), [
    ("=?utf-8?q?attacker=40evil.com?= <victim@ok.com>", "victim@ok.com"),
    ("=?utf-8?b?YXR0YWNrZXJAZXZpbC5jb20=?= <victim@ok.com>", "victim@ok.com"),
    ('"=?utf-8?b?YXR0YWNrZXJAZXZpbC5jb20=?="@ok.com', "=?utf-8?b?yxr0ywnrzxjazxzpbc5jb20=?=@ok.com"),
    ("=?utf-8?q?attacker=40evil=2Ecom?=", None),
    ("=?utf-8?Q?attacker@evil.com?=", None),
    ("=?utf-8?q?x?=@victim.example", "=?utf-8?q?x?=@victim.example"),
    ("=?utf-8?Q?attacker?Q?agent?=@victim.example", "=?utf-8?q?attacker?q?agent?=@victim.example"),
    ("=?utf-8?q?victim=40ok.com_=3Cattacker=40evil.com=3E?=", None),
    ('"victim@ok.com" <attacker@evil.com>', "attacker@evil.com"),
])
def test_from_address_comes_from_the_raw_header(from_header, expected):
    m = parse(mail(f"From: {from_header}\nSubject: x"))
    assert m.from_addr == (expected.lower() if expected else None)
    # whatever the display name decodes to, the address never becomes the attacker's
    assert m.from_addr != "attacker@evil.com" or expected == "attacker@evil.com"


def test_spoofed_display_name_is_decoded_for_display_only():
    m = parse(mail("From: =?utf-8?q?attacker=40evil.com?= <victim@ok.com>"))
    assert m.from_name == "attacker@evil.com" and m.from_addr == "victim@ok.com"


def test_unusable_from_addresses():
    assert parse(mail("From: MAILER-DAEMON (Mail Delivery System)")).from_addr is None
    assert parse(mail("From: power quadrant system@example.com")).from_addr is None
    m = parse(mail('From: "Name only" <>, second@example.com'))
    assert m.from_addr == "second@example.com"
    assert parse(mail("From: Claudia.Shu@Yahoo.com.")).from_addr == "claudia.shu@yahoo.com"
    for bad in (".a@example.com", "a..b@example.com", "a.@example.com", "a@example..com", "a@.example.com",
                "user@localhost", "user@printer.local", "user@example.test"):
        assert parse(mail(f"From: {bad}")).from_addr is None, bad


# ---------------------------------------------------------------- MIME shapes


def build_related_mail():
    msg = EmailMessage()
    msg["From"] = "Sari <sari@example.com>"
    msg["Subject"] = "Foto"
    msg.set_content("Lihat foto\n")
    msg.add_alternative('<p>Lihat foto</p><img src="cid:foto1@x"><script>alert(1)</script>', subtype="html")
    html_part = msg.get_payload()[1]
    html_part.add_related(b"\x89PNG-data", maintype="image", subtype="png", cid="<foto1@x>",
                          filename="foto.png")
    msg.add_attachment(b"%PDF-1.4 data", maintype="application", subtype="pdf", filename="invoice.pdf")
    msg.add_attachment(b"\x89PNG-other", maintype="image", subtype="png", cid="<unused@x>")
    return msg.as_bytes()


def test_inline_images_and_attachments():
    m = parse(build_related_mail())
    assert m.body_text == "Lihat foto"
    assert 'src="cid:foto1@x"' in m.body_html and "script" not in m.body_html
    by_type = {(a.filename, a.content_type): a for a in m.attachments}
    foto = by_type[("foto.png", "image/png")]
    assert foto.inline and foto.content_id == "foto1@x" and foto.data == b"\x89PNG-data"
    pdf = by_type[("invoice.pdf", "application/pdf")]
    assert not pdf.inline and pdf.md5 == hashlib.md5(b"%PDF-1.4 data").hexdigest() and pdf.size == 13
    unused = [a for a in m.attachments if a.content_id == "unused@x"][0]
    assert not unused.inline and unused.filename == "attachment.png"


def test_html_only_mail():
    m = parse(mail("Content-Type: text/html; charset=utf-8",
                   "<html><head><title>T</title><style>p{}</style></head><body><p>Satu</p><p>Dua &amp; tiga"
                   "<br>empat</p></body></html>"))
    assert m.body_text == "Satu\n\nDua & tiga\nempat"
    assert "<p>Satu</p>" in m.body_html


def test_empty_plain_alternative_uses_the_html_text():
    raw = mail('Content-Type: multipart/alternative; boundary="b"', """--b
Content-Type: text/plain

--b
Content-Type: text/html

<div>Isi dari HTML</div>
--b--
""")
    assert parse(raw).body_text == "Isi dari HTML"


def test_alternative_branches_keep_their_attachments_once():
    raw = mail('Content-Type: multipart/alternative; boundary="a"', """--a
Content-Type: multipart/mixed; boundary="m"

--m
Content-Type: text/plain

Teks
--m
Content-Type: image/png
Content-Disposition: inline
Content-Transfer-Encoding: base64

aW1n
--m--
--a
Content-Type: multipart/related; boundary="r"

--r
Content-Type: text/html

<p>HTML <img src="cid:logo@x"></p>
--r
Content-Type: image/png
Content-ID: <logo@x>
Content-Transfer-Encoding: base64

bG9nbw==
--r--
--a
Content-Type: text/calendar

BEGIN:VCALENDAR
--a--
""")
    m = parse(raw)
    assert m.body_text == "Teks" and "HTML" in m.body_html
    assert sorted(a.data for a in m.attachments) == [b"BEGIN:VCALENDAR", b"img", b"logo"]
    assert [a.inline for a in m.attachments if a.data == b"logo"] == [True]


def test_attachment_only_and_no_body():
    raw = mail("Content-Type: application/pdf; name=\"laporan.pdf\"\nContent-Transfer-Encoding: base64",
               base64.b64encode(b"%PDF").decode() + "\n")
    m = parse(raw)
    assert m.body_text == "" and m.body_html is None
    assert [(a.filename, a.data) for a in m.attachments] == [("laporan.pdf", b"%PDF")]
    assert parse(b"Subject: kosong\n").body_text == ""


def test_rfc2231_and_encoded_word_filenames():
    raw = mail('Content-Type: multipart/mixed; boundary="b"', """--b
Content-Type: text/plain

isi
--b
Content-Type: application/octet-stream
Content-Disposition: attachment; filename*=utf-8''Laporan%20Keuangan%20%E2%82%AC.xlsx

x
--b
Content-Type: application/octet-stream
Content-Disposition: attachment;
 filename*0*=iso-8859-1''Gr%FC;
 filename*1="sse.txt"

y
--b
Content-Type: application/octet-stream; name="=?utf-8?b?Rm90byBrdMO8LmpwZw==?="

z
--b
Content-Type: text/csv
Content-Disposition: attachment

a,b
--b--
""")
    names = [a.filename for a in parse(raw).attachments]
    assert names == ["Laporan Keuangan €.xlsx", "Grüsse.txt", "Foto ktü.jpg", "attachment.csv"]


def test_filenames_never_carry_paths():
    raw = mail('Content-Type: application/octet-stream; name="../../etc/passwd"')
    assert "/" not in parse(raw).attachments[0].filename


def test_uuencode_transfer_encoding_and_inline_block():
    data = b"Hello uuencode world!\n"
    uu = binascii.b2a_uu(data).decode()
    m = parse(mail("Content-Type: application/octet-stream; name=x.txt\nContent-Transfer-Encoding: x-uuencode",
                   f"begin 644 x.txt\n{uu}`\nend\n"))
    assert m.attachments[0].data == data
    m = parse(mail("Content-Type: text/plain", f"Terlampir.\n\nbegin 644 notes.txt\n{uu}`\nend\n\nSalam\n"))
    assert [(a.filename, a.data) for a in m.attachments] == [("notes.txt", data)]
    assert "begin 644" not in m.body_text and "Terlampir." in m.body_text and "Salam" in m.body_text


def test_nested_message_is_an_eml_attachment_not_our_body():
    inner = b"From: other@example.com\nSubject: Asli\nMessage-ID: <inner@x>\n\nBadan pesan asli\n"
    raw = mail('Subject: Fwd\nContent-Type: multipart/mixed; boundary="b"',
               b"--b\nContent-Type: text/plain\n\nLihat lampiran\n--b\nContent-Type: message/rfc822\n\n" +
               inner + b"\n--b--\n")
    m = parse(raw)
    assert m.body_text == "Lihat lampiran"
    assert "Badan pesan asli" not in m.body_text
    (eml,) = m.attachments
    assert eml.filename == "Asli.eml" and eml.content_type == "message/rfc822"
    assert eml.data == inner.rstrip(b"\n") + b"\n"  # byte-exact original


def test_broken_base64_still_decodes():
    raw = mail("Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64",
               "SGVsbG8gd29y*bGQ\n")  # junk character, missing padding
    assert parse(raw).attachments[0].data.startswith(b"Hello wor")


def test_tnef_stays_as_is():
    raw = mail("Content-Type: application/ms-tnef; name=winmail.dat\nContent-Transfer-Encoding: base64",
               base64.b64encode(b"\x78\x9f\x3e\x22tnef").decode())
    (att,) = parse(raw).attachments
    assert (att.filename, att.content_type, att.data) == ("winmail.dat", "application/ms-tnef", b"\x78\x9f\x3e\x22tnef")


def test_delivery_status_report():
    raw = mail("""From: MAILER-DAEMON@mx.example.com
Subject: Undelivered Mail Returned to Sender
Content-Type: multipart/report; report-type=delivery-status; boundary="r"
""", """--r
Content-Type: text/plain

Your message could not be delivered.
--r
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; Gone@Example.org
Action: failed
Status: 5.1.1 (user unknown)

Final-Recipient: rfc822; later@example.org
Action: delayed
Status: 4.4.1
--r
Content-Type: text/rfc822-headers

From: support@example.com
Message-ID: <t42.sig@example.com>
Subject: Re: ticket

--r--
""")
    m = parse(raw)
    assert m.report_type == "delivery-status"
    assert m.dsn == [{"recipient": "gone@example.org", "action": "failed", "status": "5.1.1"},
                     {"recipient": "later@example.org", "action": "delayed", "status": "4.4.1"}]
    assert m.original_message_id == "t42.sig@example.com"
    assert m.body_text == "Your message could not be delivered."


def test_delivery_report_with_returned_message():
    raw = mail('Content-Type: multipart/report; report-type="delivery-status"; boundary="r"', """--r
Content-Type: text/plain

Gagal.
--r
Content-Type: message/delivery-status

Final-Recipient: rfc822;x@example.org
Action: failed
Status: 5.0.0
--r
Content-Type: message/rfc822

Message-ID: <orig-1@example.com>
Subject: Halo

asli
--r--
""")
    m = parse(raw)
    assert m.original_message_id == "orig-1@example.com"
    assert m.dsn[0]["status"] == "5.0.0"
    assert "asli" not in m.body_text


def test_mixed_text_and_html_parts_are_joined_in_order():
    raw = mail('Content-Type: multipart/mixed; boundary="b"', """--b
Content-Type: text/html

<p>Bagian satu</p>
--b
Content-Type: text/plain

Bagian dua
--b--
""")
    m = parse(raw)
    assert m.body_text == "Bagian satu\n\nBagian dua"
    assert m.body_html.index("Bagian satu") < m.body_html.index("Bagian dua")


def test_content_hash_ignores_trace_headers_but_not_content():
    a = parse(b"Received: from a\nDelivered-To: one@example.com\nFrom: x@example.com\nSubject: s\n\nbody")
    b = parse(b"Received: from b\nDelivered-To: two@example.com\nFrom: x@example.com\nSubject: s\n\nbody")
    c = parse(b"Received: from b\nFrom: x@example.com\nSubject: s\n\nbody 2")
    assert a.content_hash == b.content_hash != c.content_hash


def test_non_bytes_input_is_a_parse_error():
    with pytest.raises(ParseError):
        parse("a str")  # type: ignore[arg-type]


def test_deep_nesting_does_not_crash():
    depth = 200
    head = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(depth))
    raw = ("Subject: deep\n" + head + "Content-Type: text/plain\n\ninner\n").encode()
    try:
        m = parse(raw)
    except ParseError:
        return
    assert m.subject == "deep"


def test_deeply_nested_html_stays_fast_and_keeps_its_text():
    # the sanitiser is quadratic in nesting depth: 20,000 open <div>s took seconds before flattening
    raw = b"Content-Type: text/html\n\n" + b"<div><blockquote>" * 20000 + b"isi pesan"
    start = time.perf_counter()
    m = parse(raw)
    assert time.perf_counter() - start < 3
    assert m.body_text == "isi pesan" and "isi pesan" in m.body_html
    shallow = parse(b"Content-Type: text/html\n\n<div><div><p>a</p></div></div>")
    assert "<div><div><p>a</p></div></div>" in shallow.body_html  # normal structure untouched
