"""LangChain messages and tools → Kiro requests (``kiro_lc._convert``).

Every request built here is also run through the emulator's strict validator, which reads the
raw JSON body independently of our serializer.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.utils.function_calling import convert_to_openai_tool

from kiro_lc._convert import (
    ANY_TOOL_INSTRUCTION,
    CONTINUE_TEXT,
    SYSTEM_ACK,
    PreparedRequest,
    build_request,
    convert_tools,
    normalize_tool_choice,
    wire_tool_name,
)
from kiro_lc.protocol import AssistantTurn, KiroImage, UserTurn, request_to_bytes
from kiro_lc.testing.validation import Rules, validate_generate_request

MODEL = "claude-sonnet-4.5"
RULES = Rules(known_models=frozenset({MODEL}))


def tiny_png() -> bytes:
    """A valid 1x1 PNG, built locally."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


PNG = tiny_png()
PNG_B64 = base64.b64encode(PNG).decode()


def weather_tool(
    name: str = "get_weather", description: str = "Weather for a city."
) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }


def build(messages: Sequence[BaseMessage], **kwargs: Any) -> PreparedRequest:
    prepared = build_request(messages, model_id=MODEL, **kwargs)
    _, problems = validate_generate_request(request_to_bytes(prepared.request), RULES)
    assert problems == [], [p.detail for p in problems]
    return prepared


def call(id_: str, name: str = "get_weather", **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args or {"city": "Paris"}, "id": id_, "type": "tool_call"}


# -- system prompts and turn shape -----------------------------------------------------------


def test_system_messages_become_the_first_history_pair() -> None:
    req = build(
        [SystemMessage("Be brief."), SystemMessage("Speak French."), HumanMessage("Hi")]
    ).request
    first, ack = req.history
    assert isinstance(first, UserTurn)
    assert first.content.startswith("--- CONTEXT ENTRY BEGIN ---")
    assert first.content.endswith("Follow this instruction: Be brief.\n\nSpeak French.")
    assert isinstance(ack, AssistantTurn)
    assert ack.content == SYSTEM_ACK
    assert req.current.content == "Hi"


def test_no_system_message_means_no_pair() -> None:
    req = build([HumanMessage("Hi")]).request
    assert req.history == []
    assert req.current.content == "Hi"


def test_same_role_messages_merge_and_alternate() -> None:
    messages = [
        SystemMessage("s1"),
        SystemMessage("s2"),
        HumanMessage("h1"),
        HumanMessage("h2"),
        AIMessage("a1"),
        AIMessage("a2"),
        HumanMessage("h3"),
    ]
    req = build(messages).request
    contents = [t.content for t in req.history[2:]]
    assert contents == ["h1\n\nh2", "a1\n\na2"]
    assert req.current.content == "h3"


def test_trailing_ai_message_moves_into_history() -> None:
    req = build([HumanMessage("Hi"), AIMessage("Hello! How")]).request
    assert [t.content for t in req.history] == ["Hi", "Hello! How"]
    assert req.current.content == CONTINUE_TEXT


def test_leading_ai_message_gets_a_user_turn_first() -> None:
    req = build([AIMessage("Welcome!"), HumanMessage("Thanks")]).request
    assert isinstance(req.history[0], UserTurn)
    assert req.history[0].content == CONTINUE_TEXT
    assert req.history[1].content == "Welcome!"


def test_empty_human_message_gets_a_placeholder() -> None:
    assert build([HumanMessage("")]).request.current.content == CONTINUE_TEXT


def test_chat_message_roles_and_named_human_messages() -> None:
    messages = [
        ChatMessage(role="system", content="sys"),
        HumanMessage("Hi", name="alice"),
        ChatMessage(role="assistant", content="yo"),
        ChatMessage(role="user", content="again"),
    ]
    req = build(messages).request
    assert req.history[0].content.endswith("sys")
    assert req.current.content == "again"


