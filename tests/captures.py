"""The real kiro-cli 2.15.2 request capture in ``../shared`` (read in place, never copied)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

CAPTURE = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "kiro-captures"
    / "kiro-cli-2.15.2-request-profile.json"
)
GENERATE = "AmazonCodeWhispererStreamingService.GenerateAssistantResponse"


def capture_sample(target: str = GENERATE) -> dict[str, Any]:
    """A deep copy of the capture's sample for ``target`` (headers, body, url path)."""
    if not CAPTURE.is_file():
        pytest.skip(f"the kiro-cli capture is not at {CAPTURE} (needs the shared tree beside)")
    profile = json.loads(CAPTURE.read_text(encoding="utf-8"))
    sample = next(s for s in profile["samples"] if s["target"] == target)
    return copy.deepcopy(sample)  # type: ignore[no-any-return]
