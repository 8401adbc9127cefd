"""Internal signal for a credentials file that exists but cannot be used."""

from __future__ import annotations

__all__ = ["SourceUnreadable"]


class SourceUnreadable(Exception):
    """A source file exists but could not be read; ``reason`` is safe to show (no secrets)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
