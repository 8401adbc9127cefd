"""``kiro_lc.transport``: what goes on the wire, what comes back, and who owns the connection.

Against the KiroEmulator over real loopback sockets (and, for two response shapes the emulator
cannot produce, an ``httpx.MockTransport`` standing in for the server). The fault matrix lives
in ``test_transport_faults.py``.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from captures import capture_sample
from pydantic import SecretStr

from kiro_lc._http import RetryPolicy, TransportCore
from kiro_lc._stream_reader import StreamReader
from kiro_lc.auth import Credentials, KiroAuth
from kiro_lc.errors import KiroConnectionError, KiroError, KiroProtocolError
from kiro_lc.eventstream import encode_event, encode_exception
from kiro_lc.models import ModelList, UsageLimits
from kiro_lc.protocol import (
    ContextUsage,
    ConversationRequest,
    Metadata,
    Metering,
    TextDelta,
    ToolSpec,
    ToolUseFragment,
    UserTurn,
)
from kiro_lc.testing import Fault, KiroEmulator, Reply
from kiro_lc.transport import AsyncKiroTransport, KiroTransport

MODEL = "claude-sonnet-4.5"
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture
def emu() -> Iterator[KiroEmulator]:
    with KiroEmulator() as emulator:
        yield emulator


def request(**kwargs: Any) -> ConversationRequest:
    return ConversationRequest(current=UserTurn("Hello, Kiro."), model_id=MODEL, **kwargs)


def bearer_auth(emu: KiroEmulator) -> tuple[str, KiroAuth]:
    """A social account's access token and profile ARN, as ``KIRO_ACCESS_TOKEN`` gives them."""
    account = emu.add_account("bob", kind="social")
    assert account.profile_arn
    token = emu.issue_access_token(account)
    return account.profile_arn, KiroAuth(access_token=token, profile_arn=account.profile_arn)


def generate_requests(emu: KiroEmulator) -> list[Any]:
    return [r for r in emu.requests if r.operation == "GenerateAssistantResponse"]


# ---------------------------------------------------------------------------------------------
# The request on the wire
# ---------------------------------------------------------------------------------------------


def test_headers_match_the_kiro_cli_capture(emu: KiroEmulator) -> None:
    _, auth = bearer_auth(emu)
    with KiroTransport(auth, base_url=emu.base_url) as transport:
        list(transport.stream(request()))
    (sent,) = generate_requests(emu)
    captured = capture_sample("AmazonCodeWhispererStreamingService.GenerateAssistantResponse")
    assert set(captured["headers"]) <= set(sent.headers)
    for name in ("accept", "accept-encoding", "content-type", "x-amz-target"):
        assert sent.headers[name] == captured["headers"][name]
    assert sent.headers["x-amzn-codewhisperer-optout"] == "true"
    assert sent.headers["user-agent"].startswith(
        "aws-sdk-rust/1.3.15 ua/2.1 api/codewhispererstreaming/0.1.17975 os/"
    )
    assert " lang/python/" in sent.headers["user-agent"]
    assert sent.headers["user-agent"].endswith(" app/kiro-lc")
    assert " m/F app/kiro-lc" in sent.headers["x-amz-user-agent"]
    assert sent.headers["authorization"] == "Bearer ***"
    assert "tokentype" not in sent.headers
    assert sent.method == "POST"
    assert sent.path == "/"
    assert sent.problems == []


def test_body_structure_and_profile_arn(emu: KiroEmulator) -> None:
    arn, auth = bearer_auth(emu)
    tool = ToolSpec("get_weather", "Weather for a city.", {"type": "object", "properties": {}})
    with KiroTransport(auth, base_url=emu.base_url) as transport:
        list(transport.stream(request(tools=[tool])))
    (sent,) = generate_requests(emu)
    assert list(sent.body) == ["conversationState", "profileArn"]
    assert sent.body["profileArn"] == arn
    state = sent.body["conversationState"]
    assert state["chatTriggerType"] == "MANUAL"
    message = state["currentMessage"]["userInputMessage"]
    assert message["content"] == "Hello, Kiro."
    assert message["modelId"] == MODEL
    assert message["origin"] == "KIRO_CLI"
    tools = message["userInputMessageContext"]["tools"]
    assert tools[0]["toolSpecification"]["name"] == "get_weather"


