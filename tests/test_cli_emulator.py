"""``kiro-lc emulator``: runs in the foreground, prints URLs and export lines, stops on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kiro_lc.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def running_emulator() -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiro_lc.cli", "emulator", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl-C"):
                break
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def _exports(lines: list[str]) -> dict[str, str]:
    return dict(
        m.groups() for line in lines if (m := re.fullmatch(r"export (KIRO_\w+)=(\S+)", line))
    )


def test_emulator_command_serves_until_ctrl_c(
    running_emulator: tuple[subprocess.Popen[str], list[str]],
) -> None:
    proc, lines = running_emulator
    url = re.search(r"listening on (http://127\.0\.0\.1:\d+)", lines[0])
    assert url, lines
    env = _exports(lines)
    assert env["KIRO_API_URL"] == env["KIRO_AUTH_URL"] == env["KIRO_OIDC_URL"] == url.group(1)
    assert env["KIRO_REGION"] == "us-east-1"
    assert env["KIRO_API_KEY"].startswith("ksk_")
    response = httpx.get(
        url.group(1) + "/ListAvailableModels",
        headers={"Authorization": f"Bearer {env['KIRO_API_KEY']}", "tokentype": "API_KEY"},
        timeout=5,
    )
    assert response.status_code == 200
    assert response.json()["models"]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Kiro emulator stopped." in out
    assert "Traceback" not in err


@pytest.mark.skipif(os.name == "nt", reason="SIGTERM cannot be caught on Windows")
def test_emulator_command_stops_cleanly_on_sigterm(
    running_emulator: tuple[subprocess.Popen[str], list[str]],
) -> None:
    proc, _ = running_emulator
    proc.terminate()
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "Kiro emulator stopped." in out


def test_busy_port_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["emulator", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "--port 0" in err


def test_no_subcommand_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "emulator" in capsys.readouterr().out
    args = build_parser().parse_args(["emulator", "--host", "127.0.0.1", "--port", "8123"])
    assert (args.host, args.port) == ("127.0.0.1", 8123)
