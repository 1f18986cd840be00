"""The parser and the quote stripper against the shared real-world corpora (../shared/corpora).

Every deliberate difference from a corpus' expectation is on an allow-list below, keyed
"<file>#<check>", with its reason (citing the corpus' SOURCE.md where it names the quirk). An
allow-listed check that no longer differs FAILS, so the lists cannot rot.

Not checked: talon's `signature_stripped` fixtures. They test name-based signature detection (a
signature with no delimiter, found from the sender's name); visible_text only cuts delimited
signatures ("-- ", "Sent from my …", mailing-list footers), on purpose: cutting undelimited lines
would eat real text such as a closing "Thank you, Noam".
"""
from __future__ import annotations

import hashlib
import json
import re
import time

import pytest

from helpdesk.mail.parser import decode_bytes, html_to_plain, parse
from helpdesk.mail.quotes import visible_html, visible_text
from tests import corpora_util as cu

pytestmark = cu.needs_corpora


def check_allowed(allow: dict, key_prefix: str, problems: dict[str, str]):
    """problems: {check: description}. Allow-listed checks must still differ; others must not."""
    unexpected = {k: v for k, v in problems.items() if f"{key_prefix}#{k}" not in allow}
    stale = [k for k in allow if k.startswith(key_prefix + "#") and k.split("#", 1)[1] not in problems]
    assert not unexpected, f"{key_prefix}: {unexpected}"
    assert not stale, f"{key_prefix}: allow-listed but no longer different (remove from the allow-list): {stale}"


def same_text(expected: str | None, got: str | None) -> bool:
    """Equal after NFC and whitespace collapsing; U+FFFD in the expected value (its decoder gave up)
    matches any one or two characters of ours."""
    exp, ours = cu.norm(expected), cu.norm(got)
    if "\ufffd" not in exp:
        return exp == ours
    pattern = ".{1,2}?".join(re.escape(piece) for piece in exp.split("\ufffd"))
    return re.fullmatch(pattern, ours, re.S) is not None


def same_name(expected: str, got: str) -> bool:
    """File names: we keep the last path component only (never a directory)."""
    return same_text(expected, got) or same_text(re.split(r"[/\\]", expected)[-1], got)


# ---------------------------------------------------------------- every message parses

@pytest.mark.parametrize("path", [pytest.param(p, id=str(p.relative_to(cu.CORPORA))) for p in cu.all_messages()]
                         or [pytest.param(None, marks=pytest.mark.skip(reason=cu.SKIP_REASON))])
def test_every_corpus_message_parses(path):
    msg = parse(path.read_bytes())
    assert isinstance(msg.body_text, str)
    visible_text(msg.body_text)
    if msg.body_html:
        visible_html(msg.body_html)


def test_corpora_are_all_there():
    assert len(cu.all_messages()) >= 249


# ---------------------------------------------------------------- Zammad

