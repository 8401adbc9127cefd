"""One ``KiroEmulator`` for the standard integration suite, answering with its default,
request-aware responder (nothing is scripted)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from kiro_lc.testing import KiroEmulator


@pytest.fixture(scope="session", autouse=True)
def standard_suite_emulator() -> Iterator[KiroEmulator]:
    """Start the emulator and publish its address for the test class's properties."""
    with KiroEmulator() as emu:
        os.environ["KIRO_TEST_BASE_URL"] = emu.base_url
        os.environ["KIRO_TEST_API_KEY"] = emu.api_key
        try:
            yield emu
        finally:
            os.environ.pop("KIRO_TEST_BASE_URL", None)
            os.environ.pop("KIRO_TEST_API_KEY", None)
        assert [r.problems for r in emu.requests if r.problems] == []
