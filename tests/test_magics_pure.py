"""Pure parts of the IPython extension: interpolation, arguments, rendering, memory, fix reports."""

from __future__ import annotations

import json

import pytest
from IPython.core.error import UsageError

from kiro_lc.magics.answer import (
    CURSOR,
    WAITING,
    Answer,
    ToolRecord,
    close_open_fence,
    extract_code,
)
from kiro_lc.magics.arguments import USAGE, CellArgs, parse_cell_args, parse_line, subcommand_of
from kiro_lc.magics.interpolate import interpolate
from kiro_lc.magics.render import NotebookRenderer, TerminalRenderer
from kiro_lc.magics.session import Conversation, Turn
from kiro_lc.magics.turn import footer_text


class Obj:
    name = "frame"

    @property
    def broken(self) -> str:
        raise RuntimeError("no")


NS = {"x": 42, "df": Obj(), "In": ["", "a = 1", "b = {}"], "Out": {2: {"k": 1}}}


# -- interpolation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("value {x}", "value 42"),
        ("{df.name} rows", "frame rows"),
        ("cell: {In[1]}", "cell: a = 1"),
        ("out: {Out[2]}", "out: {'k': 1}"),
        ("literal {{x}} stays", "literal {x} stays"),
        ("missing {nope} and {df.nope}", "missing {nope} and {df.nope}"),
        ("raising property {df.broken}", "raising property {df.broken}"),
        ("out of range {In[99]} {Out[7]}", "out of range {In[99]} {Out[7]}"),
        ("dict {'a': 1} set {1, 2}", "dict {'a': 1} set {1, 2}"),
        ('f-string f"{x!r:>10}" and {x + 1}', 'f-string f"{x!r:>10}" and {x + 1}'),
        (
            "jinja {{ user.name }} and css a{color:red}",
            "jinja {{ user.name }} and css a{color:red}",
        ),
        ('json {"a": {"b": [1, {}]}}', 'json {"a": {"b": [1, {}]}}'),
        ("unbalanced { and } and {x", "unbalanced { and } and {x"),
    ],
)
def test_interpolate_only_replaces_known_shapes(text: str, expected: str) -> None:
    assert interpolate(text, NS) == expected


def test_interpolate_code_with_braces_is_untouched() -> None:
    code = "def f(d):\n    return {k: v for k, v in d.items()}  # {x}\n"
    assert interpolate(code, {}) == code


# -- arguments -----------------------------------------------------------------------------


def test_parse_cell_args_all_options() -> None:
    args = parse_cell_args(
        '-m haiku -f md --new -t 0.3 --max-tokens 50 --system "be terse" --tools a,b --no-interp'
    )
    assert args == CellArgs(
        model="haiku",
        format="markdown",
        new=True,
        temperature=0.3,
        max_tokens=50,
        system="be terse",
        tools=("a", "b"),
        interpolate=False,
    )