ZAMMAD_ALLOW = {
    "mail016.box#from_email": "From header is missing; Zammad falls back to Reply-To (SOURCE.md quirks). Our "
                              "from_addr comes from From only; reply_to is there for the caller",
    "mail019.box#from_email": "From is '\"我\" <>' with no address; Zammad takes Reply-To (SOURCE.md quirks)",
    "mail053.box#from_email": "'MAILER-DAEMON' has no domain: not a usable address, from_addr is None "
                              "(SOURCE.md: From without a usable address)",
    "mail071.box#from_email": "'power quadrant system@example.com' is not a valid address (SOURCE.md quirks)",
    "mail076.box#from_email": "'\"Millions Lottery Spain transfer\"@example.com>' is not a valid address "
                              "(SOURCE.md quirks)",
    "mail087.box#from_email": "'Test test@example.com' is not a valid address (SOURCE.md quirks)",
    "mail087.box#attachments": "a part without Content-Type is text/plain by RFC 2045, so it is body text; "
                               "Zammad stores it as an attachment named 'file'",
    "mail044.box#from_email": "'Claudia.Shu@yahoo.com.': we drop the trailing dot of the fully-qualified "
                              "domain (the same address; the app's address validation refuses the dot)",
    "mail081.box#from_email": "'redacted@redacted' has a single-label domain: not usable for Internet mail, "
                              "from_addr is None",
    "mail115.box#from_email": "'redacted@example.test': .test is a special-use name (RFC 6761), never "
                              "deliverable: from_addr is None",
    "mail035.box#from_email": "Zammad keeps the quotes of '\"finances8@…\"'; we give the bare address",
    "mail117.box#from_email": "spoofing case (SOURCE.md quirks): an encoded-word inside the addr-spec is never "
                              "decoded; we keep the raw literal, Zammad half-decodes it",
    "mail118.box#from_email": "encoded-word as the local part (SOURCE.md quirks): never decoded inside an "
                              "address (the same rule that stops mail117), so it stays literal",
    "mail018.box#subject": "Zammad leaves the UTF-7 encoded-word undecoded ('+ANw-bermittlungsstatus'); we "
                           "decode it to 'Übermittlungsstatus'",
    "mail018.box#body": "the same UTF-7 text Zammad leaves undecoded ('+APw-ber'); we decode it",
    "mail025.box#body": "the body is one uuencoded file: we turn it into the attachment "
                        "rulesets-report.csv; Zammad shows the uuencoded text",
    "mail060.box#body": "UTF-8 and Latin-1 bytes mixed in one part labelled 'iso-gb2312': we decode each "
                        "run as what it is ('äöü - 差出人… äöü'), Zammad's text is mojibake",
    "mail072.box#body": "windows-1258: Zammad's text has 'ŕ'/'ű' for 'à'/'û' (a wrong code page); we "
                        "decode cp1258 correctly ('suite à ma commande du 14 août')",
    "mail085.box#attachments": "Apple Mail: multipart/alternative holding a multipart/mixed of two HTML parts; "
                               "we join both into the body (as Zammad does for mail110-112), Zammad 2019 "
                               "saved the second one as document.html",
}


def zammad_pairs():
    found = cu.files("zammad", "test/data/mail/*.box")
    pairs = [p for p in found if p.with_suffix(".yml").exists()]
    if not pairs:
        return [pytest.param(None, marks=pytest.mark.skip(reason=cu.SKIP_REASON))]
    return [pytest.param(p, id=p.name) for p in pairs]


def zammad_problems(path) -> dict[str, str]:
    exp = cu.load_zammad_yml(path.with_suffix(".yml"))
    msg = parse(path.read_bytes())
    problems = {}
    want_from = (exp.get("from_email") or "").lower() or None
    if want_from != msg.from_addr:
        problems["from_email"] = f"{want_from!r} != {msg.from_addr!r}"
    if cu.norm(exp.get("subject")) != cu.norm(msg.subject):
        problems["subject"] = f"{exp.get('subject')!r} != {msg.subject!r}"
    # the article text: the start of Zammad's body (its HTML rendered as text when it chose HTML) is in
    # our text body or in the text of our HTML body (we prefer text/plain, Zammad often the HTML)
    body = exp.get("body") or ""
    body = html_to_plain(body) if exp.get("content_type") == "text/html" else body
    head = cu.no_ws(cu.norm("" if body.strip() == "no visible content" else body))[:60]
    if head not in cu.no_ws(cu.norm(msg.body_text)) and head not in cu.no_ws(cu.norm(html_to_plain(msg.body_html))):
        problems["body"] = f"{head!r} not in the text"
    ours = {}
    for att in msg.attachments:
        ours.setdefault(att.md5, []).append(att)
    missing, cid_wrong = [], []
    for att in exp.get("attachments") or []:
        if att.get("filename") == "message.html":
            continue  # Zammad's synthetic copy of the HTML part
        data = att["data"].encode("utf-8") if isinstance(att["data"], str) else att["data"]
        mine = ours.get(hashlib.md5(data).hexdigest())
        if not mine:
            missing.append(f"{att.get('filename')} ({len(data)} bytes)")
            continue
        cid = (att.get("preferences") or {}).get("Content-ID")
        if cid:
            cid = cid.strip("<>")
            if not any(a.content_id == cid for a in mine):
                cid_wrong.append(f"{att.get('filename')}: Content-ID {cid!r} lost")
            for a in mine:
                referenced = bool(msg.body_html) and f"cid:{a.content_id}".lower() in msg.body_html.lower()
                if a.inline != referenced:
                    cid_wrong.append(f"{a.filename}: inline={a.inline} but referenced={referenced}")
    if missing:
        problems["attachments"] = "missing " + ", ".join(missing)
    if cid_wrong:
        problems["inline"] = "; ".join(cid_wrong)
    return problems