def test_request_profile_arn_wins_over_the_credentials(emu: KiroEmulator) -> None:
    _, auth = bearer_auth(emu)
    mine = "arn:aws:codewhisperer:us-east-1:123456789012:profile/MINE"
    with KiroTransport(auth, base_url=emu.base_url) as transport:
        list(transport.stream(request(profile_arn=mine)))
    assert generate_requests(emu)[0].body["profileArn"] == mine


def test_ai_editor_origin_is_kept(emu: KiroEmulator) -> None:
    _, auth = bearer_auth(emu)
    with KiroTransport(auth, base_url=emu.base_url) as transport:
        list(transport.stream(request(origin="AI_EDITOR")))
    body = generate_requests(emu)[0].body
    assert body["conversationState"]["currentMessage"]["userInputMessage"]["origin"] == "AI_EDITOR"


def test_api_key_sends_tokentype_and_ai_editor(emu: KiroEmulator) -> None:
    with KiroTransport(KiroAuth(api_key=emu.api_key), base_url=emu.base_url) as transport:
        events = list(transport.stream(request()))
    assert any(isinstance(e, TextDelta) for e in events)
    (sent,) = generate_requests(emu)
    assert sent.headers["tokentype"] == "API_KEY"
    assert sent.headers["authorization"] == "Bearer ***"
    assert sent.headers["x-amzn-kiro-agent-mode"] == "vibe"
    message = sent.body["conversationState"]["currentMessage"]["userInputMessage"]
    assert message["origin"] == "AI_EDITOR"
    assert "profileArn" not in sent.body
    assert sent.problems == []


def test_invocation_id_is_fresh_per_attempt(emu: KiroEmulator) -> None:
    emu.script(Fault.http(500), Reply.text("ok"))
    auth = KiroAuth(api_key=emu.api_key)
    with KiroTransport(auth, base_url=emu.base_url, sleep=lambda s: None) as transport:
        list(transport.stream(request()))
        list(transport.stream(request()))
    ids = [r.headers["amz-sdk-invocation-id"] for r in generate_requests(emu)]
    assert len(ids) == 3
    assert len(set(ids)) == 3
    assert all(UUID4.match(i) for i in ids)
    attempts = [r.headers["amz-sdk-request"] for r in generate_requests(emu)]
    assert attempts == ["attempt=1; max=3", "attempt=2; max=3", "attempt=1; max=3"]


def test_origin_cli_is_rejected(emu: KiroEmulator) -> None:
    auth = KiroAuth(api_key=emu.api_key)
    with pytest.raises(ValueError, match="KIRO_CLI"):
        KiroTransport(auth, origin="CLI")
    with KiroTransport(auth, base_url=emu.base_url) as transport:
        with pytest.raises(ValueError, match="CLI"):
            transport.stream(request(origin="CLI"))
        with pytest.raises(ValueError, match="CLI"):
            transport.list_models(origin="CLI")
    assert emu.requests == []


def test_bad_settings_are_rejected() -> None:
    auth = KiroAuth(api_key="ksk_unused")
    with pytest.raises(ValueError, match="max_retries"):
        KiroTransport(auth, max_retries=-1)
    with pytest.raises(ValueError, match="idle_timeout"):
        AsyncKiroTransport(auth, idle_timeout=0)
    with pytest.raises(ValueError, match="not both"):
        KiroTransport(auth, http_client=httpx.Client(), transport=httpx.HTTPTransport())


# ---------------------------------------------------------------------------------------------
# base_url resolution
# ---------------------------------------------------------------------------------------------


def creds(profile_arn: str | None, region: str = "us-east-1") -> Credentials:
    return Credentials(SecretStr("aoaXYZ"), "bearer", profile_arn, region)


def test_base_url_from_argument_then_env_then_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIRO_API_URL", "http://env.example/")
    core = TransportCore.create(
        base_url="http://arg.example/",
        timeout=None,
        idle_timeout=60,
        max_retries=2,
        origin="KIRO_CLI",
    )
    assert core.url_for(creds(None)) == "http://arg.example"
    core = TransportCore.create(
        base_url=None, timeout=None, idle_timeout=60, max_retries=2, origin="KIRO_CLI"
    )
    assert core.url_for(creds(None)) == "http://env.example"
    monkeypatch.delenv("KIRO_API_URL")
    core = TransportCore.create(
        base_url=None, timeout=None, idle_timeout=60, max_retries=2, origin="KIRO_CLI"
    )
    assert core.url_for(creds(None, "eu-central-1")) == "https://q.eu-central-1.amazonaws.com"
    arn = "arn:aws:codewhisperer:eu-central-1:123456789012:profile/ABC"
    assert core.url_for(creds(arn, "us-east-1")) == "https://q.eu-central-1.amazonaws.com"


