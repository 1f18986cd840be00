"""The new part of a reply: quoted history, quote headers and signatures removed (pure, no app).

Recognised (English and Indonesian, plus the common European forms of the same headers):
- "> " quoted lines, with the "On … wrote:" / "Pada … menulis:" header above them (also wrapped
  over up to three lines);
- an unmarked quote: "On … wrote:" followed by unquoted text, Outlook header blocks ("From: … Sent:
  … To: … Subject:", "Dari: … Dikirim: … Kepada: … Perihal:", with or without *bold* labels),
  "-----Original Message-----", "-----Pesan Asli-----": everything from there on is history;
- signatures: "-- ", "Sent from my iPhone/Android/…", "Dikirim dari …", "Get Outlook for …";
- in HTML: gmail_quote, blockquote type=cite, divRplyFwdMsg, OutlookMessageHeader,
  OLK_SRC_BODY_SECTION, yahoo_quoted, moz-cite-prefix, and the text markers above.
Forwarded messages ("---------- Forwarded message ---------") are content, not history: kept.
"""
from __future__ import annotations

import html as _html
import re
from bisect import bisect_left

from helpdesk.mail.parser import flatten_deep_html
from helpdesk.tickets.html import sanitize

__all__ = ["visible_text", "visible_html"]

_ORIGINAL = re.compile(
    r"^[\s*_>]*-{2,}\s*(?:original message|pesan asli|pesan awal|ursprüngliche nachricht|original nachricht|"
    r"message d'origine|"
    r"mensaje original|oorspronkelijk bericht|original meddelelse|messaggio originale)\s*-{2,}[\s*_]*$",
    re.I)
_ANDROID_ORIGINAL = re.compile(r"^-{4,}\s*(?:original message|pesan asli)\s*-{4,}$", re.I)
_FORWARD = re.compile(r"^[\s*_>]*-{3,}\s*(?:forwarded message|pesan yang diteruskan|pesan terusan|"
                      r"weitergeleitete nachricht)\s*-{3,}|^begin forwarded message:|^awal pesan yang diteruskan:",
                      re.I)
_HEADER_START = re.compile(r"^(?:on|pada|am|le|el|op|il|em|den|w dniu|vào)\s", re.I)
_HEADER_END = re.compile(
    r"(?:wrote|menulis|schrieb|a\s+écrit|escribió|schreef|ha\s+scritto|escreveu|skrev|napisał|"
    r"написал|viết)\s*:?\s*$|\bschrieb\b[^:]{0,200}:\s*$", re.I)
_WROTE_LINE = re.compile(r"(?:wrote|menulis|schrieb|a\s+écrit|escribió|schreef|написал)\s*:\s*$", re.I)
_LABEL = re.compile(
    r"^[\s*>]*(from|dari|von|de|van|fra|sent|dikirim|terkirim|date|tanggal|gesendet|envoyé|datum|"
    r"to|kepada|ke|an|à|aan|til|subject|perihal|subjek|betreff|objet|onderwerp|emne|cc|tembusan"
    r"|от|отправлено|дата|кому|тема|копия)\s*:[\s*]*(?:\S|$)", re.I)
_LABEL_KIND = {
    "from": "from", "dari": "from", "von": "from", "de": "from", "van": "from", "fra": "from",
    "sent": "date", "dikirim": "date", "terkirim": "date", "date": "date", "tanggal": "date",
    "gesendet": "date", "envoyé": "date", "datum": "date",
    "to": "to", "kepada": "to", "ke": "to", "an": "to", "à": "to", "aan": "to", "til": "to",
    "subject": "subject", "perihal": "subject", "subjek": "subject", "betreff": "subject", "objet": "subject",
    "onderwerp": "subject", "emne": "subject", "cc": "cc", "tembusan": "cc",
    "от": "from", "отправлено": "date", "дата": "date", "кому": "to", "тема": "subject", "копия": "cc",
}
_RULE = re.compile(r"^[\s]*(?:_{5,}|-{5,}|={5,})\s*$")
_SIG_DASHES = re.compile(r"^--\s?$")
_SIG_PHONE = re.compile(
    r"^(?:sent from (?:my )?\S.{0,60}|sent with \S.{0,60}|sent via \S.{0,60}|get outlook for \S.{0,30}|"
    r"dikirim dari \S.{0,60}|dikirim menggunakan \S.{0,60}|terkirim dari \S.{0,60}|"
    r"diketik dari \S.{0,60}|von meinem \S.{0,60} gesendet|envoyé de mon \S.{0,60})$", re.I)
_FOOTER_RULE = re.compile(r"^_{10,}$")
_HINT = re.compile(r"[\d@]")


