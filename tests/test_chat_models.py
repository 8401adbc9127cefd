"""``ChatKiro`` end to end against the ``KiroEmulator`` over loopback (no mocks)."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from collections.abc import Iterator
from functools import reduce
from typing import Any

import pytest
from langchain_core.exceptions import (
    ModelConnectionError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelRateLimitError,
)
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from kiro_lc.chat_models import ChatKiro
from kiro_lc.errors import (
    KiroConnectionError,
    KiroError,
    KiroInvalidRequestError,
    KiroModelNotFoundError,
    KiroQuotaExceededError,
)
from kiro_lc.testing import Fault, KiroEmulator, RecordedRequest, Reply, ToolCall

SECRET_KEY = "ksk_" + "s3cr3t" * 6
SECRET_TOKEN = "aoa" + "t0k3n" * 8


@pytest.fixture(scope="module")
def module_emulator() -> Iterator[KiroEmulator]:
    with KiroEmulator() as emu:
        yield emu


@pytest.fixture
def emu(module_emulator: KiroEmulator) -> Iterator[KiroEmulator]:
    module_emulator.clear()
    yield module_emulator
    problems = [r.problems for r in module_emulator.requests if r.problems]
    assert problems == [], problems


@pytest.fixture
def model(emu: KiroEmulator) -> ChatKiro:
    return ChatKiro(base_url=emu.base_url, api_key=emu.api_key, max_retries=0)


def generate_requests(emu: KiroEmulator) -> list[RecordedRequest]:
    return [r for r in emu.requests if r.operation == "GenerateAssistantResponse"]


def current_message(request: RecordedRequest) -> dict[str, Any]:
    return dict(request.body["conversationState"]["currentMessage"]["userInputMessage"])


def merged(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    return reduce(lambda a, b: a + b, chunks)


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00\x00\xff\x00" * 2)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@tool
def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return f"Sunny in {city}"


@tool
def get_time(zone: str) -> str:
    """Get the time in a time zone."""
    return "12:00"


# -- chunk shapes ----------------------------------------------------------------------------


def test_text_stream_is_plain_strings_with_one_final_usage_chunk(
    emu: KiroEmulator, model: ChatKiro
) -> None:
    emu.script(Reply.text("Hello there, world", chunk_size=6))
    chunks = list(model.stream("Hi"))
    assert [c.content for c in chunks[:-1]] == ["Hello ", "there,", " world"]
    final = chunks[-1]
    assert final.chunk_position == "last"
    assert [c for c in chunks if c.usage_metadata] == [final]
    assert final.usage_metadata is not None
    assert final.usage_metadata["input_tokens"] == 4060  # 2.03 % of a 200 000-token window
    meta = final.response_metadata
    assert meta["model_name"] == "claude-sonnet-4.5"
    assert meta["stop_reason"] == "end_turn"
    assert meta["usage_estimated"] is True
    assert meta["model_provider"] == "kiro"
    assert meta["credits"] > 0


def test_invoke_aggregates_and_reports_usage(emu: KiroEmulator, model: ChatKiro) -> None:
    emu.script(Reply.text("Hello!"))
    message = model.invoke("Hi")
    assert isinstance(message, AIMessage)
    assert message.content == "Hello!"
    assert message.usage_metadata is not None
    assert message.usage_metadata["total_tokens"] == 4060 + 2


def test_stream_usage_off_leaves_usage_out(
    emu: KiroEmulator, emu_model_kwargs: dict[str, Any]
) -> None:
    emu.script(Reply.text("Hello!"))
    chunks = list(ChatKiro(**emu_model_kwargs, stream_usage=False).stream("Hi"))
    assert all(c.usage_metadata is None for c in chunks)


@pytest.fixture
def emu_model_kwargs(emu: KiroEmulator) -> dict[str, Any]:
    return {"base_url": emu.base_url, "api_key": emu.api_key, "max_retries": 0}


def test_text_then_tool_uses_indexed_blocks(emu: KiroEmulator, model: ChatKiro) -> None:
    emu.script(Reply.tool_call("get_weather", {"city": "Paris"}, text_before="Let me check."))
    chunks = list(model.bind_tools([get_weather]).stream("Weather in Paris?"))
    text_blocks = [b for c in chunks if isinstance(c.content, list) for b in c.content]
    assert {b["index"] for b in text_blocks} == {0}
    tool_chunks = [tc for c in chunks for tc in c.tool_call_chunks]
    assert {tc["index"] for tc in tool_chunks} == {1}
    assert tool_chunks[0]["id"]
    assert tool_chunks[0]["name"] == "get_weather"
    assert all(tc["name"] is None for tc in tool_chunks[1:])
    message = merged(chunks)
    assert message.tool_calls[0]["args"] == {"city": "Paris"}
    assert message.response_metadata["stop_reason"] == "tool_use"


def test_parallel_tool_calls_get_distinct_indices(emu: KiroEmulator, model: ChatKiro) -> None:
    calls = [ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_time", {"zone": "CET"})]
    emu.script(Reply.tool_calls(calls, interleave=True))
    chunks = list(model.bind_tools([get_weather, get_time]).stream("Weather and time?"))
    by_id = {tc["id"]: tc["index"] for c in chunks for tc in c.tool_call_chunks if tc["id"]}
    assert len(set(by_id.values())) == 2
    message = merged(chunks)
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"zone": "CET"}),
    ]


def test_v1_output_keeps_text_tool_tool_text_order(
    emu: KiroEmulator, emu_model_kwargs: dict[str, Any]
) -> None:
    def use(tid: str, name: str, text: str, stop: bool) -> tuple[str, dict[str, Any]]:
        return ("toolUseEvent", {"toolUseId": tid, "name": name, "input": text, "stop": stop})

    emu.script(
        Reply.events(
            [
                ("assistantResponseEvent", {"content": "Checking."}),
                use("t1", "get_weather", '{"city": ', False),
                use("t1", "get_weather", '"Paris"}', True),
                use("t2", "get_time", '{"zone": "CET"}', True),
                ("assistantResponseEvent", {"content": "Done!"}),
                ("meteringEvent", {"unit": "credit", "unitPlural": "credits", "usage": 0.1}),
            ]
        )
    )
    model = ChatKiro(**emu_model_kwargs, output_version="v1").bind_tools([get_weather, get_time])
    message = merged(list(model.stream("Go")))
    assert [b["type"] for b in message.content_blocks] == ["text", "tool_call", "tool_call", "text"]
    assert message.text == "Checking.Done!"


def test_truncated_tool_call_is_invalid(emu: KiroEmulator, model: ChatKiro) -> None:
    emu.script(Reply.tool_call("get_weather", {"city": "Paris"}, stop=False))
    message = model.bind_tools([get_weather]).invoke("Weather?")
    assert message.tool_calls == []
    assert [c["name"] for c in message.invalid_tool_calls] == ["get_weather"]
    assert message.response_metadata["stop_reason"] == "max_tokens"


def test_output_limit_means_max_tokens(emu: KiroEmulator, model: ChatKiro) -> None:
    emu.script(Fault.exception_frame("ContentLengthExceededException", after_text="A long answer"))
    message = model.invoke("Write a lot")
    assert message.content == "A long answer"
    assert message.response_metadata["stop_reason"] == "max_tokens"


def test_repeated_content_events_are_dropped(emu: KiroEmulator, model: ChatKiro) -> None:
    emu.script(Reply.text("One two three four five six", duplicate_chunks=True))
    assert model.invoke("Count").content == "One two three four five six"


def test_reasoning_events_surface_as_reasoning(emu: KiroEmulator, model: ChatKiro) -> None:
    emu.script(Reply.text("Hi!", reasoning="The user greets me."))
    message = model.invoke("Hello")
    assert message.content == "Hi!"
    assert message.content_blocks[0] == {"type": "reasoning", "reasoning": "The user greets me."}
    emu.script(Reply.text("Hi!", reasoning="The user greets me."))
    blocks = model.bind_tools([get_weather]).invoke("Hello").content_blocks
    assert [b["type"] for b in blocks] == ["reasoning", "text"]


# -- stop sequences --------------------------------------------------------------------------


def test_stop_sequence_split_across_chunks(emu: KiroEmulator, model: ChatKiro) -> None:
    emu.script(Reply.text("Hello world, you there", chunk_size=["Hello wor", "ld, y", "ou there"]))
    message = model.invoke("Hi", stop=["you"])
    assert message.content == "Hello world, "
    assert message.response_metadata["stop_reason"] == "stop_sequence"
    assert len(generate_requests(emu)) == 1


async def test_constructor_stop_applies_to_astream(
    emu: KiroEmulator, emu_model_kwargs: dict[str, Any]
) -> None:
    emu.script(Reply.text("one\n\nHuman: two", chunk_size=4))
    model = ChatKiro(**emu_model_kwargs, stop=["\n\nHuman:"])
    chunks = [c async for c in model.astream("Hi")]
    assert merged(chunks).content == "one"


# -- models ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "backend"),
    [
        ("claude-sonnet-4-5", "claude-sonnet-4.5"),
        ("haiku", "claude-haiku-4.5"),
        ("claude-sonnet-4", "claude-sonnet-4"),
    ],
)
def test_friendly_ids_resolve_to_backend_ids(
    emu: KiroEmulator, emu_model_kwargs: dict[str, Any], name: str, backend: str
) -> None:
    message = ChatKiro(**emu_model_kwargs, model=name).invoke("Hi")
    assert current_message(generate_requests(emu)[-1])["modelId"] == backend
    assert message.response_metadata["model_name"] == backend


def test_per_call_model_override_is_sent_and_echoed(emu: KiroEmulator, model: ChatKiro) -> None:
    message = model.invoke("Hi", model="claude-haiku-4-5")
    assert current_message(generate_requests(emu)[-1])["modelId"] == "claude-haiku-4.5"
    assert message.response_metadata["model_name"] == "claude-haiku-4.5"
    assert "claude-haiku-4.5" in str(message.content)


def test_unknown_model_error_suggests_close_matches(
    emu_model_kwargs: dict[str, Any], emu: KiroEmulator
) -> None:
    model = ChatKiro(**emu_model_kwargs, model="claude-sonet-4.5")
    with pytest.raises(KiroModelNotFoundError) as info:
        model.invoke("Hi")
    assert isinstance(info.value, ModelNotFoundError)
    assert "claude-sonnet-4.5" in str(info.value)
    assert "Did you mean" in str(info.value)
    emu.clear()  # the rejected request is expected to carry a problem


def test_list_models_is_cached(emu: KiroEmulator, model: ChatKiro) -> None:
    first = model.list_models()
    second = model.list_models()
    assert first is second
    assert "claude-sonnet-4.5" in first.ids()
    assert [r.operation for r in emu.requests] == ["ListAvailableModels"]
    model.list_models(refresh=True)
    assert len(emu.requests) == 2


async def test_alist_models(model: ChatKiro) -> None:
    assert "claude-haiku-4.5" in (await model.alist_models()).ids()


def test_profile_per_model() -> None:
    profile = ChatKiro(model="claude-sonnet-4-5").profile
    assert profile is not None
    assert profile["max_input_tokens"] == 200_000
    assert profile["tool_calling"] is True
    assert profile["structured_output"] is False
    assert profile["tool_choice"] is False
    assert ChatKiro(model="auto").profile["image_inputs"] is False  # type: ignore[index]
    assert "max_input_tokens" not in ChatKiro(model="brand-new-model").profile  # type: ignore[operator]


# -- conversion through the wire ------------------------------------------------------------


def test_images_travel_as_base64_bytes(emu: KiroEmulator, model: ChatKiro) -> None:
    png = tiny_png()
    b64 = base64.b64encode(png).decode()
    blocks: list[Any] = [
        {"type": "text", "text": "Describe these."},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64}"}},
        {"type": "image", "base64": b64, "mime_type": "image/png"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64}},
    ]
    model.invoke([HumanMessage(blocks)])
    images = current_message(generate_requests(emu)[-1])["images"]
    assert [(i["format"], base64.b64decode(i["source"]["bytes"])) for i in images] == [
        ("png", png)
    ] * 3


def test_image_in_tool_message(emu: KiroEmulator, model: ChatKiro) -> None:
    b64 = base64.b64encode(tiny_png()).decode()
    messages = [
        HumanMessage("Screenshot please"),
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "x"}, "id": "t1"}]),
        ToolMessage(
            [{"type": "image", "base64": b64, "mime_type": "image/png"}], tool_call_id="t1"
        ),
    ]
    model.bind_tools([get_weather]).invoke(messages)
    current = current_message(generate_requests(emu)[-1])
    assert current["images"][0]["format"] == "png"
    assert current["userInputMessageContext"]["toolResults"][0]["toolUseId"] == "t1"


def test_http_image_urls_are_refused_before_any_request(emu: KiroEmulator, model: ChatKiro) -> None:
    block = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    with pytest.raises(ValueError, match="inline base64"):
        model.invoke([HumanMessage([block])])
    assert emu.requests == []


def test_long_tool_names_round_trip(emu: KiroEmulator, model: ChatKiro) -> None:
    long_name = "mcp__knowledge_base_server__search_all_documents_in_the_company_wiki_by_keyword"

    @tool(long_name)
    def search(query: str) -> str:
        """Search the wiki."""
        return "found"

    message = model.bind_tools([search], tool_choice="any").invoke('Search for "kiro"')
    sent = current_message(generate_requests(emu)[-1])["userInputMessageContext"]["tools"]
    assert len(sent[0]["toolSpecification"]["name"]) == 64
    assert message.tool_calls[0]["name"] == long_name
    assert message.tool_calls[0]["args"] == {"query": "kiro"}


def test_system_prompt_is_the_first_history_pair(emu: KiroEmulator, model: ChatKiro) -> None:
    model.invoke([SystemMessage("You are terse."), HumanMessage("Hi")])
    history = generate_requests(emu)[-1].body["conversationState"]["history"]
    assert history[0]["userInputMessage"]["content"].endswith(
        "Follow this instruction: You are terse."
    )
    assert "assistantResponseMessage" in history[1]


# -- tool_choice, structured output, response_format ----------------------------------------


def test_tool_choice_any_forces_a_call(emu: KiroEmulator, model: ChatKiro) -> None:
    message = model.bind_tools([get_weather, get_time], tool_choice="any").invoke("Hello!")
    assert message.tool_calls[0]["name"] == "get_weather"


def test_tool_choice_by_name(emu: KiroEmulator, model: ChatKiro) -> None:
    message = model.bind_tools([get_weather, get_time], tool_choice="get_time").invoke("Hello!")
    assert message.tool_calls[0]["name"] == "get_time"


def test_tool_choice_none_sends_no_tools(emu: KiroEmulator, model: ChatKiro) -> None:
    message = model.bind_tools([get_weather], tool_choice="none").invoke("Weather in Paris?")
    assert message.tool_calls == []
    assert "tools" not in current_message(generate_requests(emu)[-1]).get(
        "userInputMessageContext", {}
    )


def test_tool_choice_auto_and_unknown_names(emu: KiroEmulator, model: ChatKiro) -> None:
    assert model.bind_tools([get_weather]).invoke("Hello!").tool_calls == []
    with pytest.raises(ValueError, match="not bound"):
        model.bind_tools([get_weather], tool_choice="nope")


class Joke(BaseModel):
    """A joke."""

    setup: str = Field(description="The setup")
    punchline: str = Field(description="The punchline")


def test_structured_output_pydantic(model: ChatKiro) -> None:
    joke = model.with_structured_output(Joke).invoke('Tell a joke: "Why?" and "Because."')
    assert joke == Joke(setup="Why?", punchline="Because.")


def test_structured_output_include_raw(model: ChatKiro) -> None:
    result = model.with_structured_output(Joke, include_raw=True).invoke("Tell a joke")
    assert isinstance(result, dict)
    assert isinstance(result["raw"], AIMessage)
    assert isinstance(result["parsed"], Joke)
    assert result["parsing_error"] is None


def test_structured_output_json_schema_method_uses_a_tool(
    emu: KiroEmulator, model: ChatKiro
) -> None:
    result = model.with_structured_output(Joke.model_json_schema(), method="json_schema").invoke(
        "Joke"
    )
    assert set(result) == {"setup", "punchline"}
    assert current_message(generate_requests(emu)[-1])["userInputMessageContext"]["tools"]


def test_structured_output_json_mode(emu: KiroEmulator, model: ChatKiro) -> None:
    joke = model.with_structured_output(Joke, method="json_mode").invoke("Tell a joke")
    assert isinstance(joke, Joke)
    content = current_message(generate_requests(emu)[-1])["content"]
    assert "JSON" in content
    assert "punchline" in content
    emu.script(Reply.text('```json\n{"a": 1}\n```'))
    assert model.with_structured_output(method="json_mode").invoke("JSON please") == {"a": 1}


def test_response_format_kwarg_asks_for_json(emu: KiroEmulator, model: ChatKiro) -> None:
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "Joke", "schema": Joke.model_json_schema()},
    }
    message = model.bind(response_format=fmt).invoke("Tell a joke")
    assert set(json.loads(str(message.content))) == {"setup", "punchline"}
    assert "response_format" not in json.dumps(generate_requests(emu)[-1].body)


def test_unknown_kwargs_never_reach_the_body(emu: KiroEmulator, model: ChatKiro) -> None:
    model.invoke("Hi", top_k=3, parallel_tool_calls=False)
    body = json.dumps(generate_requests(emu)[-1].body)
    assert "top_k" not in body
    assert "parallel" not in body


# -- errors ----------------------------------------------------------------------------------


def test_quota_exhausted_is_a_non_retryable_rate_limit(emu: KiroEmulator, model: ChatKiro) -> None:
    emu.script(Fault.http(402))
    with pytest.raises(KiroQuotaExceededError) as info:
        model.invoke("Hi")
    assert isinstance(info.value, ModelRateLimitError)
    assert info.value.is_retryable is False


def test_bad_request_is_an_invalid_request_error(emu: KiroEmulator, model: ChatKiro) -> None:
    emu.script(Fault.http(400))
    with pytest.raises(KiroInvalidRequestError) as info:
        model.invoke("Hi")
    assert isinstance(info.value, ModelInvalidRequestError)


def test_no_retry_after_the_first_token(
    emu: KiroEmulator, emu_model_kwargs: dict[str, Any]
) -> None:
    model = ChatKiro(**{**emu_model_kwargs, "max_retries": 2})
    emu.script(Fault.reset(after_frames=2, reply=Reply.text("one two three four", chunk_size=4)))
    received: list[Any] = []
    stream = model.stream("Hi")
    with pytest.raises(KiroConnectionError) as info:
        received.extend(chunk.content for chunk in stream)
    assert isinstance(info.value, ModelConnectionError)
    assert received == ["one ", "two "]
    assert len(generate_requests(emu)) == 1


async def test_async_errors_are_typed_too(emu: KiroEmulator, model: ChatKiro) -> None:
    emu.script(Fault.http(402))
    with pytest.raises(KiroError):
        await model.ainvoke("Hi")


# -- async and secrets -----------------------------------------------------------------------


async def test_astream_matches_stream(emu: KiroEmulator, model: ChatKiro) -> None:
    emu.script(Reply.text("Hello there, world", chunk_size=6))
    chunks = [c async for c in model.astream("Hi")]
    assert [c.content for c in chunks[:-1]] == ["Hello ", "there,", " world"]
    assert chunks[-1].usage_metadata is not None
    assert (
        await model.ainvoke("Hi")
    ).content == "Hello from the Kiro emulator (claude-sonnet-4.5)."


def test_secrets_stay_out_of_repr_str_and_dumps() -> None:
    model = ChatKiro(api_key=SECRET_KEY, access_token=SECRET_TOKEN)
    for text in (
        repr(model),
        str(model),
        model.model_dump_json(),
        json.dumps(model._identifying_params),
    ):
        assert SECRET_KEY not in text
        assert SECRET_TOKEN not in text
    assert model.api_key is not None
    assert model.api_key.get_secret_value() == SECRET_KEY