@pytest.mark.parametrize("path", zammad_pairs())
def test_zammad(path):
    check_allowed(ZAMMAD_ALLOW, path.name, zammad_problems(path))


def test_zammad_inline_images_are_marked_inline():
    # parts with a Content-ID referenced from the HTML are inline images (mail008 and friends)
    inline = 0
    for path in cu.files("zammad", "test/data/mail/*.box"):
        inline += sum(a.inline for a in parse(path.read_bytes()).attachments)
    assert inline >= 10


# ---------------------------------------------------------------- Stalwart

STALWART_ALLOW = {
    "legacy/017.eml#attachments": "x-uuencode parts: Stalwart keeps the uuencoded text, we decode it",
    "legacy/026.eml#attachments": "x-uuencode parts: Stalwart keeps the uuencoded text, we decode it",
    "legacy/048.eml#attachments": "x-uuencode parts: Stalwart keeps the uuencoded text, we decode it",
    "thirdparty/002.eml#attachments": "a base64 part holding '?garbage' (not base64): Stalwart keeps the raw "
                                      "text, we decode leniently (Dovecot test of broken base64)",
    "rfc/000.eml#attachments": "RFC 2049 sample whose base64 parts hold placeholder prose ('... base64-encoded "
                               "8000 Hz ... goes here ...'): Stalwart keeps the invalid base64 as text, we "
                               "decode it leniently",
    "thirdparty/007.eml#from": "'moderator' has no domain: not a usable address, from_addr is None",
    "thirdparty/011.eml#from": "'…@xyz-webserver.abcd-gestion.local': .local is a special-use name (RFC 6762), "
                               "never deliverable: from_addr is None",
}


def stalwart_messages():
    found = [p for p in cu.files("stalwart-mail-parser", "resources/eml/*/*.eml")]
    if not found:
        return [pytest.param(None, marks=pytest.mark.skip(reason=cu.SKIP_REASON))]
    return [pytest.param(p, id=p.relative_to(p.parent.parent).as_posix()) for p in found]


def _header(part, name):
    for h in part["headers"]:
        if h["name"] == name:
            return h["value"]
    return None


def _text(value):
    if isinstance(value, dict):
        if "Text" in value:
            return value["Text"]
        if "TextList" in value:
            return " ".join(value["TextList"])
    return None


def _first_address(value):
    if not isinstance(value, dict) or "Address" not in value:
        return None
    addr = value["Address"]
    items = addr.get("List") or [a for g in addr.get("Group") or [] for a in g.get("addresses") or []]
    return next((a["address"] for a in items if a.get("address")), None)


def _att_name(part):
    for header, key in (("content_disposition", "filename"), ("content_type", "name")):
        value = _header(part, header)
        if isinstance(value, dict) and "ContentType" in value:
            for attr in value["ContentType"].get("attributes") or []:
                if attr["name"] == key:
                    return attr["value"]
    return None


def stalwart_problems(path) -> dict[str, str]:
    exp = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    # the .json is the parse of the message with every CR removed
    msg = parse(path.read_bytes().replace(b"\r", b""))
    top = exp["parts"][0]
    problems = {}
    subject = _text(_header(top, "subject"))
    if subject is not None and not same_text(subject, msg.subject):
        problems["subject"] = f"{subject!r} != {msg.subject!r}"
    sender = _first_address(_header(top, "from"))
    if sender and sender.lower() != msg.from_addr:
        problems["from"] = f"{sender!r} != {msg.from_addr!r}"
    if path.parent.name == "malformed":
        return problems  # malformed/: no crash, subject and sender right
    wrong = []
    for index in exp["attachments"]:
        part = exp["parts"][index]
        body = part["body"]
        name = _att_name(part)
        if "Binary" in body or "InlineBinary" in body:
            data = bytes(body.get("Binary") or body.get("InlineBinary") or [])
            digest = hashlib.md5(data).hexdigest()
            mine = [a for a in msg.attachments if a.md5 == digest]
            if not mine:
                wrong.append(f"#{index} {name!r} ({len(data)} bytes) missing")
            elif name and not any(same_name(name, a.filename) for a in mine):
                wrong.append(f"#{index} name {name!r} != {[a.filename for a in mine]}")
        elif "Text" in body or "Html" in body:
            text = body["Text"] if "Text" in body else body["Html"]
            mine = [a for a in msg.attachments if same_text(text, decode_bytes(a.data))]
            if not mine and not (name is None and cu.norm(text) in cu.norm(msg.body_text)):
                wrong.append(f"#{index} text part {name!r} missing")
            elif mine and name and not any(same_name(name, a.filename) for a in mine):
                wrong.append(f"#{index} name {name!r} != {[a.filename for a in mine]}")
    if wrong:
        problems["attachments"] = "; ".join(wrong)
    return problems


