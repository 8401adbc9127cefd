"""LangChain messages and tools → :class:`kiro_lc.protocol.ConversationRequest` (pure, no I/O).

Kiro's ``generateAssistantResponse`` has no system field, no ``tool_choice`` and no JSON mode, and
it rejects histories that do not strictly alternate user/assistant (kiro-protocol.md §3.4–§3.5).
:func:`build_request` bridges the gap:

* system messages become the first history pair, worded as real kiro-cli words its agent prompt;
* consecutive same-role messages merge; the history starts with a user turn; the request ends with
  a user turn (a trailing AI message moves into history and the current message says ``Continue``);
* consecutive ``ToolMessage``\\ s fold into one user turn's ``toolResults``; every assistant tool
  use is answered in the next user turn (an unanswered one gets an error result), and results
  that answer nothing become text;
* ``AIMessage.tool_calls`` is the source of truth for tool uses; thinking and ``tool_use`` content
  blocks are dropped;
* images in the OpenAI, LangChain v1 and Anthropic base64 shapes become :class:`KiroImage`\\ s;
* tool names longer than 64 characters are shortened reversibly, descriptions capped;
* ``tool_choice`` and ``response_format`` are emulated by instructions in the current user turn.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from kiro_lc.protocol import (
    AssistantTurn,
    ConversationRequest,
    ImageFormat,
    KiroImage,
    Origin,
    ToolResult,
    ToolSpec,
    ToolUse,
    Turn,
    UserTurn,
)

__all__ = [
    "ANY_TOOL_INSTRUCTION",
    "CONTINUE_TEXT",
    "MAX_DESCRIPTION_CHARS",
    "MAX_TOOL_NAME_CHARS",
    "NAMED_TOOL_INSTRUCTION",
    "SYSTEM_ACK",
    "PreparedRequest",
    "ToolChoice",
    "build_request",
    "convert_tools",
    "normalize_tool_choice",
    "system_turn_text",
    "wire_tool_name",
]

MAX_TOOL_NAME_CHARS = 64
MAX_DESCRIPTION_CHARS = 10_000
CONTINUE_TEXT = "Continue"
# kiro-protocol.md §3.4 DISAGREE: real clients that probed Kiro live (kirollm, kiroproxy) send ""
# next to toolResults; a placeholder there makes the model answer the placeholder.
TOOL_RESULTS_TEXT = ""
EMPTY_RESULT_TEXT = "(empty result)"
ASSISTANT_TOOL_ONLY_TEXT = " "
UNANSWERED_TOOL_TEXT = "The tool call was not run: the conversation continued without its result."
SYSTEM_ACK = (
    "I will fully incorporate this information when generating my responses, and explicitly "
    "acknowledge relevant parts of the summary when answering questions."
)
ANY_TOOL_INSTRUCTION = (
    "You must call one of the tools to answer this message. Do not answer with text only."
)
NAMED_TOOL_INSTRUCTION = (
    "You must call the tool `{name}` to answer this message. Do not answer with text only."
)
JSON_INSTRUCTION = (
    "Respond with only a single valid JSON object: no prose before or after it and no Markdown "
    "code fences."
)
JSON_SCHEMA_INSTRUCTION = (
    "Respond with only a single valid JSON object that conforms to this JSON Schema: no prose "
    "before or after it and no Markdown code fences.\n\nJSON Schema:\n{schema}"
)

_MIME_FORMATS: dict[str, ImageFormat] = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_DATA_URL = re.compile(r"^data:(?P<mime>[\w/+.-]+);base64,(?P<data>.*)$", re.DOTALL)
_IGNORED_BLOCKS = frozenset(
    {
        "tool_use",
        "tool_call",
        "tool_call_chunk",
        "invalid_tool_call",
        "server_tool_use",
        "server_tool_call",
        "server_tool_call_chunk",
        "server_tool_result",
        "thinking",
        "redacted_thinking",
        "reasoning",
        "input_json_delta",
        "non_standard",
    }
)
UNSUPPORTED_MEDIA = (
    "Kiro only accepts text and inline base64 images (png, jpeg, gif or webp); "
    "{what} cannot be sent. Download or convert it yourself and pass the bytes as a base64 image "
    'block, e.g. {{"type": "image", "base64": ..., "mime_type": "image/png"}}.'
)

logger = logging.getLogger("kiro_lc.chat_models")

ToolChoice = Literal["auto", "none", "any"] | str


# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------


def wire_tool_name(name: str) -> str:
    """The name a tool travels under: unchanged up to 64 characters, else a hashed short form.

    The short form keeps a readable prefix and ends in 8 hex digits of the name's SHA-256, so the
    same long name always shortens the same way (history and tool specs stay consistent).
    """
    if len(name) <= MAX_TOOL_NAME_CHARS:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{name[: MAX_TOOL_NAME_CHARS - 9]}_{digest}"


def _tool_parts(tool: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """Name, description and JSON schema of an OpenAI-, Anthropic- or Kiro-shaped tool dict."""
    if "toolSpecification" in tool:
        spec = tool["toolSpecification"]
        return spec["name"], spec.get("description") or "", dict(spec["inputSchema"]["json"])
    if tool.get("type") == "function" and "function" in tool:
        fn = tool["function"]
        return fn["name"], fn.get("description") or "", dict(fn.get("parameters") or {})
    if "name" in tool and ("input_schema" in tool or "parameters" in tool):
        schema = tool.get("input_schema", tool.get("parameters")) or {}
        return tool["name"], tool.get("description") or "", dict(schema)
    raise ValueError(
        f"Unsupported tool definition {json.dumps(tool, default=str)[:200]}: Kiro only runs "
        "client-side function tools. Pass functions, pydantic models, BaseTools or OpenAI/"
        "Anthropic-style function schemas to bind_tools()."
    )


def _tool_spec(name: str, description: str, schema: dict[str, Any]) -> ToolSpec:
    wire = wire_tool_name(name)
    if not description.strip():
        description = f"Tool: {name}"
    if len(description) > MAX_DESCRIPTION_CHARS:
        description = description[: MAX_DESCRIPTION_CHARS - 3] + "..."
    schema.setdefault("type", "object")
    if schema["type"] == "object":
        schema.setdefault("properties", {})
    return ToolSpec(name=wire, description=description, input_schema=schema)


def convert_tools(tools: Sequence[Mapping[str, Any]]) -> tuple[list[ToolSpec], dict[str, str]]:
    """Kiro tool specs for bound tool dicts, and the map wire name → original name.

    Of several tools with the same name only the first is kept (Kiro rejects duplicates).
    """
    specs: list[ToolSpec] = []
    names: dict[str, str] = {}
    for tool in tools:
        name, description, schema = _tool_parts(tool)
        spec = _tool_spec(name, description, schema)
        if spec.name in names:  # Kiro rejects duplicate names: the first definition wins
            logger.warning("Two bound tools are named %r; Kiro gets only the first one.", name)
            continue
        specs.append(spec)
        names[spec.name] = name
    return specs, names


def normalize_tool_choice(tool_choice: Any, tool_names: Sequence[str]) -> ToolChoice:
    """``"auto"``, ``"none"``, ``"any"`` or a tool name, from any LangChain ``tool_choice`` form.

    Raises:
        ValueError: for a name that is not among ``tool_names`` or an unknown form.
    """
    if tool_choice is None or tool_choice == "auto":
        return "auto"
    if tool_choice in ("any", "required", True):
        return "any"
    if tool_choice in ("none", False):
        return "none"
    name: Any = tool_choice
    if isinstance(tool_choice, Mapping):
        kind = tool_choice.get("type")
        if kind in ("auto", "any", "none"):
            return str(kind)
        name = tool_choice.get("name") or (tool_choice.get("function") or {}).get("name")
    if not isinstance(name, str):
        raise ValueError(
            f"Unsupported tool_choice {tool_choice!r}: use 'auto', 'any', 'required', 'none' or "
            "the name of a bound tool."
        )
    if name not in tool_names:
        raise ValueError(
            f"tool_choice names the tool {name!r}, which is not bound. Bound tools: "
            f"{', '.join(tool_names) or '(none)'}."
        )
    return name


def _placeholder_spec(name: str) -> ToolSpec:
    """A spec for a tool used earlier in the conversation but not bound now (Kiro requires one)."""
    return ToolSpec(
        name=name,
        description=f"Tool: {name} (used earlier in this conversation; not available now).",
        input_schema={"type": "object", "properties": {}, "additionalProperties": True},
    )


# ---------------------------------------------------------------------------------------------
# Content blocks
# ---------------------------------------------------------------------------------------------


def _decode_image(data: str, mime: str) -> KiroImage:
    fmt = _MIME_FORMATS.get(mime.lower().strip())
    if fmt is None:
        raise ValueError(UNSUPPORTED_MEDIA.format(what=f"an image of type {mime!r}"))
    try:
        raw = base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"An image block holds invalid base64 data ({exc}).") from exc
    return KiroImage(format=fmt, data=raw)


def _image_from_url(url: str) -> KiroImage:
    match = _DATA_URL.match(url.strip())
    if match is None:
        raise ValueError(UNSUPPORTED_MEDIA.format(what=f"the image URL {url[:80]!r}"))
    return _decode_image(match["data"], match["mime"])


def _image_block(block: Mapping[str, Any]) -> KiroImage:
    """A Kiro image from an OpenAI ``image_url``, v1 ``image`` or Anthropic ``image`` block."""
    if block.get("type") == "image_url":
        ref = block.get("image_url")
        url = ref.get("url", "") if isinstance(ref, Mapping) else str(ref or "")
        return _image_from_url(url)
    source = block.get("source")
    if isinstance(source, Mapping):
        if source.get("type") == "base64":
            return _decode_image(str(source.get("data", "")), str(source.get("media_type", "")))
        what = f"an image source of type {source.get('type')!r}"
        raise ValueError(UNSUPPORTED_MEDIA.format(what=what))
    data = block.get("base64") or (
        block.get("data") if block.get("source_type") == "base64" else None
    )
    if data:
        return _decode_image(str(data), str(block.get("mime_type") or ""))
    if block.get("url"):
        return _image_from_url(str(block["url"]))
    raise ValueError(UNSUPPORTED_MEDIA.format(what="an image given by URL or file id"))


@dataclass
class _Draft:
    """One turn being assembled; same-role messages merge into it."""

    role: Literal["user", "assistant"]
    texts: list[str] = field(default_factory=list)
    images: list[KiroImage] = field(default_factory=list)
    tool_results: list[ToolResult] = field(default_factory=list)
    tool_uses: list[ToolUse] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(t for t in self.texts if t)


def _add_user_blocks(draft: _Draft, content: str | list[Any]) -> None:
    """Text, images and Anthropic ``tool_result`` blocks of a human message into ``draft``."""
    if isinstance(content, str):
        draft.texts.append(content)
        return
    for block in content:
        if isinstance(block, str):
            draft.texts.append(block)
            continue
        kind = block.get("type")
        if kind == "text":
            draft.texts.append(str(block.get("text", "")))
        elif kind in ("image", "image_url"):
            draft.images.append(_image_block(block))
        elif kind == "tool_result":
            _add_tool_result(
                draft,
                str(block.get("tool_use_id", "")),
                block.get("content", ""),
                "error" if block.get("is_error") else "success",
            )
        elif kind in _IGNORED_BLOCKS:
            continue
        else:
            raise ValueError(UNSUPPORTED_MEDIA.format(what=f"a {kind!r} content block"))


def _add_tool_result(
    draft: _Draft, tool_use_id: str, content: Any, status: Literal["success", "error"]
) -> None:
    """A tool's output as one ``toolResults`` entry; images in it ride on the user turn."""
    items: list[dict[str, Any]] = []
    blocks = [content] if isinstance(content, str) else list(content or [])
    for block in blocks:
        if isinstance(block, str):
            if block:
                items.append({"text": block})
        elif block.get("type") == "text":
            if block.get("text"):
                items.append({"text": str(block["text"])})
        elif block.get("type") == "json":
            items.append({"json": block.get("json")})
        elif block.get("type") in ("image", "image_url"):
            draft.images.append(_image_block(block))
        else:
            items.append({"text": json.dumps(block, default=str)})
    draft.tool_results.append(
        ToolResult(
            tool_use_id=tool_use_id, content=items or [{"text": EMPTY_RESULT_TEXT}], status=status
        )
    )


