"""helpdesk/mail/tokens.py: signed Message-IDs and plus-addresses."""
import email
import re
from email import policy

import pytest

from helpdesk.mail import tokens

SECRET = "s3cret-key-for-tests"
DOT_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"


def _tamper(text: str, index: int) -> str:
    char = text[index]
    return text[:index] + ("b" if char != "b" else "c") + text[index + 1:]


# ---------------------------------------------------------------- Message-IDs

def test_message_id_round_trips_and_is_a_valid_msg_id():
    mid = tokens.make_message_id(1234, SECRET, "helpdesk.example.co.id")
    assert not mid.startswith("<") and not mid.endswith(">")
    assert re.fullmatch(rf"{DOT_ATOM}@{DOT_ATOM}", mid), mid
    header = email.message_from_bytes(f"Message-ID: <{mid}>\r\n\r\n".encode(), policy=policy.default)["Message-ID"]
    assert header.defects == () and str(header) == f"<{mid}>"
    assert ".t1234." in mid and mid.endswith("@helpdesk.example.co.id")
    assert tokens.ticket_from_message_id(mid, SECRET) == 1234


def test_message_id_is_short_unique_and_carries_its_kind():
    ids = {tokens.make_message_id(7, SECRET, "d.example", kind="a") for _ in range(50)}
    assert len(ids) == 50
    for mid in ids:
        left = mid.split("@")[0]
        rand, ticket, sig = left.split(".")
        assert rand.startswith("a") and ticket == "t7" and len(sig) == 16
        assert len(left) <= 40


def test_message_id_check_tolerates_brackets_space_and_case():
    mid = tokens.make_message_id(55, SECRET, "helpdesk.example")
    for variant in (f"<{mid}>", f"  <{mid}> ", mid.upper(), mid.lower()):
        assert tokens.ticket_from_message_id(variant, SECRET) == 55


def test_tampered_or_foreign_message_ids_do_not_verify():
    mid = tokens.make_message_id(55, SECRET, "helpdesk.example")
    left, domain = mid.split("@")
    rand, ticket, sig = left.split(".")
    assert tokens.ticket_from_message_id(mid, "another-secret") is None
    assert tokens.ticket_from_message_id(f"{rand}.t56.{sig}@{domain}", SECRET) is None
    assert tokens.ticket_from_message_id(f"{_tamper(rand, 3)}.{ticket}.{sig}@{domain}", SECRET) is None
    for i in range(len(sig)):
        assert tokens.ticket_from_message_id(f"{rand}.{ticket}.{_tamper(sig, i)}@{domain}", SECRET) is None
    assert tokens.ticket_from_message_id(f"{rand}.{ticket}.{sig[:-1]}@{domain}", SECRET) is None


def test_the_domain_is_not_part_of_the_signature():
    mid = tokens.make_message_id(9, SECRET, "old.example")
    assert tokens.ticket_from_message_id(mid.replace("old.example", "new.example"), SECRET) == 9


@pytest.mark.parametrize("value", ["", "   ", "<>", "abc@example.com", "CAF=abc@mail.gmail.com",
                                   "x.t12.@d", "x.t12.aaaaaaaaaaaaaaaa", ".t12.aaaaaaaaaaaaaaaa@d", None, 12, b"x"])
def test_garbage_is_not_a_token(value):
    assert tokens.ticket_from_message_id(value, SECRET) is None
    assert tokens.ticket_from_address(value, SECRET) is None
    assert tokens.ticket_from_token(value, SECRET) is None


@pytest.mark.parametrize("domain", ["", "bad domain.example", "example.com\r\nBcc: x@y", "a@b", "<x>", "a..b"])
def test_invalid_domains_are_refused(domain):
    with pytest.raises(ValueError):
        tokens.make_message_id(1, SECRET, domain)


def test_domain_literal_is_accepted():
    mid = tokens.make_message_id(3, SECRET, "[127.0.0.1]")
    assert tokens.ticket_from_message_id(mid, SECRET) == 3


