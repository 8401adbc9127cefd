"""Kiro's request and response shapes, pure: no I/O, no LangChain types.

Request side: a :class:`ConversationRequest` (history, current message, tools, tool results,
images, model id, origin) serialised with :func:`request_to_json` into the
``{"conversationState": ..., "profileArn": ...}`` body real kiro-cli 2.15.2 sends
(``../shared/kiro-captures``; kiro-protocol.md §3.3).

Response side: :func:`parse_event` turns one decoded event-stream message into a typed event
(kiro-protocol.md §5.2).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from kiro_lc.errors import KiroInvalidRequestError, KiroProtocolError

if TYPE_CHECKING:
    from kiro_lc.eventstream import EventStreamMessage

# ---------------------------------------------------------------------------------------------
# Request model (kiro-protocol.md §3.3)
# ---------------------------------------------------------------------------------------------

Origin = Literal["KIRO_CLI", "AI_EDITOR"]
ImageFormat = Literal["png", "jpeg", "gif", "webp"]


@dataclass(frozen=True)
class KiroImage:
    """An image attached to a user turn; ``data`` is the raw bytes (base64-encoded on the wire)."""

    format: ImageFormat
    data: bytes


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call: ``userInputMessageContext.tools[].toolSpecification``."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class ToolUse:
    """A tool call the assistant made, replayed in history (``toolUses[]``)."""

    tool_use_id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class ToolResult:
    """The answer to a tool call (``toolResults[]``); ``content`` holds ``{"text": ...}`` or
    ``{"json": ...}`` items."""

    tool_use_id: str
    content: list[dict[str, Any]]
    status: Literal["success", "error"] = "success"


@dataclass(frozen=True)
class UserTurn:
    """A user message (``userInputMessage``); tool results and images ride on it."""

    content: str
    images: list[KiroImage] = field(default_factory=list)
    tool_results: list[ToolResult] = field(default_factory=list)


@dataclass(frozen=True)
class AssistantTurn:
    """An assistant message in history (``assistantResponseMessage``)."""

    content: str
    tool_uses: list[ToolUse] = field(default_factory=list)


Turn = UserTurn | AssistantTurn


@dataclass(frozen=True)
class ConversationRequest:
    """Everything one ``GenerateAssistantResponse`` call sends.

    ``history`` must already alternate user/assistant starting with a user turn; ``current`` is
    the final user turn. Tools travel on the current message only (as kiro-cli does).
    """

    current: UserTurn
    model_id: str
    history: list[Turn] = field(default_factory=list)
    tools: list[ToolSpec] = field(default_factory=list)
    conversation_id: str | None = None
    agent_continuation_id: str | None = None
    profile_arn: str | None = None
    origin: Origin = "KIRO_CLI"
    agent_task_type: str | None = "vibe"
    chat_trigger_type: str = "MANUAL"
    operating_system: str | None = None
    current_working_directory: str | None = None
    additional_model_request_fields: dict[str, Any] | None = None
    """Top-level ``additionalModelRequestFields`` (native thinking, §3.6); ``None`` omits it."""


# ---------------------------------------------------------------------------------------------
# Response events (kiro-protocol.md §5.2)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextDelta:
    """``assistantResponseEvent``: a piece of the answer text."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolUseFragment:
    """``toolUseEvent``: part of a tool call's input JSON; ``stop`` marks the call complete.

    ``input`` is always a string fragment: an object-valued ``input`` is serialised with
    ``json.dumps``, and an empty object ``{}`` becomes ``""`` (kiro-protocol.md §5.3).
    """

    tool_use_id: str
    name: str
    input: str
    stop: bool


@dataclass(frozen=True, slots=True)
class Metering:
    """``meteringEvent``: credits (not tokens) charged for this request."""

    unit: str
    usage: float


@dataclass(frozen=True, slots=True)
class ContextUsage:
    """``contextUsageEvent``: how full the context window is, in percent."""

    percentage: float


@dataclass(frozen=True, slots=True)
class Metadata:
    """``metadataEvent`` / ``messageMetadataEvent``: stop reason, token usage, refusal if any."""

    stop_reason: str | None = None
    token_usage: dict[str, int] | None = None
    refusal: dict[str, Any] | None = None
    conversation_id: str | None = None


@dataclass(frozen=True, slots=True)
class Reasoning:
    """``reasoningContentEvent``: thinking text, its signature, or redacted (encrypted) content."""

    text: str | None = None
    signature: str | None = None
    redacted: str | None = None


