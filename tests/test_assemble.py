"""The sans-I/O event → chunk assembler (``kiro_lc._assemble``), fed protocol events directly."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import reduce

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessageChunk
from langchain_core.utils.json import parse_partial_json

from kiro_lc._assemble import ChunkAssembler, estimate_tokens, unparseable_suffix
from kiro_lc.errors import KiroError, KiroRateLimitError
from kiro_lc.protocol import (
    ContextUsage,
    KiroEvent,
    Metadata,
    Metering,
    OtherEvent,
    Reasoning,
    StreamException,
    TextDelta,
    ToolUseFragment,
)


def run(assembler: ChunkAssembler, events: Iterable[KiroEvent]) -> list[AIMessageChunk]:
    chunks: list[AIMessageChunk] = []
    for event in events:
        chunks.extend(assembler.add(event))
        if assembler.stopped:
            break
    chunks.extend(assembler.finish())
    return chunks


def merged(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    return reduce(lambda a, b: a + b, chunks)


def tool(tid: str, name: str, text: str, stop: bool = False) -> ToolUseFragment:
    return ToolUseFragment(tool_use_id=tid, name=name, input=text, stop=stop)


TAIL = [
    Metadata(stop_reason="END_TURN"),
    ContextUsage(2.0300002098083496),
    Metering("credit", 0.25),
]


def test_text_only_streams_plain_strings_and_one_final_chunk() -> None:
    a = ChunkAssembler(model_name="claude-sonnet-4.5", max_input_tokens=200_000)
    chunks = run(a, [TextDelta("Hello"), TextDelta(" world"), *TAIL])
    assert [c.content for c in chunks[:-1]] == ["Hello", " world"]
    final = chunks[-1]
    assert final.chunk_position == "last"
    assert final.content == ""
    assert [c for c in chunks if c.usage_metadata] == [final]
    assert final.usage_metadata == {"input_tokens": 4060, "output_tokens": 3, "total_tokens": 4063}
    meta = final.response_metadata
    assert meta["model_name"] == "claude-sonnet-4.5"
    assert meta["model_provider"] == "kiro"
    assert meta["stop_reason"] == "end_turn"
    assert meta["credits"] == 0.25
    assert meta["context_usage_pct"] == pytest.approx(2.03)
    assert meta["usage_estimated"] is True
    message = merged(chunks)
    assert message.content == "Hello world"
    assert message.text == "Hello world"


def test_usage_falls_back_to_prompt_estimate_and_prefers_reported_counts() -> None:
    a = ChunkAssembler(model_name="m", prompt_tokens=321)
    final = run(a, [TextDelta("abcdefgh")])[-1]
    assert final.usage_metadata == {"input_tokens": 321, "output_tokens": 2, "total_tokens": 323}
    b = ChunkAssembler(model_name="m", max_input_tokens=200_000)
    usage = {"inputTokens": 10, "outputTokens": 5}
    final = run(b, [TextDelta("hi"), Metadata(token_usage=usage), ContextUsage(50.0)])[-1]
    assert final.usage_metadata == {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    assert final.response_metadata["usage_estimated"] is False


def test_usage_can_be_left_out() -> None:
    a = ChunkAssembler(model_name="m", include_usage=False)
    assert run(a, [TextDelta("hi")])[-1].usage_metadata is None


def test_text_and_parallel_tools_share_one_index_counter() -> None:
    a = ChunkAssembler(model_name="m", blocks=True)
    events = [
        TextDelta("Let me check."),
        tool("t1", "get_weather", ""),
        tool("t1", "get_weather", '{"city": '),
        tool("t1", "get_weather", '"Paris"}', stop=True),
        tool("t2", "get_time", '{"tz": "CET"}', stop=True),
        TextDelta("Done!"),
        *TAIL,
    ]
    chunks = run(a, events)
    assert chunks[0].content == [{"type": "text", "text": "Let me check.", "index": 0}]
    first = chunks[1].tool_call_chunks[0]
    assert (first["id"], first["name"], first["index"]) == ("t1", "get_weather", 1)
    later = chunks[2].tool_call_chunks[0]
    assert (later["id"], later["name"], later["args"]) == (None, None, '{"city": ')
    assert chunks[4].tool_call_chunks[0]["index"] == 2
    assert chunks[5].content == [{"type": "text", "text": "Done!", "index": 3}]
    message = merged(chunks)
    assert [(c["name"], c["args"], c["id"]) for c in message.tool_calls] == [
        ("get_weather", {"city": "Paris"}, "t1"),
        ("get_time", {"tz": "CET"}, "t2"),
    ]
    assert message.invalid_tool_calls == []
    assert message.response_metadata["stop_reason"] == "tool_use"
    kinds = sorted(b["type"] for b in message.content_blocks)
    assert kinds == ["text", "text", "tool_call", "tool_call"]


def test_interleaved_tool_fragments_are_keyed_by_id() -> None:
    a = ChunkAssembler(model_name="m", blocks=True)
    events = [
        tool("a", "f", '{"x": '),
        tool("b", "g", '{"y": '),
        tool("a", "f", "1}", stop=True),
        tool("b", "g", "2}", stop=True),
    ]
    message = merged(run(a, events))
    assert [(c["id"], c["args"]) for c in message.tool_calls] == [("a", {"x": 1}), ("b", {"y": 2})]


def test_frames_after_stop_and_repeated_names_are_ignored() -> None:
    a = ChunkAssembler(model_name="m", blocks=True)
    events = [tool("a", "f", '{"x": 1}', stop=True), tool("a", "f", '{"x": 1}', stop=True)]
    message = merged(run(a, events))
    assert [c["args"] for c in message.tool_calls] == [{"x": 1}]


def test_tool_names_map_back_to_bound_names() -> None:
    long_name = "n" * 80
    a = ChunkAssembler(model_name="m", blocks=True, tool_names={"short_x": long_name})
    message = merged(run(a, [tool("a", "short_x", "{}", stop=True)]))
    assert message.tool_calls[0]["name"] == long_name


def test_truncated_tool_call_is_invalid_never_valid() -> None:
    a = ChunkAssembler(model_name="m", blocks=True)
    events = [tool("ok", "f", '{"a": 1}', stop=True), tool("cut", "write", '{"path": "a.txt", "te')]
    chunks = run(a, events)
    message = merged(chunks)
    assert [c["id"] for c in message.tool_calls] == ["ok"]
    assert [c["id"] for c in message.invalid_tool_calls] == ["cut"]
    assert message.invalid_tool_calls[0]["name"] == "write"
    assert message.invalid_tool_calls[0]["args"].startswith('{"path": "a.txt", "te')
    assert chunks[-1].response_metadata["stop_reason"] == "max_tokens"


def test_truncated_tool_call_in_string_mode_with_complete_json_is_still_invalid() -> None:
    a = ChunkAssembler(model_name="m")
    message = merged(run(a, [TextDelta("hi"), tool("cut", "f", '{"a": 1}')]))
    assert message.tool_calls == []
    assert [c["id"] for c in message.invalid_tool_calls] == ["cut"]
    assert message.content == "hi"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=4), json_values, max_size=4), st.data())
def test_unparseable_suffix_defeats_lenient_parsing(
    value: dict[str, object], data: st.DataObject
) -> None:
    text = json.dumps(value, ensure_ascii=data.draw(st.booleans()))
    prefix = text[: data.draw(st.integers(0, len(text)))]
    assert not isinstance(parse_partial_json(prefix + unparseable_suffix(prefix)), dict)


@pytest.mark.parametrize("prefix", ["", "{", '{"a": "x\\', '{"a": [1, {"b": "\\\\', "[", '"s'])
def test_unparseable_suffix_edge_cases(prefix: str) -> None:
    assert not isinstance(parse_partial_json(prefix + unparseable_suffix(prefix)), dict)


def test_output_limit_exception_means_max_tokens() -> None:
    a = ChunkAssembler(model_name="m")
    chunks = run(a, [TextDelta("partial"), StreamException("ContentLengthExceededException", "x")])
    assert merged(chunks).content == "partial"
    assert chunks[-1].response_metadata["stop_reason"] == "max_tokens"


def test_other_stream_exceptions_raise_typed_errors() -> None:
    a = ChunkAssembler(model_name="m")
    with pytest.raises(KiroError) as info:
        a.add(StreamException("ThrottlingException", "Too many requests"))
    assert isinstance(info.value, KiroRateLimitError)


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        (["Hello wor", "ld, you", " there"], "Hello world, "),
        (["abcX", "Yd"], "abc"),
        (["no stop here"], "no stop here"),
        (["ab", "cXY"], "abc"),
        (["X", "Y"], ""),
        (["tail X"], "tail X"),
    ],
)
def test_stop_sequences_match_across_chunks(pieces: list[str], expected: str) -> None:
    a = ChunkAssembler(model_name="m", stop=["you", "XY"])
    chunks = run(a, [TextDelta(p) for p in pieces])
    assert merged(chunks).content == expected
    matched = any(s in "".join(pieces) for s in ("you", "XY"))
    assert a.stopped is matched
    reason = chunks[-1].response_metadata["stop_reason"]
    assert reason == ("stop_sequence" if matched else "end_turn")


def test_stop_sequence_stops_everything_after_it() -> None:
    a = ChunkAssembler(model_name="m", blocks=True, stop=["END"])
    events = [TextDelta("a END b"), tool("t", "f", "{}", stop=True), TextDelta("more")]
    out = []
    for event in events:
        out.extend(a.add(event))
    out.extend(a.finish())
    message = merged(out)
    assert message.text == "a "
    assert message.tool_calls == []
    assert out[-1].response_metadata["stop_sequence"] == "END"


def test_held_back_text_is_flushed_before_a_tool_call() -> None:
    a = ChunkAssembler(model_name="m", blocks=True, stop=["STOP!"])
    chunks = run(a, [TextDelta("abc"), tool("t", "f", "{}", stop=True)])
    assert chunks[0].content == [{"type": "text", "text": "abc", "index": 0}]
    assert chunks[1].tool_call_chunks[0]["index"] == 1


def test_repeated_content_events_are_dropped_but_short_repeats_kept() -> None:
    a = ChunkAssembler(model_name="m")
    pieces = ["Hello there", "Hello there", " ha", " ha", "\n\n", "\n\n", "Hello there"]
    message = merged(run(a, [TextDelta(p) for p in pieces]))
    assert message.content == "Hello there ha ha\n\n\n\nHello there"


def test_reasoning_becomes_v1_reasoning_blocks_before_text() -> None:
    a = ChunkAssembler(model_name="m", blocks=True)
    events = [
        Reasoning(text="Think"),
        Reasoning(text="ing"),
        Reasoning(signature="sig"),
        TextDelta("Hi"),
    ]
    message = merged(run(a, events))
    reasoning = message.content[0]
    assert isinstance(reasoning, dict)
    assert reasoning["type"] == "reasoning"
    assert reasoning["reasoning"] == "Thinking"
    assert reasoning["extras"] == {"signature": "sig"}
    assert message.content[1] == {"type": "text", "text": "Hi", "index": 1}


def test_reasoning_in_string_mode_goes_to_additional_kwargs() -> None:
    a = ChunkAssembler(model_name="m")
    message = merged(run(a, [Reasoning(text="hmm"), Reasoning(redacted="xx"), TextDelta("Hi")]))
    assert message.content == "Hi"
    assert message.additional_kwargs["reasoning_content"] == "hmm"
    assert message.content_blocks[0] == {"type": "reasoning", "reasoning": "hmm"}


def test_refusal_and_backend_stop_reason() -> None:
    a = ChunkAssembler(model_name="m")
    final = run(a, [Metadata(refusal={"category": "x"})])[-1]
    assert final.response_metadata["stop_reason"] == "refusal"
    assert final.response_metadata["refusal"] == {"category": "x"}
    b = ChunkAssembler(model_name="m")
    assert run(b, [Metadata(stop_reason="MAX_TOKENS")])[-1].response_metadata["stop_reason"] == (
        "max_tokens"
    )


def test_unknown_events_are_ignored() -> None:
    a = ChunkAssembler(model_name="m")
    assert a.add(OtherEvent("followupPromptEvent", {})) == []


def test_estimate_tokens() -> None:
    assert [estimate_tokens(n) for n in (0, 1, 4, 5)] == [0, 1, 1, 2]
