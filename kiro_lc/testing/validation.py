"""Strict, server-side validation of ``GenerateAssistantResponse`` bodies (kiro-protocol.md §3.4).

This module reads the raw JSON a client sent; it deliberately does not use kiro-lc's own request
serializer, so a bug there cannot hide behind agreement with itself. Each rule that fails yields a
:class:`Problem` with a readable ``detail`` (``"history[3]: two consecutive assistant messages"``)
and the HTTP answer Kiro gives for it (§6.1): most shape errors are
``400 {"message": "Improperly formed request.", "reason": null}``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

IMPROPERLY_FORMED = "Improperly formed request."
IMAGE_FORMATS = frozenset({"png", "jpeg", "gif", "webp"})
ORIGINS = frozenset({"AI_EDITOR", "KIRO_CLI"})
SECRET_FREE_TEXT_LIMIT = 60


@dataclass(frozen=True)
class Problem:
    """One rule the request broke, and how Kiro answers it."""

    detail: str
    status: int = 400
    message: str = IMPROPERLY_FORMED
    reason: str | None = None

    def body(self) -> dict[str, Any]:
        """The JSON error body Kiro sends for this problem."""
        return {"message": self.message, "reason": self.reason}


@dataclass(frozen=True)
class Rules:
    """What the validator accepts: models, disabled models and size limits."""

    known_models: frozenset[str]
    disabled_models: frozenset[str] = frozenset()
    max_request_bytes: int = 600_000
    max_tool_description: int = 10_000
    max_tool_name: int = 64


@dataclass
class _Checker:
    rules: Rules
    problems: list[Problem] = field(default_factory=list)

    def shape(self, detail: str) -> None:
        self.problems.append(Problem(detail))

    def pairing(self, detail: str) -> None:
        self.problems.append(Problem(detail, reason="TOOL_USE_RESULT_MISMATCH"))


def _short(value: object) -> str:
    text = repr(value)
    return (
        text if len(text) <= SECRET_FREE_TEXT_LIMIT else text[: SECRET_FREE_TEXT_LIMIT - 3] + "..."
    )


def validate_generate_request(raw: bytes, rules: Rules) -> tuple[Any, list[Problem]]:
    """Check one request body; returns ``(parsed body or None, problems)``, most severe first."""
    checker = _Checker(rules)
    if len(raw) > rules.max_request_bytes:
        checker.problems.append(
            Problem(
                f"request body is {len(raw)} bytes, over the {rules.max_request_bytes}-byte limit",
                message="Input is too long.",
                reason="CONTENT_LENGTH_EXCEEDS_THRESHOLD",
            )
        )
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        checker.shape("body is not valid JSON")
        return None, checker.problems
    if not isinstance(body, dict):
        checker.shape("body is not a JSON object")
        return body, checker.problems
    _check_body(checker, body)
    return body, _order(checker.problems)


def _order(problems: list[Problem]) -> list[Problem]:
    """Size first, then the model, then everything else (stable)."""

    def rank(p: Problem) -> int:
        order = {"CONTENT_LENGTH_EXCEEDS_THRESHOLD": 0, "INVALID_MODEL_ID": 1}
        if p.status == 429:
            return 2
        return order.get(p.reason or "", 3)

    return sorted(problems, key=rank)


def _check_body(c: _Checker, body: dict[str, Any]) -> None:
    for path in _find_key(body, "systemPrompt", "$"):
        c.shape(f"{path}: systemPrompt is not a Kiro field; send the system text in history")
    if "profileArn" in body and not isinstance(body["profileArn"], str):
        c.shape("profileArn must be a string")
    state = body.get("conversationState")
    if not isinstance(state, dict):
        c.shape("conversationState is missing or not an object")
        return
    current = state.get("currentMessage")
    if not isinstance(current, dict) or not isinstance(current.get("userInputMessage"), dict):
        c.shape(
            "currentMessage.userInputMessage is missing (the current message must be a user turn)"
        )
        return
    user = current["userInputMessage"]
    history = state.get("history", [])
    if not isinstance(history, list):
        c.shape("history must be a list")
        history = []
    turns = _check_history_shape(c, history)
    turns.append(("currentMessage", "user", user))
    for label, role, message in turns:
        if role == "user":
            _check_user_message(c, label, message, current=label == "currentMessage")
        else:
            _check_assistant_message(c, label, message)
    _check_model(c, user)
    tools = _context(user).get("tools")
    if tools is not None:
        _check_tools(c, tools)
    _check_pairing(c, turns)
    if isinstance(tools, list) and tools:
        _check_history_tools_declared(c, turns, tools)


def _find_key(value: Any, key: str, path: str) -> Iterable[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            sub = f"{path}.{k}"
            if k == key:
                yield sub
            yield from _find_key(v, key, sub)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _find_key(v, key, f"{path}[{i}]")


def _context(message: dict[str, Any]) -> dict[str, Any]:
    ctx = message.get("userInputMessageContext")
    return ctx if isinstance(ctx, dict) else {}


def _check_history_shape(c: _Checker, history: list[Any]) -> list[tuple[str, str, dict[str, Any]]]:
    turns: list[tuple[str, str, dict[str, Any]]] = []
    previous: str | None = None
    for i, entry in enumerate(history):
        label = f"history[{i}]"
        keys = (
            set(entry) & {"userInputMessage", "assistantResponseMessage"}
            if isinstance(entry, dict)
            else set()
        )
        if len(keys) != 1 or not isinstance(entry[next(iter(keys))], dict):
            c.shape(
                f"{label}: needs exactly one userInputMessage or assistantResponseMessage object"
            )
            continue
        role = "user" if "userInputMessage" in keys else "assistant"
        if i == 0 and role != "user":
            c.shape(f"{label}: history must start with a user message")
        if role == previous:
            c.shape(f"{label}: two consecutive {role} messages")
        previous = role
        key = "userInputMessage" if role == "user" else "assistantResponseMessage"
        turns.append((label, role, entry[key]))
    if previous == "user":
        c.shape(
            f"history[{len(history) - 1}]: two consecutive user messages "
            "(the last history entry is a user message and so is the current message)"
        )
    return turns


def _check_user_message(c: _Checker, label: str, msg: dict[str, Any], *, current: bool) -> None:
    content = msg.get("content")
    ctx = _context(msg)
    results = ctx.get("toolResults")
    if not isinstance(content, str):
        c.shape(f"{label}: content must be a string")
    elif not content and not results:
        c.shape(f"{label}: empty content with no tool results")
    if "userInputMessageContext" in msg and not isinstance(msg["userInputMessageContext"], dict):
        c.shape(f"{label}: userInputMessageContext must be an object")
    if current:
        origin = msg.get("origin")
        if origin is None:
            c.shape(f"{label}: origin is missing")
        elif origin == "CLI":
            c.shape(f"{label}: origin 'CLI' drops metering; send 'KIRO_CLI' or 'AI_EDITOR'")
        elif origin not in ORIGINS:
            c.shape(f"{label}: unknown origin {_short(origin)}")
    if results is not None:
        _check_tool_results(c, label, results)
        if isinstance(content, str) and "<thinking" in content and results:
            c.shape(f"{label}: thinking tags in a message that carries toolResults")
    if "images" in msg:
        _check_images(c, label, msg["images"])


def _check_tool_results(c: _Checker, label: str, results: Any) -> None:
    if not isinstance(results, list):
        c.shape(f"{label}: toolResults must be a list")
        return
    for j, result in enumerate(results):
        where = f"{label}.toolResults[{j}]"
        if not isinstance(result, dict) or not isinstance(result.get("toolUseId"), str):
            c.shape(f"{where}: needs a toolUseId string")
            continue
        content = result.get("content")
        if not isinstance(content, list) or not all(
            isinstance(item, dict) and ("text" in item or "json" in item) for item in content
        ):
            c.shape(f"{where}: content must be a list of {{'text': ...}} or {{'json': ...}} items")
        elif any("text" in item and not isinstance(item["text"], str) for item in content):
            c.shape(f"{where}: a text item must hold a string")
        if result.get("status", "success") not in ("success", "error"):
            c.shape(f"{where}: status must be 'success' or 'error'")


def _check_images(c: _Checker, label: str, images: Any) -> None:
    if not isinstance(images, list):
        c.shape(f"{label}: images must be a list")
        return
    for j, image in enumerate(images):
        where = f"{label}.images[{j}]"
        if not isinstance(image, dict):
            c.shape(f"{where}: must be an object")
            continue
        if image.get("format") not in IMAGE_FORMATS:
            c.shape(f"{where}: format {_short(image.get('format'))} is not png, jpeg, gif or webp")
        source = image.get("source")
        data = source.get("bytes") if isinstance(source, dict) else None
        if not isinstance(data, str) or not data:
            c.shape(f"{where}: source.bytes must be a non-empty base64 string")
            continue
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            c.shape(f"{where}: source.bytes is not valid base64")


def _check_assistant_message(c: _Checker, label: str, msg: dict[str, Any]) -> None:
    if not isinstance(msg.get("content"), str):
        c.shape(f"{label}: assistant content must be a string")
    uses = msg.get("toolUses")
    if uses is None:
        return
    if not isinstance(uses, list):
        c.shape(f"{label}: toolUses must be a list")
        return
    seen: set[str] = set()
    for j, use in enumerate(uses):
        where = f"{label}.toolUses[{j}]"
        if not isinstance(use, dict):
            c.shape(f"{where}: must be an object")
            continue
        if not isinstance(use.get("toolUseId"), str) or not isinstance(use.get("name"), str):
            c.shape(f"{where}: needs toolUseId and name strings")
        if not isinstance(use.get("input"), dict):
            c.shape(f"{where}: input must be a JSON object")
        if use.get("toolUseId") in seen:
            c.shape(f"{where}: duplicate toolUseId {_short(use.get('toolUseId'))}")
        if isinstance(use.get("toolUseId"), str):
            seen.add(use["toolUseId"])


def _check_model(c: _Checker, user: dict[str, Any]) -> None:
    model = user.get("modelId")
    rules = c.rules
    if not isinstance(model, str) or not model:
        c.problems.append(
            Problem(
                "currentMessage: modelId is missing",
                message="Invalid model. Please select a different model to continue.",
                reason="INVALID_MODEL_ID",
            )
        )
    elif model not in rules.known_models:
        c.problems.append(
            Problem(
                f"currentMessage: modelId {_short(model)} is not a known model",
                message="Invalid model. Please select a different model to continue.",
                reason="INVALID_MODEL_ID",
            )
        )
    elif model in rules.disabled_models:
        c.problems.append(
            Problem(
                f"currentMessage: model {model!r} is disabled in this emulator",
                status=429,
                message="I am experiencing high traffic, please try again shortly.",
                reason="INSUFFICIENT_MODEL_CAPACITY",
            )
        )


def _check_tools(c: _Checker, tools: Any) -> None:
    if not isinstance(tools, list):
        c.shape("currentMessage.tools must be a list")
        return
    names: set[str] = set()
    for i, entry in enumerate(tools):
        where = f"currentMessage.tools[{i}]"
        if isinstance(entry, dict) and "cachePoint" in entry:
            c.shape(f"{where}: cachePoint entries are not accepted in tools")
            continue
        spec = entry.get("toolSpecification") if isinstance(entry, dict) else None
        if not isinstance(spec, dict):
            c.shape(f"{where}: needs a toolSpecification object")
            continue
        _check_tool_spec(c, where, spec)
        name = spec.get("name")
        if isinstance(name, str):
            if name.lower() in names:
                c.shape(f"{where}: duplicate tool name {name!r}")
            names.add(name.lower())


def _check_tool_spec(c: _Checker, where: str, spec: dict[str, Any]) -> None:
    rules = c.rules
    name = spec.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= rules.max_tool_name:
        c.shape(
            f"{where}: tool name must be 1..{rules.max_tool_name} characters, got {_short(name)}"
        )
    description = spec.get("description")
    if not isinstance(description, str) or not description.strip():
        c.shape(f"{where}: tool description must be a non-empty string")
    elif len(description) > rules.max_tool_description:
        c.shape(
            f"{where}: tool description is {len(description)} characters, "
            f"over the {rules.max_tool_description}-character limit"
        )
    schema = spec.get("inputSchema")
    if not isinstance(schema, dict) or not isinstance(schema.get("json"), dict):
        c.shape(f"{where}: inputSchema.json must be a JSON object")


def _tool_uses(message: dict[str, Any]) -> list[dict[str, Any]]:
    uses = message.get("toolUses")
    return [u for u in uses if isinstance(u, dict)] if isinstance(uses, list) else []


def _tool_results(message: dict[str, Any]) -> list[dict[str, Any]]:
    results = _context(message).get("toolResults")
    return [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []


def _check_pairing(c: _Checker, turns: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Each assistant tool use is answered in the very next user message, and only there."""
    expected: set[str] = set()
    for label, role, message in turns:
        if role == "assistant":
            expected = {u["toolUseId"] for u in _tool_uses(message) if "toolUseId" in u}
            continue
        seen: set[str] = set()
        for result in _tool_results(message):
            tool_use_id = result.get("toolUseId")
            if tool_use_id in seen:
                c.pairing(f"{label}: duplicate tool result for {_short(tool_use_id)}")
            elif tool_use_id not in expected:
                c.pairing(
                    f"{label}: tool result {_short(tool_use_id)} answers no tool use "
                    "of the immediately preceding assistant message"
                )
            if isinstance(tool_use_id, str):
                seen.add(tool_use_id)
        for missing in sorted(expected - seen):
            c.pairing(
                f"{label}: tool use {missing!r} of the previous assistant message has no result"
            )
        expected = set()


def _check_history_tools_declared(
    c: _Checker, turns: list[tuple[str, str, dict[str, Any]]], tools: list[Any]
) -> None:
    declared = {
        e["toolSpecification"]["name"].lower()
        for e in tools
        if isinstance(e, dict)
        and isinstance(e.get("toolSpecification"), dict)
        and isinstance(e["toolSpecification"].get("name"), str)
    }
    for label, role, message in turns:
        if role != "assistant":
            continue
        for use in _tool_uses(message):
            name = use.get("name")
            if isinstance(name, str) and name.lower() not in declared:
                c.shape(f"{label}: uses tool {name!r}, which the current tools do not declare")