@dataclass(frozen=True, slots=True)
class CodeReference:
    """``codeReferenceEvent``: licence references for generated code."""

    references: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class OtherEvent:
    """A known event kiro-lc does not act on (followupPrompt, web links, ...), kept for callers."""

    event_type: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """An event type kiro-lc has never heard of: ignored, logged at DEBUG."""

    event_type: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StreamException:
    """An ``exception``/``error`` frame in the stream (e.g. ``ThrottlingException``).

    ``ContentLengthExceededException`` means the output hit its budget (stop reason
    ``max_tokens``), not a failure; everything else maps to a :class:`~kiro_lc.errors.KiroError`
    via :func:`kiro_lc.errormap.error_from_exception`.
    """

    exception_type: str
    message: str
    reason: str | None = None


KiroEvent = (
    TextDelta
    | ToolUseFragment
    | Metering
    | ContextUsage
    | Metadata
    | Reasoning
    | CodeReference
    | OtherEvent
    | UnknownEvent
    | StreamException
)


# ---------------------------------------------------------------------------------------------
# Request serialisation (kiro-protocol.md §3.3)
# ---------------------------------------------------------------------------------------------
#
# Keys are emitted in the order of the kiro-cli 2.15.2 capture, which lists every object sorted
# by key. Serialisation is pure: ids come from the caller. ``conversationId`` (like
# ``agentContinuationId``) is omitted when ``None``; kiro-cli always sends one, so callers
# should set it (a uuid4 per conversation).


def request_to_json(req: ConversationRequest) -> dict[str, Any]:
    """The JSON body of a ``GenerateAssistantResponse`` call for ``req``.

    The result shares the tool schemas, tool inputs and tool-result content objects of
    ``req``; serialise it (:func:`request_to_bytes`) rather than mutating it.
    """
    env = _env_state(req)
    state: dict[str, Any] = {}
    if req.agent_continuation_id is not None:
        state["agentContinuationId"] = req.agent_continuation_id
    if req.agent_task_type is not None:
        state["agentTaskType"] = req.agent_task_type
    state["chatTriggerType"] = req.chat_trigger_type
    if req.conversation_id is not None:
        state["conversationId"] = req.conversation_id
    tools = [_tool_spec(t) for t in req.tools]
    state["currentMessage"] = {"userInputMessage": _user_message(req.current, req, env, tools)}
    if req.history:
        state["history"] = [_history_entry(turn, req, env) for turn in req.history]
    body: dict[str, Any] = {}
    if req.additional_model_request_fields is not None:
        body["additionalModelRequestFields"] = req.additional_model_request_fields
    body["conversationState"] = state
    if req.profile_arn is not None:
        body["profileArn"] = req.profile_arn
    return body


def request_to_bytes(req: ConversationRequest) -> bytes:
    """:func:`request_to_json` as compact UTF-8 JSON, ready to POST.

    Raises :class:`~kiro_lc.errors.KiroInvalidRequestError` when a tool schema, tool input or
    tool result holds something JSON cannot carry (NaN, a ``datetime``, ...).
    """
    body = request_to_json(req)
    try:
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise KiroInvalidRequestError(
            f"The request cannot be sent as JSON ({exc}). Tool schemas, tool call inputs and "
            "tool results must hold plain JSON values (str, number, bool, None, list, dict)."
        ) from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate in user text: send it \u-escaped instead
        return json.dumps(body, separators=(",", ":")).encode("ascii")


def _env_state(req: ConversationRequest) -> dict[str, str] | None:
    env: dict[str, str] = {}
    if req.current_working_directory is not None:
        env["currentWorkingDirectory"] = req.current_working_directory
    if req.operating_system is not None:
        env["operatingSystem"] = req.operating_system
    return env or None


def _user_message(
    turn: UserTurn,
    req: ConversationRequest,
    env: dict[str, str] | None,
    tools: list[dict[str, Any]],
) -> dict[str, Any]:
    message: dict[str, Any] = {"content": turn.content}
    if turn.images:
        message["images"] = [_image(image) for image in turn.images]
    message["modelId"] = req.model_id
    message["origin"] = req.origin
    context: dict[str, Any] = {}
    if env is not None:
        context["envState"] = env
    if turn.tool_results:
        context["toolResults"] = [_tool_result(r) for r in turn.tool_results]
    if tools:
        context["tools"] = tools
    if context:
        message["userInputMessageContext"] = context
    return message