def test_kiro_api_url_points_the_transport_at_the_emulator(
    emu: KiroEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIRO_API_URL", emu.base_url)
    with KiroTransport(KiroAuth(api_key=emu.api_key)) as transport:
        events = list(transport.stream(request()))
    assert events
    assert len(generate_requests(emu)) == 1


# ---------------------------------------------------------------------------------------------
# The response
# ---------------------------------------------------------------------------------------------


def test_stream_yields_typed_events_in_order(emu: KiroEmulator) -> None:
    emu.script(Reply.text("Hello there, friend.", chunk_size=5))
    with KiroTransport(KiroAuth(api_key=emu.api_key), base_url=emu.base_url) as transport:
        events = list(transport.stream(request()))
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert texts == ["Hello", " ther", "e, fr", "iend."]
    assert [type(e) for e in events[len(texts) :]] == [Metadata, ContextUsage, Metering]


def test_tool_call_fragments_pass_through(emu: KiroEmulator) -> None:
    emu.script(Reply.tool_call("get_weather", {"city": "Paris"}, tool_use_id="tooluse_1"))
    with KiroTransport(KiroAuth(api_key=emu.api_key), base_url=emu.base_url) as transport:
        events = list(transport.stream(request()))
    fragments = [e for e in events if isinstance(e, ToolUseFragment)]
    assert {f.tool_use_id for f in fragments} == {"tooluse_1"}
    assert json.loads("".join(f.input for f in fragments)) == {"city": "Paris"}
    assert fragments[-1].stop


async def test_async_stream_yields_the_same_events(emu: KiroEmulator) -> None:
    emu.script(Reply.text("Hello there, friend.", chunk_size=5))
    async with AsyncKiroTransport(
        KiroAuth(api_key=emu.api_key), base_url=emu.base_url
    ) as transport:
        events = [e async for e in transport.stream(request())]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello there, friend."
    assert isinstance(events[-1], Metering)


async def test_async_stream_reuses_its_connection(emu: KiroEmulator) -> None:
    # The turn completes before the body ends; reading that end lets the pool keep the socket.
    emu.script(Reply.text("first"), Reply.text("second"), Reply.text("third"))
    async with AsyncKiroTransport(
        KiroAuth(api_key=emu.api_key), base_url=emu.base_url
    ) as transport:
        for _ in range(3):
            assert [e async for e in transport.stream(request())]
    ports = {r.client_port for r in generate_requests(emu)}
    assert len(generate_requests(emu)) == 3
    assert len(ports) == 1
    assert None not in ports


async def test_async_connection_held_open_is_dropped_not_reused(emu: KiroEmulator) -> None:
    emu.script(Fault.keep_alive_without_eof(Reply.text("held"), timeout=10.0), Reply.text("next"))
    async with AsyncKiroTransport(
        KiroAuth(api_key=emu.api_key), base_url=emu.base_url
    ) as transport:
        started = time.monotonic()
        assert [e async for e in transport.stream(request())]
        assert time.monotonic() - started < 1.5  # the emulator would hold the body for 10 s
        assert [e async for e in transport.stream(request())]
    first, second = generate_requests(emu)
    assert first.client_port != second.client_port


def test_gzip_encoded_stream_is_decoded() -> None:
    frames = b"".join(
        [
            encode_event("assistantResponseEvent", b'{"content":"zipped"}'),
            encode_event("meteringEvent", b'{"unit":"credit","usage":0.01}'),
        ]
    )

    def handler(req: httpx.Request) -> httpx.Response:
        assert req.headers["accept-encoding"] == "gzip"
        return httpx.Response(
            200,
            content=gzip.compress(frames),
            headers={
                "content-type": "application/vnd.amazon.eventstream",
                "content-encoding": "gzip",
            },
        )

    auth = KiroAuth(api_key="ksk_unused")
    transport = KiroTransport(
        auth, base_url="http://kiro.test", transport=httpx.MockTransport(handler)
    )
    with transport:
        events = list(transport.stream(request()))
    assert events[0] == TextDelta("zipped")
    assert isinstance(events[1], Metering)


def test_json_answer_instead_of_a_stream_is_a_protocol_error() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"hello": "proxy"})

    auth = KiroAuth(api_key="ksk_unused")
    transport = KiroTransport(
        auth, base_url="http://kiro.test", transport=httpx.MockTransport(handler)
    )
    with transport, pytest.raises(KiroProtocolError, match="instead of an event stream"):
        list(transport.stream(request()))


