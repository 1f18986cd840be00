"""Time helpers: UTC in the database (naive UTC datetimes), local time on screen."""
from datetime import datetime, timezone
from zoneinfo import ZoneInfo


def utcnow():
    """The current time as a naive UTC datetime (the database convention)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def to_local(dt, tzname="Asia/Jakarta"):
    """A naive-UTC datetime as an aware datetime in the given zone."""
    if dt is None:
        return None
    return dt.replace(tzinfo=timezone.utc).astimezone(ZoneInfo(tzname))