def _history_entry(
    turn: Turn, req: ConversationRequest, env: dict[str, str] | None
) -> dict[str, Any]:
    if isinstance(turn, UserTurn):
        return {"userInputMessage": _user_message(turn, req, env, [])}
    message: dict[str, Any] = {"content": turn.content}
    if turn.tool_uses:
        message["toolUses"] = [
            {"input": use.input, "name": use.name, "toolUseId": use.tool_use_id}
            for use in turn.tool_uses
        ]
    return {"assistantResponseMessage": message}


def _image(image: KiroImage) -> dict[str, Any]:
    return {
        "format": image.format,
        "source": {"bytes": base64.b64encode(image.data).decode("ascii")},
    }


def _tool_spec(tool: ToolSpec) -> dict[str, Any]:
    return {
        "toolSpecification": {
            "description": tool.description,
            "inputSchema": {"json": tool.input_schema},
            "name": tool.name,
        }
    }


def _tool_result(result: ToolResult) -> dict[str, Any]:
    return {"content": result.content, "status": result.status, "toolUseId": result.tool_use_id}


# ---------------------------------------------------------------------------------------------
# Event parsing (kiro-protocol.md §5.2)
# ---------------------------------------------------------------------------------------------
#
# What the answer is made of (text, tool calls) must parse or the call fails with
# KiroProtocolError; bookkeeping events with fields of an unexpected type (metering, context
# usage) degrade to OtherEvent instead of breaking an otherwise good answer.

_log = logging.getLogger("kiro_lc.protocol")

_Payload = dict[str, Any]

OTHER_EVENT_TYPES = frozenset(
    {
        "citationEvent",
        "codeEvent",
        "dryRunSucceedEvent",
        "followupPromptEvent",
        "intentsEvent",
        "interactionComponentsEvent",
        "invalidStateEvent",
        "messageStopEvent",
        "metricsEvent",
        "modelTemporarilyUnavailableEvent",
        "modelUnavailableEvent",
        "supplementaryWebLinksEvent",
        "toolResultEvent",
    }
)
"""Event types kiro-lc knows but does not act on; they parse to :class:`OtherEvent`."""


def parse_event(message: EventStreamMessage) -> KiroEvent:
    """Turn one decoded event-stream message into a typed :data:`KiroEvent`.

    Accepts the bare payload and the wrapped ``{"<eventType>": {...}}`` form. ``exception`` and
    ``error`` messages become :class:`StreamException`; unknown event types become
    :class:`UnknownEvent` (logged at DEBUG, type and size only). Raises
    :class:`~kiro_lc.errors.KiroProtocolError` when a known event's payload is not a JSON
    object, or a text/tool event lacks what it needs.
    """
    # Runs once per token: read the header dict directly rather than through the properties.
    headers = message.headers
    message_type = headers.get(":message-type")
    if message_type == "exception" or message_type == "error":
        return _stream_exception(message)
    event_type = headers.get(":event-type")
    if not isinstance(event_type, str):
        event_type = ""
    parser = _PARSERS.get(event_type)
    if parser is not None:
        return parser(event_type, _load(event_type, message.payload))
    if event_type in OTHER_EVENT_TYPES:
        return OtherEvent(event_type, _load(event_type, message.payload))
    return _unknown(event_type, message.payload)


def _load(event_type: str, raw: bytes) -> _Payload:
    if not raw:
        return {}
    try:
        text = raw.decode()  # decoding first skips json's slower bytes sniffing
        # The C scanner directly skips json.loads' two whitespace regex passes: ~1.5 us a token.
        data, end = _scan_once(text, 0)
        if end != len(text):
            data = json.loads(text)  # surrounding whitespace or trailing junk: let json judge
    except StopIteration:
        data = _loads_reporting(event_type, text)
    except ValueError as exc:
        raise _bad(event_type, f"a payload that is not valid JSON ({_why(exc)})") from None
    if not isinstance(data, dict):
        raise _bad(event_type, f"a JSON {type(data).__name__} payload instead of an object")
    if len(data) == 1:
        inner = data.get(event_type)
        if isinstance(inner, dict):
            return inner
    return data


