"""helpdesk.mail.quotes: the new part of a reply, in English and Indonesian, text and HTML."""
import time

import pytest

from helpdesk.mail.parser import html_to_plain
from helpdesk.mail.quotes import visible_html, visible_text


def test_nothing_to_strip_returns_the_input_stripped():
    assert visible_text("  Halo tim,\n\nwebsite mati.\n\n") == "Halo tim,\n\nwebsite mati."
    assert visible_text("") == ""


@pytest.mark.parametrize("header", [
    "On Tue, Mar 3, 2026 at 9:15 AM Budi <budi@example.com> wrote:",
    "Pada tanggal Sel, 3 Mar 2026 pukul 09.15 Budi <budi@example.com> menulis:",
    "Pada Sel, 3 Mar 2026 09:15, Budi Santoso menulis:",
    "Am 03.03.2026 um 09:15 schrieb Budi <budi@example.com>:",
])
def test_quote_header_and_marked_quote(header):
    text = f"Terima kasih, sudah beres.\n\n{header}\n> Website kami mati.\n> Tolong dicek.\n"
    assert visible_text(text) == "Terima kasih, sudah beres."


def test_short_wrote_line_above_a_marked_quote():
    assert visible_text("Siap.\n\nBudi menulis:\n> kapan selesai?\n") == "Siap."
    assert visible_text("Sure.\nJohn Smith wrote:\n\n> when?\n") == "Sure."


def test_quote_header_wrapped_over_two_lines():
    text = ("Sudah saya coba.\n\nOn Tue, Mar 3, 2026 at 9:15 AM Budi Santoso\n<budi@example.com> wrote:\n\n"
            "> pertanyaan lama\n")
    assert visible_text(text) == "Sudah saya coba."
    text = "Oke.\n\nPada Sel, 3 Mar 2026 pukul 09.15, Budi Santoso <budi@example.com>\nmenulis:\n> lama\n"
    assert visible_text(text) == "Oke."


def test_unmarked_history_after_a_quote_header_is_cut():
    text = "Jawaban baru\n\nOn Mon, 2 Mar 2026, Sari wrote:\nPesan lama tanpa tanda kutip\nbaris kedua\n"
    assert visible_text(text) == "Jawaban baru"


@pytest.mark.parametrize("block", [
    "-----Original Message-----\nFrom: Budi\nSent: Monday\nTo: Support\nSubject: Halo\n\nlama",
    "-----Pesan Asli-----\nDari: Budi\nDikirim: Senin\nKepada: Support\nPerihal: Halo\n\nlama",
    "---- Pesan Asli ----\nlama",
    "From: Budi Santoso <budi@example.com>\nSent: Monday, March 2, 2026 10:00 AM\nTo: Support\n"
    "Subject: RE: Halo\n\nlama",
    "Dari: Budi Santoso <budi@example.com>\nDikirim: Senin, 2 Maret 2026 10.00\nKepada: Support\n"
    "Perihal: Halo\n\nlama",
    "________________________________\nFrom: Budi <budi@example.com>\nSent: Monday\nTo: Support\n"
    "Subject: Halo\n\nlama",
    "*From:* Budi [mailto:budi@example.com]\n*Sent:* Monday, January 15, 2018 2:15 AM\n*To:* x@example.com\n"
    "*Subject:* Halo\n\nlama",
])
def test_outlook_and_original_message_blocks(block):
    assert visible_text("Balasan saya di atas.\n\n" + block + "\n") == "Balasan saya di atas."


def test_forwarded_message_is_content_not_history():
    text = ("Tolong dibantu.\n\n---------- Forwarded message ---------\nFrom: Klien <k@example.com>\n"
            "Date: Mon, 2 Mar 2026\nSubject: Domain\nTo: saya@example.com\n\nDomain saya expired.\n")
    assert "Domain saya expired." in visible_text(text)


def test_bottom_post_and_inline_answers_keep_the_new_text():
    text = ("Hi,\nOn Tue, 2011-03-01 at 18:02 +0530, Abhishek wrote:\n> question one\n\nanswer one\n\n"
            "> question two\nanswer two\n")
    out = visible_text(text)
    assert "answer one" in out and "answer two" in out
    assert "question" not in out and "wrote:" not in out


@pytest.mark.parametrize("signature", [
    "-- \nBudi Santoso\nPT Contoh\n0812-0000-0000",
    "Sent from my iPhone",
    "Sent from my Android phone",
    "Dikirim dari iPhone saya",
    "Dikirim dari Yahoo Mail di Android",
    "Get Outlook for iOS",
])
def test_signatures_are_removed(signature):
    assert visible_text("Mohon dibantu segera.\n\n" + signature + "\n") == "Mohon dibantu segera."


