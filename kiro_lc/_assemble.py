"""Kiro response events → LangChain ``AIMessageChunk``\\ s, sans-I/O.

Feed each :data:`~kiro_lc.protocol.KiroEvent` to :meth:`ChunkAssembler.add` and get back the
chunks to yield; call :meth:`ChunkAssembler.finish` at the end of the stream for the single final
chunk that carries usage, ``model_name`` and ``stop_reason`` (``chunk_position="last"``). The sync
and async paths of :class:`~kiro_lc.chat_models.ChatKiro` drive the same object.

Chunk shapes follow the verified mapping of langchain.md §3.4:

* text is a plain ``str`` when no tools are bound, otherwise ``[{"type": "text", "text": ...,
  "index": i}]``; reasoning is a v1 ``reasoning`` block (or ``additional_kwargs
  ["reasoning_content"]`` in ``str`` mode);
* one block-index counter is shared by text, reasoning and tool calls;
* a tool call's first fragment carries ``id`` and ``name``, later fragments only ``args``;
* a tool call that never received ``stop: true`` is truncated: the final chunk appends a closing
  sequence to its args that no JSON parser accepts, so LangChain files it under
  ``invalid_tool_calls`` (never ``tool_calls``, which an agent would execute);
* ``stop`` sequences are applied client-side, even when one is split across events: text is held
  back by ``len(longest stop) - 1`` characters until it cannot start a match.

Kiro reports no token counts, so usage is estimated (``response_metadata["usage_estimated"]``):
input = ``contextUsagePercentage`` × the model's context window (else a local estimate of the
prompt), output = generated characters / 4.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessageChunk
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import tool_call_chunk

from kiro_lc.errormap import error_from_exception
from kiro_lc.protocol import (
    ContextUsage,
    KiroEvent,
    Metadata,
    Metering,
    Reasoning,
    StreamException,
    TextDelta,
    ToolUseFragment,
)

__all__ = ["CHARS_PER_TOKEN", "ChunkAssembler", "estimate_tokens", "unparseable_suffix"]

CHARS_PER_TOKEN = 4
MIN_DEDUPE_CHARS = 4
_OUTPUT_EXCEEDED = "ContentLengthExceededException"
_BACKEND_STOP_REASONS = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "content_filtered": "refusal",
    "refusal": "refusal",
}


def estimate_tokens(chars: int) -> int:
    """A rough token count for ``chars`` characters of Claude output (about 4 per token)."""
    return (chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def unparseable_suffix(partial: str) -> str:
    """Characters that, appended to ``partial``, make it rejected by ``parse_partial_json``.

    LangChain turns every tool-call chunk whose args parse (leniently) into a dict into a valid
    ``tool_call``. Closing an open string and then adding a closer that does not match the
    innermost open bracket is rejected outright, so the call lands in ``invalid_tool_calls``.
    """
    stack: list[str] = []
    in_string = escaped = False
    for char in partial:
        if in_string:
            if char == '"' and not escaped:
                in_string = False
            elif char == "\\":
                escaped = not escaped
            else:
                escaped = False
        elif char == '"':
            in_string, escaped = True, False
        elif char in "{[":
            stack.append("}" if char == "{" else "]")
        elif char in "}]" and stack and stack[-1] == char:
            stack.pop()
    closing = ('""' if escaped else '"') if in_string else ""
    return closing + ("]" if stack and stack[-1] == "}" else "}")


@dataclass
class _ToolState:
    index: int
    name: str
    args: list[str] = field(default_factory=list)
    done: bool = False


class ChunkAssembler:
    """Turns one response's Kiro events into ``AIMessageChunk``\\ s (see the module docstring).

    Args:
        model_name: the backend model id, echoed in ``response_metadata["model_name"]``.
        blocks: emit indexed content blocks (tools are bound) instead of plain strings.
        tool_names: wire tool name → the name LangChain bound (long names were shortened).
        stop: stop sequences to apply to the text.
        max_input_tokens: the model's context window, to turn the context percentage into tokens.
        prompt_tokens: local estimate of the prompt, used when Kiro sends no context percentage.
        include_usage: put ``usage_metadata`` on the final chunk.
    """

    def __init__(
        self,
        *,
        model_name: str,
        blocks: bool = False,
        tool_names: Mapping[str, str] | None = None,
        stop: Sequence[str] | None = None,
        max_input_tokens: int | None = None,
        prompt_tokens: int = 0,
        include_usage: bool = True,
    ) -> None:
        self.model_name = model_name
        self._blocks = blocks
        self._tool_names = dict(tool_names or {})
        self._stop = [s for s in (stop or []) if s]
        self._hold = max((len(s) for s in self._stop), default=1) - 1
        self._max_input_tokens = max_input_tokens
        self._prompt_tokens = prompt_tokens
        self._include_usage = include_usage
        self._next_index = 0
        self._open: tuple[str, int] | None = None  # ("text" | "reasoning", index)
        self._held = ""
        self._last_text: str | None = None
        self._tools: dict[str, _ToolState] = {}
        self._out_chars = 0
        self._pct: float | None = None
        self._credits: float | None = None
        self._metadata: Metadata | None = None
        self._output_exceeded = False
        self._matched_stop: str | None = None

    @property
    def stopped(self) -> bool:
        """A stop sequence matched: the caller should stop reading and call :meth:`finish`."""
        return self._matched_stop is not None

    # -- events ----------------------------------------------------------------------------

    def add(self, event: KiroEvent) -> list[AIMessageChunk]:
        """The chunks to yield for ``event`` (often one, sometimes none)."""
        if self.stopped:
            return []
        if isinstance(event, TextDelta):
            return self._on_text(event.text)
        self._last_text = None
        if isinstance(event, ToolUseFragment):
            return self._on_tool(event)
        if isinstance(event, Reasoning):
            return self._on_reasoning(event)
        if isinstance(event, ContextUsage):
            self._pct = event.percentage
        elif isinstance(event, Metering):
            self._credits = (self._credits or 0.0) + event.usage
        elif isinstance(event, Metadata):
            self._metadata = event
        elif isinstance(event, StreamException):
            if event.exception_type != _OUTPUT_EXCEEDED:
                raise error_from_exception(event, model_id=self.model_name)
            self._output_exceeded = True
        return []

    def _on_text(self, text: str) -> list[AIMessageChunk]:
        # Kiro sometimes repeats a content event verbatim (kiro-protocol.md §5.4). Peers drop
        # every repeat; short repeats ("  ", "**") are usually real tokens, so keep those.
        if text == self._last_text and len(text.strip()) >= MIN_DEDUPE_CHARS:
            return []
        self._last_text = text
        if not self._stop:
            return self._text_chunks(text)
        held = self._held + text
        hits = [(pos, s) for s in self._stop if (pos := held.find(s)) >= 0]
        if hits:
            pos, sequence = min(hits)
            self._held = ""
            self._matched_stop = sequence
            return self._text_chunks(held[:pos])
        cut = len(held) - self._hold
        self._held = held[cut:] if cut > 0 else held
        return self._text_chunks(held[:cut]) if cut > 0 else []

    def _flush_held(self) -> list[AIMessageChunk]:
        held, self._held = self._held, ""
        return self._text_chunks(held)

    def _block_index(self, kind: str) -> int:
        if self._open is None or self._open[0] != kind:
            self._open = (kind, self._next_index)
            self._next_index += 1
        return self._open[1]

    def _text_chunks(self, text: str) -> list[AIMessageChunk]:
        if not text:
            return []
        self._out_chars += len(text)
        index = self._block_index("text")
        if not self._blocks:
            return [AIMessageChunk(content=text)]
        return [AIMessageChunk(content=[{"type": "text", "text": text, "index": index}])]

    def _on_reasoning(self, event: Reasoning) -> list[AIMessageChunk]:
        out = self._flush_held()
        if event.text is None and event.signature is None:
            return out  # redacted reasoning is encrypted: nothing to show
        text = event.text or ""
        self._out_chars += len(text)
        index = self._block_index("reasoning")
        if not self._blocks:
            if text:
                out.append(
                    AIMessageChunk(content="", additional_kwargs={"reasoning_content": text})
                )
            return out
        block: dict[str, Any] = {"type": "reasoning", "reasoning": text, "index": index}
        if event.signature:
            block["extras"] = {"signature": event.signature}
        out.append(AIMessageChunk(content=[block]))
        return out

    def _on_tool(self, event: ToolUseFragment) -> list[AIMessageChunk]:
        out = self._flush_held()
        state = self._tools.get(event.tool_use_id)
        if state is None:
            self._open = None
            name = self._tool_names.get(event.name, event.name)
            state = _ToolState(index=self._next_index, name=name)
            self._next_index += 1
            self._tools[event.tool_use_id] = state
            out.append(self._tool_chunk(event.tool_use_id, name, event.input, state.index))
        elif not state.done and event.input:
            out.append(self._tool_chunk(None, None, event.input, state.index))
        if not state.done:
            state.args.append(event.input)
            self._out_chars += len(event.input)
            state.done = event.stop
        return out

    def _tool_chunk(
        self, id_: str | None, name: str | None, args: str, index: int
    ) -> AIMessageChunk:
        return AIMessageChunk(
            content=[] if self._blocks else "",
            tool_call_chunks=[tool_call_chunk(name=name, args=args, id=id_, index=index)],
        )

    # -- end of stream ---------------------------------------------------------------------

    def finish(self) -> list[AIMessageChunk]:
        """Held-back text (if any) and the final chunk with usage and stop reason."""
        out = self._flush_held() if not self.stopped else []
        truncated = [s for s in self._tools.values() if not s.done]
        breakers = [
            tool_call_chunk(
                name=None, args=unparseable_suffix("".join(s.args)), id=None, index=s.index
            )
            for s in truncated
        ]
        metadata: dict[str, Any] = {
            "model_name": self.model_name,
            "model_provider": "kiro",
            "stop_reason": self._stop_reason(bool(truncated)),
        }
        if self._matched_stop is not None:
            metadata["stop_sequence"] = self._matched_stop
        out.append(
            AIMessageChunk(
                content=[] if self._blocks else "",
                tool_call_chunks=breakers,
                response_metadata=metadata | self._extra_metadata(),
                usage_metadata=self._usage() if self._include_usage else None,
                chunk_position="last",
            )
        )
        return out

    def _stop_reason(self, truncated: bool) -> str:
        if self._matched_stop is not None:
            return "stop_sequence"
        if self._output_exceeded or truncated:
            return "max_tokens"
        meta = self._metadata
        if meta is not None and meta.refusal:
            return "refusal"
        if any(s.done for s in self._tools.values()):
            return "tool_use"
        backend = (meta.stop_reason or "").lower() if meta is not None else ""
        return _BACKEND_STOP_REASONS.get(backend, "end_turn")

    def _extra_metadata(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"usage_estimated": self._token_usage() is None}
        if self._credits is not None:
            extra["credits"] = self._credits
        if self._pct is not None:
            extra["context_usage_pct"] = self._pct
        meta = self._metadata
        if meta is not None and meta.conversation_id:
            extra["conversation_id"] = meta.conversation_id
        if meta is not None and meta.refusal:
            extra["refusal"] = dict(meta.refusal)
        return extra

    def _token_usage(self) -> Mapping[str, int] | None:
        """Kiro's own token counts, when a metadata event carried both of them."""
        usage = self._metadata.token_usage if self._metadata is not None else None
        if usage and "inputTokens" in usage and "outputTokens" in usage:
            return usage
        return None

    def _usage(self) -> UsageMetadata:
        reported = self._token_usage()
        if reported is not None:
            input_tokens = int(reported["inputTokens"])
            output_tokens = int(reported["outputTokens"])
        else:
            output_tokens = estimate_tokens(self._out_chars)
            if self._pct is not None and self._max_input_tokens:
                input_tokens = round(self._pct / 100 * self._max_input_tokens)
            else:
                input_tokens = self._prompt_tokens
        return UsageMetadata(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
        )