def test_unsupported_message_types_are_rejected_clearly() -> None:
    with pytest.raises(ValueError, match="FunctionMessage"):
        build_request([FunctionMessage(name="f", content="x")], model_id=MODEL)


def test_thinking_and_tool_use_blocks_are_not_replayed_as_text() -> None:
    ai = AIMessage(
        [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}},
        ],
        tool_calls=[call("t1")],
    )
    req = build(
        [HumanMessage("Weather?"), ai, ToolMessage("sunny", tool_call_id="t1")],
        tools=[weather_tool()],
    ).request
    assistant = req.history[1]
    assert isinstance(assistant, AssistantTurn)
    assert assistant.content == "Let me look."
    assert [u.tool_use_id for u in assistant.tool_uses] == ["t1"]


# -- tool calls and results ------------------------------------------------------------------


def test_parallel_tool_messages_fold_into_one_user_turn() -> None:
    messages = [
        SystemMessage("sys"),
        HumanMessage("Weather in Paris and Rome?"),
        AIMessage("", tool_calls=[call("t1"), call("t2", city="Rome")]),
        ToolMessage("sunny", tool_call_id="t1"),
        ToolMessage("boom", tool_call_id="t2", status="error"),
    ]
    req = build(messages, tools=[weather_tool()]).request
    assistant = req.history[-1]
    assert isinstance(assistant, AssistantTurn)
    assert assistant.content.strip() == ""
    assert assistant.content != ""
    assert [u.input for u in assistant.tool_uses] == [{"city": "Paris"}, {"city": "Rome"}]
    results = req.current.tool_results
    assert [(r.tool_use_id, r.status, r.content) for r in results] == [
        ("t1", "success", [{"text": "sunny"}]),
        ("t2", "error", [{"text": "boom"}]),
    ]
    assert req.current.content == ""


def test_tool_result_content_shapes() -> None:
    messages = [
        HumanMessage("go"),
        AIMessage("", tool_calls=[call("a"), call("b"), call("c")]),
        ToolMessage("", tool_call_id="a"),
        ToolMessage(
            [{"type": "text", "text": "x"}, "y", {"type": "json", "json": {"k": 1}}],
            tool_call_id="b",
        ),
        ToolMessage(
            [
                {"type": "text", "text": "see"},
                {"type": "image", "base64": PNG_B64, "mime_type": "image/png"},
            ],
            tool_call_id="c",
        ),
    ]
    current = build(messages, tools=[weather_tool()]).request.current
    assert [r.content for r in current.tool_results] == [
        [{"text": "(empty result)"}],
        [{"text": "x"}, {"text": "y"}, {"json": {"k": 1}}],
        [{"text": "see"}],
    ]
    assert current.images == [KiroImage("png", PNG)]


def test_tool_results_followed_by_a_human_message_share_the_turn() -> None:
    messages = [
        HumanMessage("go"),
        AIMessage("", tool_calls=[call("a")]),
        ToolMessage("done", tool_call_id="a"),
        HumanMessage("Now summarise."),
    ]
    current = build(messages, tools=[weather_tool()]).request.current
    assert current.content == "Now summarise."
    assert [r.tool_use_id for r in current.tool_results] == ["a"]


def test_unanswered_tool_calls_get_error_results_and_orphans_become_text() -> None:
    messages = [
        HumanMessage("go"),
        AIMessage("", tool_calls=[call("a"), call("b")]),
        ToolMessage("for a", tool_call_id="a"),
        ToolMessage("stray", tool_call_id="zzz"),
    ]
    current = build(messages, tools=[weather_tool()]).request.current
    assert [(r.tool_use_id, r.status) for r in current.tool_results] == [
        ("a", "success"),
        ("b", "error"),
    ]
    assert "stray" in current.content


def test_trailing_ai_tool_call_without_result_still_pairs() -> None:
    req = build(
        [HumanMessage("go"), AIMessage("", tool_calls=[call("a")])], tools=[weather_tool()]
    ).request
    assert [r.status for r in req.current.tool_results] == ["error"]