def _text_of(content: str | list[Any]) -> str:
    """The text of a message's content: the string, or its text blocks joined (others dropped)."""
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# Turns
# ---------------------------------------------------------------------------------------------


def _role(message: BaseMessage) -> Literal["user", "assistant", "system"]:
    if isinstance(message, (HumanMessage, ToolMessage)):
        return "user"
    if isinstance(message, AIMessage):
        return "assistant"
    if isinstance(message, SystemMessage):
        return "system"
    if isinstance(message, ChatMessage) and message.role in ("user", "human"):
        return "user"
    if isinstance(message, ChatMessage) and message.role in ("assistant", "ai"):
        return "assistant"
    if isinstance(message, ChatMessage) and message.role in ("system", "developer"):
        return "system"
    raise ValueError(
        f"Kiro cannot send a {type(message).__name__} (role {getattr(message, 'role', '?')!r}); "
        "use HumanMessage, AIMessage, SystemMessage or ToolMessage."
    )


def _drafts(messages: Sequence[BaseMessage]) -> tuple[list[str], list[_Draft]]:
    """System texts, and the other messages as role-merged drafts in order."""
    system: list[str] = []
    drafts: list[_Draft] = []
    for message in messages:
        role = _role(message)
        if role == "system":
            system.append(_text_of(message.content))
            continue
        if not drafts or drafts[-1].role != role:
            drafts.append(_Draft(role=role))
        draft = drafts[-1]
        if isinstance(message, ToolMessage):
            status: Literal["success", "error"] = (
                "error" if message.status == "error" else "success"
            )
            _add_tool_result(draft, message.tool_call_id, message.content, status)
        elif role == "user":
            _add_user_blocks(draft, message.content)
        else:
            _add_assistant(draft, message)
    return system, drafts