def _is_quote_header(lines: list[str], i: int) -> int:
    """Number of lines (1-3) of an "On … wrote:" header starting at line i, else 0."""
    first = lines[i].strip().lstrip("*").strip()
    if not first:
        return 0
    if _HEADER_START.match(first):
        joined = first
        for k in range(3):
            if k:
                if i + k >= len(lines) or not lines[i + k].strip():
                    break
                joined += " " + lines[i + k].strip()
            if len(joined) > 500:
                break
            if _HEADER_END.search(joined.rstrip("*").rstrip()):
                return k + 1
        return 0
    return 0


def _outlook_header(lines: list[str], i: int) -> bool:
    """An Outlook-style header block (From/Sent/To/Subject or their Indonesian names) starting at i."""
    m = _LABEL.match(lines[i])
    if not m:
        return False
    kinds = []
    j = i
    while j < len(lines) and j < i + 10:
        line = lines[j]
        lm = _LABEL.match(line)
        if lm:
            kinds.append(_LABEL_KIND[lm.group(1).lower()])
        elif not line.strip():
            if j > i and len(kinds) >= 3:
                break
        elif j > i and not (line.startswith((" ", "\t"))):  # wrapped header value
            if len(kinds) >= 3:
                break
        j += 1
    distinct = set(kinds)
    return "from" in distinct and len(distinct) >= 3 and ("date" in distinct or "subject" in distinct)


def _after_forward_marker(lines: list[str], i: int) -> bool:
    j = i - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    return j >= 0 and bool(_FORWARD.match(lines[j].strip()))


def _next_nonblank(lines: list[str], i: int) -> int:
    while i < len(lines) and not lines[i].strip():
        i += 1
    return i


def _analyse(lines: list[str]) -> tuple[int | None, set[int]]:
    """(line index where the unmarked quoted history starts or None, indexes of marked quote lines)."""
    quoted: set[int] = set()
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith(">"):
            quoted.add(i)
            i += 1
            continue
        if not stripped:
            i += 1
            continue
        if _ORIGINAL.match(stripped) or _ANDROID_ORIGINAL.match(stripped):
            return i, quoted
        if _FORWARD.match(stripped):  # a forward's header block is content: skip it whole
            i += 1
            while i < n and lines[i].strip():
                i += 1
            continue
        size = _is_quote_header(lines, i)
        if not size:  # "<who> wrote:" above "> " lines (over 2-3 lines only when it has a date/address)
            joined = stripped
            for k in range(1, 4 if _HINT.search(stripped) else 2):
                if k > 1:
                    if i + k - 1 >= n or not lines[i + k - 1].strip():
                        break
                    joined += " " + lines[i + k - 1].strip()
                if len(joined) > 400:
                    break
                if _WROTE_LINE.search(joined):
                    nxt = _next_nonblank(lines, i + k)
                    if nxt < n and lines[nxt].lstrip().startswith(">"):
                        size = k
                    break
        if size:
            nxt = _next_nonblank(lines, i + size)
            if nxt < n and lines[nxt].lstrip().startswith(">"):
                quoted.update(range(i, i + size))  # header of a marked quote
                i += size
                continue
            return i, quoted  # unmarked history follows
        if _outlook_header(lines, i) and not _after_forward_marker(lines, i):
            start = i
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            if j >= 0 and _RULE.match(lines[j]):
                start = j
            return start, quoted
        i += 1
    return None, quoted


def _signature_start(lines: list[str]) -> int | None:
    """Index of the first line of a trailing signature, if any."""
    nonblank_after = 0
    longest_after = 0
    footer_seen = False
    found = None
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            continue
        if _SIG_DASHES.match(line.rstrip("\r")) and (line.startswith("-- ") or nonblank_after <= 10):
            found = i
        elif _SIG_PHONE.match(stripped) and nonblank_after <= 3:
            found = i
        elif _FOOTER_RULE.match(stripped) and not footer_seen:
            footer_seen = True
            if nonblank_after <= 4 and longest_after < 120:
                found = i  # a short mailing-list footer under a line of underscores
        longest_after = max(longest_after, len(stripped))
        nonblank_after += 1
        if nonblank_after > 40:
            break
    return found


_MANY_BLANK = re.compile(r"\n{3,}")
_MARKER_LINES = re.compile(r"(?m)^[\s*_>-]*-{2,}[^\n]{0,60}-{2,}[\s*_]*$|^[\s_=-]+$")
_MEANINGFUL = re.compile(r"\w")