def test_anthropic_tool_result_blocks_in_human_messages() -> None:
    messages = [
        HumanMessage("pick"),
        AIMessage("", tool_calls=[call("foo", "color_picker", fav_color="green")]),
        HumanMessage(
            [
                {
                    "type": "tool_result",
                    "tool_use_id": "foo",
                    "content": [{"type": "text", "text": "green is great"}],
                    "is_error": False,
                },
                {"type": "text", "text": "what's my favourite?"},
            ]
        ),
    ]
    tool = {"name": "color_picker", "description": "d", "input_schema": {"type": "object"}}
    current = build(messages, tools=[tool]).request.current
    assert current.tool_results[0].content == [{"text": "green is great"}]
    assert current.content == "what's my favourite?"


def test_history_tools_flatten_to_text_when_no_tools_are_sent() -> None:
    messages = [
        HumanMessage("go"),
        AIMessage("Checking.", tool_calls=[call("a")]),
        ToolMessage("sunny", tool_call_id="a"),
        HumanMessage("thanks"),
    ]
    for kwargs in ({}, {"tools": [weather_tool()], "tool_choice": "none"}):
        req = build(messages, **kwargs).request
        assert req.tools == []
        assistant = req.history[1]
        assert isinstance(assistant, AssistantTurn)
        assert assistant.tool_uses == []
        assert "get_weather" in assistant.content
        assert "Paris" in assistant.content
        assert req.current.tool_results == []
        assert "sunny" in req.current.content
        assert req.current.content.endswith("thanks")


def test_history_tools_not_bound_now_get_placeholder_specs() -> None:
    messages = [
        HumanMessage("go"),
        AIMessage("", tool_calls=[call("a", "old_tool")]),
        ToolMessage("ok", tool_call_id="a"),
    ]
    req = build(messages, tools=[weather_tool()]).request
    assert [t.name for t in req.tools] == ["get_weather", "old_tool"]
    assert req.tools[1].description


# -- tools -----------------------------------------------------------------------------------


def test_long_tool_names_shorten_reversibly() -> None:
    long_name = "mcp__some_server__" + "very_long_tool_name_" * 4
    short = wire_tool_name(long_name)
    assert len(short) == 64
    assert short == wire_tool_name(long_name)
    assert short != wire_tool_name(long_name + "x")
    assert wire_tool_name("short") == "short"
    messages = [
        HumanMessage("go"),
        AIMessage("", tool_calls=[call("a", long_name)]),
        ToolMessage("ok", tool_call_id="a"),
    ]
    prepared = build(messages, tools=[weather_tool(long_name)])
    assert [t.name for t in prepared.request.tools] == [short]
    assert prepared.tool_names == {short: long_name}
    assistant = prepared.request.history[1]
    assert isinstance(assistant, AssistantTurn)
    assert assistant.tool_uses[0].name == short


def test_descriptions_are_capped_and_never_empty() -> None:
    specs, _ = convert_tools([weather_tool("a", ""), weather_tool("b", "x" * 20_000)])
    assert specs[0].description == "Tool: a"
    assert len(specs[1].description) == 10_000


def test_tool_shapes_openai_anthropic_and_kiro() -> None:
    def no_args() -> str:
        """Return something."""
        return "x"

    specs, _names = convert_tools(
        [
            convert_to_openai_tool(no_args),
            {
                "name": "anth",
                "description": "A",
                "input_schema": {"type": "object"},
                "cache_control": {},
            },
            {
                "toolSpecification": {
                    "name": "kiro",
                    "description": "K",
                    "inputSchema": {"json": {}},
                }
            },
        ]
    )
    assert [s.name for s in specs] == ["no_args", "anth", "kiro"]
    assert specs[0].input_schema == {"type": "object", "properties": {}}
    assert specs[2].input_schema == {"type": "object", "properties": {}}
    with pytest.raises(ValueError, match="client-side function tools"):
        convert_tools([{"type": "web_search_20250305", "name_": "web"}])
    specs, _ = convert_tools([weather_tool(), weather_tool("get_weather", "second")])
    assert [s.description for s in specs] == ["Weather for a city."]


