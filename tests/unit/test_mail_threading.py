"""helpdesk/mail/threading.py: which ticket a mail belongs to, in the documented order."""
import time

import pytest

from helpdesk.mail import tokens
from helpdesk.mail.threading import Decision, TicketRef, decide, strip_prefixes, subject_ticket_number
from tests.unit.test_mail_classify import make_msg

SECRET = "threading-test-secret"


# ---------------------------------------------------------------- subjects

@pytest.mark.parametrize("subject,expected", [
    ("Re: Hosting", "Hosting"), ("RE: Hosting", "Hosting"), ("re:Hosting", "Hosting"),
    ("Fwd: Hosting", "Hosting"), ("FW: Hosting", "Hosting"), ("Fw: Hosting", "Hosting"),
    ("AW: Rechnung", "Rechnung"), ("WG: Rechnung", "Rechnung"), ("SV: Faktura", "Faktura"),
    ("VS: Lasku", "Lasku"), ("Balas: Domain saya", "Domain saya"), ("Bls: Domain saya", "Domain saya"),
    ("BLS: TRS: Domain", "Domain"), ("Tr: Facture", "Facture"), ("TR : Facture", "Facture"),
    ("RV: Factura", "Factura"), ("Antw: Factuur", "Factuur"), ("Odp: Faktura", "Faktura"),
    ("YNT: Fatura", "Fatura"), ("回复：网站", "网站"), ("答复: 网站", "网站"), ("转发: 网站", "网站"),
    ("Re[2]: Hosting", "Hosting"), ("RE [3] : Hosting", "Hosting"), ("Re(2): Hosting", "Hosting"),
    ("Re^2: Hosting", "Hosting"), ("Re:Re:RE: Hosting", "Hosting"), ("Re: Fwd: AW: Hosting", "Hosting"),
    ("Re: [#12] Hosting", "[#12] Hosting"), ("Re: [#12] Re: Hosting", "[#12] Hosting"),
    ("[EXT] RE: Hosting", "[EXT] Hosting"), ("[EXT] Hosting", "[EXT] Hosting"),
    ("Re:  Hosting   mati\t lagi ", "Hosting mati lagi"), ("Re:\u00a0Hosting", "Hosting"),
    ("Review website", "Review website"), ("Regarding: invoice", "Regarding: invoice"),
    ("Balasan pembayaran", "Balasan pembayaran"), ("Re", "Re"), ("Re:", ""), ("", ""),
    ("Hosting Re: x", "Hosting Re: x"),
])
def test_strip_prefixes(subject, expected):
    assert strip_prefixes(subject) == expected
    assert strip_prefixes(expected) == expected


@pytest.mark.parametrize("subject,number", [
    ("[#1234] Hosting", 1234), ("Re: [#1234] Hosting", 1234), ("Hosting [#77]", 77),
    ("AW: WG: Re: Hosting [#5] mati", 5), ("[EXT] RE: [#0042] x", 42),
    ("#1234 Hosting", None), ("Re: ticket #1234", None), ("[1234]", None), ("[# 12]", None),
    ("[#]", None), ("[#0]", None), ("[#12a]", None), ("[#١٢]", None), ("[#1234567890123456789]", None),
    ("", None),
])
def test_subject_ticket_number(subject, number):
    assert subject_ticket_number(subject) == number


# ---------------------------------------------------------------- decide

class Desk:
    """Callbacks over an in-memory desk, recording what decide asked for."""

    def __init__(self, known=None, tickets=None):
        self.known = known or {}          # message id -> ticket id
        self.tickets = tickets or {}      # ticket id -> participants
        self.lookups = []

    def find_by_message_ids(self, ids):
        self.lookups.append(list(ids))
        return next((self.known[i] for i in ids if i in self.known), None)

    def ticket_by_number(self, number):
        return TicketRef(number, set(self.tickets[number])) if number in self.tickets else None

    def ticket_from_token(self, value):
        return tokens.ticket_from_token(value, SECRET)

    def decide(self, msg, plus_addressing=False):
        return decide(msg, find_by_message_ids=self.find_by_message_ids, ticket_by_number=self.ticket_by_number,
                      ticket_from_token=self.ticket_from_token, plus_addressing=plus_addressing)


def test_a_new_mail_is_new():
    desk = Desk(tickets={12: {"budi@pelanggan.co.id"}})
    assert desk.decide(make_msg(message_id="new1@x")) == Decision("new", None)
    assert desk.lookups == []


def test_in_reply_to_a_known_message():
    desk = Desk(known={"sent1@helpdesk.example": 12})
    msg = make_msg(in_reply_to=["sent1@helpdesk.example"], subject="Re: something else")
    assert desk.decide(msg) == Decision("in_reply_to", 12)


