"""HTML sanitising (nh3) and plain-text helpers for message bodies."""
import html as _html
import re

import nh3

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "hr", "i", "img",
    "li", "ol", "p", "pre", "s", "span", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead",
    "tr", "u", "ul",
}
ALLOWED_ATTRS = {"a": {"href", "title"}, "img": {"src", "alt", "width", "height"}, "td": {"colspan", "rowspan"},
                 "th": {"colspan", "rowspan"}}


_DATA_IMAGE = re.compile(r"data:image/(png|jpe?g|gif|webp|bmp)[;,]", re.I)
_LEADING_JUNK = re.compile(r"^[\x00-\x20]+")


def _filter_url(tag, attr, value):
    """`data:` URLs only as raster images in <img src>: never a link (data:text/html is a page)."""
    if attr in ("href", "src"):
        url = _LEADING_JUNK.sub("", value or "").lower()
        if url.startswith("data:") and not (tag == "img" and attr == "src" and _DATA_IMAGE.match(url)):
            return None
    return value


def sanitize(html):
    """Untrusted HTML made safe to render: no scripts, handlers, styles, javascript: or data: links."""
    if not html:
        return None
    from ..mail.parser import flatten_deep_html  # nh3 is quadratic on thousands of nested tags

    return nh3.clean(
        flatten_deep_html(html),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRS,
        attribute_filter=_filter_url,
        url_schemes={"http", "https", "mailto", "cid", "data"},
        link_rel="noopener noreferrer nofollow",
    )


_TAG = re.compile(r"<[^>]+>")
_WS = re.compile(r"\s+")


def html_to_text(html):
    """Visible text of an HTML fragment (for previews and search)."""
    if not html:
        return ""
    text = re.sub(r"(?i)<(br|/p|/div|/li|/tr)[^>]*>", "\n", html)
    text = re.sub(r"(?is)<(script|style)[^>]*>.*?</\1>", "", text)
    return _html.unescape(_TAG.sub("", text)).strip()


def preview(text, length=160):
    """One line of at most `length` characters."""
    line = _WS.sub(" ", text or "").strip()
    return line if len(line) <= length else line[: length - 1] + "…"