def _add_assistant(draft: _Draft, message: BaseMessage) -> None:
    draft.texts.append(_text_of(message.content))
    for n, call in enumerate(getattr(message, "tool_calls", None) or []):
        call_id = call.get("id") or f"tooluse_lc_{len(draft.tool_uses)}_{n}"
        draft.tool_uses.append(
            ToolUse(
                tool_use_id=call_id, name=wire_tool_name(call["name"]), input=dict(call["args"])
            )
        )


def _result_as_text(result: ToolResult) -> str:
    body = "\n".join(
        item["text"] if "text" in item else json.dumps(item.get("json"), default=str)
        for item in result.content
    )
    label = "Tool error" if result.status == "error" else "Tool result"
    return f"[{label} {result.tool_use_id}]: {body}"


def _pair_tool_results(drafts: list[_Draft]) -> None:
    """Make each user turn answer exactly the tool uses of the assistant turn before it."""
    for i, draft in enumerate(drafts):
        if draft.role != "user":
            continue
        previous = drafts[i - 1] if i > 0 else None
        expected = [tu.tool_use_id for tu in previous.tool_uses] if previous else []
        kept: dict[str, ToolResult] = {}
        orphans: list[str] = []
        for result in draft.tool_results:
            if result.tool_use_id in expected and result.tool_use_id not in kept:
                kept[result.tool_use_id] = result
            else:
                orphans.append(_result_as_text(result))
        for tool_use_id in expected:
            if tool_use_id not in kept:
                kept[tool_use_id] = ToolResult(
                    tool_use_id, [{"text": UNANSWERED_TOOL_TEXT}], status="error"
                )
        draft.tool_results = [kept[t] for t in expected]
        draft.texts[:0] = orphans


