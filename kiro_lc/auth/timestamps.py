"""RFC 3339 timestamps as Kiro stores them, on Python 3.10 too.

Kiro CLI writes ``2025-06-01T12:00:00.123456789Z`` (nanoseconds) for social logins and whole
seconds for OIDC ones; the IDE writes milliseconds (``2025-12-31T02:32:45.144Z``). Python 3.10's
``datetime.fromisoformat`` accepts neither ``Z`` nor more than six fraction digits, so this module
parses and formats them itself, and remembers the style a value used so a write-back keeps it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

__all__ = ["TimestampStyle", "format_timestamp", "parse_timestamp", "timestamp_style"]

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})"
    r"(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$"
)
_EPOCH_MS_THRESHOLD = 10**11  # larger epoch numbers are milliseconds, not seconds


@dataclass(frozen=True)
class TimestampStyle:
    """How a stored timestamp was written: fraction digits and ``Z`` vs ``+00:00``."""

    fraction_digits: int = 9
    zulu: bool = True


def parse_timestamp(value: object) -> datetime | None:
    """Parse an RFC 3339 string (any fraction length, ``Z`` or offset) or epoch number.

    Returns an aware UTC ``datetime``, or ``None`` when the value is missing or unreadable (the
    caller then treats the expiry as unknown). Naive strings are taken as UTC.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > _EPOCH_MS_THRESHOLD else value
        try:
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    match = _RFC3339.match(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, frac, _zulu, sign, off_h, off_m = match.groups()
    micros = int((frac or "0")[:6].ljust(6, "0"))
    try:
        parsed = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            micros,
            tzinfo=timezone.utc,
        )
    except ValueError:
        return None
    if sign:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        parsed = parsed - offset if sign == "+" else parsed + offset
    return parsed


def timestamp_style(value: object, default: TimestampStyle) -> TimestampStyle:
    """The style of a stored timestamp string, or ``default`` when it is not a string."""
    if not isinstance(value, str):
        return default
    match = _RFC3339.match(value.strip())
    if match is None:
        return default
    frac = match.group(7) or ""
    return TimestampStyle(fraction_digits=len(frac), zulu=match.group(8) is not None)


def format_timestamp(moment: datetime, style: TimestampStyle) -> str:
    """Format ``moment`` in UTC, with ``style``'s fraction digits (truncated, never rounded up)."""
    utc = moment.astimezone(timezone.utc)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if style.fraction_digits:
        text += "." + f"{utc.microsecond:06d}".ljust(9, "0")[: style.fraction_digits]
    return text + ("Z" if style.zulu else "+00:00")
