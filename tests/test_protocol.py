"""kiro_lc.protocol: request bodies against the real kiro-cli capture, events via real frames."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from captures import capture_sample

from kiro_lc.errors import KiroInvalidRequestError, KiroProtocolError
from kiro_lc.eventstream import (
    EventStreamDecoder,
    EventStreamMessage,
    encode_event,
    encode_exception,
    encode_message,
)
from kiro_lc.protocol import (
    OTHER_EVENT_TYPES,
    AssistantTurn,
    CodeReference,
    ContextUsage,
    ConversationRequest,
    KiroEvent,
    KiroImage,
    Metadata,
    Metering,
    OtherEvent,
    Reasoning,
    StreamException,
    TextDelta,
    ToolResult,
    ToolSpec,
    ToolUse,
    ToolUseFragment,
    UnknownEvent,
    UserTurn,
    parse_event,
    request_to_bytes,
    request_to_json,
)

# kiro-protocol.md §5.1, both synthetic vectors (valid CRCs, checked with botocore by the doc).
TEXT_VECTOR = (
    "0000007f0000005c7c7db5a80b3a6576656e742d74797065070016617373697374616e74526573706f6e73654576656e74"
    "0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d7479706507"
    "00056576656e747b22636f6e74656e74223a2248656c6c6f227d9b5d0635"
)
THROTTLING_VECTOR = (
    "000000b2000000613590d5d30f3a657863657074696f6e2d747970650700135468726f74746c696e67457863657074696f6e"
    "0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d74797065070009"
    "657863657074696f6e7b226d657373616765223a22546f6f206d616e792072657175657374732c20706c6561736520776169"
    "74206265666f726520747279696e6720616761696e2e227d4207aae0"
)


# ---------------------------------------------------------------------------------------------
# Request side: conformance with the kiro-cli 2.15.2 capture
# ---------------------------------------------------------------------------------------------


def _capture_body() -> dict[str, Any]:
    body: dict[str, Any] = capture_sample()["body"]
    return body


def _request_like_capture(
    body: dict[str, Any], tool_count: int | None = None
) -> ConversationRequest:
    """A ConversationRequest holding the same values as the capture's GenerateAssistantResponse."""
    state = body["conversationState"]
    current = state["currentMessage"]["userInputMessage"]
    context = current["userInputMessageContext"]
    first_user, first_assistant = state["history"]
    tools = [
        ToolSpec(
            name=t["toolSpecification"]["name"],
            description=t["toolSpecification"]["description"],
            input_schema=t["toolSpecification"]["inputSchema"]["json"],
        )
        for t in context["tools"][:tool_count]
    ]
    return ConversationRequest(
        current=UserTurn(current["content"]),
        model_id=current["modelId"],
        history=[
            UserTurn(first_user["userInputMessage"]["content"]),
            AssistantTurn(first_assistant["assistantResponseMessage"]["content"]),
        ],
        tools=tools,
        conversation_id=state["conversationId"],
        agent_continuation_id=state["agentContinuationId"],
        profile_arn=body["profileArn"],
        origin=current["origin"],
        agent_task_type=state["agentTaskType"],
        chat_trigger_type=state["chatTriggerType"],
        operating_system=context["envState"]["operatingSystem"],
        current_working_directory=context["envState"]["currentWorkingDirectory"],
    )


