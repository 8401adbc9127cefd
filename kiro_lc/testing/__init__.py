"""Test helpers for kiro-lc users: :class:`KiroEmulator`, a wire-faithful Kiro on loopback.

Like moto for AWS: point ``ChatKiro`` (or any Kiro client) at ``emu.base_url`` and script what
Kiro answers with :class:`Reply` and :class:`Fault`. Requests are validated as strictly as
kiro-protocol.md §3.4 describes and logged as :class:`RecordedRequest` objects.
"""

from __future__ import annotations

from kiro_lc.testing.accounts import EmulatorAccount
from kiro_lc.testing.catalog import UsageState
from kiro_lc.testing.emulator import KiroEmulator
from kiro_lc.testing.records import RecordedRequest
from kiro_lc.testing.replies import Fault, Reply, ToolCall

__all__ = [
    "EmulatorAccount",
    "Fault",
    "KiroEmulator",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "UsageState",
]
