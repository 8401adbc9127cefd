"""Scripted answers: :class:`Reply` (a normal stream), :class:`Fault` (a failure) and the
:class:`Plan` of bytes and pauses the emulator writes for them.

A normal reply streams, in the order Kiro uses (kiro-protocol.md §5.2 and §7): reasoning →
content → tool-use fragments (``stop: true`` last) → ``metadataEvent`` → ``contextUsageEvent``
→ ``meteringEvent``. Faults that cut a stream (``after_frames=N``) cut the frames of their own
``reply``, or of the default responder's answer when no reply is given.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from kiro_lc.eventstream import encode_event, encode_exception, encode_message

UNIT_METERING = 0.02730794364842454  # one real meteringEvent (kiro-protocol.md §B.3)
_ID_ALPHABET = string.ascii_letters + string.digits

DEFAULT_HTTP_BODIES: dict[int, dict[str, Any]] = {
    400: {"message": "Improperly formed request.", "reason": None},
    402: {"message": "You have reached the limit.", "reason": "MONTHLY_REQUEST_COUNT"},
    403: {"message": "The bearer token included in the request is invalid.", "reason": None},
    429: {
        "__type": "ThrottlingException",
        "message": "Too many requests, please wait before trying again.",
        "reason": None,
    },
    500: {
        "__type": "InternalServerException",
        "message": "Encountered an unexpected error when processing the request, please try again.",
        "reason": None,
    },
    503: {
        "__type": "ServiceUnavailableException",
        "message": "Service is temporarily unavailable, please try again later.",
        "reason": None,
    },
}
DEFAULT_EXCEPTION_MESSAGES: dict[str, str] = {
    "ThrottlingException": "Too many requests, please wait before trying again.",
    "InternalServerException": "Encountered an unexpected error when processing the request.",
    "ContentLengthExceededException": "The response was longer than the output token limit.",
}


def new_tool_use_id() -> str:
    """A fresh id shaped like Kiro's: ``tooluse_`` + 22 letters and digits."""
    return "tooluse_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(22))


def split_text(text: str, chunk_size: int | Sequence[str] | None) -> tuple[str, ...]:
    """Cut ``text`` into content chunks: given pieces, fixed sizes, or ~20-character word runs."""
    if not isinstance(chunk_size, (int, type(None))):
        return tuple(chunk_size)
    if not text:
        return ()
    if chunk_size is not None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        return tuple(text[i : i + chunk_size] for i in range(0, len(text), chunk_size))
    chunks: list[str] = []
    current = ""
    for word in text.split(" "):
        piece = word if not current else " " + word
        if current and len(current) + len(piece) > 20:
            chunks.append(current)
            piece = " " + word
            current = ""
        current += piece
    chunks.append(current)
    return tuple(chunks)