# -- tool_choice and response_format ---------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, "auto"),
        ("auto", "auto"),
        ("any", "any"),
        ("required", "any"),
        (True, "any"),
        ("none", "none"),
        ("get_weather", "get_weather"),
        ({"type": "tool", "name": "get_weather"}, "get_weather"),
        ({"type": "function", "function": {"name": "get_weather"}}, "get_weather"),
        ({"type": "any"}, "any"),
    ],
)
def test_tool_choice_forms(choice: Any, expected: str) -> None:
    assert normalize_tool_choice(choice, ["get_weather"]) == expected


def test_unknown_tool_choice_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="not bound"):
        normalize_tool_choice("nope", ["get_weather"])
    with pytest.raises(ValueError, match="Unsupported tool_choice"):
        normalize_tool_choice(3, ["get_weather"])


def test_forced_tool_choices_become_instructions() -> None:
    tools = [weather_tool()]
    any_req = build([HumanMessage("Hello!")], tools=tools, tool_choice="any").request
    assert any_req.current.content == f"Hello!\n\n{ANY_TOOL_INSTRUCTION}"
    named = build([HumanMessage("Hello!")], tools=tools, tool_choice="get_weather").request
    assert "must call the tool `get_weather`" in named.current.content
    auto = build([HumanMessage("Hello!")], tools=tools).request
    assert auto.current.content == "Hello!"


def test_response_format_becomes_a_json_instruction() -> None:
    schema = {"type": "object", "properties": {"joke": {"type": "string"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "Joke", "schema": schema, "strict": True}}
    content = build([HumanMessage("Tell a joke")], response_format=fmt).request.current.content
    assert content.startswith("Tell a joke\n\n")
    assert "JSON" in content
    assert '"joke"' in content
    plain = build([HumanMessage("x")], response_format={"type": "json_object"}).request
    assert "JSON object" in plain.current.content
    with pytest.raises(ValueError, match="response_format"):
        build_request([HumanMessage("x")], model_id=MODEL, response_format={"type": "xml"})


# -- images ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "block",
    [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        {"type": "image_url", "image_url": f"data:image/png;base64,{PNG_B64}"},
        {"type": "image", "base64": PNG_B64, "mime_type": "image/png"},
        {"type": "image", "source_type": "base64", "data": PNG_B64, "mime_type": "image/png"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
    ],
)
def test_image_shapes(block: dict[str, Any]) -> None:
    req = build([HumanMessage([{"type": "text", "text": "What is this?"}, block])]).request
    assert req.current.images == [KiroImage("png", PNG)]
    assert req.current.content == "What is this?"


@pytest.mark.parametrize(
    "block",
    [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "image", "url": "https://example.com/cat.png"},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
        {"type": "image", "base64": PNG_B64, "mime_type": "image/tiff"},
        {"type": "file", "base64": "JVBERi0=", "mime_type": "application/pdf"},
        {"type": "audio", "base64": "AAAA", "mime_type": "audio/wav"},
    ],
)
def test_unsupported_media_raise_a_clear_error(block: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="inline base64 images"):
        build_request([HumanMessage([block])], model_id=MODEL)


def test_invalid_base64_is_reported() -> None:
    with pytest.raises(ValueError, match="invalid base64"):
        build_request(
            [HumanMessage([{"type": "image", "base64": "@@@", "mime_type": "image/png"}])],
            model_id=MODEL,
        )


def test_request_fields_pass_through() -> None:
    req = build(
        [HumanMessage("x")],
        profile_arn="arn:aws:codewhisperer:us-east-1:1:profile/X",
        origin="AI_EDITOR",
        conversation_id="c-1",
    ).request
    assert (req.profile_arn, req.origin, req.conversation_id, req.model_id) == (
        "arn:aws:codewhisperer:us-east-1:1:profile/X",
        "AI_EDITOR",
        "c-1",
        MODEL,
    )
