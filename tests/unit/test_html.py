"""The message HTML sanitiser (nh3) and the plain-text helpers: pure, no app needed."""
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpdesk.tickets.html import ALLOWED_ATTRS, ALLOWED_TAGS, html_to_text, preview, sanitize

SAFE_SCHEMES = {"", "http", "https", "mailto", "cid"}
GENERIC_ATTRS = {"title", "lang"}  # nh3/ammonia's inert generic attributes, allowed on every tag

# Payloads from the usual XSS cheat sheets; none may leave anything executable behind.
PAYLOADS = [
    "<script>alert('xss')</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=\"alert('xss')\">",
    "<img src=x OnErRoR=alert(1)//",
    "<body onload=alert(1)>",
    "<a href=\"javascript:alert(1)\">klik</a>",
    "<a href=\"JaVaScRiPt:alert(1)\">klik</a>",
    "<a href=\"&#106;avascript:alert(1)\">klik</a>",
    "<a href=\"java&#x09;script:alert(1)\">klik</a>",
    "<a href=\" javascript:alert(1)\">klik</a>",
    "<a href=\"vbscript:msgbox(1)\">klik</a>",
    "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">klik</a>",
    "<img src=\"data:text/html,<script>alert(1)</script>\">",
    "<iframe src=\"https://evil.example/\"></iframe>",
    "<iframe srcdoc=\"<script>alert(1)</script>\"></iframe>",
    "<style>body{display:none}</style>",
    "<p style=\"background:url(javascript:alert(1))\">teks</p>",
    "<link rel=stylesheet href=//evil.example/x.css>",
    "<svg onload=alert(1)><circle r=1 /></svg>",
    "<svg><script>alert(1)</script></svg>",
    "<svg><a xlink:href=\"javascript:alert(1)\"><text x=0 y=20>klik</text></a></svg>",
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\"></noscript>",
    "<object data=\"https://evil.example/x.swf\"></object><embed src=\"https://evil.example/x.swf\">",
    "<form action=\"https://evil.example/\"><input name=password><button>OK</button></form>",
    "<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example/\">",
    "<base href=\"https://evil.example/\">",
    "<div onclick=\"alert(1)\" id=\"x\" class=\"btn\">teks</div>",
    "<img src=\"x\" srcset=\"javascript:alert(1) 1x\">",
    "<!--<img src=x onerror=alert(1)>-->",
    "<<script>script>alert(1)//<</script>/script>",
    "<a href=\"https://example.com/\" target=\"_blank\" onmouseover=\"alert(1)\">link</a>",
]


class _Collect(HTMLParser):
    """Every start tag with its attributes, as a browser's tokenizer would see them."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def assert_inert(html):
    """Only allowed tags and attributes, no handlers, no dangerous URLs, no raw script text."""
    parser = _Collect()
    parser.feed(html)
    parser.close()
    for tag, attrs in parser.tags:
        assert tag in ALLOWED_TAGS, (tag, html)
        for name, value in attrs.items():
            allowed = ALLOWED_ATTRS.get(tag, set()) | GENERIC_ATTRS | ({"rel"} if tag == "a" else set())
            assert name in allowed, (tag, name, html)
            assert not name.startswith("on"), html
            if name in ("href", "src"):
                scheme = urlsplit((value or "").strip()).scheme.lower()
                if tag == "img" and name == "src" and scheme == "data":
                    assert value.lower().startswith(("data:image/png", "data:image/jpeg", "data:image/gif",
                                                     "data:image/webp", "data:image/jpg", "data:image/bmp")), html
                else:
                    assert scheme in SAFE_SCHEMES, (value, html)
    lowered = html.lower()  # text is escaped, so none of these can appear except as a real tag
    for needle in ("<script", "<style", "<iframe", "<svg", "<math", "<object", "<embed", "<form", "<meta",
                   "<base", "<link"):
        assert needle not in lowered, (needle, html)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_is_neutralised(payload):
    out = sanitize(f"<p>Halo tim support,</p>{payload}<p>Terima kasih</p>")
    assert_inert(out)
    assert out.startswith("<p>Halo tim support,</p>")  # the harmless text before it survives


@pytest.mark.parametrize("payload", PAYLOADS)
def test_sanitising_is_stable(payload):
    once = sanitize(payload) or ""
    assert (sanitize(once) or "") == once


def test_ordinary_mail_formatting_survives():
    html = ("<div><p>Yth. <b>Tim Support</b>,</p><ul><li>Domain: <i>majujaya.co.id</i></li>"
            "<li>Paket: <strong>Bisnis</strong></li></ul><blockquote>pesan sebelumnya</blockquote>"
            "<table><tr><td colspan=\"2\">Total</td></tr></table>"
            "<a href=\"https://majujaya.co.id/invoice/12\" title=\"Invoice\">invoice</a>"
            "<img src=\"cid:logo@majujaya\" alt=\"logo\" width=\"80\">"
            "<img src=\"data:image/png;base64,iVBORw0KGgo=\" alt=\"ttd\"></div>")
    out = sanitize(html)
    assert_inert(out)
    for kept in ("<b>Tim Support</b>", "<li>Paket: <strong>Bisnis</strong></li>", "<blockquote>",
                 '<td colspan="2">Total</td>', 'href="https://majujaya.co.id/invoice/12"', 'title="Invoice"',
                 'src="cid:logo@majujaya"', 'src="data:image/png;base64,iVBORw0KGgo="'):
        assert kept in out, (kept, out)


def test_links_get_a_safe_rel():
    out = sanitize('<a href="https://example.com/" rel="opener">x</a>')
    assert 'rel="noopener noreferrer nofollow"' in out and "opener\"" not in out.replace("noopener", "")


def test_data_urls_only_as_raster_images():
    assert sanitize('<a href="data:text/html,x">x</a>') == '<a rel="noopener noreferrer nofollow">x</a>'
    assert sanitize('<img src="data:image/svg+xml;base64,PHN2Zz4=">') == "<img>"
    assert sanitize('<img src="DATA:text/html,x">') == "<img>"


def test_empty_input():
    assert sanitize("") is None and sanitize(None) is None


_FRAGMENTS = st.sampled_from(PAYLOADS + [
    "<p>", "</p>", "<a href=\"", "\">", "javascript:", "<img src=x ", "onerror=alert(1)", "<svg>", "<style>",
    "</style>", "<script>", "</script>", "\"", "'", "<", ">", "&#106;", "teks biasa ", "<b>", "</b>", "<!--", "-->",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(_FRAGMENTS, min_size=1, max_size=12))
def test_any_mix_of_fragments_is_inert(parts):
    assert_inert(sanitize("".join(parts)) or "")


def test_html_to_text():
    html = "<p>Baris satu</p><p>Baris <b>dua</b> &amp; tiga</p><script>alert(1)</script><br>akhir"
    assert html_to_text(html) == "Baris satu\nBaris dua & tiga\n\nakhir"
    assert html_to_text("") == "" and html_to_text(None) == ""


def test_preview():
    assert preview("  Halo\n\n  dunia  ") == "Halo dunia"
    long = "kata " * 100
    out = preview(long, length=40)
    assert len(out) == 40 and out.endswith("…")
    assert preview(None) == ""


def test_deeply_nested_html_from_any_channel_is_sanitised_quickly():
    import time

    nested = "<div>" * 20000 + "deep text" + "</div>" * 20000 + "<script>alert(1)</script>"
    start = time.perf_counter()
    out = sanitize(nested)
    assert time.perf_counter() - start < 1.0
    assert "deep text" in out and "script" not in out