@dataclass(frozen=True)
class ToolCall:
    """One tool call a :class:`Reply` streams as ``toolUseEvent`` fragments.

    ``args`` is an object (serialised to JSON) or a raw string sent as is (useful for broken
    JSON). ``empty_object_first`` sends a first fragment whose ``input`` is ``{}`` (as Kiro
    sometimes does); ``whole_object`` sends one frame whose ``input`` is the object itself;
    ``stop=False`` never completes the call (a truncated tool call).
    """

    name: str
    args: dict[str, Any] | str
    tool_use_id: str = field(default_factory=new_tool_use_id)
    fragments: int = 3
    empty_object_first: bool = True
    whole_object: bool = False
    stop: bool = True

    def payloads(self) -> list[dict[str, Any]]:
        """The ``toolUseEvent`` payloads of this call, in order."""
        head = {"name": self.name, "toolUseId": self.tool_use_id}
        if self.whole_object:
            value = self.args if isinstance(self.args, dict) else json.loads(self.args)
            return [{**head, "input": value, "stop": self.stop}]
        text = (
            self.args if isinstance(self.args, str) else json.dumps(self.args, ensure_ascii=False)
        )
        out: list[dict[str, Any]] = []
        if self.empty_object_first:
            out.append({**head, "input": {}, "stop": False})
        count = max(1, min(self.fragments, len(text))) if text else 1
        size = -(-len(text) // count) if text else 0
        pieces = [text[i * size : (i + 1) * size] for i in range(count)] if text else [""]
        out.extend({**head, "input": piece, "stop": False} for piece in pieces)
        out[-1]["stop"] = self.stop
        return out


RawEvent = bytes | tuple[str, Any] | tuple[str, Any, str]


@dataclass(frozen=True)
class Reply:
    """A successful streamed answer; build it with the classmethods."""

    chunks: tuple[str, ...] = ()
    calls: tuple[ToolCall, ...] = ()
    reasoning: str | None = None
    metering: float | None = UNIT_METERING
    context_usage: float | None = 2.03
    stop_reason: str | None = "END_TURN"
    followup: bool = False
    duplicate_chunks: bool = False
    delay_between: float = 0.0
    interleave: bool = False
    raw_events: tuple[RawEvent, ...] | None = None

    @classmethod
    def text(
        cls,
        text: str,
        *,
        chunk_size: int | Sequence[str] | None = None,
        metering: float | None = UNIT_METERING,
        context_usage: float | None = 2.03,
        stop_reason: str | None = "END_TURN",
        followup: bool = False,
        duplicate_chunks: bool = False,
        delay_between: float = 0.0,
        reasoning: str | None = None,
    ) -> Reply:
        """Stream ``text``; ``None`` for metering/context_usage/stop_reason omits that event."""
        return cls(
            chunks=split_text(text, chunk_size),
            reasoning=reasoning,
            metering=metering,
            context_usage=context_usage,
            stop_reason=stop_reason,
            followup=followup,
            duplicate_chunks=duplicate_chunks,
            delay_between=delay_between,
        )

    @classmethod
    def tool_call(
        cls,
        name: str,
        args: dict[str, Any] | str,
        *,
        tool_use_id: str | None = None,
        text_before: str = "",
        fragments: int = 3,
        empty_object_first: bool = True,
        whole_object: bool = False,
        stop: bool = True,
        metering: float | None = UNIT_METERING,
        context_usage: float | None = 2.03,
    ) -> Reply:
        """Stream one tool call (optionally after some text); see :class:`ToolCall`."""
        call = ToolCall(
            name,
            args,
            tool_use_id=tool_use_id or new_tool_use_id(),
            fragments=fragments,
            empty_object_first=empty_object_first,
            whole_object=whole_object,
            stop=stop,
        )
        return cls(
            chunks=split_text(text_before, None),
            calls=(call,),
            metering=metering,
            context_usage=context_usage,
        )

    @classmethod
    def tool_calls(
        cls,
        calls: Sequence[ToolCall | Reply | tuple[str, dict[str, Any] | str]],
        *,
        interleave: bool = False,
        text_before: str = "",
    ) -> Reply:
        """Stream several tool calls; ``interleave=True`` alternates their fragments."""
        flat: list[ToolCall] = []
        for call in calls:
            if isinstance(call, Reply):
                flat.extend(call.calls)
            elif isinstance(call, ToolCall):
                flat.append(call)
            else:
                flat.append(ToolCall(call[0], call[1]))
        return cls(chunks=split_text(text_before, None), calls=tuple(flat), interleave=interleave)

    @classmethod
    def events(cls, events: Sequence[RawEvent]) -> Reply:
        """Full control: ``(event_type, payload)``, ``(type, payload, message_type)`` or raw
        frame bytes, sent exactly as given (no metering or other tail events are added)."""
        return cls(raw_events=tuple(events))

    def with_usage(self, *, context_usage: float | None, metering: float | None) -> Reply:
        """A copy with other context-usage and metering values."""
        return replace(self, context_usage=context_usage, metering=metering)


FaultKind = Literal[
    "http",
    "exception",
    "error",
    "corrupt_crc",
    "truncate",
    "stall",
    "keep_open",
    "reset",
    "latency",
]


@dataclass(frozen=True)
class Fault:
    """A failure to play instead of (or in the middle of) a reply; build with the classmethods."""

    kind: FaultKind
    status: int = 0
    body: dict[str, Any] | str | bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    exception_type: str = ""
    message: str = ""
    reason: str | None = None
    after_text: str = ""
    after_frames: int = 0
    seconds: float = 0.0
    partial: bool = True
    reply: Reply | Fault | None = None

    @classmethod
    def http(
        cls,
        status: int,
        body: dict[str, Any] | str | bytes | None = None,
        *,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> Fault:
        """Answer with a plain HTTP error (default bodies are Kiro's for 400/402/403/429/5xx)."""
        extra = dict(headers or {})
        if retry_after is not None:
            extra["Retry-After"] = (
                str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
            )
        return cls("http", status=status, body=body, headers=tuple(extra.items()))

    @classmethod
    def exception_frame(
        cls,
        exception_type: str = "ThrottlingException",
        message: str | None = None,
        *,
        after_text: str = "",
        reason: str | None = None,
    ) -> Fault:
        """Stream ``after_text`` (if any), then an ``exception`` frame, then end the body."""
        text = (
            message
            if message is not None
            else DEFAULT_EXCEPTION_MESSAGES.get(exception_type, "The request failed.")
        )
        return cls(
            "exception",
            exception_type=exception_type,
            message=text,
            reason=reason,
            after_text=after_text,
        )

    @classmethod
    def error_frame(cls, error_code: str, message: str = "", *, after_text: str = "") -> Fault:
        """Stream an ``error`` message-type frame (``:error-code``/``:error-message``)."""
        return cls("error", exception_type=error_code, message=message, after_text=after_text)

    @classmethod
    def corrupt_crc(cls, after_frames: int = 0, *, reply: Reply | None = None) -> Fault:
        """Send ``after_frames`` good frames, then one whose message CRC is wrong, then the rest."""
        return cls("corrupt_crc", after_frames=after_frames, reply=reply)

    @classmethod
    def truncate(
        cls, after_frames: int = 0, *, partial: bool = True, reply: Reply | None = None
    ) -> Fault:
        """Send ``after_frames`` frames, then half a frame and drop the connection.

        ``partial=False`` instead ends the HTTP body cleanly after those frames: a stream that
        just stops (no ``stop``, no metering), as Kiro does when it truncates large outputs.
        """
        return cls("truncate", after_frames=after_frames, partial=partial, reply=reply)

    @classmethod
    def stall(cls, seconds: float, after_frames: int = 0, *, reply: Reply | None = None) -> Fault:
        """Send ``after_frames`` frames, go silent for ``seconds`` (connection open), go on."""
        return cls("stall", seconds=seconds, after_frames=after_frames, reply=reply)

    @classmethod
    def keep_alive_without_eof(cls, reply: Reply | None = None, *, timeout: float = 30.0) -> Fault:
        """Send every frame, then keep the body open until the client hangs up (or ``timeout``)."""
        return cls("keep_open", seconds=timeout, reply=reply)

    @classmethod
    def reset(cls, after_frames: int = 0, *, reply: Reply | None = None) -> Fault:
        """Send ``after_frames`` frames, then reset the TCP connection (SO_LINGER 0)."""
        return cls("reset", after_frames=after_frames, reply=reply)

    @classmethod
    def latency(cls, seconds: float, reply: Reply | Fault | None = None) -> Fault:
        """Wait ``seconds`` before the first byte, then play ``reply`` (default: responder's)."""
        return cls("latency", seconds=seconds, reply=reply)


StepKind = Literal["frame", "raw", "sleep", "close", "reset", "keep_open"]


@dataclass(frozen=True)
class Step:
    """One action of a stream: write a frame or raw bytes, sleep, or end the connection."""

    kind: StepKind
    data: bytes = b""
    seconds: float = 0.0


@dataclass(frozen=True)
class Plan:
    """What to send for one request: an HTTP error (``body``) or a stream (``steps``)."""

    status: int = 200
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    steps: tuple[Step, ...] = ()
    latency: float = 0.0
    credits: float = 0.0


# ---------------------------------------------------------------------------------------------
# Reply / Fault → Plan
# ---------------------------------------------------------------------------------------------


def _json(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _event(event_type: str, payload: dict[str, Any]) -> bytes:
    return encode_event(event_type, _json(payload))


def reply_frames(reply: Reply) -> list[bytes]:
    """Every frame of a reply, in stream order."""
    if reply.raw_events is not None:
        return [_raw_frame(item) for item in reply.raw_events]
    frames: list[bytes] = []
    if reply.reasoning:
        frames.extend(
            _event("reasoningContentEvent", {"text": c}) for c in split_text(reply.reasoning, None)
        )
        frames.append(_event("reasoningContentEvent", {"signature": secrets.token_urlsafe(24)}))
    for chunk in reply.chunks:
        frames.append(_event("assistantResponseEvent", {"content": chunk}))
        if reply.duplicate_chunks:
            frames.append(_event("assistantResponseEvent", {"content": chunk}))
    if reply.followup:
        followup = {"content": "Would you like an example?", "userIntent": "EXPLAIN_CODE_SELECTION"}
        frames.append(_event("assistantResponseEvent", {"followupPrompt": followup}))
    frames.extend(_event("toolUseEvent", p) for p in _tool_payloads(reply))
    if reply.stop_reason is not None:
        frames.append(_event("metadataEvent", {"stopReason": reply.stop_reason}))
    if reply.context_usage is not None:
        frames.append(_event("contextUsageEvent", {"contextUsagePercentage": reply.context_usage}))
    if reply.metering is not None:
        metering = {"unit": "credit", "unitPlural": "credits", "usage": reply.metering}
        frames.append(_event("meteringEvent", metering))
    return frames


def _tool_payloads(reply: Reply) -> list[dict[str, Any]]:
    per_call = [call.payloads() for call in reply.calls]
    if not reply.interleave:
        return [p for payloads in per_call for p in payloads]
    out: list[dict[str, Any]] = []
    for i in range(max((len(p) for p in per_call), default=0)):
        out.extend(payloads[i] for payloads in per_call if i < len(payloads))
    return out


def _raw_frame(item: RawEvent) -> bytes:
    if isinstance(item, bytes):
        return item
    event_type, payload = item[0], item[1]
    message_type = item[2] if len(item) == 3 else "event"
    data = payload if isinstance(payload, bytes) else _json(payload)
    if message_type == "exception":
        return encode_exception(event_type, data)
    return encode_event(event_type, data, message_type=message_type)


def _http_plan(fault: Fault) -> Plan:
    body = (
        fault.body
        if fault.body is not None
        else DEFAULT_HTTP_BODIES.get(fault.status, {"message": "Request failed.", "reason": None})
    )
    if isinstance(body, dict):
        data, ctype = _json(body), "application/json"
    elif isinstance(body, str):
        data, ctype = body.encode("utf-8"), "text/plain; charset=utf-8"
    else:
        data, ctype = body, "application/octet-stream"
    headers = (("Content-Type", ctype), *fault.headers)
    return Plan(status=fault.status, body=data, headers=headers)


def _frame_fault_plan(fault: Fault, frames: list[bytes], credits: float) -> Plan:
    n = max(0, min(fault.after_frames, len(frames)))
    head = [Step("frame", f) for f in frames[:n]]
    if fault.kind == "corrupt_crc":
        n = min(n, len(frames) - 1)
        bad = bytearray(frames[n])
        bad[-1] ^= 0xFF
        steps = [*head[:n], Step("raw", bytes(bad)), *(Step("frame", f) for f in frames[n + 1 :])]
        return Plan(steps=tuple(steps), credits=credits)
    if fault.kind == "truncate":
        if not fault.partial:
            return Plan(steps=tuple(head))
        n = min(n, len(frames) - 1)
        half = frames[n][: max(1, len(frames[n]) // 2)]
        return Plan(steps=(*head[:n], Step("raw", half), Step("close")))
    if fault.kind == "stall":
        tail = [Step("frame", f) for f in frames[n:]]
        return Plan(steps=(*head, Step("sleep", seconds=fault.seconds), *tail), credits=credits)
    if fault.kind == "reset":
        return Plan(steps=(*head, Step("reset")))
    # keep_open: every frame, then no terminating chunk
    all_frames = tuple(Step("frame", f) for f in frames)
    return Plan(steps=(*all_frames, Step("keep_open", seconds=fault.seconds)), credits=credits)


def _exception_plan(fault: Fault) -> Plan:
    frames = [
        _event("assistantResponseEvent", {"content": c}) for c in split_text(fault.after_text, None)
    ]
    if fault.kind == "exception":
        payload: dict[str, Any] = {"message": fault.message}
        if fault.reason is not None:
            payload["reason"] = fault.reason
        frames.append(encode_exception(fault.exception_type, _json(payload)))
    else:
        headers = {
            ":message-type": "error",
            ":error-code": fault.exception_type,
            ":error-message": fault.message,
        }
        frames.append(encode_message(headers, b""))
    return Plan(steps=tuple(Step("frame", f) for f in frames))


def build_plan(item: Reply | Fault, default: Callable[[], Reply]) -> Plan:
    """Turn a scripted item into a :class:`Plan`; ``default`` supplies the base reply of faults."""
    if isinstance(item, Reply):
        return _reply_plan(item)
    if item.kind == "http":
        return _http_plan(item)
    if item.kind in ("exception", "error"):
        return _exception_plan(item)
    if item.kind == "latency":
        inner = build_plan(item.reply if item.reply is not None else default(), default)
        return replace(inner, latency=inner.latency + item.seconds)
    base = item.reply if isinstance(item.reply, Reply) else default()
    frames = reply_frames(base)
    if not frames:
        frames = reply_frames(Reply.text("", stop_reason="END_TURN"))
    return _frame_fault_plan(item, frames, base.metering or 0.0)


def _reply_plan(reply: Reply) -> Plan:
    frames = reply_frames(reply)
    steps: list[Step] = []
    for i, frame in enumerate(frames):
        if i and reply.delay_between > 0:
            steps.append(Step("sleep", seconds=reply.delay_between))
        steps.append(Step("frame", frame))
    credits = (reply.metering or 0.0) if reply.raw_events is None else 0.0
    return Plan(steps=tuple(steps), credits=credits)
