"""The emulator's default, request-aware answer (used when no scripted reply is queued).

Deterministic rules, applied to the latest user text (the part between kiro-cli's
``--- USER MESSAGE BEGIN/END ---`` markers when present, else the whole content):

1. **Tool-result turn** (the current message carries ``toolResults``): a text answer quoting the
   result, e.g. ``The tool get_weather returned: sunny, 21 °C.``
2. **Tool call**, when the request declares tools and one of these holds:
   ``You must call the tool named X`` (that tool); a declared tool's name appears in the text
   (that tool); ``You must call one of the tools`` / ``use the tool`` / ``call a tool`` (the
   first tool); the word ``weather`` (a tool with "weather" in its name, else the first tool).
   Arguments come from the tool's JSON schema: integers and numbers take the numbers of the text
   in order, strings take its quoted substrings (``"..."``, ``'...'``, ``“...”``, ``「...」``)
   in order or ``"example"``, enums their first value, booleans ``true``, arrays one item
   when ``items`` is typed (else ``[]``), objects recurse (only required keys past 5
   properties), ``$ref``/``anyOf`` resolved, ``{}`` when there are no properties. Sentences that
   carry the forcing instruction are ignored when harvesting values.
3. **JSON**, when the text says "json" and no tools are declared: a JSON object built the same
   way from the first JSON Schema embedded in any user text; without one, an object whose keys
   are the quoted words when the text speaks of keys or fields (``'setup' and 'punchline'
   keys``); else ``{}``.
4. Otherwise: ``Hello from the Kiro emulator (<modelId>).``

Context usage is reported as if the request held ``raw_size / 4`` tokens of the model's window.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kiro_lc.testing.replies import Reply

DEFAULT_WINDOW = 200_000
_PLACEHOLDER = "example"
_MAX_DEPTH = 8

_USER_BLOCK = re.compile(r"--- USER MESSAGE BEGIN ---\n?(.*?)--- USER MESSAGE END ---", re.S)
_CONTEXT_BLOCK = re.compile(r"--- CONTEXT ENTRY BEGIN ---.*?--- CONTEXT ENTRY END ---\s*", re.S)
_FORCE_NAMED = re.compile(
    r"must (?:call|use) the tool(?: named| called)?\s*[`'\"“「]?([\w.:-]+)", re.I
)
_FORCE_ANY = re.compile(
    r"must (?:call|use) (?:one of the|any of the|at least one|a|any) tools?", re.I
)
_ASK_TOOL = re.compile(r"\b(?:use|call) (?:the|a|your|one of the) tools?\b", re.I)
_INSTRUCTION = re.compile(r"[^.\n]*\bmust (?:call|use)\b[^.\n]*[.\n]?", re.I)
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\w)")
_QUOTED = re.compile(
    r"\"([^\"\n]+)\"|(?<!\w)'([^'\n]+?)'(?!\w)|“([^”]+)”|「([^」]+)」|‘([^’]+)’|«([^»]+)»"
)


def latest_user_text(content: str) -> str:
    """The user's own words: kiro-cli's USER MESSAGE block, without context entries."""
    match = _USER_BLOCK.search(content)
    if match:
        return match.group(1)
    return _CONTEXT_BLOCK.sub("", content)


@dataclass
class _Harvest:
    """Numbers and quoted strings from the prompt, handed out in order."""

    numbers: list[float | int] = field(default_factory=list)
    strings: list[str] = field(default_factory=list)

    @classmethod
    def from_text(cls, text: str) -> _Harvest:
        text = _INSTRUCTION.sub(" ", text)
        numbers: list[float | int] = [
            float(m) if "." in m else int(m) for m in _NUMBER.findall(text)
        ]
        strings = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(text)]
        return cls(numbers, strings)

    def number(self, integer: bool) -> float | int:
        value = self.numbers.pop(0) if self.numbers else 1
        return int(value) if integer else value

    def string(self) -> str:
        return self.strings.pop(0) if self.strings else _PLACEHOLDER


def args_from_schema(schema: dict[str, Any], text: str) -> dict[str, Any]:
    """Tool arguments for ``schema`` filled from the numbers and quoted strings of ``text``."""
    value = _derive(schema, _Harvest.from_text(text), schema, 0)
    return value if isinstance(value, dict) else {}


def _resolve(schema: Any, root: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(schema, dict):
        return {}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return _resolve(target, root)
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list):
            for option in options:
                resolved = _resolve(option, root)
                if resolved.get("type") != "null":
                    return {**{k: v for k, v in schema.items() if k != key}, **resolved}
    return schema


def _derive(schema: Any, harvest: _Harvest, root: dict[str, Any], depth: int) -> Any:
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or "properties" in schema or depth == 0:
        return _derive_object(schema, harvest, root, depth)
    if depth > _MAX_DEPTH:
        return None
    if kind in ("integer", "number"):
        return harvest.number(kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    if kind == "array":
        items = _resolve(schema.get("items"), root)
        return [_derive(items, harvest, root, depth + 1)] if items.get("type") or items else []
    return harvest.string()


def _derive_object(
    schema: dict[str, Any], harvest: _Harvest, root: dict[str, Any], depth: int
) -> dict[str, Any]:
    properties = schema.get("properties")
    if not isinstance(properties, dict) or depth > _MAX_DEPTH:
        return {}
    required = schema.get("required")
    keys = list(properties)
    if len(keys) > 5 and isinstance(required, list):
        keys = [k for k in keys if k in required]
    return {k: _derive(properties[k], harvest, root, depth + 1) for k in keys}


# ---------------------------------------------------------------------------------------------
# Reading the request
# ---------------------------------------------------------------------------------------------


def _current(body: Any) -> dict[str, Any]:
    try:
        message = body["conversationState"]["currentMessage"]["userInputMessage"]
    except (KeyError, TypeError):
        return {}
    return message if isinstance(message, dict) else {}


def _history(body: Any) -> list[Any]:
    try:
        history = body["conversationState"].get("history")
    except (KeyError, TypeError, AttributeError):
        return []
    return history if isinstance(history, list) else []


def _tools(current: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    ctx = current.get("userInputMessageContext")
    tools = ctx.get("tools") if isinstance(ctx, dict) else None
    out: list[tuple[str, dict[str, Any]]] = []
    for entry in tools if isinstance(tools, list) else []:
        spec = entry.get("toolSpecification") if isinstance(entry, dict) else None
        if isinstance(spec, dict) and isinstance(spec.get("name"), str):
            schema = spec.get("inputSchema", {})
            json_schema = schema.get("json") if isinstance(schema, dict) else None
            out.append((spec["name"], json_schema if isinstance(json_schema, dict) else {}))
    return out


def _pick_tool(
    text: str, tools: list[tuple[str, dict[str, Any]]]
) -> tuple[str, dict[str, Any]] | None:
    by_name = {name.lower(): (name, schema) for name, schema in tools}
    forced = _FORCE_NAMED.search(text)
    if forced and forced.group(1).lower().rstrip(".") in by_name:
        return by_name[forced.group(1).lower().rstrip(".")]
    mentioned = [
        (m.start(), name, schema)
        for name, schema in tools
        if (m := re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text, re.I))
    ]
    if mentioned:
        _, name, schema = min(mentioned, key=lambda t: t[0])
        return name, schema
    if _FORCE_ANY.search(text) or _ASK_TOOL.search(text):
        return tools[0]
    if re.search(r"\bweather\b", text, re.I):
        weather = [t for t in tools if "weather" in t[0].lower()]
        return (weather or tools)[0]
    return None


def _result_text(current: dict[str, Any], history: list[Any]) -> str:
    ctx = current.get("userInputMessageContext")
    results = ctx.get("toolResults") if isinstance(ctx, dict) else None
    names: dict[str, str] = {}
    if history and isinstance(history[-1], dict):
        assistant = history[-1].get("assistantResponseMessage")
        uses = assistant.get("toolUses") if isinstance(assistant, dict) else None
        for use in uses if isinstance(uses, list) else []:
            if isinstance(use, dict):
                names[str(use.get("toolUseId"))] = str(use.get("name"))
    parts: list[str] = []
    for result in results if isinstance(results, list) else []:
        if not isinstance(result, dict):
            continue
        texts = [_content_text(item) for item in result.get("content") or []]
        name = names.get(str(result.get("toolUseId")), "tool")
        parts.append(f"The tool {name} returned: {' '.join(texts).strip()}")
    return "\n".join(parts) or "The tool returned nothing."


def _content_text(item: Any) -> str:
    if isinstance(item, dict) and isinstance(item.get("text"), str):
        return str(item["text"])
    if isinstance(item, dict) and "json" in item:
        return json.dumps(item["json"], ensure_ascii=False)
    return ""


def _user_texts(body: Any) -> Iterator[str]:
    yield str(_current(body).get("content") or "")
    for entry in reversed(_history(body)):
        message = entry.get("userInputMessage") if isinstance(entry, dict) else None
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            yield message["content"]


def _embedded_schema(text: str) -> tuple[dict[str, Any], str] | None:
    """The first JSON Schema object inside ``text``, and its source snippet."""
    decoder = json.JSONDecoder()
    for start in (m.start() for m in re.finditer(r"\{", text)):
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(value, dict) and ("properties" in value or value.get("type") == "object"):
            return value, text[start:end]
    return None


def _json_answer(body: Any, text: str) -> str:
    for candidate in _user_texts(body):
        found = _embedded_schema(candidate)
        if found is not None:
            schema, snippet = found
            values_from = text.replace(snippet, " ")  # the schema's own strings are not values
            return json.dumps(args_from_schema(schema, values_from), ensure_ascii=False)
    if re.search(r"\b(keys?|fields?)\b", text, re.I):
        keys = _Harvest.from_text(text).strings
        return json.dumps({k: _PLACEHOLDER for k in keys}, ensure_ascii=False)
    return "{}"


def default_reply(body: Any, *, window: int | None = None, raw_size: int = 0) -> Reply:
    """The emulator's answer to a request nobody scripted (rules in the module docstring)."""
    current = _current(body)
    model = str(current.get("modelId") or "unknown model")
    tokens = max(1, raw_size // 4)  # a whole number of tokens, as Kiro's percentages imply
    usage = min(100.0, tokens / (window or DEFAULT_WINDOW) * 100)
    text = latest_user_text(str(current.get("content") or ""))
    tools = _tools(current)
    ctx = current.get("userInputMessageContext")
    if isinstance(ctx, dict) and ctx.get("toolResults"):
        return Reply.text(_result_text(current, _history(body)), context_usage=usage)
    picked = _pick_tool(text, tools) if tools else None
    if picked is not None:
        name, schema = picked
        return Reply.tool_call(name, args_from_schema(schema, text), context_usage=usage)
    if not tools and re.search(r"\bjson\b", text, re.I):
        return Reply.text(_json_answer(body, text), context_usage=usage)
    return Reply.text(f"Hello from the Kiro emulator ({model}).", context_usage=usage)
