"""Reading and merging Kiro's token JSON, whichever casing a store uses.

The CLI database stores snake_case (``access_token``), the IDE file camelCase (``accessToken``);
some tools write the other. Reads accept both; a write-back touches only the three token fields,
under the name the row already uses, and leaves every other field as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from kiro_lc.auth.timestamps import TimestampStyle, format_timestamp, timestamp_style

__all__ = ["NewTokens", "field_str", "load_json_object", "merge_new_tokens", "secret_field"]

_FIELDS = {
    "access": ("access_token", "accessToken"),
    "refresh": ("refresh_token", "refreshToken"),
    "expires": ("expires_at", "expiresAt"),
}


@dataclass(frozen=True)
class NewTokens:
    """What a successful refresh returned (``refresh_token`` is ``None`` when it did not rotate)."""

    access_token: SecretStr
    refresh_token: SecretStr | None
    expires_at: datetime
    profile_arn: str | None = None


def load_json_object(raw: str | bytes | None) -> dict[str, Any] | None:
    """Parse a stored JSON object; ``None`` for missing, invalid or non-object values."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def field_str(obj: dict[str, Any], *names: str) -> str | None:
    """The first non-empty string among ``names`` (list values are joined with spaces)."""
    for name in names:
        value = obj.get(name)
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return " ".join(value)
        if isinstance(value, str) and value:
            return value
    return None


def secret_field(obj: dict[str, Any], *names: str) -> SecretStr | None:
    """Like ``field_str`` but wrapped in ``SecretStr``."""
    value = field_str(obj, *names)
    return SecretStr(value) if value is not None else None


def _name_in_row(row: dict[str, Any], field: str, prefer_camel: bool) -> str:
    snake, camel = _FIELDS[field]
    if snake in row:
        return snake
    if camel in row:
        return camel
    uses_camel = any(c in row for _, c in _FIELDS.values())
    uses_snake = any(s in row for s, _ in _FIELDS.values())
    return camel if (uses_camel or prefer_camel) and not uses_snake else snake


def merge_new_tokens(
    row: dict[str, Any], new: NewTokens, *, default_style: TimestampStyle, prefer_camel: bool
) -> dict[str, Any]:
    """A copy of ``row`` with the new access/refresh token and expiry; all else unchanged.

    The expiry keeps the row's own timestamp style (fraction digits, ``Z``).
    """
    merged = dict(row)
    access = _name_in_row(row, "access", prefer_camel)
    expires = _name_in_row(row, "expires", prefer_camel)
    merged[access] = new.access_token.get_secret_value()
    if new.refresh_token is not None:
        merged[_name_in_row(row, "refresh", prefer_camel)] = new.refresh_token.get_secret_value()
    style = timestamp_style(row.get(expires), default_style)
    merged[expires] = format_timestamp(new.expires_at, style)
    return merged