def test_parse_cell_args_positional_model_and_defaults() -> None:
    assert parse_cell_args("opus") == CellArgs(model="opus")
    assert parse_cell_args("") == CellArgs()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("-f pdf", "unknown format 'pdf'"),
        ("--bogus", "unrecognized arguments: --bogus"),
        ("-m a b", "give the model once"),
        ('--system "open', "No closing quotation"),
        ("-t hot", "invalid float value"),
    ],
)
def test_parse_cell_args_errors_are_usage_errors(line: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_cell_args(line)


def test_parse_line_subcommands_and_aliases() -> None:
    assert parse_line("models --refresh").name == "models"
    assert parse_line("models --refresh").rest == "--refresh"
    assert parse_line("error -m haiku").name == "fix"
    assert parse_line("").name == "help"
    assert subcommand_of("-m sonnet") is None


def test_parse_line_refuses_prompts_and_suggests() -> None:
    with pytest.raises(UsageError, match=r"Did you mean `%kiro models`\?"):
        parse_line("modles")
    with pytest.raises(UsageError, match="use the cell magic"):
        parse_line("what is 2 + 2?")


def test_usage_lists_every_subcommand_and_option() -> None:
    for word in ("models", "use", "reset", "history", "system", "status", "usage", "fix"):
        assert f"%kiro {word}" in USAGE
    for option in ("--new", "--tools", "--no-interp", "--max-tokens", "--temperature"):
        assert option in USAGE


# -- rendering -----------------------------------------------------------------------------


def test_close_open_fence() -> None:
    assert close_open_fence("a\n```python\nx = 1") == "a\n```python\nx = 1\n```"
    assert close_open_fence("a\n```python\nx = 1\n") == "a\n```python\nx = 1\n```"
    assert close_open_fence("```\nx\n```\ndone") == "```\nx\n```\ndone"
    assert close_open_fence("~~~~\nx\n```\n") == "~~~~\nx\n```\n~~~~"
    assert close_open_fence("inline ``` not a fence") == "inline ``` not a fence"


def test_extract_code() -> None:
    assert extract_code("Sure:\n```python\nx = 1\n```\nBye") == ("x = 1", "python")
    assert extract_code("```js\nlet a") == ("let a", "js")
    assert extract_code("x = 1\n") == ("x = 1", None)


def test_streaming_markdown_closes_fence_and_keeps_cursor_off_fence_lines() -> None:
    answer = Answer("markdown")
    answer.add_text("Look:\n```python\nx = 1")
    assert answer.streaming_bundle()["text/markdown"] == f"Look:\n```python\nx = 1{CURSOR}\n```"
    answer.add_text("\n```")
    assert answer.streaming_bundle()["text/markdown"] == "Look:\n```python\nx = 1\n```"


def test_final_bundles_per_format() -> None:
    md = Answer("markdown", ["**hi**"]).final_bundle(footer="m · 1 s")
    assert md == {
        "text/markdown": "**hi**\n\n<sub>m · 1 s</sub>",
        "text/plain": "**hi**\n\nm · 1 s",
    }
    assert Answer("text", ["plain"]).final_bundle() == {"text/plain": "plain"}
    code = Answer("code", ["Here:\n```python\nprint(1)\n```\n"]).final_bundle()
    assert code == {"text/markdown": "```python\nprint(1)\n```", "text/plain": "print(1)"}
    good = Answer("json", ['```json\n{"a": [1, 2]}\n```']).final_bundle()
    assert good["application/json"] == {"a": [1, 2]}
    assert json.loads(good["text/plain"]) == {"a": [1, 2]}
    bad = Answer("json", ["{oops"]).final_bundle()
    assert "not valid JSON" in bad["text/markdown"]
    assert bad["text/plain"] == "{oops"
    page = Answer("html", ["<b>x</b>"]).final_bundle()
    assert page == {"text/html": "<b>x</b>", "text/plain": "<b>x</b>"}
    assert Answer("markdown").final_bundle()["text/plain"] == "(empty answer)"


def test_tool_records_render_collapsible_with_plain_fallback() -> None:
    answer = Answer("markdown")
    answer.add_text("Let me add.")
    answer.add_tool(ToolRecord("add", {"a": 2, "b": 3}, "5"))
    answer.add_tool(
        ToolRecord("div", {"a": 1, "b": 0}, "ZeroDivisionError: division by zero", True)
    )
    answer.add_text("The sum is 5.")
    final = answer.final_bundle()
    md, plain = final["text/markdown"], final["text/plain"]
    assert md.startswith("Let me add.\n\n<details><summary>🔧 <code>add(a=2, b=3)</code> — done")
    assert "```text\n5\n```" in md
    assert "— failed</summary>" in md
    assert md.endswith("</details>\n\nThe sum is 5.")
    assert "🔧 add(a=2, b=3) → 5\n" in plain
    assert "🔧 div(a=1, b=0) raised ZeroDivision" in plain
    assert answer.text == "Let me add.The sum is 5."


class FakeHandle:
    def __init__(self, log: list[tuple[dict[str, object], dict[str, object]]]) -> None:
        self.log = log

    def update(self, bundle: dict[str, object], *, raw: bool, metadata: dict[str, object]) -> None:
        assert raw
        self.log.append((bundle, metadata))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_notebook_renderer(interval: float) -> tuple[NotebookRenderer, list[object], Clock]:
    shown: list[object] = []
    updates: list[tuple[dict[str, object], dict[str, object]]] = []

    def display(bundle: object, *, raw: bool, display_id: bool) -> FakeHandle:
        assert raw
        assert display_id
        shown.append(bundle)
        return FakeHandle(updates)

    clock = Clock()
    renderer = NotebookRenderer(Answer("markdown"), interval=interval, display=display, clock=clock)
    return renderer, [shown, updates], clock


def test_notebook_renderer_throttles_and_finishes_once() -> None:
    renderer, (shown, updates), clock = make_notebook_renderer(0.1)
    renderer.start()
    assert shown == [{"text/markdown": f"*{WAITING}*", "text/plain": WAITING}]
    for i in range(100):  # 100 deltas over 1 s of fake time → about 10 updates
        clock.now += 0.01
        renderer.push(f"w{i} ")
    renderer.finish(footer="f", metadata={"kiro_lc": {"model": "m"}})
    assert 9 <= len(updates) <= 11
    assert all(u[0]["text/plain"].endswith(CURSOR) for u in updates[:-1])
    final, meta = updates[-1]
    assert final["text/markdown"].startswith("w0 w1 ")
    assert CURSOR not in final["text/markdown"]
    assert meta == {"kiro_lc": {"model": "m"}}


def test_notebook_renderer_interval_zero_sends_final_only() -> None:
    renderer, (shown, updates), clock = make_notebook_renderer(0.0)
    renderer.start()
    for _ in range(50):
        clock.now += 1
        renderer.push("x")
    renderer.finish()
    assert len(shown) == 1
    assert len(updates) == 1
    assert updates[0][0]["text/plain"] == "x" * 50


def test_terminal_renderer_prints_plain_incremental_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    renderer = TerminalRenderer(Answer("markdown"))
    renderer.start()
    renderer.push("Hello ")
    assert capsys.readouterr().out == "Hello "
    renderer.push("world")
    renderer.tool(ToolRecord("add", {"a": 1}, "2"))
    renderer.finish(note="[interrupted]", footer="m · 1.0 s")
    assert capsys.readouterr().out == "world\n🔧 add(a=1) → 2\n\n[interrupted]\n\nm · 1.0 s\n"


def test_footer_text_skips_unknown_parts() -> None:
    meta = {
        "model": "claude-haiku-4.5",
        "credits": 0.0273,
        "context_usage_pct": 2.5,
        "seconds": 1.25,
    }
    assert footer_text(meta) == "claude-haiku-4.5 · 0.03 credits · context 2% · 1.2 s"
    assert footer_text({"model": "m", "credits": None, "seconds": 3}) == "m · 3.0 s"


# -- memory --------------------------------------------------------------------------------


def test_conversation_keeps_all_turns_and_sends_the_last_n() -> None:
    conversation = Conversation()
    for i in range(5):
        conversation.record(Turn(f"q{i}", f"a{i}", "m"))
    assert [t.prompt for t in conversation.recent(2)] == ["q3", "q4"]
    assert conversation.recent(0) == []
    assert conversation.reset() == 5
    assert len(conversation) == 0