_scan_once: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _loads_reporting(event_type: str, text: str) -> Any:
    """``json.loads`` for payloads the fast scanner refused (leading whitespace or bad JSON)."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _bad(event_type, f"a payload that is not valid JSON ({_why(exc)})") from None


def _why(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at byte {exc.pos}"
    return "not UTF-8" if isinstance(exc, UnicodeDecodeError) else type(exc).__name__


def _bad(event_type: str, what: str) -> KiroProtocolError:
    return KiroProtocolError(
        f"Kiro sent a {event_type or 'nameless'} event with {what}. The stream is corrupted or "
        "Kiro changed its protocol; retry, and report it to kiro-lc if it persists."
    )


def _text(event_type: str, payload: _Payload) -> KiroEvent:
    if "followupPrompt" in payload:
        return OtherEvent(event_type, payload)
    content = payload.get("content")
    if isinstance(content, str):
        return TextDelta(content)
    if content is None:
        return OtherEvent(event_type, payload)
    raise _bad(event_type, "a 'content' field that is not a string")


def _tool_use(event_type: str, payload: _Payload) -> KiroEvent:
    tool_use_id = payload.get("toolUseId")
    if not isinstance(tool_use_id, str) or not tool_use_id:
        raise _bad(event_type, "no 'toolUseId'")
    name = payload.get("name")
    raw = payload.get("input")
    if isinstance(raw, str):
        text = raw
    elif raw is None or raw == {}:
        text = ""  # a leading {} frame must not prefix the streamed JSON (§5.3)
    else:
        text = json.dumps(raw, ensure_ascii=False)
    return ToolUseFragment(
        tool_use_id, name if isinstance(name, str) else "", text, payload.get("stop") is True
    )


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _metering(event_type: str, payload: _Payload) -> KiroEvent:
    usage = _number(payload.get("usage"))
    if usage is None:
        return OtherEvent(event_type, payload)
    unit = payload.get("unit")
    return Metering(unit if isinstance(unit, str) else "", usage)


def _context_usage(event_type: str, payload: _Payload) -> KiroEvent:
    percentage = _number(payload.get("contextUsagePercentage"))
    if percentage is None:
        return OtherEvent(event_type, payload)
    return ContextUsage(percentage)


def _metadata(event_type: str, payload: _Payload) -> KiroEvent:
    usage = payload.get("tokenUsage")
    token_usage = (
        {k: int(v) for k, v in usage.items() if _number(v) is not None}
        if isinstance(usage, dict)
        else None
    )
    details = payload.get("stopDetails")
    refusal = details.get("refusal") if isinstance(details, dict) else None
    return Metadata(
        stop_reason=_opt_str(payload.get("stopReason")),
        token_usage=token_usage,
        refusal=refusal if isinstance(refusal, dict) else None,
        conversation_id=_opt_str(payload.get("conversationId")),
    )


def _reasoning(event_type: str, payload: _Payload) -> KiroEvent:
    nested = payload.get("reasoningText")
    source = nested if isinstance(nested, dict) else payload
    return Reasoning(
        text=_opt_str(source.get("text")),
        signature=_opt_str(source.get("signature")),
        redacted=_opt_str(payload.get("redactedContent")),
    )


def _code_reference(event_type: str, payload: _Payload) -> KiroEvent:
    references = payload.get("references")
    items = references if isinstance(references, list) else []
    return CodeReference([r for r in items if isinstance(r, dict)])


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _unknown(event_type: str, raw: bytes) -> UnknownEvent:
    _log.debug("ignoring unknown Kiro event %r (%d payload bytes)", event_type[:100], len(raw))
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        data = {}
    return UnknownEvent(event_type, data if isinstance(data, dict) else {})


def _stream_exception(message: EventStreamMessage) -> StreamException:
    if message.message_type == "error":
        kind = message.error_code or message.exception_type
    else:
        kind = message.exception_type or message.error_code
    raw = message.payload
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        data = raw.decode("utf-8", errors="replace").strip()[:1000]
    if not isinstance(data, dict):
        data = {"message": data} if isinstance(data, str) else {}
    header_text = message.headers.get(":error-message")
    text = (
        _opt_str(data.get("message"))
        or _opt_str(data.get("Message"))
        or (header_text if isinstance(header_text, str) else "")
    )
    kind = kind or _opt_str(data.get("__type")) or "UnknownException"
    return StreamException(kind, text, _opt_str(data.get("reason")))


_PARSERS: dict[str, Callable[[str, _Payload], KiroEvent]] = {
    "assistantResponseEvent": _text,
    "toolUseEvent": _tool_use,
    "meteringEvent": _metering,
    "contextUsageEvent": _context_usage,
    "metadataEvent": _metadata,
    "messageMetadataEvent": _metadata,
    "reasoningContentEvent": _reasoning,
    "codeReferenceEvent": _code_reference,
}