def test_dashes_inside_a_line_are_not_a_signature():
    assert visible_text("a -- b\nc") == "a -- b\nc"


def test_only_quoted_input_is_returned_whole():
    text = "> cuma kutipan\n> saja\n"
    assert visible_text(text) == text.strip()


def test_crlf_input():
    assert visible_text("Oke\r\n\r\nOn Mon, 2 Mar 2026, X wrote:\r\n> a\r\n") == "Oke"


def test_pathological_input_is_fast():
    text = ("On " + "x " * 5000 + "\n") * 50 + "> " * 10000 + "\n" + "From: a\n" * 2000
    start = time.perf_counter()
    visible_text(text)
    assert time.perf_counter() - start < 1.0


# ---------------------------------------------------------------- HTML


def text_of(html):
    return html_to_plain(html or "")


def test_gmail_quote():
    html = ('<div dir="ltr">Sudah beres, terima kasih.</div><br><div class="gmail_quote"><div dir="ltr" '
            'class="gmail_attr">On Tue, Mar 3, 2026 at 9:15 AM Budi &lt;b@example.com&gt; wrote:<br></div>'
            '<blockquote class="gmail_quote">Pertanyaan lama</blockquote></div>')
    assert text_of(visible_html(html)) == "Sudah beres, terima kasih."


def test_blockquote_type_cite_with_indonesian_header():
    html = ("<p>Oke, saya tunggu.</p><div>Pada 3 Mar 2026, pukul 09.15, Budi &lt;b@example.com&gt; menulis:</div>"
            '<blockquote type="cite"><p>lama</p></blockquote>')
    assert text_of(visible_html(html)) == "Oke, saya tunggu."


def test_outlook_divrplyfwdmsg_and_header_blocks():
    html = ('<div>Baik pak.</div><hr style="display:inline-block"><div id="divRplyFwdMsg"><b>From:</b> Budi'
            "<br><b>Sent:</b> Monday<br><b>To:</b> Support<br><b>Subject:</b> Halo</div><div>lama</div>")
    assert text_of(visible_html(html)) == "Baik pak."
    html = ('<div>Siap.</div><div style="border-top:solid #E1E1E1 1.0pt"><p><b>Dari:</b> Budi</p>'
            "<p><b>Dikirim:</b> Senin</p><p><b>Kepada:</b> Support</p><p><b>Perihal:</b> Halo</p></div><p>lama</p>")
    assert text_of(visible_html(html)) == "Siap."
    html = '<p>Ok</p><div class="OutlookMessageHeader">-----Original Message-----<br>From: x</div><p>lama</p>'
    assert text_of(visible_html(html)) == "Ok"


def test_html_without_quote_is_kept_and_sanitised():
    out = visible_html('<p>Halo <b>tim</b></p><script>alert(1)</script>')
    assert text_of(out) == "Halo tim" and "script" not in out
    assert visible_html("") is None


def test_html_that_is_only_a_quote_is_returned_whole():
    html = '<blockquote type="cite">semua kutipan</blockquote>'
    assert "semua kutipan" in text_of(visible_html(html))


def test_deep_html_is_fast():
    html = "<div><blockquote>" * 20000 + "x"
    start = time.perf_counter()
    visible_html(html)
    assert time.perf_counter() - start < 3


def test_a_bare_forwarded_original_is_kept_whole():
    text = "-----Pesan Asli-----\nDari: Budi\nDikirim: Senin\nKepada: Support\nPerihal: Halo\n\nIsi pesan lama"
    assert visible_text(text) == text
    text = "----- Original Nachricht ----\nVon: a@example.com\nAn: b@example.com\nDatum: 30.05.2017\nBetreff: x\n\nInhalt"
    assert visible_text(text) == text


def test_underscore_rules_cut_only_a_short_trailing_footer():
    footer = "Pertanyaan saya.\n\n______________\nmilis mailing list\nmilis@lists.example.com\n"
    assert visible_text(footer) == "Pertanyaan saya."
    content = "Bagian satu\n" + "______________\n" + "Bagian dua yang panjang " * 10 + "\nlagi\n"
    assert "Bagian dua" in visible_text(content)


def test_html_forward_with_only_a_signature_is_kept_whole():
    html = ("<div>--&nbsp;<br>Budi</div><div><b>Dari:</b> Sari<br><b>Dikirim:</b> Senin<br><b>Kepada:</b> cs"
            "<br><b>Perihal:</b> Fw: Domain</div><div>Isi yang diteruskan</div>")
    assert "Isi yang diteruskan" in text_of(visible_html(html))