def visible_text(text: str) -> str:
    """The new part of a plain-text reply (see the module docstring)."""
    if not text:
        return ""
    norm = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = norm.split("\n")
    cut, quoted = _analyse(lines)
    if cut is not None:
        lines = lines[:cut]
    kept = [line for i, line in enumerate(lines) if i not in quoted]
    sig = _signature_start(kept)
    if sig is not None:
        kept = kept[:sig]
    result = _MANY_BLANK.sub("\n\n", "\n".join(line.rstrip() for line in kept)).strip()
    if not _MEANINGFUL.search(_MARKER_LINES.sub("", result)):
        return norm.strip()  # nothing new was written (e.g. a bare forward): keep it all
    return result


# ---------------------------------------------------------------- HTML

_STRUCTURAL = re.compile(
    r"""<(?:div|blockquote|span|table|p|hr)\b[^>]*?\b(?:"""
    r"""class\s*=\s*["']?[^"'>]*\b(?:gmail_quote|gmail_quote_container|yahoo_quoted|moz-cite-prefix|"""
    r"""OutlookMessageHeader|protonmail_quote|zmail_extra|divRplyFwdMsg|tutanota_quote)\b"""
    r"""|id\s*=\s*["']?(?:divRplyFwdMsg|OLK_SRC_BODY_SECTION|appendonsend|x_divRplyFwdMsg|"""
    r"""mail-editor-reference-message-container|reply-intro|isForwardContent)\b"""
    r"""|type\s*=\s*["']?cite\b)""",
    re.I)
_BLOCKQUOTE = re.compile(r"<blockquote\b", re.I)
_SKIP = re.compile(r"(?is)<(head|style|script|title)\b[^>]*>.*?</\1\s*>|<!--.*?-->|<!\[CDATA\[.*?\]\]>")
_TOKEN = re.compile(r"<[^>]*>|[^<]+|<", re.S)
_BLOCK_TAG = re.compile(r"^<\s*/?\s*(br|p|div|tr|li|hr|h[1-6]|blockquote|table|pre|ul|ol)\b", re.I)


def _html_lines(html: str) -> list[tuple[str, int]]:
    """Visible text lines of the HTML with the source offset of the block tag that starts each."""
    spans = [(m.start(), m.end()) for m in _SKIP.finditer(html)]
    lines: list[tuple[str, int]] = []
    buf: list[str] = []
    start = 0
    skip_i = 0
    for m in _TOKEN.finditer(html):
        s = m.start()
        while skip_i < len(spans) and spans[skip_i][1] <= s:
            skip_i += 1
        if skip_i < len(spans) and spans[skip_i][0] <= s:
            continue
        tok = m.group(0)
        if tok.startswith("<") and len(tok) > 1:
            if _BLOCK_TAG.match(tok):
                lines.append(("".join(buf), start))
                buf = []
                start = s
            continue
        buf.append(_html.unescape(tok))
    lines.append(("".join(buf), start))
    return [(" ".join(text.split()), off) for text, off in lines]


def visible_html(html: str) -> str | None:
    """The new part of an HTML reply, sanitised; the whole (sanitised) input when nothing is found."""
    if not html or not html.strip():
        return None
    cuts = []
    m = _STRUCTURAL.search(html)
    if m:
        cuts.append(m.start())
    lines = _html_lines(html)
    texts = [t for t, _off in lines]
    cut, _quoted = _analyse(texts)
    if cut is not None:
        cuts.append(lines[cut][1])
    texted = [(t, off) for t, off in lines if t]
    offsets = [off for _t, off in texted]

    def line_before(pos: int):
        k = bisect_left(offsets, pos)
        return texted[k - 1] if k else None

    for bq in _BLOCKQUOTE.finditer(html):
        # a plain <blockquote> right after a line that ends with ":" (the quote header) is a quote
        before = line_before(bq.start())
        if before and before[0].rstrip().endswith(":"):
            cuts.append(before[1])
            break
    if cuts:
        first = min(cuts)
        # the quote header line just before a structural quote belongs to the history
        before = line_before(first)
        if before and _WROTE_LINE.search(before[0]) and len(before[0]) < 300:
            first = min(first, before[1])
        candidate = sanitize(flatten_deep_html(html[:first]))
        if candidate and _visible(candidate) and _wrote_something(candidate):
            return candidate
    return sanitize(flatten_deep_html(html))


def _wrote_something(html: str) -> bool:
    """More than a signature above the quote (a bare forward keeps everything, as in visible_text)."""
    lines = [t for t, _off in _html_lines(html)]
    sig = _signature_start(lines)
    return bool(_MEANINGFUL.search(_MARKER_LINES.sub("", "\n".join(lines[:sig] if sig is not None else lines))))


def _visible(html: str) -> bool:
    return bool(re.sub(r"<[^>]*>|&nbsp;|\s", "", html))