def _flatten_tools(drafts: list[_Draft]) -> None:
    """Rewrite history tool uses and results as text (for requests that declare no tools)."""
    for draft in drafts:
        for use in draft.tool_uses:
            draft.texts.append(
                f"[Tool call {use.name} ({use.tool_use_id}): {json.dumps(use.input, default=str)}]"
            )
        draft.texts[:0] = [_result_as_text(r) for r in draft.tool_results]
        draft.tool_uses = []
        draft.tool_results = []


def _frame(drafts: list[_Draft]) -> list[_Draft]:
    """Start with a user turn and end with one (a trailing assistant turn moves into history)."""
    if drafts and drafts[0].role == "assistant":
        drafts.insert(0, _Draft(role="user", texts=[CONTINUE_TEXT]))
    if not drafts or drafts[-1].role == "assistant":
        drafts.append(_Draft(role="user"))
    return drafts


def _to_turn(draft: _Draft) -> Turn:
    text = draft.text
    if draft.role == "assistant":
        if not text.strip():
            text = ASSISTANT_TOOL_ONLY_TEXT if draft.tool_uses else CONTINUE_TEXT
        return AssistantTurn(content=text, tool_uses=list(draft.tool_uses))
    if not text.strip():
        text = TOOL_RESULTS_TEXT if draft.tool_results else CONTINUE_TEXT
    return UserTurn(content=text, images=list(draft.images), tool_results=list(draft.tool_results))