def test_empty_body_is_retried_then_reported() -> None:
    calls: list[int] = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(200, headers={"content-type": "application/vnd.amazon.eventstream"})

    auth = KiroAuth(api_key="ksk_unused")
    transport = KiroTransport(
        auth,
        base_url="http://kiro.test",
        transport=httpx.MockTransport(handler),
        max_retries=1,
        sleep=lambda s: None,
    )
    with transport, pytest.raises(KiroError, match="empty response stream"):
        list(transport.stream(request()))
    assert len(calls) == 2


# ---------------------------------------------------------------------------------------------
# Connections: ownership, closing, cancellation
# ---------------------------------------------------------------------------------------------


class ClosingSpy(httpx.HTTPTransport):
    """A real loopback transport that records whether it was closed."""

    closed = False

    def close(self) -> None:
        self.closed = True
        super().close()


def test_user_client_is_not_closed(emu: KiroEmulator) -> None:
    with httpx.Client() as client:
        transport = KiroTransport(
            KiroAuth(api_key=emu.api_key), base_url=emu.base_url, http_client=client
        )
        with transport:
            list(transport.stream(request()))
        assert not client.is_closed
        assert client.post(f"{emu.base_url}/", content=b"{}").status_code == 400  # still usable


async def test_user_async_client_is_not_closed(emu: KiroEmulator) -> None:
    async with httpx.AsyncClient() as client:
        transport = AsyncKiroTransport(
            KiroAuth(api_key=emu.api_key), base_url=emu.base_url, http_client=client
        )
        async with transport:
            _ = [e async for e in transport.stream(request())]
        assert not client.is_closed


def test_own_client_is_created_lazily_and_closed(emu: KiroEmulator) -> None:
    spy = ClosingSpy()
    transport = KiroTransport(KiroAuth(api_key=emu.api_key), base_url=emu.base_url, transport=spy)
    transport.close()  # nothing created yet: nothing to close
    assert not spy.closed
    with transport:
        list(transport.stream(request()))
        list(transport.stream(request()))
    assert spy.closed


def test_async_transport_survives_repeated_asyncio_run(emu: KiroEmulator) -> None:
    transport = AsyncKiroTransport(KiroAuth(api_key=emu.api_key), base_url=emu.base_url)

    async def ask() -> list[Any]:
        return [e async for e in transport.stream(request())]

    async def models() -> list[str]:
        return (await transport.list_models()).ids()

    assert asyncio.run(models()) == asyncio.run(models())
    assert any(isinstance(e, TextDelta) for e in asyncio.run(ask()))
    asyncio.run(transport.aclose())


