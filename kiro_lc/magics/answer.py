"""An answer being built, and its mimebundles: pure, no I/O.

``Answer`` accumulates text deltas and tool calls and renders them for one output format, with
a real ``text/plain`` in every bundle. While streaming, an unclosed code fence is closed
temporarily and a cursor marks the end; the final bundle carries an optional note and footer.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CURSOR",
    "WAITING",
    "Answer",
    "Bundle",
    "ToolRecord",
    "close_open_fence",
    "extract_code",
]

WAITING = "⏳ waiting for Kiro…"
CURSOR = "▌"
_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})[ \t]*([^`\s]*)", re.MULTILINE)
_DEFAULT_LANG = {"code": "python", "json": "json", "html": "html"}

Bundle = dict[str, Any]


def close_open_fence(markdown: str) -> str:
    """Append a closing fence if ``markdown`` ends inside a fenced code block (while streaming)."""
    open_fence: str | None = None
    for match in _FENCE.finditer(markdown):
        fence = match[1]
        if open_fence is None:
            open_fence = fence
        elif fence[0] == open_fence[0] and len(fence) >= len(open_fence) and not match[2]:
            open_fence = None
    if open_fence is None:
        return markdown
    separator = "" if markdown.endswith("\n") else "\n"
    return f"{markdown}{separator}{open_fence}"


def _with_cursor(markdown: str) -> str:
    # The cursor goes before a temporary closing fence, and never onto a fence line (where it
    # would turn a closing fence into an opening one).
    closing = close_open_fence(markdown)[len(markdown) :]
    last_line = markdown.rsplit("\n", 1)[-1]
    cursor = "" if _FENCE.match(last_line) else CURSOR
    return markdown + cursor + closing


def extract_code(text: str) -> tuple[str, str | None]:
    """The content of the first fenced block of ``text`` (or all of it) and the fence's language.

    Works on partial text too: an unclosed fence yields everything after its opening line.
    """
    opening = _FENCE.search(text)
    if opening is None:
        return text.strip("\n"), None
    fence, lang = opening[1], opening[2] or None
    body_start = text.find("\n", opening.end())
    if body_start < 0:
        return "", lang
    body = text[body_start + 1 :]
    for match in _FENCE.finditer(body):
        if match[1][0] == fence[0] and len(match[1]) >= len(fence) and not match[2]:
            body = body[: match.start()]
            break
    return body.rstrip("\n"), lang


def _fenced(body: str, lang: str) -> str:
    longest = max((len(run) for run in re.findall(r"`{3,}", body)), default=2)
    fence = "`" * (longest + 1)
    return f"{fence}{lang}\n{body}\n{fence}"


@dataclass(frozen=True)
class ToolRecord:
    """One tool call the model made, with what it returned (or the error it raised)."""

    name: str
    args: dict[str, Any]
    result: str
    failed: bool = False

    def call(self) -> str:
        """``name(a=1, b='x')``, shortened for a summary line."""
        args = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        call = f"{self.name}({args})"
        return call if len(call) <= 120 else call[:119] + "…"

    def markdown(self) -> str:
        """A collapsible ``<details>`` block (rendered by JupyterLab, VS Code and GitHub)."""
        status = "failed" if self.failed else "done"
        result = self.result if len(self.result) <= 4000 else self.result[:4000] + "\n…"
        return (
            f"<details><summary>🔧 <code>{html.escape(self.call())}</code> — {status}</summary>"
            f"\n\n{_fenced(result, 'text')}\n\n</details>\n\n"
        )

    def plain(self) -> str:
        """One line for terminals and ``text/plain``."""
        first = self.result.strip().splitlines()[0] if self.result.strip() else ""
        first = first if len(first) <= 200 else first[:199] + "…"
        arrow = "raised" if self.failed else "→"
        return f"🔧 {self.call()} {arrow} {first}\n"


@dataclass
class Answer:
    """An answer being built: text deltas and tool calls, rendered for one output format."""

    format: str = "markdown"
    parts: list[str | ToolRecord] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The model's words only (no tool blocks)."""
        return "".join(p for p in self.parts if isinstance(p, str))

    def add_text(self, delta: str) -> None:
        """Append a text delta."""
        if self.parts and isinstance(self.parts[-1], str):
            self.parts[-1] += delta
        else:
            self.parts.append(delta)

    def add_tool(self, record: ToolRecord) -> None:
        """Append a finished tool call."""
        self.parts.append(record)

    def _tools(self, markdown: bool) -> str:
        tools = [p for p in self.parts if isinstance(p, ToolRecord)]
        return "".join(t.markdown() if markdown else t.plain() for t in tools)

    def _prose(self, markdown: bool) -> str:
        out = ""
        for part in self.parts:
            if isinstance(part, str):
                out += part
                continue
            if out and not out.endswith("\n"):  # a tool block starts on its own line
                out += "\n\n" if markdown else "\n"
            out += part.markdown() if markdown else part.plain()
        return out

    def code(self) -> str:
        """The answer's code, fences stripped (for ``-f code``)."""
        return extract_code(self.text)[0]

    def waiting_bundle(self) -> Bundle:
        """The placeholder shown until the first token arrives."""
        if self.format == "text":
            return {"text/plain": WAITING}
        return {"text/markdown": f"*{WAITING}*", "text/plain": WAITING}

    def streaming_bundle(self) -> Bundle:
        """A live view: markdown with open fences closed, or the code so far, plus a cursor."""
        if self.format == "text":
            return {"text/plain": self._prose(False) + CURSOR}
        if self.format == "markdown":
            return {
                "text/markdown": _with_cursor(self._prose(True)),
                "text/plain": self._prose(False) + CURSOR,
            }
        code, lang = extract_code(self.text)
        return {
            "text/markdown": self._tools(True) + _fenced(code + CURSOR, lang or self._lang()),
            "text/plain": self._tools(False) + code + CURSOR,
        }

    def final_bundle(self, note: str = "", footer: str = "") -> Bundle:
        """The bundle saved in the notebook: no cursor, plus an optional note and footer."""
        if not self.text.strip() and not note:
            note = "(empty answer)"
        md_tail = (f"\n\n*{note}*" if note else "") + (f"\n\n<sub>{footer}</sub>" if footer else "")
        plain_tail = (f"\n\n{note}" if note else "") + (f"\n\n{footer}" if footer else "")
        if not self._prose(False).strip():  # nothing above the note: no blank lines before it
            md_tail, plain_tail = md_tail.lstrip("\n"), plain_tail.lstrip("\n")
        if self.format == "markdown":
            prose_md = close_open_fence(self._prose(True)) if note else self._prose(True)
            return {
                "text/markdown": prose_md + md_tail,
                "text/plain": self._prose(False) + plain_tail,
            }
        if self.format == "text":
            return {"text/plain": self._prose(False) + plain_tail}
        code, lang = extract_code(self.text)
        if self.format == "json" and not note:
            parsed = _parse_json(code)
            if parsed is not _INVALID:
                pretty = json.dumps(parsed, indent=2, ensure_ascii=False)
                return {"application/json": parsed, "text/plain": pretty + plain_tail}
            md_tail = "\n\n*(the answer is not valid JSON)*" + md_tail
        if self.format == "html" and not note:
            return {
                "text/html": self._tools(True)
                + code
                + (f"<p><sub>{footer}</sub></p>" if footer else ""),
                "text/plain": code + plain_tail,
            }
        return {
            "text/markdown": self._tools(True) + _fenced(code, lang or self._lang()) + md_tail,
            "text/plain": self._tools(False) + code + plain_tail,
        }

    def _lang(self) -> str:
        return _DEFAULT_LANG.get(self.format, "")


_INVALID = object()


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return _INVALID
