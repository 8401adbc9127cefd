"""``kiro-lc demo``: the offline tour through the real stack, in-process and as a fresh process."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiro_lc.demo import STREAM_ANSWER, TOOL_ANSWER, run_demo

REPO = Path(__file__).resolve().parents[1]


class Recorder(io.StringIO):
    """A stream that remembers each ``write`` call, to see text arrive piece by piece."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def test_the_tour_streams_calls_a_tool_and_reports_usage() -> None:
    out = Recorder()
    assert run_demo(out, pace=0) == 0
    text = out.getvalue()
    assert "local emulator" in text
    assert "not written by Claude" in text
    assert STREAM_ANSWER in text
    pieces = [w for w in out.writes if w and w in STREAM_ANSWER]
    assert len(pieces) > 3  # streamed piece by piece, not printed whole
    assert "The model asked for get_weather({'city': 'Paris'})" in text
    assert "'Sunny, 21 °C in Paris'" in text
    assert TOOL_ANSWER in text
    assert "Kiro received the tool result as toolResults" in text
    assert "This tour: 3 requests, 0.082 credits" in text
    assert "Used:       0.08 of 1000 credits" in text
    assert "kiro-cli login" in text
    assert 'kiro-lc chat "hello"' in text
    assert "\x1b[" not in text  # no colour when not a terminal


def test_the_tour_ignores_and_restores_the_users_kiro_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = {
        "KIRO_API_URL": "http://127.0.0.1:9",
        "KIRO_API_KEY": "ksk_the_users_own_key",
        "KIRO_PROFILE_ARN": "arn:aws:codewhisperer:eu-central-1:111122223333:profile/USER",
    }
    for name, value in user.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("KIRO_REGION", raising=False)
    out = io.StringIO()
    assert run_demo(out, pace=0) == 0
    assert TOOL_ANSWER in out.getvalue()
    assert "ksk_the_users_own_key" not in out.getvalue()
    assert {name: os.environ.get(name) for name in user} == user
    assert "KIRO_REGION" not in os.environ


def test_kiro_lc_demo_works_on_a_fresh_machine(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIRO_")}
    env.update(HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "d"), NO_COLOR="1")
    proc = subprocess.run(
        [sys.executable, "-m", "kiro_lc.cli", "demo"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert STREAM_ANSWER in proc.stdout
    assert TOOL_ANSWER in proc.stdout
    assert "Done in " in proc.stdout