class RecordingAsyncTransport(httpx.AsyncHTTPTransport):
    """A real loopback transport that keeps every response, to check they get closed."""

    def __init__(self) -> None:
        super().__init__()
        self.responses: list[httpx.Response] = []

    async def handle_async_request(self, req: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(req)
        self.responses.append(response)
        return response


async def test_closing_the_async_generator_closes_the_connection(emu: KiroEmulator) -> None:
    emu.script(Fault.stall(10.0, after_frames=1, reply=Reply.text("one two three", chunk_size=4)))
    spy = RecordingAsyncTransport()
    async with AsyncKiroTransport(
        KiroAuth(api_key=emu.api_key), base_url=emu.base_url, transport=spy
    ) as transport:
        events = transport.stream(request())
        first = await events.__anext__()
        assert first == TextDelta("one ")
        assert not spy.responses[0].is_closed
        await events.aclose()
        assert spy.responses[0].is_closed


async def test_cancelling_the_consumer_closes_the_connection(emu: KiroEmulator) -> None:
    emu.script(Fault.stall(10.0, after_frames=1, reply=Reply.text("one two three", chunk_size=4)))
    spy = RecordingAsyncTransport()
    got_first = asyncio.Event()

    async with AsyncKiroTransport(
        KiroAuth(api_key=emu.api_key), base_url=emu.base_url, transport=spy
    ) as transport:

        async def consume() -> None:
            async for _ in transport.stream(request()):
                got_first.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(got_first.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert spy.responses[0].is_closed


def test_closing_the_sync_generator_closes_the_connection(emu: KiroEmulator) -> None:
    emu.script(Fault.stall(10.0, after_frames=1, reply=Reply.text("one two three", chunk_size=4)))
    seen: list[httpx.Response] = []
    with httpx.Client(event_hooks={"response": [seen.append]}) as client:
        transport = KiroTransport(
            KiroAuth(api_key=emu.api_key), base_url=emu.base_url, http_client=client
        )
        events = transport.stream(request())
        assert next(events) == TextDelta("one ")
        assert not seen[0].is_closed
        events.close()
        assert seen[0].is_closed


# ---------------------------------------------------------------------------------------------
# ListAvailableModels and GetUsageLimits
# ---------------------------------------------------------------------------------------------


def test_list_models_parses_the_catalogue(emu: KiroEmulator) -> None:
    arn, auth = bearer_auth(emu)
    with KiroTransport(auth, base_url=emu.base_url) as transport:
        models = transport.list_models()
    assert isinstance(models, ModelList)
    assert models.ids() == [e["modelId"] for e in emu.catalog]
    sonnet = models.get("claude-sonnet-4-5")
    assert sonnet is not None
    assert sonnet.max_input_tokens
    (sent,) = emu.requests
    assert sent.target == "AmazonCodeWhispererService.ListAvailableModels"
    assert sent.query == {"origin": "KIRO_CLI", "profileArn": arn}
    assert sent.body == {"origin": "KIRO_CLI", "profileArn": arn}
    captured = capture_sample("AmazonCodeWhispererService.ListAvailableModels")
    assert set(captured["headers"]) <= set(sent.headers)
    assert "api/codewhispererruntime/" in sent.headers["user-agent"]


class PagingTransport(httpx.HTTPTransport):
    """Real loopback transport that asks the emulator for small ListAvailableModels pages."""

    def handle_request(self, req: httpx.Request) -> httpx.Response:
        if req.headers.get("x-amz-target", "").endswith("ListAvailableModels"):
            body = json.loads(req.read())
            body["maxResults"] = 4
            headers = {k: v for k, v in req.headers.items() if k != "content-length"}
            req = httpx.Request(req.method, req.url, headers=headers, content=json.dumps(body))
        return super().handle_request(req)


def test_list_models_follows_next_token(emu: KiroEmulator) -> None:
    auth = KiroAuth(api_key=emu.api_key)
    with KiroTransport(auth, base_url=emu.base_url, transport=PagingTransport()) as transport:
        models = transport.list_models(origin="KIRO_CLI")
    assert models.ids() == [e["modelId"] for e in emu.catalog]
    assert models.next_token is None
    pages = emu.requests
    assert len(pages) == -(-len(emu.catalog) // 4) > 1
    assert "nextToken" not in pages[0].body
    assert pages[1].body["nextToken"]
    assert pages[0].body["origin"] == "AI_EDITOR"  # API keys always use AI_EDITOR


async def test_async_list_models_and_usage(emu: KiroEmulator) -> None:
    emu.usage.used = 12.5
    async with AsyncKiroTransport(
        KiroAuth(api_key=emu.api_key), base_url=emu.base_url
    ) as transport:
        models = await transport.list_models()
        usage = await transport.get_usage_limits()
    assert MODEL in models.ids()
    assert usage.credits_used == 12.5


def test_get_usage_limits_parses_the_answer(emu: KiroEmulator) -> None:
    emu.usage.used = 42.25
    emu.usage.limit = 500.0
    arn, auth = bearer_auth(emu)
    with KiroTransport(auth, base_url=emu.base_url) as transport:
        usage = transport.get_usage_limits()
    assert isinstance(usage, UsageLimits)
    assert usage.credits_used == 42.25
    assert usage.credits_limit == 500.0
    assert usage.plan_title == emu.usage.subscription_title
    (sent,) = emu.requests
    assert sent.target == "AmazonCodeWhispererService.GetUsageLimits"
    assert sent.body == {
        "origin": "AI_EDITOR",
        "profileArn": arn,
        "resourceType": "AGENTIC_REQUEST",
    }


def test_list_models_retries_like_stream(emu: KiroEmulator) -> None:
    emu.script_for("ListAvailableModels", Fault.http(503), Fault.reset())
    sleeps: list[float] = []
    auth = KiroAuth(api_key=emu.api_key)
    with KiroTransport(auth, base_url=emu.base_url, sleep=sleeps.append) as transport:
        models = transport.list_models()
    assert models.ids()
    assert len(sleeps) == 2
    assert len(emu.requests) == 3


def test_usage_limits_connection_failure_is_reported(emu: KiroEmulator) -> None:
    emu.script_for("GetUsageLimits", Fault.reset())
    auth = KiroAuth(api_key=emu.api_key)
    transport = KiroTransport(auth, base_url=emu.base_url, max_retries=0)
    with transport, pytest.raises(KiroConnectionError, match="Retry the request"):
        transport.get_usage_limits()


# ---------------------------------------------------------------------------------------------
# Logging never shows a secret
# ---------------------------------------------------------------------------------------------


def test_debug_logs_name_the_call_but_never_the_token(
    emu: KiroEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emu.script(Fault.http(429, retry_after=0), Reply.text("hi"))
    key = emu.api_key
    with caplog.at_level(logging.DEBUG, logger="kiro_lc.transport"):
        auth = KiroAuth(api_key=key)
        with KiroTransport(auth, base_url=emu.base_url, sleep=lambda s: None) as transport:
            list(transport.stream(request()))
    text = "\n".join(r.getMessage() for r in caplog.records if r.name == "kiro_lc.transport")
    assert "GenerateAssistantResponse" in text
    assert "HTTP 429" in text
    assert "HTTP 200" in text
    assert generate_requests(emu)[1].request_id in text
    assert key not in text
    assert "Hello, Kiro." not in text


# ---------------------------------------------------------------------------------------------
# Pure parts
# ---------------------------------------------------------------------------------------------


def test_backoff_is_full_jitter_capped() -> None:
    policy = RetryPolicy()
    assert policy.delay(0, None, lambda: 1.0) == 0.5
    assert policy.delay(3, None, lambda: 1.0) == 4.0
    assert policy.delay(10, None, lambda: 1.0) == 8.0
    assert policy.delay(10, None, lambda: 0.0) == 0.0
    assert policy.delay(0, 2.5, lambda: 1.0) == 2.5
    assert policy.delay(0, 120.0, lambda: 1.0) == 30.0


def frames(*events: tuple[str, dict[str, Any]]) -> bytes:
    return b"".join(encode_event(t, json.dumps(p).encode()) for t, p in events)


def test_reader_turn_complete_only_after_content_and_no_pending_tool() -> None:
    reader = StreamReader()
    reader.feed(frames(("meteringEvent", {"unit": "credit", "usage": 0.1})))
    assert not reader.turn_complete  # metering before anything else is not the end
    tool = {"name": "t", "toolUseId": "tooluse_a", "input": "{", "stop": False}
    reader.feed(frames(("toolUseEvent", tool), ("meteringEvent", {"unit": "credit", "usage": 1})))
    assert not reader.turn_complete  # a tool call is still open
    done = {"name": "t", "toolUseId": "tooluse_a", "input": "}", "stop": True}
    events = reader.feed(
        frames(("toolUseEvent", done), ("meteringEvent", {"unit": "credit", "usage": 1}))
    )
    assert reader.turn_complete
    assert len(events) == 2


def test_reader_reports_a_cut_frame_but_not_a_pending_tool() -> None:
    data = frames(("toolUseEvent", {"name": "t", "toolUseId": "x", "input": "{", "stop": False}))
    reader = StreamReader()
    assert len(reader.feed(data)) == 1
    reader.finish()  # pending tool call at EOF: the assembler's business
    cut = StreamReader()
    cut.feed(data + data[:7])
    with pytest.raises(KiroConnectionError, match="cut off mid-frame"):
        cut.finish()


def test_reader_stops_at_an_exception_frame() -> None:
    data = frames(("assistantResponseEvent", {"content": "a"})) + encode_exception(
        "ThrottlingException", b'{"message":"slow down"}'
    )
    reader = StreamReader(model_id=MODEL)
    events = reader.feed(data + frames(("assistantResponseEvent", {"content": "b"})))
    assert events == [TextDelta("a")]
    assert reader.error is not None
    assert reader.error.is_retryable
