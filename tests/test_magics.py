"""``%%kiro`` in an InteractiveShell, against the KiroEmulator over real loopback sockets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets.config import Config

import kiro_lc.magics
from kiro_lc.errors import KiroModelNotFoundError, KiroQuotaExceededError
from kiro_lc.magics.answer import CURSOR, WAITING
from kiro_lc.magics.magics import KiroMagics
from kiro_lc.testing import Fault, KiroEmulator, Reply

ROOT = Path(__file__).resolve().parents[1]
EXTENSION = "kiro_lc"
LONG_TEXT = " ".join(f"word{i}" for i in range(60))


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[KiroEmulator]:
    with KiroEmulator(models=["claude-next-9"]) as emulator:
        for name, value in emulator.env().items():
            monkeypatch.setenv(name, value)
        yield emulator


@pytest.fixture
def ip(emu: KiroEmulator) -> Iterator[InteractiveShell]:
    shell = InteractiveShell.instance(config=Config({"HistoryManager": {"hist_file": ":memory:"}}))
    shell.extension_manager.load_extension(EXTENSION)
    shell.run_line_magic("config", "KiroMagics.renderer = 'notebook'")
    shell.run_line_magic("config", "KiroMagics.show_usage = False")
    yield shell
    shell.extension_manager.unload_extension(EXTENSION)
    shell.config.pop("KiroMagics", None)


def magics(ip: InteractiveShell) -> KiroMagics:
    instance = ip.magics_manager.registry["KiroMagics"]
    assert isinstance(instance, KiroMagics)
    return instance


def chats(emu: KiroEmulator) -> list[dict[str, Any]]:
    """The conversationState of every chat request the emulator answered."""
    return [
        r.body["conversationState"]
        for r in emu.requests
        if isinstance(r.body, dict) and "conversationState" in r.body
    ]


def current_text(state: dict[str, Any]) -> str:
    return str(state["currentMessage"]["userInputMessage"]["content"])


def history_texts(state: dict[str, Any]) -> list[str]:
    out = []
    for entry in state.get("history", []):
        message = entry.get("userInputMessage") or entry.get("assistantResponseMessage")
        out.append(message["content"])
    return out


def run_kiro(ip: InteractiveShell, line: str, cell: str) -> list[Any]:
    with capture_output() as cap:
        ip.run_cell_magic("kiro", line, cell)
    return list(cap.outputs)


# -- loading -------------------------------------------------------------------------------


def test_load_ext_registers_is_idempotent_and_unloads(ip: InteractiveShell) -> None:
    assert "kiro_lc" in ip.extension_manager.loaded
    manager = ip.magics_manager
    first = manager.registry["KiroMagics"]
    kiro_lc.magics.load_ipython_extension(ip)
    assert manager.registry["KiroMagics"] is first
    assert "kiro" in manager.magics["line"]
    assert "kiro" in manager.magics["cell"]
    assert first in ip.configurables
    ip.extension_manager.unload_extension(EXTENSION)
    assert "kiro" not in manager.magics["line"]
    assert "kiro" not in manager.magics["cell"]
    assert first not in ip.configurables
    ip.extension_manager.load_extension(EXTENSION)  # the fixture unloads it again
    assert manager.registry["KiroMagics"] is not first


def test_load_ext_imports_no_client_widgets_or_credentials() -> None:
    probe = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'kiro_lc')\n"
        "assert 'kiro' in ip.magics_manager.magics['cell']\n"
        "heavy = ['httpx', 'ipywidgets', 'kiro_lc.chat_models', 'kiro_lc.auth',\n"
        "         'kiro_lc.transport', 'langchain_core.language_models']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


# -- streaming -----------------------------------------------------------------------------


def test_answer_streams_into_one_display_with_throttled_updates(
    ip: InteractiveShell, emu: KiroEmulator
) -> None:
    ip.run_line_magic("config", "KiroMagics.stream_interval = 0.05")
    emu.script(Reply.text(LONG_TEXT, chunk_size=12, delay_between=0.01))
    outputs = run_kiro(ip, "-m sonnet", "Write sixty words.")
    first, updates = outputs[0], outputs[1:]
    assert not first.update
    assert first.data == {"text/markdown": f"*{WAITING}*", "text/plain": WAITING}
    assert len(updates) >= 3
    assert all(o.update for o in updates)
    ids = {o.transient["display_id"] for o in outputs}
    assert len(ids) == 1
    assert all(o.data["text/plain"].endswith(CURSOR) for o in updates[:-1])
    lengths = [len(o.data["text/plain"]) for o in updates]
    assert lengths[:-1] == sorted(lengths[:-1])
    final = updates[-1]
    assert final.data == {"text/markdown": LONG_TEXT, "text/plain": LONG_TEXT}
    meta = final.metadata["kiro_lc"]
    assert meta["model"] == "claude-sonnet-4.5"
    assert meta["stop_reason"] == "end_turn"
    assert meta["credits"] == pytest.approx(0.0273, abs=1e-3)
    assert meta["usage"]["output_tokens"] > 0
    assert meta["interrupted"] is False


def test_stream_interval_zero_shows_placeholder_then_final(
    ip: InteractiveShell, emu: KiroEmulator
) -> None:
    ip.run_line_magic("config", "KiroMagics.stream_interval = 0")
    ip.run_line_magic("config", "KiroMagics.show_usage = True")
    emu.script(Reply.text(LONG_TEXT, chunk_size=8, delay_between=0.002))
    outputs = run_kiro(ip, "", "Write.")
    assert len(outputs) == 2
    final = outputs[1].data
    assert final["text/markdown"].startswith(
        LONG_TEXT + "\n\n<sub>claude-sonnet-4.5 · 0.03 credits"
    )
    assert final["text/plain"].startswith(LONG_TEXT + "\n\nclaude-sonnet-4.5 · 0.03 credits")


def test_terminal_renderer_prints_plain_text_only(
    ip: InteractiveShell, emu: KiroEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.run_line_magic("config", "KiroMagics.renderer = 'terminal'")
    emu.script(Reply.text("Hello **terminal**", chunk_size=4))
    with capture_output(stdout=False) as cap:
        ip.run_cell_magic("kiro", "", "hi")
    assert cap.outputs == []
    out = capsys.readouterr().out
    assert out == "Hello **terminal**\n"


# -- prompt building -----------------------------------------------------------------------


def test_interpolation_fills_names_and_keeps_other_braces(
    ip: InteractiveShell, emu: KiroEmulator
) -> None:
    n = ip.execution_count
    ip.run_cell("data = {'rows': 3}\nclass T: name = 'table'\nt = T()", store_history=True)
    run_kiro(
        ip,
        "",
        f"n={{data}} name={{t.name}} code={{'a': 1}} keep={{{{data}}}} f'{{x:>3}}' {{In[{n}]}}",
    )
    expected = (
        "n={'rows': 3} name=table code={'a': 1} keep={data} f'{x:>3}' "
        "data = {'rows': 3}\nclass T: name = 'table'\nt = T()"
    )
    assert current_text(chats(emu)[-1]) == expected
    run_kiro(ip, "--no-interp", "n={data}")
    assert current_text(chats(emu)[-1]) == "n={data}"


def test_line_magic_is_not_var_expanded(ip: InteractiveShell) -> None:
    ip.user_ns["price"] = 7
    ip.run_line_magic("kiro", "system Costs $price, {price} and {{x}}.")
    assert magics(ip).system_prompt == "Costs $price, {price} and {{x}}."


def test_memory_multi_turn_new_reset_and_max_history(
    ip: InteractiveShell, emu: KiroEmulator
) -> None:
    emu.script(Reply.text("Paris."), Reply.text("About 2 million."))
    run_kiro(ip, "", "Capital of France?")
    run_kiro(ip, "", "Population?")
    assert history_texts(chats(emu)[-1]) == ["Capital of France?", "Paris."]
    run_kiro(ip, "--new", "Unrelated question")
    assert "history" not in chats(emu)[-1] or chats(emu)[-1]["history"] == []
    assert len(magics(ip).session.conversation) == 2
    ip.run_line_magic("config", "KiroMagics.max_history = 1")
    run_kiro(ip, "", "Third")
    assert history_texts(chats(emu)[-1]) == ["Population?", "About 2 million."]
    with capture_output() as cap:
        ip.run_line_magic("kiro", "history")
    shown = cap.outputs[0].data
    assert "**You** (not sent: beyond max_history):\n\nCapital of France?" in shown["text/markdown"]
    assert "Kiro (claude-sonnet-4.5):\nAbout 2 million." in shown["text/plain"]
    with capture_output() as cap:
        ip.run_line_magic("kiro", "reset")
    assert cap.stdout.strip() == "Conversation cleared (3 turns forgotten)."
    run_kiro(ip, "", "Fresh start")
    assert "history" not in chats(emu)[-1] or chats(emu)[-1]["history"] == []


def test_system_prompt_from_cell_option_and_config(ip: InteractiveShell, emu: KiroEmulator) -> None:
    with capture_output() as cap:
        ip.run_cell_magic("kiro", "system", "You are a pirate.\n")
    assert cap.stdout.strip() == "System prompt set (17 characters)."
    run_kiro(ip, "", "Hello")
    assert "You are a pirate." in history_texts(chats(emu)[-1])[0]
    run_kiro(ip, '--new --system "You are a poet."', "Hello")
    assert "You are a poet." in history_texts(chats(emu)[-1])[0]
    ip.run_line_magic("kiro", "system --clear")
    assert magics(ip).system_prompt == ""


# -- models --------------------------------------------------------------------------------


def test_config_and_use_choose_the_default_model(ip: InteractiveShell, emu: KiroEmulator) -> None:
    ip.run_line_magic("config", 'KiroMagics.default_model = "claude-haiku-4-5"')
    run_kiro(ip, "", "hi")
    assert chats(emu)[-1]["currentMessage"]["userInputMessage"]["modelId"] == "claude-haiku-4.5"
    with capture_output() as cap:
        ip.run_line_magic("kiro", "use opus")
    assert cap.stdout.strip() == "Default model: claude-opus-4.5"
    run_kiro(ip, "", "hi")
    assert chats(emu)[-1]["currentMessage"]["userInputMessage"]["modelId"] == "claude-opus-4.5"
    run_kiro(ip, "-m claude-next-9", "hi")  # known only from the live list
    assert chats(emu)[-1]["currentMessage"]["userInputMessage"]["modelId"] == "claude-next-9"


def test_unknown_model_fails_the_cell_with_a_suggestion(
    ip: InteractiveShell, emu: KiroEmulator
) -> None:
    with capture_output() as cap:
        result = ip.run_cell("%%kiro -m sonet\nhi")
    assert isinstance(result.error_in_exec, KiroModelNotFoundError)
    assert "Did you mean 'sonnet'?" in str(result.error_in_exec)
    lines = [line for line in cap.stdout.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 3
    assert lines[0].startswith("KiroModelNotFoundError: Unknown model 'sonet'.")
    result = ip.run_cell("%%kiro -m claude-next-8\nhi")
    assert "Did you mean 'claude-next-9'" in str(result.error_in_exec)
    assert chats(emu) == []  # nothing was sent


def test_models_table_and_picker_bound_to_default_model(
    ip: InteractiveShell, emu: KiroEmulator
) -> None:
    ip.run_line_magic("config", "KiroMagics.widgets = 'on'")
    with capture_output() as cap:
        ip.run_line_magic("kiro", "models")
    table, picker = cap.outputs
    assert (
        "| ▶ | `claude-sonnet-4.5` | Claude Sonnet 4.5 | 200k | 64k | 1 |"
        in table.data["text/markdown"]
    )
    assert "claude-next-9" in table.data["text/plain"]
    assert "application/vnd.jupyter.widget-view+json" in picker.data
    dropdown = magics(ip).session.picker
    assert picker.data["application/vnd.jupyter.widget-view+json"]["model_id"] == dropdown.model_id
    assert dropdown.value == "claude-sonnet-4.5"
    dropdown.value = "claude-haiku-4.5"
    assert magics(ip).default_model == "claude-haiku-4.5"
    ip.run_line_magic("kiro", "use opus")
    assert dropdown.value == "claude-opus-4.5"
    run_kiro(ip, "", "hi")
    assert chats(emu)[-1]["currentMessage"]["userInputMessage"]["modelId"] == "claude-opus-4.5"


def test_widgets_auto_shows_no_picker_without_a_kernel(ip: InteractiveShell) -> None:
    with capture_output() as cap:
        ip.run_line_magic("kiro", "models")
    assert len(cap.outputs) == 1


# -- formats -------------------------------------------------------------------------------


def test_code_format_strips_fences_shows_code_and_sets_next_input(
    ip: InteractiveShell, emu: KiroEmulator
) -> None:
    emu.script(Reply.text("Here you go:\n```python\nprint('hi')\n```\nEnjoy.", chunk_size=7))
    ip.rl_next_input = None
    outputs = run_kiro(ip, "-f code", "Print hi")
    assert outputs[-1].data == {
        "text/markdown": "```python\nprint('hi')\n```",
        "text/plain": "print('hi')",
    }
    assert ip.rl_next_input == "print('hi')"
    assert "source code only" in current_text(chats(emu)[-1])


def test_json_html_and_text_formats(ip: InteractiveShell, emu: KiroEmulator) -> None:
    emu.script(
        Reply.text('{"city": "Paris", "n": 2}'), Reply.text("<b>bold</b>"), Reply.text("plain")
    )
    assert run_kiro(ip, "-f json", "json please")[-1].data["application/json"] == {
        "city": "Paris",
        "n": 2,
    }
    assert run_kiro(ip, "-f html", "html please")[-1].data["text/html"] == "<b>bold</b>"
    assert run_kiro(ip, "-f text", "text please")[-1].data == {"text/plain": "plain"}


# -- tools ---------------------------------------------------------------------------------


def test_tools_run_in_the_kernel_and_show_collapsibly(
    ip: InteractiveShell, emu: KiroEmulator
) -> None:
    ip.run_cell(
        "calls = []\n"
        "def add(a: int, b: int) -> int:\n"
        "    '''Add two integers.'''\n"
        "    calls.append((a, b))\n"
        "    return a + b\n"
    )
    emu.script(Reply.tool_call("add", {"a": 2, "b": 3}, text_before="Let me add."))
    outputs = run_kiro(ip, "--tools add", "What is 2 + 3?")
    assert ip.user_ns["calls"] == [(2, 3)]
    final = outputs[-1].data
    assert (
        "<details><summary>🔧 <code>add(a=2, b=3)</code> — done</summary>" in final["text/markdown"]
    )
    assert final["text/markdown"].endswith("</details>\n\nThe tool add returned: 5")
    assert "🔧 add(a=2, b=3) → 5" in final["text/plain"]
    first, second = chats(emu)
    tools = first["currentMessage"]["userInputMessage"]["userInputMessageContext"]["tools"]
    assert tools[0]["toolSpecification"]["name"] == "add"
    results = second["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"]
    assert results[0]["content"][0]["text"] == "5"
    assert outputs[-1].metadata["kiro_lc"]["tool_calls"] == 1


def test_failing_tool_goes_back_to_the_model_and_rounds_are_bounded(
    ip: InteractiveShell, emu: KiroEmulator
) -> None:
    ip.run_cell("def boom(x: int) -> int:\n    '''Explode.'''\n    raise ValueError('bad x')\n")
    ip.run_line_magic("config", "KiroMagics.max_tool_rounds = 1")
    emu.script(Reply.tool_call("boom", {"x": 1}), Reply.tool_call("boom", {"x": 2}))
    outputs = run_kiro(ip, "--tools boom", "Call boom")
    final = outputs[-1].data
    assert "— failed</summary>" in final["text/markdown"]
    assert "ValueError: bad x" in final["text/markdown"]
    assert final["text/plain"].rstrip().endswith("[stopped after 1 tool rounds]")
    assert len(chats(emu)) == 2


def test_tools_must_name_callables(ip: InteractiveShell) -> None:
    ip.user_ns["n"] = 3
    for line, message in [
        ("--tools nope", "nothing named 'nope'"),
        ("--tools n", "not a function"),
    ]:
        result = ip.run_cell(f"%%kiro {line}\nhi")
        assert message in str(result.error_in_exec)


# -- failures and interrupts ---------------------------------------------------------------


def test_kiro_error_fails_the_cell_and_finishes_the_display(
    ip: InteractiveShell, emu: KiroEmulator
) -> None:
    emu.script(Fault.http(402))
    with capture_output() as cap:
        result = ip.run_cell("%%kiro\nhi")
    assert isinstance(result.error_in_exec, KiroQuotaExceededError)
    final = [o for o in cap.outputs if o.update][-1]
    assert final.data["text/plain"] == "[failed: KiroQuotaExceededError]"
    assert len(magics(ip).session.conversation) == 0
    with capture_output() as cap:
        ip.run_line_magic("kiro", "debug")
    assert "Traceback (most recent call last)" in cap.stdout
    assert "KiroQuotaExceededError" in cap.stdout


def test_interrupt_finishes_with_marker_and_reraises(
    ip: InteractiveShell, emu: KiroEmulator
) -> None:
    ip.run_line_magic("config", "KiroMagics.stream_interval = 0.02")
    emu.script(Reply.text(LONG_TEXT, chunk_size=5, delay_between=0.05))
    timer = threading.Timer(0.4, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with capture_output() as cap, pytest.raises(KeyboardInterrupt):
            ip.run_cell_magic("kiro", "", "Write a lot.")
    finally:
        timer.cancel()
    final = cap.outputs[-1]
    text = final.data["text/markdown"]
    assert text.endswith("\n\n*[interrupted]*")
    partial = text.removesuffix("\n\n*[interrupted]*")
    assert 0 < len(partial) < len(LONG_TEXT)
    assert LONG_TEXT.startswith(partial)
    assert final.metadata["kiro_lc"]["interrupted"] is True
    assert len(magics(ip).session.conversation) == 0


# -- other subcommands ---------------------------------------------------------------------


def test_status_and_usage_never_show_the_key(ip: InteractiveShell, emu: KiroEmulator) -> None:
    with capture_output() as cap:
        ip.run_line_magic("kiro", "status")
        ip.run_line_magic("kiro", "usage")
    assert "KIRO_API_KEY" in cap.stdout
    assert emu.api_key not in cap.stdout
    usage = cap.outputs[0].data["text/plain"]
    assert "Plan: KIRO PRO" in usage
    assert "left)" in usage


def test_fix_explains_the_last_error_with_its_cell(ip: InteractiveShell, emu: KiroEmulator) -> None:
    with capture_output():
        n = ip.execution_count
        ip.run_cell("def f(d):\n    return d['missing']\nf({'a': 1})", store_history=True)
    with capture_output():
        ip.run_line_magic("kiro", "fix -m haiku")
    prompt = current_text(chats(emu)[-1])
    assert "return d['missing']" in prompt
    assert "KeyError: 'missing'" in prompt
    assert f"The cell (In[{n}]):\n```python\ndef f(d):" in prompt
    assert "interactiveshell.py" not in prompt
    assert chats(emu)[-1]["currentMessage"]["userInputMessage"]["modelId"] == "claude-haiku-4.5"


def test_usage_errors(ip: InteractiveShell) -> None:
    with capture_output() as cap:
        ip.run_line_magic("kiro", "")
    assert "%kiro models" in cap.stdout
    for cell in ["%kiro modles", "%kiro tell me a joke", "%%kiro models\nbody", "%%kiro\n   \n"]:
        result = ip.run_cell(cell)
        assert type(result.error_in_exec).__name__ == "UsageError", cell


def test_temperature_is_accepted_with_a_one_time_note(
    ip: InteractiveShell, emu: KiroEmulator
) -> None:
    with capture_output() as cap:
        ip.run_cell_magic("kiro", "-t 0.2 --max-tokens 100", "hi")
        ip.run_cell_magic("kiro", "-t 0.5", "hi again")
    assert cap.stderr.count("Kiro has no temperature") == 1
    assert len(chats(emu)) == 2


def test_typo_fails_even_when_the_model_list_is_unavailable(
    ip: InteractiveShell, emu: KiroEmulator
) -> None:
    emu.script_for("ListAvailableModels", Fault.http(400), Fault.http(400))
    result = ip.run_cell("%%kiro -m sonet\nhi")
    assert isinstance(result.error_in_exec, KiroModelNotFoundError)
    assert "Did you mean 'sonnet'?" in str(result.error_in_exec)
    assert chats(emu) == []
    with capture_output():  # no close match: maybe a new model, so Kiro decides
        result = ip.run_cell("%%kiro -m zz-brand-new\nhi")
    assert chats(emu)[-1]["currentMessage"]["userInputMessage"]["modelId"] == "zz-brand-new"
    assert "Kiro does not know the model 'zz-brand-new'" in str(result.error_in_exec)