@pytest.mark.parametrize("ticket_id", [0, -1, True, 1.5, "12", 10 ** 18])
def test_invalid_ticket_ids_are_refused(ticket_id):
    with pytest.raises(ValueError):
        tokens.make_message_id(ticket_id, SECRET, "d.example")
    with pytest.raises(ValueError):
        tokens.plus_address("support@d.example", ticket_id, SECRET)


@pytest.mark.parametrize("kind", ["", "M", "a.b", "toolongkind", "x y"])
def test_invalid_kinds_are_refused(kind):
    with pytest.raises(ValueError):
        tokens.make_message_id(1, SECRET, "d.example", kind=kind)


def test_an_empty_secret_neither_signs_nor_verifies():
    with pytest.raises(ValueError):
        tokens.make_message_id(1, "", "d.example")
    with pytest.raises(ValueError):
        tokens.plus_address("support@d.example", 1, "")
    mid = tokens.make_message_id(1, SECRET, "d.example")
    assert tokens.ticket_from_message_id(mid, "") is None
    assert tokens.ticket_from_address(tokens.plus_address("s@d.example", 1, SECRET), "") is None


def test_bytes_secret_works_like_its_text():
    mid = tokens.make_message_id(4, SECRET.encode(), "d.example")
    assert tokens.ticket_from_message_id(mid, SECRET) == 4


# ---------------------------------------------------------------- plus-addresses

def test_plus_address_round_trips():
    address = tokens.plus_address("support@example.co.id", 123, SECRET)
    assert re.fullmatch(r"support\+t123\.[a-z2-7]{16}@example\.co\.id", address), address
    assert tokens.ticket_from_address(address, SECRET) == 123
    assert tokens.ticket_from_token(address, SECRET) == 123


def test_plus_address_survives_case_changes_and_brackets():
    address = tokens.plus_address("Support@Example.co.id", 8, SECRET)
    for variant in (address.lower(), address.upper(), f"<{address}>", f" {address} "):
        assert tokens.ticket_from_address(variant, SECRET) == 8


def test_plus_address_keeps_an_existing_tag():
    address = tokens.plus_address("support+billing@example.co.id", 8, SECRET)
    assert address.startswith("support+billing+t8.")
    assert tokens.ticket_from_address(address, SECRET) == 8


def test_tampered_plus_addresses_do_not_verify():
    address = tokens.plus_address("support@example.co.id", 77, SECRET)
    local, domain = address.split("@")
    base, token = local.split("+")
    ticket, sig = token.split(".")
    assert tokens.ticket_from_address(address, "other") is None
    assert tokens.ticket_from_address(f"{base}+t78.{sig}@{domain}", SECRET) is None
    for i in range(len(sig)):
        assert tokens.ticket_from_address(f"{base}+{ticket}.{_tamper(sig, i)}@{domain}", SECRET) is None
    assert tokens.ticket_from_address(f"{base}+{ticket}.{sig}x@{domain}", SECRET) is None


def test_message_id_and_plus_tokens_cannot_stand_in_for_each_other():
    mid = tokens.make_message_id(5, SECRET, "example.co.id")
    address = tokens.plus_address("support@example.co.id", 5, SECRET)
    assert tokens.ticket_from_address(mid, SECRET) is None
    assert tokens.ticket_from_message_id(address, SECRET) is None
    # the same signature moved into the other shape does not verify either
    sig = address.split("+t5.")[1].split("@")[0]
    assert tokens.ticket_from_message_id(f"mabc.t5.{sig}@example.co.id", SECRET) is None
    mid_sig = mid.split("@")[0].rsplit(".", 1)[1]
    assert tokens.ticket_from_address(f"support+t5.{mid_sig}@example.co.id", SECRET) is None


@pytest.mark.parametrize("address", ["", "support", "@example.com", "support@", None])
def test_plus_address_needs_an_address(address):
    with pytest.raises(ValueError):
        tokens.plus_address(address, 1, SECRET)
