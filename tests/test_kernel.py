"""``%%kiro`` in a real ipykernel (nbclient / jupyter_client) against a KiroEmulator on loopback.

The emulator runs in this test process; the kernel reaches it through ``KIRO_*`` variables.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager, start_new_kernel
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from kiro_lc.testing import KiroEmulator, Reply

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[1]
EXTENSION = "kiro_lc"
INTERVAL = 0.1
WORDS = " ".join(f"word{i}" for i in range(240))


@pytest.fixture(scope="module")
def emu() -> Iterator[KiroEmulator]:
    with KiroEmulator() as emulator:
        yield emulator


def kernel_env(emu: KiroEmulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIRO_")}
    env.update(emu.env())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def test_saved_notebook_holds_one_output_and_a_bad_model_stops_run_all(emu: KiroEmulator) -> None:
    emu.script(Reply.text(WORDS, chunk_size=40, delay_between=0.01))
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(f"%load_ext {EXTENSION}"),
            nbformat.v4.new_code_cell("%%kiro -m sonnet\nWrite 240 words."),
            nbformat.v4.new_code_cell("%%kiro -m nosuch\nhi"),
            nbformat.v4.new_code_cell("print('never runs')"),
        ]
    )
    client = NotebookClient(nb, timeout=60, kernel_name="python3")
    with pytest.raises(CellExecutionError):
        client.execute(env=kernel_env(emu))
    outputs = nb.cells[1].outputs
    assert len(outputs) == 1
    out = outputs[0]
    assert out.output_type == "display_data"
    assert "transient" not in out
    assert out.data["text/markdown"].startswith(WORDS + "\n\n<sub>claude-sonnet-4.5 · ")
    assert out.data["text/plain"].startswith(WORDS + "\n\nclaude-sonnet-4.5 · ")
    assert out.metadata["kiro_lc"]["model"] == "claude-sonnet-4.5"
    assert out.metadata["kiro_lc"]["stop_reason"] == "end_turn"
    error = nb.cells[2].outputs[-1]
    assert error.output_type == "error"
    assert error.ename == "KiroModelNotFoundError"
    assert len(error.traceback) == 1
    assert nb.cells[3].outputs == []
    nbformat.validate(nb)


@pytest.fixture(scope="module")
def kernel(emu: KiroEmulator) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    km, kc = start_new_kernel(kernel_name="python3", env=kernel_env(emu))
    try:
        reply, _ = execute(
            kc, f"%load_ext {EXTENSION}\n%config KiroMagics.stream_interval = {INTERVAL}"
        )
        assert reply["content"]["status"] == "ok"
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def execute(
    kc: BlockingKernelClient, code: str, *, on_message: Any = None, timeout: float = 30
) -> tuple[dict[str, Any], list[tuple[float, dict[str, Any]]]]:
    """Run ``code``; return the shell reply and the iopub messages (with arrival times)."""
    msg_id = kc.execute(code)
    messages: list[tuple[float, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append((time.monotonic(), msg))
        if on_message is not None:
            on_message(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    reply = kc.get_shell_msg(timeout=timeout)
    assert reply["parent_header"]["msg_id"] == msg_id
    return reply, messages


def of_type(
    messages: list[tuple[float, dict[str, Any]]], kind: str
) -> list[tuple[float, dict[str, Any]]]:
    return [(t, m) for t, m in messages if m["msg_type"] == kind]


def test_update_messages_are_throttled(
    kernel: tuple[KernelManager, BlockingKernelClient], emu: KiroEmulator
) -> None:
    _, kc = kernel
    emu.script(Reply.text(WORDS, chunk_size=8, delay_between=0.008))  # ~220 deltas over ~1.8 s
    reply, messages = execute(kc, "%%kiro\nWrite 240 words.")
    assert reply["content"]["status"] == "ok"
    ((first_time, first),) = of_type(messages, "display_data")
    updates = of_type(messages, "update_display_data")
    duration = updates[-1][0] - first_time
    assert duration > 1.0
    assert 3 <= len(updates) <= duration / INTERVAL + 2
    display_id = first["content"]["transient"]["display_id"]
    assert {m["content"]["transient"]["display_id"] for _, m in updates} == {display_id}
    final = updates[-1][1]["content"]
    assert final["data"]["text/plain"].startswith(WORDS)
    assert final["metadata"]["kiro_lc"]["model"] == "claude-sonnet-4.5"
    print(f"\n{len(updates)} update messages over {duration:.2f} s (interval {INTERVAL} s)")


def test_code_format_sends_a_set_next_input_payload(
    kernel: tuple[KernelManager, BlockingKernelClient], emu: KiroEmulator
) -> None:
    _, kc = kernel
    emu.script(Reply.text("Sure:\n```python\nprint('hi')\n```\n"))
    reply, _ = execute(kc, "%%kiro -f code\nPrint hi")
    assert reply["content"]["status"] == "ok"
    assert reply["content"]["payload"] == [
        {"source": "set_next_input", "text": "print('hi')", "replace": False}
    ]


def test_interrupt_finishes_the_display_and_fails_the_cell(
    kernel: tuple[KernelManager, BlockingKernelClient], emu: KiroEmulator
) -> None:
    km, kc = kernel
    emu.script(Reply.text(WORDS, chunk_size=8, delay_between=0.05))  # ~12 s if not interrupted
    interrupted: list[float] = []

    def interrupt_once_streaming(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "update_display_data" and not interrupted:
            time.sleep(0.3)
            interrupted.append(time.monotonic())
            km.interrupt_kernel()

    started = time.monotonic()
    reply, messages = execute(kc, "%%kiro\nWrite 240 words.", on_message=interrupt_once_streaming)
    assert time.monotonic() - started < 6
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    final = of_type(messages, "update_display_data")[-1][1]["content"]
    text = final["data"]["text/markdown"]
    assert "*[interrupted]*" in text
    partial = text.split("\n\n*[interrupted]*")[0]
    assert 0 < len(partial) < len(WORDS)
    assert WORDS.startswith(partial)
    assert final["metadata"]["kiro_lc"]["interrupted"] is True


def test_quickstart_notebook_runs_against_the_emulator() -> None:
    path = ROOT / "notebooks" / "quickstart.ipynb"
    nb = nbformat.read(path, as_version=4)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIRO_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute(env=env)
    outputs = {
        cell.source: cell.get("outputs", []) for cell in nb.cells if cell.cell_type == "code"
    }
    for source, outs in outputs.items():
        assert all(o.output_type != "error" for o in outs), source

    def final(prefix: str) -> dict[str, Any]:
        (outs,) = [o for s, o in outputs.items() if s.startswith(prefix)]
        displays = [o for o in outs if o.output_type == "display_data"]
        assert len(displays) >= 1, prefix
        return dict(displays[-1].data)

    assert "A **generator** is a function" in final("%%kiro\nIn two sentences")["text/markdown"]
    assert "def countdown(n):" in final("%%kiro\nShow a three-line example")["text/markdown"]
    history = final("%kiro history")["text/plain"]
    assert "In two sentences: what is a Python generator?" in history
    assert "Show a three-line example." in history
    assert final("%%kiro -f code")["text/plain"].startswith("def fib(n: int) -> int:")
    tools = final("%%kiro --tools word_count")["text/markdown"]
    assert "<code>word_count(text=&#x27;the quick brown fox&#x27;)</code> — done" in tools
    assert "The tool word_count returned: 4" in tools
    assert "application/vnd.jupyter.widget-view+json" in final("%kiro models")
    assert "Plan:" in final("%kiro usage")["text/plain"]
