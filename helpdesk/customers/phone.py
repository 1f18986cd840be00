"""Phone numbers normalised to E.164 (+62... for Indonesian numbers)."""
import phonenumbers


class InvalidPhone(ValueError):
    """The text is not a phone number."""


def normalise_phone(raw, region="ID"):
    """'0812-3456-7890' -> '+6281234567890'. Empty stays None; nonsense raises InvalidPhone."""
    raw = (raw or "").strip()
    if not raw:
        return None
    digits = "".join(ch for ch in raw if ch.isdigit())
    if region == "ID" and raw[0].isdigit() and digits.startswith("62") and len(digits) >= 10:
        raw = "+" + digits  # "62812..." typed without the plus
    try:
        num = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"{raw!r} is not a phone number.") from exc
    if not phonenumbers.is_possible_number(num):
        raise InvalidPhone(f"{raw!r} is not a phone number.")
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
