"""One ``%%kiro`` turn: stream the model into a renderer, run tool rounds, finish the display.

The display is always finished, whatever happens: with the full answer and its provenance
metadata, or with the partial text and ``[interrupted]`` (then ``KeyboardInterrupt`` is
re-raised so queued cells stop), or with ``[failed: ...]`` before the error propagates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.tools import BaseTool

from kiro_lc.magics.render import Renderer
from kiro_lc.magics.tools import run_tool_call

__all__ = ["INTERRUPTED", "TurnResult", "footer_text", "run_turn"]

INTERRUPTED = "[interrupted]"


@dataclass
class TurnResult:
    """What a finished turn produced: the answer's text and its provenance metadata."""

    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


def footer_text(meta: dict[str, Any]) -> str:
    """``claude-sonnet-4.5 · 0.42 credits · context 3% · 2.1 s`` (parts that are known)."""
    parts = [str(meta.get("model") or "")]
    if isinstance(meta.get("credits"), int | float):
        parts.append(f"{meta['credits']:.2f} credits")
    if isinstance(meta.get("context_usage_pct"), int | float):
        parts.append(f"context {meta['context_usage_pct']:.0f}%")
    if isinstance(meta.get("seconds"), int | float):
        parts.append(f"{meta['seconds']:.1f} s")
    return " · ".join(p for p in parts if p)


class _Metadata:
    """Provenance accumulated over the rounds of a turn (credits and tokens add up)."""

    def __init__(self, model: str, fmt: str) -> None:
        self.data: dict[str, Any] = {"model": model, "format": fmt, "stop_reason": None}
        self.data.update(credits=None, usage=None, context_usage_pct=None, tool_calls=0)

    def add(self, message: AIMessageChunk) -> None:
        meta = message.response_metadata or {}
        self.data["model"] = meta.get("model_name") or self.data["model"]
        self.data["stop_reason"] = meta.get("stop_reason", self.data["stop_reason"])
        if meta.get("context_usage_pct") is not None:
            self.data["context_usage_pct"] = meta["context_usage_pct"]
        if isinstance(meta.get("credits"), int | float):
            self.data["credits"] = (self.data["credits"] or 0.0) + meta["credits"]
        if message.usage_metadata:
            usage = dict(self.data["usage"] or {})
            for key in ("input_tokens", "output_tokens", "total_tokens"):
                value = message.usage_metadata.get(key)
                usage[key] = usage.get(key, 0) + (value if isinstance(value, int) else 0)
            self.data["usage"] = usage


def run_turn(
    model: BaseChatModel,
    messages: Sequence[BaseMessage],
    renderer: Renderer,
    *,
    model_id: str,
    tools: Sequence[BaseTool] = (),
    max_tool_rounds: int = 8,
    show_footer: bool = True,
    clock: Callable[[], float] = time.monotonic,
) -> TurnResult:
    """Stream ``messages`` through ``model`` into ``renderer``; run tool calls between rounds."""
    meta = _Metadata(model_id, renderer.answer.format)
    started = clock()

    def finish(note: str = "") -> dict[str, Any]:
        meta.data["seconds"] = round(clock() - started, 3)
        meta.data["interrupted"] = note == INTERRUPTED
        footer = footer_text(meta.data) if show_footer else ""
        renderer.finish(note=note, footer=footer, metadata={"kiro_lc": meta.data})
        return meta.data

    renderer.start()
    try:
        note = _rounds(model, list(messages), renderer, meta, tools, max_tool_rounds)
    except KeyboardInterrupt:
        finish(INTERRUPTED)
        # A fresh interrupt: the frames of the socket read it hit are noise to the user.
        raise KeyboardInterrupt from None
    except BaseException as exc:
        finish(f"[failed: {type(exc).__name__}]")
        raise
    return TurnResult(renderer.answer.text, finish(note))


def _rounds(
    model: BaseChatModel,
    conversation: list[BaseMessage],
    renderer: Renderer,
    meta: _Metadata,
    tools: Sequence[BaseTool],
    max_rounds: int,
) -> str:
    """Stream rounds until the model answers without tool calls; return a note for the footer."""
    runnable: Any = model.bind_tools(list(tools)) if tools else model
    by_name = {t.name: t for t in tools}
    for _ in range(max_rounds + 1):
        message = _stream_round(runnable, conversation, renderer)
        meta.add(message)
        if not message.tool_calls:
            return ""
        conversation.append(AIMessage(content=message.content, tool_calls=message.tool_calls))
        for call in message.tool_calls:
            tool_message, record = run_tool_call(by_name, call)
            meta.data["tool_calls"] += 1
            renderer.tool(record)
            conversation.append(tool_message)
    return f"[stopped after {max_rounds} tool rounds]"


def _stream_round(
    runnable: Any, conversation: list[BaseMessage], renderer: Renderer
) -> AIMessageChunk:
    stream = runnable.stream(conversation)
    full: AIMessageChunk | None = None
    try:
        for chunk in stream:
            if chunk.text:
                renderer.push(chunk.text)
            full = chunk if full is None else full + chunk
    finally:
        stream.close()  # on an interrupt this closes the HTTP stream right away
    return full if full is not None else AIMessageChunk(content="")