def test_references_are_looked_up_newest_first_without_the_in_reply_to_and_own_id():
    desk = Desk(known={"a@x": 1, "c@x": 3})
    msg = make_msg(message_id="self@x", in_reply_to=["unknown@x"],
                   references=["a@x", "<b@x>", "c@x", "unknown@x", "self@x", "", "c@x"])
    assert desk.decide(msg) == Decision("references", 3)
    assert desk.lookups == [["unknown@x"], ["c@x", "b@x", "a@x"]]


def test_only_the_newest_references_are_looked_up():
    desk = Desk()
    refs = [f"r{i}@x" for i in range(500)]
    desk.decide(make_msg(references=refs))
    assert desk.lookups == [refs[::-1][:50]]


def test_thousands_of_ids_are_cheap_and_capped():
    desk = Desk()
    irt, refs = [f"i{i}@x" for i in range(5000)], [f"r{i}@x" for i in range(20000)]
    started = time.perf_counter()
    assert desk.decide(make_msg(in_reply_to=irt, references=refs)) == Decision("new", None)
    assert time.perf_counter() - started < 1.0
    assert desk.lookups == [irt[:50], refs[::-1][:50]]


def test_a_signed_token_threads_even_when_the_database_has_no_row():
    mid = tokens.make_message_id(44, SECRET, "helpdesk.example")
    desk = Desk()
    assert desk.decide(make_msg(in_reply_to=[f"<{mid}>"], subject="Totally new subject")) == Decision("in_reply_to", 44)
    desk = Desk()
    assert desk.decide(make_msg(references=[mid, "other@x"], subject="x")) == Decision("references", 44)


def test_a_forged_token_does_not_thread():
    mid = tokens.make_message_id(44, "someone-elses-secret", "helpdesk.example")
    assert Desk().decide(make_msg(in_reply_to=[mid])) == Decision("new", None)


def test_in_reply_to_wins_over_references():
    desk = Desk(known={"irt@x": 1, "ref@x": 2})
    assert desk.decide(make_msg(in_reply_to=["irt@x"], references=["ref@x"])) == Decision("in_reply_to", 1)


def test_a_known_message_id_wins_over_the_subject_tag():
    desk = Desk(known={"sent@x": 7}, tickets={12: {"budi@pelanggan.co.id"}})
    msg = make_msg(in_reply_to=["sent@x"], subject="Re: [#12] Hosting")
    assert desk.decide(msg) == Decision("in_reply_to", 7)


def test_subject_tag_of_a_participant():
    desk = Desk(tickets={12: {"budi@pelanggan.co.id", "sari@pelanggan.co.id"}})
    msg = make_msg(subject="AW: Re: [#12] Hosting", from_addr="Sari@Pelanggan.co.id", in_reply_to=["lost@x"])
    assert desk.decide(msg) == Decision("subject_tag", 12)


def test_subject_tag_of_a_stranger_makes_a_new_linked_ticket():
    desk = Desk(tickets={12: {"budi@pelanggan.co.id"}})
    msg = make_msg(subject="Re: [#12] Hosting", from_addr="eve@attacker.example")
    assert desk.decide(msg) == Decision("subject_tag_foreign", None, linked_ticket_id=12)
    assert desk.decide(make_msg(subject="[#12] x", from_addr=None)) == Decision("subject_tag_foreign", None, 12)


def test_subject_tag_of_a_missing_ticket_and_an_unbracketed_number_are_new():
    desk = Desk(tickets={12: {"budi@pelanggan.co.id"}})
    assert desk.decide(make_msg(subject="Re: [#99] Hosting")) == Decision("new", None)
    assert desk.decide(make_msg(subject="Re: #12 Hosting")) == Decision("new", None)


def test_plus_address_only_when_enabled():
    address = tokens.plus_address("support@helpdesk.example", 31, SECRET)
    desk = Desk()
    for field in ("to", "cc", "delivered_to"):
        msg = make_msg(**{field: ["other@helpdesk.example", address.lower()]})
        assert desk.decide(msg, plus_addressing=True) == Decision("plus_address", 31), field
        assert desk.decide(msg, plus_addressing=False) == Decision("new", None)


def test_subject_tag_comes_before_the_plus_address():
    address = tokens.plus_address("support@helpdesk.example", 31, SECRET)
    desk = Desk(tickets={12: {"budi@pelanggan.co.id"}})
    msg = make_msg(subject="Re: [#12] Hosting", to=[address])
    assert desk.decide(msg, plus_addressing=True) == Decision("subject_tag", 12)


def test_a_forged_plus_address_is_new():
    address = tokens.plus_address("support@helpdesk.example", 31, "wrong-secret")
    assert Desk().decide(make_msg(to=[address]), plus_addressing=True) == Decision("new", None)


def test_ticket_ref_participants_are_compared_case_insensitively():
    desk = Desk(tickets={3: {"Budi@Pelanggan.CO.ID"}})
    assert desk.decide(make_msg(subject="[#3] x", from_addr="budi@pelanggan.co.id")) == Decision("subject_tag", 3)
