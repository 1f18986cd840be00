"""Fuzzing: parse() raises nothing but ParseError on any bytes; the quote stripper never raises."""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpdesk.mail.parser import ParsedMessage, ParseError, parse
from helpdesk.mail.quotes import visible_html, visible_text

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HEADER_NAMES = ["From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID", "In-Reply-To", "References",
                "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "Content-ID", "MIME-Version",
                "Delivered-To", "X-Original-To", "Fro ", "X-Junk", ""]
TOKENS = ["=?utf-8?q?", "=?utf-8?b?", "?=", "=?", "?", "<", ">", "@", '"', "\\", ";", ":", ",", "(", ")",
          "multipart/mixed", "multipart/alternative", "multipart/related", "multipart/report",
          "message/rfc822", "message/delivery-status", "text/plain", "text/html", "boundary=", "b1", "b2",
          "charset=", "ks_c_5601-1987", "gb2312", "x-unknown", "utf-7", "iso-2022-jp", "base64",
          "quoted-printable", "x-uuencode", "8bit", "filename*=", "filename*0*=", "utf-8''%E2%82", "name=",
          "report-type=delivery-status", "attacker@evil.com", "=40", "=3C", " ", "\t", "\r\n ", "\n ",
          "é", "转发", "\x00", "begin 644 a.txt", "end"]

token_text = st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=8)), max_size=12).map("".join)
raw_bytes = st.binary(max_size=60)
header = st.tuples(st.sampled_from(HEADER_NAMES), st.one_of(token_text, raw_bytes.map(lambda b: b.decode("latin-1"))))


@st.composite
def mime_body(draw, depth=0):
    parts = []
    if depth < 3 and draw(st.booleans()):
        boundary = draw(st.sampled_from(["b1", "b2", "b1x", ""]))
        for _ in range(draw(st.integers(0, 3))):
            hdrs = draw(st.lists(header, max_size=4))
            head = "".join(f"{n}: {v}\n" for n, v in hdrs).encode("utf-8", "surrogateescape")
            parts.append(b"--" + boundary.encode() + b"\n" + head + b"\n" + draw(mime_body(depth + 1)))
        if draw(st.booleans()):
            parts.append(b"--" + boundary.encode() + b"--\n")
        return b"\n".join(parts)
    return draw(st.one_of(raw_bytes, token_text.map(lambda t: t.encode("utf-8", "surrogateescape"))))


@st.composite
def messages(draw):
    prefix = draw(st.sampled_from([b"", b"From someone Tue Mar  3 09:15:00 2026\n", b"\xef\xbb\xbf", b"garbage\n"]))
    hdrs = draw(st.lists(header, max_size=10))
    head = "".join(f"{n}: {v}\n" for n, v in hdrs).encode("utf-8", "surrogateescape")
    sep = draw(st.sampled_from([b"\n", b"\r\n", b""]))
    raw = prefix + head + sep + draw(mime_body())
    if draw(st.booleans()):
        raw = raw.replace(b"\n", b"\r\n")
    return raw


def check(raw: bytes):
    try:
        msg = parse(raw)
    except ParseError:
        return
    assert isinstance(msg, ParsedMessage)
    assert isinstance(msg.body_text, str) and "\x00" not in msg.body_text
    assert msg.from_addr is None or (msg.from_addr == msg.from_addr.lower() and "@" in msg.from_addr)
    for att in msg.attachments:
        assert isinstance(att.data, bytes) and att.filename and "/" not in att.filename
    visible_text(msg.body_text)
    if msg.body_html:
        visible_html(msg.body_html)


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes(raw):
    check(raw)


@FUZZ
@given(messages())
def test_random_structured_messages(raw):
    check(raw)


@FUZZ
@given(st.lists(st.one_of(st.sampled_from(["On ", "Pada ", " wrote:", " menulis:", "> ", ">", "-- ", "\n",
                                           "From: ", "Sent: ", "Dari: ", "Dikirim: ", "To: ", "Subject: ",
                                           "-----Original Message-----", "Sent from my iPhone", "@", "1"]),
                          st.text(max_size=10)), max_size=60).map("".join))
def test_visible_text_never_raises(text):
    out = visible_text(text)
    assert isinstance(out, str)
    if text.strip():
        assert out  # never empty for non-empty input


@FUZZ
@given(st.lists(st.one_of(st.sampled_from(["<div>", "</div>", "<blockquote type=cite>", "<blockquote>",
                                           '<div class="gmail_quote">', '<div id="divRplyFwdMsg">', "<hr>",
                                           "<br>", "<p>", "</p>", "<!--", "-->", "<style>", "</style>",
                                           "wrote:", "From: ", "Sent: ", "&amp;", "&#", "<", ">"]),
                          st.text(max_size=10)), max_size=60).map("".join))
def test_visible_html_never_raises(html):
    out = visible_html(html)
    assert out is None or isinstance(out, str)