@pytest.mark.parametrize("path", stalwart_messages())
def test_stalwart(path):
    key = path.relative_to(path.parent.parent).as_posix()
    check_allowed(STALWART_ALLOW, key, stalwart_problems(path))


# ---------------------------------------------------------------- talon

TALON_ALLOW = {
    "tests/fixtures/standard_replies/iphone.eml#reply": "talon keeps 'Sent from my iPhone'; visible_text "
                                                        "removes that signature by design",
    "tests/fixtures/standard_replies/sparrow.eml#reply": "talon keeps the '-- ' signature block; visible_text "
                                                         "removes signatures by design",
    "tests/fixtures/reply-separated-by-hr.html#reply_html": "talon drops 'Bob' (the text in the same <div> "
                                                            "as the <hr>); we cut at the <hr> and keep it",
}


def talon_cases():
    if cu.corpus("talon") is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason=cu.SKIP_REASON))]
    exp = cu.expected_json("talon")
    cases = []
    for group in ("standard_replies", "html_replies", "other"):
        cases += [pytest.param(group, key, value, id=key) for key, value in exp[group].items()]
    return cases


@pytest.mark.parametrize(("group", "key", "expected"), talon_cases())
def test_talon(group, key, expected):
    path = cu.corpus("talon") / key
    problems = {}
    if group == "standard_replies":
        got = visible_text(parse(path.read_bytes()).body_text).strip()
        if got != expected["reply.strip().equals"]:
            problems["reply"] = f"{got!r}"
    elif "reply_as_text.equals_ignoring_whitespace" in expected:
        got = html_to_plain(visible_html(path.read_text(encoding="utf-8")))
        if cu.no_ws(got) != cu.no_ws(expected["reply_as_text.equals_ignoring_whitespace"]):
            problems["reply_as_text"] = f"{got!r}"
    elif "reply_html.equals_ignoring_whitespace" in expected:
        got = html_to_plain(visible_html(path.read_text(encoding="utf-8")))
        want = html_to_plain(expected["reply_html.equals_ignoring_whitespace"])
        if cu.no_ws(got) != cu.no_ws(want):  # compared by visible text (our HTML is sanitised)
            problems["reply_html"] = f"{got!r}"
    else:
        got = visible_text(path.read_text(encoding="utf-8"))
        if expected.get("reply.nonempty") and not got.strip():
            problems["reply"] = "empty"
        if expected.get("reply.not_contains", "\x00") in got:
            problems["reply"] = f"contains {expected['reply.not_contains']!r}"
    check_allowed(TALON_ALLOW, key, problems)


# ---------------------------------------------------------------- email-reply-parser

ERP_ALLOW: dict[str, str] = {}


def erp_cases():
    if cu.corpus("email-reply-parser") is None:
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=cu.SKIP_REASON))]
    exp = cu.expected_json("email-reply-parser")
    return [pytest.param(key, value, id=key) for key, value in exp.items() if not key.startswith("_")]


