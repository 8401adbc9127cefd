"""Expiry timestamps in every format Kiro writes, parsed and re-written on Python 3.10 rules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from kiro_lc.auth.timestamps import (
    TimestampStyle,
    format_timestamp,
    parse_timestamp,
    timestamp_style,
)

UTC = timezone.utc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-06-01T12:00:00.123456789Z", datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2025-12-31T02:32:45.144Z", datetime(2025, 12, 31, 2, 32, 45, 144000, tzinfo=UTC)),
        ("2025-06-01T12:00:00Z", datetime(2025, 6, 1, 12, tzinfo=UTC)),
        ("2025-06-01T12:00:00.5z", datetime(2025, 6, 1, 12, 0, 0, 500000, tzinfo=UTC)),
        ("2025-06-01T14:00:00.000000001+02:00", datetime(2025, 6, 1, 12, tzinfo=UTC)),
        ("2025-06-01T07:30:00-0430", datetime(2025, 6, 1, 12, tzinfo=UTC)),
        ("2025-06-01 12:00:00", datetime(2025, 6, 1, 12, tzinfo=UTC)),
        (1748779200, datetime(2025, 6, 1, 12, tzinfo=UTC)),
        (1748779200000, datetime(2025, 6, 1, 12, tzinfo=UTC)),
    ],
)
def test_parse_accepts_every_kiro_format(text: object, expected: datetime) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize("bad", [None, "", "soon", "2025-13-01T00:00:00Z", "2025-06-01", True, [1]])
def test_parse_returns_none_for_unreadable_values(bad: object) -> None:
    assert parse_timestamp(bad) is None


def test_style_is_detected_and_kept_on_format() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    cli_social = timestamp_style("2025-06-01T12:00:00.123456789Z", TimestampStyle())
    cli_oidc = timestamp_style("2025-06-01T12:00:00Z", TimestampStyle())
    ide = timestamp_style("2025-12-31T02:32:45.144Z", TimestampStyle())
    offset = timestamp_style("2025-12-31T02:32:45.144+00:00", TimestampStyle())
    assert format_timestamp(moment, cli_social) == "2026-01-02T03:04:05.678901000Z"
    assert format_timestamp(moment, cli_oidc) == "2026-01-02T03:04:05Z"
    assert format_timestamp(moment, ide) == "2026-01-02T03:04:05.678Z"
    assert format_timestamp(moment, offset) == "2026-01-02T03:04:05.678+00:00"
    assert timestamp_style(None, TimestampStyle(3)) == TimestampStyle(3)


def test_format_converts_to_utc_and_round_trips() -> None:
    local = datetime(2026, 1, 2, 5, 4, 5, 678000, tzinfo=timezone(timedelta(hours=2)))
    text = format_timestamp(local, TimestampStyle(3))
    assert text == "2026-01-02T03:04:05.678Z"
    assert parse_timestamp(text) == local
