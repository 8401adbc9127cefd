"""Kiro's request and response shapes, pure: no I/O, no LangChain types.

Request side: a :class:`ConversationRequest` (history, current message, tools, tool results,
images, model id, origin) serialised with :func:`request_to_json` into the
``{"conversationState": ..., "profileArn": ...}`` body real kiro-cli 2.15.2 sends
(``../shared/kiro-captures``; kiro-protocol.md §3.3).

Response side: :func:`parse_event` turns one decoded event-stream message into a typed event
(kiro-protocol.md §5.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

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
