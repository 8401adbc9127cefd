"""``ChatKiro`` inside ``langchain.agents.create_agent`` (LangGraph), against the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel

from kiro_lc.chat_models import ChatKiro
from kiro_lc.testing import KiroEmulator, RecordedRequest, Reply, ToolCall

SYSTEM = "You are a weather assistant. Answer in one sentence."


@tool
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"It is sunny in {city}."


@tool
def get_time(zone: str) -> str:
    """Get the current time in a time zone."""
    return f"It is noon in {zone}."


@pytest.fixture
def emu() -> Iterator[KiroEmulator]:
    with KiroEmulator() as emulator:
        yield emulator


@pytest.fixture
def model(emu: KiroEmulator) -> ChatKiro:
    return ChatKiro(base_url=emu.base_url, api_key=emu.api_key)


def generate_requests(emu: KiroEmulator) -> list[RecordedRequest]:
    return [r for r in emu.requests if r.operation == "GenerateAssistantResponse"]


def roles(body: dict[str, Any]) -> list[str]:
    history = body["conversationState"].get("history", [])
    return ["user" if "userInputMessage" in h else "assistant" for h in history]


def script_parallel_round(emu: KiroEmulator, final_text: str) -> tuple[str, str]:
    weather = ToolCall("get_weather", {"city": "Paris"})
    clock = ToolCall("get_time", {"zone": "CET"})
    emu.script(Reply.tool_calls([weather, clock]), Reply.text(final_text, chunk_size=5))
    return weather.tool_use_id, clock.tool_use_id


def test_agent_round_trip_with_two_parallel_tool_calls(emu: KiroEmulator, model: ChatKiro) -> None:
    weather_id, clock_id = script_parallel_round(emu, "Sunny in Paris, and it is noon.")
    agent = create_agent(model, [get_weather, get_time], system_prompt=SYSTEM)
    result = agent.invoke({"messages": [HumanMessage("Weather and time in Paris?")]})

    messages = result["messages"]
    assert [type(m) for m in messages] == [
        HumanMessage,
        AIMessage,
        ToolMessage,
        ToolMessage,
        AIMessage,
    ]
    assert [c["id"] for c in messages[1].tool_calls] == [weather_id, clock_id]
    assert messages[-1].content == "Sunny in Paris, and it is noon."

    requests = generate_requests(emu)
    assert len(requests) == 2
    assert [r.problems for r in emu.requests] == [[] for _ in emu.requests]
    second = requests[1].body
    assert roles(second) == ["user", "assistant", "user", "assistant"]
    history = second["conversationState"]["history"]
    assert history[0]["userInputMessage"]["content"].endswith(f"Follow this instruction: {SYSTEM}")
    uses = history[3]["assistantResponseMessage"]["toolUses"]
    assert [(u["toolUseId"], u["name"]) for u in uses] == [
        (weather_id, "get_weather"),
        (clock_id, "get_time"),
    ]
    current = second["conversationState"]["currentMessage"]["userInputMessage"]
    results = current["userInputMessageContext"]["toolResults"]
    assert [(r["toolUseId"], r["status"]) for r in results] == [
        (weather_id, "success"),
        (clock_id, "success"),
    ]
    assert results[0]["content"] == [{"text": "It is sunny in Paris."}]
    assert {
        t["toolSpecification"]["name"] for t in current["userInputMessageContext"]["tools"]
    } == {
        "get_weather",
        "get_time",
    }


def test_agent_streams_tokens_in_messages_mode(emu: KiroEmulator, model: ChatKiro) -> None:
    script_parallel_round(emu, "Sunny in Paris, and it is noon.")
    agent = create_agent(model, [get_weather, get_time], system_prompt=SYSTEM)
    stream = agent.stream({"messages": [HumanMessage("Weather and time?")]}, stream_mode="messages")
    text_tokens = [
        chunk.content
        for chunk, _meta in stream
        if isinstance(chunk, AIMessageChunk) and isinstance(chunk.content, list) and chunk.content
    ]
    texts = [
        block["text"] for blocks in text_tokens for block in blocks if block.get("type") == "text"
    ]
    assert len(texts) >= 5
    assert "".join(texts) == "Sunny in Paris, and it is noon."
    assert [r.problems for r in emu.requests] == [[] for _ in emu.requests]


class Forecast(BaseModel):
    """A short forecast."""

    city: str
    summary: str


async def test_agent_response_format_is_emulated(emu: KiroEmulator, model: ChatKiro) -> None:
    agent = create_agent(model, [], response_format=Forecast)
    result = await agent.ainvoke({"messages": [HumanMessage('Forecast for "Paris": "sunny"')]})
    assert result["structured_response"] == Forecast(city="Paris", summary="sunny")
    (request,) = generate_requests(emu)
    assert request.problems == []
    assert (
        "JSON" in request.body["conversationState"]["currentMessage"]["userInputMessage"]["content"]
    )
