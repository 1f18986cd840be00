"""Phone numbers are normalised to +62..."""
import pytest

from helpdesk.customers.phone import InvalidPhone, normalise_phone


@pytest.mark.parametrize("raw,expected", [
    ("0812-3456-7890", "+6281234567890"),
    ("+62 812 3456 7890", "+6281234567890"),
    ("62812345678", "+62812345678"),
    ("(0274) 512345", "+62274512345"),
    ("", None),
    (None, None),
])
def test_normalise(raw, expected):
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize("raw", ["abc", "12", "0812-3456-7890-1234-5678"])
def test_rejects_nonsense(raw):
    with pytest.raises(InvalidPhone):
        normalise_phone(raw)