def _key_paths(value: Any, path: str = "") -> set[tuple[str, str]]:
    """Every (key path, JSON type) in ``value``; list items collapse to ``[]``. Tool schemas
    are caller data passed through as-is, so paths stop at ``inputSchema.json``."""
    found = {(path, type(value).__name__)}
    if path.endswith("inputSchema.json"):
        return found
    if isinstance(value, dict):
        for key, item in value.items():
            found |= _key_paths(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for item in value:
            found |= _key_paths(item, f"{path}[]")
    return found


def _key_orders(value: Any, path: str = "") -> dict[str, list[str]]:
    """The key order of every object, by path."""
    orders: dict[str, list[str]] = {}
    if isinstance(value, dict):
        orders[path] = list(value)
        for key, item in value.items():
            orders.update(_key_orders(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            orders.update(_key_orders(item, f"{path}[{index}]"))
    return orders


def test_capture_structure_with_a_couple_of_tools() -> None:
    capture = _capture_body()
    ours = request_to_json(_request_like_capture(capture, tool_count=2))

    our_paths = _key_paths(ours)
    assert our_paths == _key_paths(capture), "key paths or JSON types differ from kiro-cli's"
    assert (
        "conversationState.currentMessage.userInputMessage.userInputMessageContext"
        ".tools[].toolSpecification.inputSchema.json",
        "dict",
    ) in our_paths
    assert list(ours) == list(capture) == ["conversationState", "profileArn"]
    capture_orders = _key_orders(capture)
    for path, keys in _key_orders(ours).items():
        assert keys == capture_orders[path], f"key order differs at {path or 'top level'}"


def test_capture_is_reproduced_exactly_from_its_values() -> None:
    capture = _capture_body()
    request = _request_like_capture(capture)
    assert len(request.tools) == 14
    # Same values, same nesting and the same key order as kiro-cli 2.15.2 sent.
    assert json.dumps(request_to_json(request)) == json.dumps(capture)
    assert json.loads(request_to_bytes(request)) == capture


# ---------------------------------------------------------------------------------------------
# Request side: the parts the capture does not show
# ---------------------------------------------------------------------------------------------


def _minimal(**changes: Any) -> ConversationRequest:
    fields: dict[str, Any] = {"current": UserTurn("hi"), "model_id": "claude-sonnet-4.5"}
    fields.update(changes)
    return ConversationRequest(**fields)


def test_optional_fields_are_omitted_when_unset() -> None:
    body = request_to_json(_minimal(agent_task_type=None))
    assert body == {
        "conversationState": {
            "chatTriggerType": "MANUAL",
            "currentMessage": {
                "userInputMessage": {
                    "content": "hi",
                    "modelId": "claude-sonnet-4.5",
                    "origin": "KIRO_CLI",
                }
            },
        }
    }


def test_default_agent_task_type_is_vibe_and_origin_is_configurable() -> None:
    state = request_to_json(_minimal(origin="AI_EDITOR"))["conversationState"]
    assert state["agentTaskType"] == "vibe"
    assert state["currentMessage"]["userInputMessage"]["origin"] == "AI_EDITOR"


def test_images_tool_results_and_tool_uses() -> None:
    png = b"\x89PNG\r\n\x1a\n-not-really"
    result = ToolResult("tooluse_1", [{"text": "18 °C"}, {"json": {"temp": 18}}], "success")
    failed = ToolResult("tooluse_2", [{"text": "boom"}], "error")
    request = _minimal(
        history=[
            UserTurn("weather?", images=[KiroImage("png", png)]),
            AssistantTurn(
                "",
                tool_uses=[
                    ToolUse("tooluse_1", "get_weather", {"city": "Paris"}),
                    ToolUse("tooluse_2", "get_time", {}),
                ],
            ),
        ],
        current=UserTurn("", tool_results=[result, failed], images=[KiroImage("jpeg", b"\xff")]),
        tools=[ToolSpec("get_weather", "Weather by city", {"type": "object"})],
    )
    state = request_to_json(request)["conversationState"]
    current = state["currentMessage"]["userInputMessage"]
    assert list(current) == ["content", "images", "modelId", "origin", "userInputMessageContext"]
    assert current["images"] == [{"format": "jpeg", "source": {"bytes": "/w=="}}]
    context = current["userInputMessageContext"]
    assert list(context) == ["toolResults", "tools"]
    assert context["toolResults"] == [
        {
            "content": [{"text": "18 °C"}, {"json": {"temp": 18}}],
            "status": "success",
            "toolUseId": "tooluse_1",
        },
        {"content": [{"text": "boom"}], "status": "error", "toolUseId": "tooluse_2"},
    ]
    user, assistant = state["history"]
    image = user["userInputMessage"]["images"][0]
    assert image["format"] == "png"
    assert base64.b64decode(image["source"]["bytes"]) == png
    assert "userInputMessageContext" not in user["userInputMessage"], "tools ride on current only"
    assert assistant == {
        "assistantResponseMessage": {
            "content": "",
            "toolUses": [
                {"input": {"city": "Paris"}, "name": "get_weather", "toolUseId": "tooluse_1"},
                {"input": {}, "name": "get_time", "toolUseId": "tooluse_2"},
            ],
        }
    }


def test_env_state_rides_on_every_user_message_and_partial_env() -> None:
    request = _minimal(
        history=[UserTurn("a"), AssistantTurn("b")],
        operating_system="linux",
    )
    state = request_to_json(request)["conversationState"]
    env = {"envState": {"operatingSystem": "linux"}}
    assert state["currentMessage"]["userInputMessage"]["userInputMessageContext"] == env
    assert state["history"][0]["userInputMessage"]["userInputMessageContext"] == env
    assert "userInputMessageContext" not in state["history"][1]["assistantResponseMessage"]


def test_additional_model_request_fields_go_top_level_first() -> None:
    thinking = {"thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}}
    body = request_to_json(
        _minimal(additional_model_request_fields=thinking, profile_arn="arn:aws:x")
    )
    assert list(body) == ["additionalModelRequestFields", "conversationState", "profileArn"]
    assert body["additionalModelRequestFields"] == thinking


def test_request_to_bytes_is_compact_utf8_and_deterministic() -> None:
    request = _minimal(current=UserTurn("héllo → 世界"), conversation_id="c-1")
    data = request_to_bytes(request)
    assert "héllo → 世界".encode() in data
    assert b": " not in data
    assert b", " not in data
    assert data == request_to_bytes(request), "serialisation must not invent ids or timestamps"
    assert json.loads(data)["conversationState"]["conversationId"] == "c-1"


def test_request_to_bytes_escapes_a_lone_surrogate_instead_of_failing() -> None:
    data = request_to_bytes(_minimal(current=UserTurn("bad \ud800 text")))
    assert json.loads(data)["conversationState"]["currentMessage"]["userInputMessage"][
        "content"
    ] == ("bad \ud800 text")
    data.decode("ascii")


@pytest.mark.parametrize("bad_value", [float("nan"), object()])
def test_request_to_bytes_rejects_non_json_values(bad_value: object) -> None:
    request = _minimal(tools=[ToolSpec("t", "d", {"type": "object", "default": bad_value})])
    with pytest.raises(KiroInvalidRequestError, match="plain JSON values"):
        request_to_bytes(request)


# ---------------------------------------------------------------------------------------------
# Response side: real frames through the decoder
# ---------------------------------------------------------------------------------------------


def _decode(frame: bytes) -> EventStreamMessage:
    (message,) = EventStreamDecoder().feed(frame)
    return message


def _roundtrip(event_type: str, payload: object) -> KiroEvent:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return parse_event(_decode(encode_event(event_type, raw)))


@pytest.mark.parametrize(
    ("event_type", "payload", "expected"),
    [
        ("assistantResponseEvent", {"content": "Hello"}, TextDelta("Hello")),
        ("assistantResponseEvent", {"content": ""}, TextDelta("")),
        (
            "assistantResponseEvent",
            {"content": " wörld", "conversationId": "c", "messageStatus": "COMPLETED"},
            TextDelta(" wörld"),
        ),
        (
            "toolUseEvent",
            {"name": "get_weather", "toolUseId": "t1", "input": '{"city": "Par', "stop": False},
            ToolUseFragment("t1", "get_weather", '{"city": "Par', False),
        ),
        (
            "toolUseEvent",
            {"name": "get_weather", "toolUseId": "t1", "stop": True},
            ToolUseFragment("t1", "get_weather", "", True),
        ),
        (
            "meteringEvent",
            {"unit": "credit", "unitPlural": "credits", "usage": 0.02730794364842454},
            Metering("credit", 0.02730794364842454),
        ),
        ("meteringEvent", {"unit": "credit", "usage": 1}, Metering("credit", 1.0)),
        (
            "contextUsageEvent",
            {"contextUsagePercentage": 18.152000427246094},
            ContextUsage(18.152000427246094),
        ),
        ("metadataEvent", {"stopReason": "END_TURN"}, Metadata(stop_reason="END_TURN")),
        (
            "metadataEvent",
            {
                "stopReason": "END_TURN",
                "tokenUsage": {"inputTokens": 10, "outputTokens": 5, "note": "x"},
                "stopDetails": {"refusal": {"category": "cyber", "explanation": "no"}},
                "conversationId": "conv-1",
            },
            Metadata(
                stop_reason="END_TURN",
                token_usage={"inputTokens": 10, "outputTokens": 5},
                refusal={"category": "cyber", "explanation": "no"},
                conversation_id="conv-1",
            ),
        ),
        (
            "messageMetadataEvent",
            {"conversationId": "conv-2", "utteranceId": "u"},
            Metadata(conversation_id="conv-2"),
        ),
        ("reasoningContentEvent", {"text": "hmm"}, Reasoning(text="hmm")),
        ("reasoningContentEvent", {"signature": "c2ln"}, Reasoning(signature="c2ln")),
        ("reasoningContentEvent", {"redactedContent": "ZW5j"}, Reasoning(redacted="ZW5j")),
        (
            "reasoningContentEvent",
            {"reasoningText": {"text": "t", "signature": "s"}},
            Reasoning(text="t", signature="s"),
        ),
        (
            "codeReferenceEvent",
            {"references": [{"licenseName": "MIT", "repository": "r"}]},
            CodeReference([{"licenseName": "MIT", "repository": "r"}]),
        ),
        ("codeReferenceEvent", {}, CodeReference([])),
    ],
)
def test_event_roundtrip(event_type: str, payload: dict[str, Any], expected: KiroEvent) -> None:
    assert _roundtrip(event_type, payload) == expected


@pytest.mark.parametrize("event_type", sorted(OTHER_EVENT_TYPES))
def test_known_events_kiro_lc_does_not_act_on(event_type: str) -> None:
    payload = {"message": "m", "recommendedModel": "claude-sonnet-4.5"}
    assert _roundtrip(event_type, payload) == OtherEvent(event_type, payload)


def test_wrapped_payloads_are_unwrapped() -> None:
    assert _roundtrip("assistantResponseEvent", {"assistantResponseEvent": {"content": "Hi"}}) == (
        TextDelta("Hi")
    )
    wrapped_tool = {"toolUseEvent": {"toolUseId": "t", "name": "n", "input": "{}", "stop": True}}
    assert _roundtrip("toolUseEvent", wrapped_tool) == ToolUseFragment("t", "n", "{}", True)
    assert _roundtrip("meteringEvent", {"meteringEvent": {"unit": "credit", "usage": 0.5}}) == (
        Metering("credit", 0.5)
    )


def test_followup_prompt_frames_are_not_text() -> None:
    payload = {"content": "Ask me more", "followupPrompt": {"content": "x", "userIntent": "y"}}
    assert _roundtrip("assistantResponseEvent", payload) == OtherEvent(
        "assistantResponseEvent", payload
    )
    meta_only = {"conversationId": "c", "messageStatus": "COMPLETED"}
    assert _roundtrip("assistantResponseEvent", meta_only) == OtherEvent(
        "assistantResponseEvent", meta_only
    )


def test_tool_input_forms() -> None:
    first = {"name": "write", "toolUseId": "t9", "input": {}, "stop": False}
    assert _roundtrip("toolUseEvent", first) == ToolUseFragment("t9", "write", "", False)
    whole = {"name": "write", "toolUseId": "t9", "input": {"path": "a.txt", "n": 1}, "stop": True}
    event = _roundtrip("toolUseEvent", whole)
    assert isinstance(event, ToolUseFragment)
    assert json.loads(event.input) == {"path": "a.txt", "n": 1}
    assert event.stop is True
    no_name = {"toolUseId": "t9", "input": "x"}
    assert _roundtrip("toolUseEvent", no_name) == ToolUseFragment("t9", "", "x", False)


def test_empty_payload_is_an_empty_object() -> None:
    assert _roundtrip("messageStopEvent", b"") == OtherEvent("messageStopEvent", {})


def test_bookkeeping_events_with_odd_fields_degrade_to_other_events() -> None:
    assert _roundtrip("meteringEvent", {"unit": "credit"}) == OtherEvent(
        "meteringEvent", {"unit": "credit"}
    )
    odd = {"contextUsagePercentage": "high"}
    assert _roundtrip("contextUsageEvent", odd) == OtherEvent("contextUsageEvent", odd)


def test_unknown_event_is_logged_without_its_content(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="kiro_lc.protocol")
    event = _roundtrip("brandNewEvent", {"secretish": "do-not-log-me"})
    assert event == UnknownEvent("brandNewEvent", {"secretish": "do-not-log-me"})
    (record,) = [r for r in caplog.records if r.name == "kiro_lc.protocol"]
    assert record.levelno == logging.DEBUG
    assert "brandNewEvent" in record.getMessage()
    size = len(json.dumps({"secretish": "do-not-log-me"}))
    assert f"({size} payload bytes)" in record.getMessage()
    assert "do-not-log-me" not in record.getMessage()


def test_unknown_event_with_garbage_payload_does_not_raise() -> None:
    assert _roundtrip("brandNewEvent", b"\xff not json") == UnknownEvent("brandNewEvent", {})


@pytest.mark.parametrize(
    ("event_type", "payload", "problem"),
    [
        ("assistantResponseEvent", b'{"content": "Hel', "not valid JSON"),
        ("assistantResponseEvent", b"\xff\xfe{}", "not valid JSON"),
        ("assistantResponseEvent", b'["content"]', "JSON list payload"),
        ("meteringEvent", b"42", "JSON int payload"),
        ("assistantResponseEvent", b'{"content": 42}', "'content' field that is not a string"),
        ("toolUseEvent", b'{"name": "n", "input": ""}', "no 'toolUseId'"),
        ("followupPromptEvent", b"{oops", "not valid JSON"),
    ],
)
def test_malformed_payloads_raise_protocol_errors(
    event_type: str, payload: bytes, problem: str
) -> None:
    with pytest.raises(KiroProtocolError) as caught:
        _roundtrip(event_type, payload)
    assert event_type in caught.value.message
    assert problem in caught.value.message
    assert "retry" in caught.value.message


def test_exception_frames() -> None:
    payload = {"message": "Encountered unexpectedly high load", "reason": "MODEL_CAPACITY"}
    frame = encode_exception("InternalServerException", json.dumps(payload).encode())
    assert parse_event(_decode(frame)) == StreamException(
        "InternalServerException", "Encountered unexpectedly high load", "MODEL_CAPACITY"
    )
    frame = encode_exception("ContentLengthExceededException", b"not json at all")
    assert parse_event(_decode(frame)) == StreamException(
        "ContentLengthExceededException", "not json at all", None
    )


def test_error_frames_use_error_code_and_error_message() -> None:
    frame = encode_message(
        {
            ":message-type": "error",
            ":error-code": "InternalFailure",
            ":error-message": "something broke",
        },
        b"",
    )
    assert parse_event(_decode(frame)) == StreamException("InternalFailure", "something broke")


def test_hex_vector_text() -> None:
    message = _decode(bytes.fromhex(TEXT_VECTOR))
    assert message.event_type == "assistantResponseEvent"
    assert parse_event(message) == TextDelta("Hello")


def test_hex_vector_throttling_exception() -> None:
    message = _decode(bytes.fromhex(THROTTLING_VECTOR))
    assert parse_event(message) == StreamException(
        "ThrottlingException", "Too many requests, please wait before trying again.", None
    )