@pytest.mark.parametrize(("key", "expected"), erp_cases())
def test_email_reply_parser(key, expected):
    text = (cu.corpus("email-reply-parser") / key).read_bytes().decode("utf-8")
    start = time.perf_counter()
    got = visible_text(text)
    elapsed = time.perf_counter() - start
    problems = {}
    for check, value in expected.items():
        values = value if isinstance(value, list) else [value]
        if check == "reply.equals" and got != value:
            problems[check] = repr(got)
        elif check == "reply.strip().equals" and got.strip() != value:
            problems[check] = repr(got)
        elif check == "reply.contains" and any(v not in got for v in values):
            problems[check] = repr(got)
        elif check == "reply.not_contains" and any(v in got for v in values):
            problems[check] = repr(got)
        elif check == "parse_time_seconds.lt" and elapsed >= value:
            problems[check] = f"{elapsed:.2f}s"
    # the one rule SOURCE.md derives from the fragment model: hidden blocks must not appear, visible
    # ones must (only for markers of 3+ characters: "On" or "--" also occur inside the reply text)
    hidden = expected.get("fragments.hidden")
    for check, value in expected.items():
        m = re.fullmatch(r"fragments\[(\d+)\]\.contains", check)
        if not (m and hidden):
            continue
        for marker in value if isinstance(value, list) else [value]:
            if len(marker) < 3:
                continue
            if hidden[int(m.group(1))] and marker in got:
                problems[check] = f"hidden {marker!r} shown"
            elif not hidden[int(m.group(1))] and marker not in got:
                problems[check] = f"visible {marker!r} missing"
    check_allowed(ERP_ALLOW, key, problems)


# ---------------------------------------------------------------- django-helpdesk

DJANGO_ALLOW = {
    "tests/test_files/utf-nondecodable.eml#description.contains":
        "its text/plain and text/html alternatives say different things (SOURCE.md); django-helpdesk's "
        "description is the HTML's text, our body_text prefers text/plain by design. The HTML text is "
        "checked in body_html below",
}


def django_cases():
    if cu.corpus("django-helpdesk") is None:
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=cu.SKIP_REASON))]
    exp = cu.expected_json("django-helpdesk")
    return [pytest.param(key, value, id=key) for key, value in exp.items() if not key.startswith("_")]


@pytest.mark.parametrize(("key", "expected"), django_cases())
def test_django_helpdesk(key, expected):
    msg = parse((cu.corpus("django-helpdesk") / key).read_bytes())
    description = visible_text(msg.body_text)
    problems = {}
    title = expected.get("ticket.title.equals")
    if title is not None:
        # django-helpdesk cuts titles at 200 characters ("…" + "..."); the invariant is a prefix
        ok = msg.subject.startswith(title[:-3]) if title.endswith("...") else msg.subject == title
        if not ok:
            problems["title"] = repr(msg.subject)
    if "ticket.description.equals" in expected and description != expected["ticket.description.equals"]:
        problems["description.equals"] = repr(description)
    if "ticket.description.strip().equals" in expected and \
            description.strip() != expected["ticket.description.strip().equals"]:
        problems["description.strip"] = repr(description)
    if "ticket.description.contains" in expected and expected["ticket.description.contains"] not in description:
        problems["description.contains"] = repr(description)
    split = expected.get("if_quoted_part_split_off (HELPDESK_FULL_FIRST_MESSAGE_FROM_EMAIL=False)")
    if split:  # the quoted history leaves the visible text but stays in the full original
        if split["ticket.description.not_contains"] in description:
            problems["quote.split"] = repr(description)
        if split["followups[0].comment.contains"] not in msg.body_text:
            problems["quote.kept"] = repr(msg.body_text)
    att = expected.get("attachment_in_message")
    if att and not any(a.filename == att["filename"] and a.content_type == att["content_type"]
                       and a.data.decode() == att["decoded_content"] for a in msg.attachments):
        problems["attachment"] = repr([(a.filename, a.content_type, a.data[:40]) for a in msg.attachments])
    content = expected.get("followup.attachments[0].content.equals")
    if content and not any(a.data.decode(errors="replace") == content and a.filename == "signature.asc"
                           for a in msg.attachments):
        problems["signature.asc"] = repr([(a.filename, a.size) for a in msg.attachments])
    html_has = expected.get("followup.attachments[0].content.contains")
    if html_has and cu.norm(html_to_plain(html_has)) not in cu.norm(html_to_plain(msg.body_html or "")):
        problems["html"] = repr(msg.body_html)
    check_allowed(DJANGO_ALLOW, key, problems)
