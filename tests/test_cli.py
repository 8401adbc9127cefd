"""``kiro-lc status|models|chat|usage`` against the KiroEmulator over real loopback sockets.

Most tests call ``main(argv)`` in-process with the ``KIRO_*`` variables pointing at the
emulator; the ones about processes (exit status on Ctrl-C, streaming to a pipe, the terminal
spinner, the interactive chat on a pseudo-terminal) run ``python -m kiro_lc.cli``.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from auth_fixtures import PROFILE_ARN, SOCIAL_KEY, get_db_row, make_kiro_home, social_db_for

from kiro_lc._cli.spinner import Spinner
from kiro_lc.cli import build_parser, main
from kiro_lc.testing import Fault, KiroEmulator, Reply

REPO = Path(__file__).resolve().parents[1]
POSIX_ONLY = pytest.mark.skipif(
    sys.platform == "win32", reason="needs POSIX signals and pseudo-terminals"
)
SUBCOMMANDS = ("status", "models", "chat", "usage", "emulator", "demo")


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[KiroEmulator]:
    make_kiro_home(tmp_path, monkeypatch)
    with KiroEmulator(disabled_models=["claude-opus-4.5"]) as emulator:
        for name, value in emulator.env().items():
            monkeypatch.setenv(name, value)
        yield emulator


def run(
    argv: list[str], capsys: pytest.CaptureFixture[str], stdin: str = ""
) -> tuple[int, str, str]:
    """``main(argv)`` in-process with ``stdin`` piped; returns (status, stdout, stderr)."""
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        code = main(argv)
    finally:
        sys.stdin = old_stdin
    out, err = capsys.readouterr()
    return code, out, err


def spawn(argv: list[str], env: dict[str, str], **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kiro_lc.cli", *argv],
        cwd=REPO,
        env={**os.environ, **env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        **kw,  # type: ignore[call-overload]
    )


def chat_bodies(emu: KiroEmulator) -> list[dict[str, object]]:
    return [
        r.body["conversationState"]
        for r in emu.requests
        if r.operation == "GenerateAssistantResponse" and isinstance(r.body, dict)
    ]


def current_text(state: dict[str, object]) -> str:
    return str(state["currentMessage"]["userInputMessage"]["content"])  # type: ignore[index]


# -- parser ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: kiro-lc {command}")
    assert "--debug" in out


def test_top_level_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(command in out for command in SUBCOMMANDS)
    assert "kiro-lc demo" in out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bogus"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["models", "--nope"]) == 2
    assert main([]) == 2


def test_debug_flag_works_before_and_after_the_subcommand() -> None:
    parser = build_parser()
    assert parser.parse_args(["--debug", "status"]).debug is True
    assert parser.parse_args(["status", "--debug"]).debug is True
    assert parser.parse_args(["status"]).debug is False


# -- status ------------------------------------------------------------------------------------


def test_status_with_an_api_key(emu: KiroEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["status"], capsys)
    assert code == 0, err
    assert "Source:       API key: the KIRO_API_KEY environment variable" in out
    assert f"API URL:      {emu.base_url}" in out
    assert emu.api_key not in out + err
    assert emu.requests == []  # status reads the source only


def test_status_json_of_a_kiro_cli_social_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = make_kiro_home(tmp_path, monkeypatch)
    with KiroEmulator() as emu:
        acct = emu.add_account("alice", kind="social", profile_arn=PROFILE_ARN)
        social_db_for(emu, home.cli_db, acct, expires_in=1800)
        code, out, err = run(["status", "--json"], capsys)
        assert code == 0, err
        data = json.loads(out)
        assert data["source_kind"] == "kiro_cli_db"
        assert data["path"] == "~/.local/share/kiro-cli/data.sqlite3"
        assert data["login_kind"] == "social"
        assert data["profile_arn"] == PROFILE_ARN
        assert data["can_refresh"] is True
        assert data["api_url"] == "https://q.us-east-1.amazonaws.com"
        assert data["expires_at"].endswith("+00:00")
        code, text, _ = run(["status"], capsys)
        assert "Login:        social (Google / GitHub)" in text
        assert "expires in 29 min" in text or "expires in 30 min" in text
        row = get_db_row(home.cli_db, SOCIAL_KEY)
        assert row is not None
        for secret in (row["access_token"], row["refresh_token"]):
            assert secret not in out + text


def test_status_without_credentials_exits_1_with_the_sign_in_message(tmp_path: Path) -> None:
    home = tmp_path / "empty-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIRO_")}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "c"))
    proc = subprocess.run(
        [sys.executable, "-m", "kiro_lc.cli", "status"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("kiro-lc: No Kiro credentials found.")
    assert "kiro-cli login" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 2


# -- models and usage --------------------------------------------------------------------------


def test_models_table_and_json(emu: KiroEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["models"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["MODEL", "NAME", "CONTEXT", "CREDITS"]
    assert any(line.split()[:2] == ["auto", "*"] for line in lines)
    sonnet5 = next(line for line in lines if line.startswith("claude-sonnet-5 "))
    assert sonnet5.split()[-2:] == ["1M", "1.3x"]
    code, out, _ = run(["models", "--json"], capsys)
    data = json.loads(out)
    ids = [m["id"] for m in data["models"]]
    assert ids == [e["modelId"] for e in emu.catalog]
    haiku = data["models"][ids.index("claude-haiku-4.5")]
    assert haiku["context_window"] == 200_000
    assert haiku["credit_multiplier"] == 1.0
    assert [m["id"] for m in data["models"] if m["default"]] == [data["default"]]


def test_usage_reports_the_credits_chat_spent(
    emu: KiroEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emu.script(Reply.text("one", metering=2.5), Reply.text("two", metering=1.25))
    assert run(["chat", "-q", "a"], capsys)[0] == 0
    assert run(["chat", "-q", "b"], capsys)[0] == 0
    code, out, err = run(["usage"], capsys)
    assert code == 0, err
    assert "Plan:       KIRO PRO" in out
    assert "Used:       3.75 of 1000 credits" in out
    assert "Left:       996.25 credits" in out
    assert "Resets:" in out
    code, out, _ = run(["usage", "--json"], capsys)
    data = json.loads(out)
    assert data["credits_used"] == 3.75
    assert data["credits_remaining"] == 996.25
    assert data["plan_title"] == "KIRO PRO"


# -- chat --------------------------------------------------------------------------------------


def test_chat_prompt_argument_streams_the_answer(
    emu: KiroEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emu.script(Reply.text("Paris is the capital of France.", metering=0.5))
    code, out, err = run(["chat", "-m", "haiku", "--system", "Be brief.", "capital", "of?"], capsys)
    assert code == 0, err
    assert out == "Paris is the capital of France.\n"
    usage = err.strip().splitlines()[-1]
    assert usage.startswith("claude-haiku-4.5 · ≈")
    assert "0.5 credits" in usage
    (state,) = chat_bodies(emu)
    assert "capital of?" in current_text(state)
    assert "Be brief." in json.dumps(state)
    assert state["currentMessage"]["userInputMessage"]["modelId"] == "claude-haiku-4.5"  # type: ignore[index]


@pytest.mark.parametrize("argv", [["chat"], ["chat", "-"]])
def test_chat_reads_the_prompt_from_stdin(
    argv: list[str], emu: KiroEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(argv, capsys, stdin="What does\nthis multi-line prompt say?\n")
    assert code == 0, err
    assert out == "Hello from the Kiro emulator (claude-sonnet-4.5).\n"
    assert "this multi-line prompt say?" in current_text(chat_bodies(emu)[0])


def test_chat_without_any_prompt_is_a_usage_error(
    emu: KiroEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["chat"], capsys, stdin="  \n")
    assert code == 2
    assert "kiro-lc chat: error: no prompt" in err
    assert emu.requests == []


def test_chat_quiet_prints_only_the_answer(
    emu: KiroEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["chat", "--quiet", "hi"], capsys)
    assert (code, err) == (0, "")
    assert out.startswith("Hello from the Kiro emulator")


def test_chat_empty_answer_exits_1_and_suggests_haiku(
    emu: KiroEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emu.script(Reply.text(""))
    code, out, err = run(["chat", "hi"], capsys)
    assert code == 1
    assert out == ""
    assert "empty answer" in err
    assert "-m claude-haiku-4-5" in err


def test_chat_streams_to_a_pipe_as_the_answer_arrives(emu: KiroEmulator) -> None:
    emu.script(Fault.stall(1.5, after_frames=1, reply=Reply.text("First. Second.", chunk_size=7)))
    proc = spawn(["chat", "go"], emu.env())
    assert proc.stdout is not None
    first = proc.stdout.read(7)  # returns as soon as the first frame's text is written
    running_after_first_chunk = proc.poll() is None
    rest, err = proc.communicate(timeout=30)
    assert first == "First. "
    assert running_after_first_chunk
    assert rest == "Second.\n"
    assert proc.returncode == 0
    assert "waiting for" not in err  # no spinner when piped
    assert "\r" not in err


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.http(402), "credits for this month are used up"),
        (Fault.http(403, {"message": "Suspended", "reason": "TEMPORARILY_SUSPENDED"}), "suspended"),
        (Fault.http(400), "improperly formed"),
        (Fault.http(400, {"message": "Input is too long.", "reason": None}), "too long"),
        (Fault.exception_frame("InternalServerException", "Boom"), "failed on its side"),
    ],
)
def test_kiro_errors_exit_1_with_one_actionable_message(
    fault: Fault, expected: str, emu: KiroEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emu.script(fault, fault, fault)
    code, out, err = run(["chat", "-q", "hi"], capsys)
    assert code == 1
    assert out == ""
    assert err.startswith("kiro-lc: ")
    assert expected in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2


def test_model_out_of_capacity_suggests_another_model(
    emu: KiroEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["chat", "-q", "-m", "claude-opus-4-5", "hi"], capsys)
    assert code == 1
    assert "out of capacity" in err
    assert "claude-haiku-4-5" in err


def test_unknown_model_lists_the_accounts_models(
    emu: KiroEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["chat", "-m", "claude-sonet-4.5", "hi"], capsys)
    assert code == 1
    assert "Did you mean 'claude-sonnet-4.5'" in err
    assert "claude-haiku-4.5" in err


def test_debug_shows_the_traceback(emu: KiroEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    emu.script(Fault.http(402))
    code, _, err = run(["--debug", "chat", "hi"], capsys)
    assert code == 1
    assert "Traceback (most recent call last)" in err
    assert "KiroQuotaExceededError" in err
    assert err.rstrip().splitlines()[-1].startswith("kiro-lc: Your Kiro credits")


@POSIX_ONLY
def test_ctrl_c_exits_130_without_a_traceback(emu: KiroEmulator) -> None:
    emu.script(Fault.stall(30, after_frames=1, reply=Reply.text("Partial answer", chunk_size=8)))
    proc = spawn(["chat", "go"], emu.env())
    assert proc.stdout is not None
    assert proc.stdout.read(8) == "Partial "
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "Interrupted." in err
    assert "Traceback" not in err


# -- secrets -----------------------------------------------------------------------------------


def test_no_command_ever_prints_a_token(
    emu: KiroEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    acct = emu.add_account("bob", kind="social", profile_arn=PROFILE_ARN)
    bearer_env = emu.env(acct)
    secrets = [emu.api_key, bearer_env["KIRO_ACCESS_TOKEN"], acct.refresh_token]
    outputs: list[str] = []
    for env in (emu.env(), bearer_env):
        for name in ("KIRO_API_KEY", "KIRO_ACCESS_TOKEN", "KIRO_PROFILE_ARN"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        emu.script(Fault.http(403, {"message": "Denied.", "reason": None}))
        for argv in (
            ["--debug", "status"],
            ["--debug", "status", "--json"],
            ["--debug", "models", "--json"],
            ["--debug", "usage", "--json"],
            ["--debug", "chat", "hello"],
            ["--debug", "chat", "hello"],
        ):
            _, out, err = run(argv, capsys)
            outputs.append(out + err)
    everything = "\n".join(outputs)
    assert "Traceback" in everything  # the failed chat printed its traceback with --debug
    for secret in secrets:
        assert secret not in everything


# -- the spinner and the interactive chat ------------------------------------------------------


def test_spinner_draws_only_on_a_terminal() -> None:
    class FakeTTY(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = FakeTTY(), io.StringIO()
    with Spinner(tty, "waiting", interval=0.01) as spinner:
        assert spinner.active
        Spinner(pipe, "waiting").start().stop()
    assert "waiting" in tty.getvalue()
    assert tty.getvalue().endswith("\r\x1b[K")
    assert pipe.getvalue() == ""


@pytest.fixture
def chat_child(emu: KiroEmulator) -> Iterator[pexpect.spawn]:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "kiro_lc.cli", "chat", "--system", "You are terse."],
        cwd=str(REPO),
        env={**os.environ, **emu.env()},
        encoding="utf-8",
        timeout=30,
        dimensions=(24, 200),
    )
    try:
        yield child
    finally:
        child.close(force=True)


@POSIX_ONLY
def test_interactive_chat_on_a_terminal(chat_child: pexpect.spawn, emu: KiroEmulator) -> None:
    child = chat_child
    child.expect("Ctrl-C stops an answer, Ctrl-D quits.")
    child.expect_exact("you> ")

    emu.script(Fault.latency(0.8, Reply.text("The first answer.", chunk_size=5)))
    child.sendline("first question")
    child.expect("waiting for claude-sonnet-4.5")  # the spinner, while no token has arrived
    child.expect_exact("The first answer.")
    child.expect("credits")  # the usage line
    child.expect_exact("you> ")

    words = " ".join(f"w{i}" for i in range(300))
    emu.script(Reply.text(words, chunk_size=4, delay_between=0.05))
    child.sendline("a long one")
    child.expect_exact("w3 ")
    child.sendintr()  # Ctrl-C stops the answer, not the chat
    child.expect_exact("[stopped]")
    child.expect_exact("you> ")

    child.sendline("third")
    child.expect_exact("Hello from the Kiro emulator")
    child.expect_exact("you> ")
    child.sendintr()  # Ctrl-C at the prompt only says how to quit
    child.expect_exact("(Ctrl-D quits)")
    child.expect_exact("you> ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    first, second, third = chat_bodies(emu)
    assert "first question" in current_text(first)
    history = third["history"]
    assert isinstance(history, list)
    answers = [h["assistantResponseMessage"]["content"] for h in history[-4:][1::2]]
    assert answers[0] == "The first answer."  # both earlier exchanges went back to Kiro
    stopped = answers[1]
    assert stopped.startswith("w0 w1 w2 w3")
    assert len(stopped) < len(words)
    assert "You are terse." in json.dumps(third)
    assert second["currentMessage"]["userInputMessage"]["content"].endswith("a long one")  # type: ignore[index]


@POSIX_ONLY
def test_interactive_chat_survives_a_kiro_error(
    chat_child: pexpect.spawn, emu: KiroEmulator
) -> None:
    child = chat_child
    child.expect_exact("you> ")
    emu.script(Fault.http(402))
    child.sendline("hello")
    child.expect("credits for this month are used up")
    child.expect_exact("you> ")
    child.sendline("again")
    child.expect_exact("Hello from the Kiro emulator")
    child.expect_exact("you> ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    last = chat_bodies(emu)[-1]
    assert "again" in current_text(last)
    assert "hello" not in json.dumps(last.get("history", []))  # the failed exchange was dropped


def test_chat_dash_among_words_inserts_stdin(
    emu: KiroEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code_text = "def f(x):\n    return x * 2\n"
    code, _, err = run(["chat", "Explain", "this:", "-", "Be brief."], capsys, stdin=code_text)
    assert code == 0, err
    sent = current_text(chat_bodies(emu)[0])
    assert sent.endswith("Explain this:\ndef f(x):\n    return x * 2\nBe brief.")