def system_turn_text(system: str) -> str:
    """The first history user turn carrying the system prompt, as kiro-cli 2.15.2 words it."""
    return (
        "--- CONTEXT ENTRY BEGIN ---\n--- CONTEXT ENTRY END ---\n\n"
        f"Follow this instruction: {system}"
    )


# ---------------------------------------------------------------------------------------------
# The request
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedRequest:
    """A request ready for the transport, plus what the response side needs to know.

    ``tool_names`` maps wire tool names back to the names LangChain bound (they differ only for
    names longer than 64 characters).
    """

    request: ConversationRequest
    tool_names: Mapping[str, str]
    tools_bound: bool


def _instructions(tool_choice: ToolChoice, response_format: Mapping[str, Any] | None) -> list[str]:
    out: list[str] = []
    if tool_choice == "any":
        out.append(ANY_TOOL_INSTRUCTION)
    elif tool_choice not in ("auto", "none"):
        out.append(NAMED_TOOL_INSTRUCTION.format(name=wire_tool_name(tool_choice)))
    if response_format:
        out.append(_response_format_instruction(response_format))
    return out


def _response_format_instruction(response_format: Mapping[str, Any]) -> str:
    kind = response_format.get("type")
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema", spec) if isinstance(spec, Mapping) else spec
        return JSON_SCHEMA_INSTRUCTION.format(schema=json.dumps(schema, indent=1, default=str))
    if kind in ("json_object", "json"):
        return JSON_INSTRUCTION
    if kind == "text":
        return ""
    raise ValueError(
        f"Unsupported response_format {response_format!r}: use {{'type': 'json_object'}} or "
        "{'type': 'json_schema', 'json_schema': {'name': ..., 'schema': ...}}."
    )


def build_request(
    messages: Sequence[BaseMessage],
    *,
    model_id: str,
    tools: Sequence[Mapping[str, Any]] | None = None,
    tool_choice: Any = None,
    response_format: Mapping[str, Any] | None = None,
    profile_arn: str | None = None,
    origin: Origin = "KIRO_CLI",
    conversation_id: str | None = None,
) -> PreparedRequest:
    """Build the Kiro request for a LangChain conversation (see the module docstring)."""
    specs, names = convert_tools(tools or [])
    choice = normalize_tool_choice(tool_choice, list(names.values()))
    if choice == "none":
        specs, names = [], {}
    system, drafts = _drafts(messages)
    drafts = _frame(drafts)
    _pair_tool_results(drafts)
    if specs:
        _declare_history_tools(drafts, specs)
    else:
        _flatten_tools(drafts)
    extra = [text for text in _instructions(choice, response_format) if text]
    drafts[-1].texts.extend(extra)
    turns = [_to_turn(d) for d in drafts]
    system_text = "\n\n".join(s for s in system if s.strip())
    if system_text:
        turns[:0] = [UserTurn(content=system_turn_text(system_text)), AssistantTurn(SYSTEM_ACK)]
    current = turns.pop()
    assert isinstance(current, UserTurn)
    request = ConversationRequest(
        current=current,
        model_id=model_id,
        history=turns,
        tools=specs,
        conversation_id=conversation_id,
        profile_arn=profile_arn,
        origin=origin,
    )
    return PreparedRequest(request=request, tool_names=names, tools_bound=bool(tools))


def _declare_history_tools(drafts: list[_Draft], specs: list[ToolSpec]) -> None:
    """Append placeholder specs for tools the history used but the request does not bind."""
    known = {spec.name.lower() for spec in specs}
    for draft in drafts:
        for use in draft.tool_uses:
            if use.name.lower() not in known:
                known.add(use.name.lower())
                specs.append(_placeholder_spec(use.name))
