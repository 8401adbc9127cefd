"""The transport's fault matrix, against the KiroEmulator over real loopback sockets.

Each Kiro failure mode once, sync and async where the code paths differ: refresh on a stale
token, backoff (with a recording sleep, so no test waits), no retry for 400/402, exception
frames, corrupt and cut streams, idle stalls, keep-alive without EOF, resets, and the rule that
nothing is retried once an event reached the caller.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from kiro_lc.auth import KiroAuth
from kiro_lc.errors import (
    EventStreamError,
    KiroAPIError,
    KiroAuthError,
    KiroConnectionError,
    KiroError,
    KiroInvalidRequestError,
    KiroQuotaExceededError,
    KiroRateLimitError,
    KiroTimeoutError,
)
from kiro_lc.protocol import (
    ConversationRequest,
    KiroEvent,
    Metering,
    StreamException,
    TextDelta,
    UserTurn,
)
from kiro_lc.testing import EmulatorAccount, Fault, KiroEmulator, Reply
from kiro_lc.transport import AsyncKiroTransport, KiroTransport

MODEL = "claude-sonnet-4.5"
SLOW = Reply.text(
    "Slow and steady.", chunk_size=8, stop_reason=None, context_usage=None, delay_between=0.4
)
TEXT = "The quick brown fox jumps over the lazy dog, then naps in the afternoon sun."


@pytest.fixture
def emu() -> Iterator[KiroEmulator]:
    with KiroEmulator() as emulator:
        yield emulator


def request() -> ConversationRequest:
    return ConversationRequest(current=UserTurn("Tell me about foxes."), model_id=MODEL)


def generate_requests(emu: KiroEmulator) -> list[Any]:
    return [r for r in emu.requests if r.operation == "GenerateAssistantResponse"]


class Sleeps(list[float]):
    """Records backoff sleeps instead of sleeping (sync and async)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.append(seconds)


def sync_transport(emu: KiroEmulator, sleeps: Sleeps, **kwargs: Any) -> KiroTransport:
    auth = kwargs.pop("auth", None) or KiroAuth(api_key=emu.api_key)
    return KiroTransport(auth, base_url=emu.base_url, sleep=sleeps, **kwargs)


def async_transport(emu: KiroEmulator, sleeps: Sleeps, **kwargs: Any) -> AsyncKiroTransport:
    auth = kwargs.pop("auth", None) or KiroAuth(api_key=emu.api_key)
    return AsyncKiroTransport(auth, base_url=emu.base_url, sleep=sleeps.asleep, **kwargs)


def collect(transport: KiroTransport) -> tuple[list[KiroEvent], KiroError | None]:
    """Every event yielded before the stream ended or raised, and the error if any."""
    events: list[KiroEvent] = []
    try:
        for event in transport.stream(request()):
            events.append(event)
    except KiroError as err:
        return events, err
    return events, None


async def acollect(transport: AsyncKiroTransport) -> tuple[list[KiroEvent], KiroError | None]:
    events: list[KiroEvent] = []
    try:
        async for event in transport.stream(request()):
            events.append(event)
    except KiroError as err:
        return events, err
    return events, None


def text_of(events: list[KiroEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def social_login(emu: KiroEmulator, tmp_path: Path) -> tuple[EmulatorAccount, KiroAuth]:
    """A social account whose login sits in an IDE token file, as Kiro writes it."""
    account = emu.add_account("alice", kind="social")
    expires = datetime.now(timezone.utc) + timedelta(hours=1)
    token_file = tmp_path / "kiro-auth-token.json"
    token_file.write_text(
        json.dumps(
            {
                "accessToken": emu.issue_access_token(account),
                "refreshToken": account.refresh_token,
                "expiresAt": expires.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "authMethod": "social",
                "provider": "Google",
                "region": "us-east-1",
                "profileArn": account.profile_arn,
            }
        )
    )
    return account, KiroAuth(token_file=token_file, auth_url=emu.auth_url)


# ---------------------------------------------------------------------------------------------
# 403 → refresh → success
# ---------------------------------------------------------------------------------------------


def test_stale_token_is_refreshed_once_and_retried(emu: KiroEmulator, tmp_path: Path) -> None:
    account, auth = social_login(emu, tmp_path)
    emu.expire_access_tokens(account)  # Kiro now answers 403 "bearer token ... invalid"
    emu.script(Reply.text(TEXT))
    sleeps = Sleeps()
    with sync_transport(emu, sleeps, auth=auth) as transport:
        events, error = collect(transport)
    assert error is None
    assert text_of(events) == TEXT
    assert emu.refresh_count == 1
    calls = generate_requests(emu)
    assert [c.status for c in calls] == [403, 200]
    assert calls[1].headers["amz-sdk-request"] == "attempt=2; max=4"
    assert sleeps == []  # a refresh retries at once


async def test_async_stale_token_is_refreshed_once_and_retried(
    emu: KiroEmulator, tmp_path: Path
) -> None:
    account, auth = social_login(emu, tmp_path)
    emu.expire_access_tokens(account)
    emu.script(Reply.text(TEXT))
    sleeps = Sleeps()
    async with async_transport(emu, sleeps, auth=auth) as transport:
        events, error = await acollect(transport)
    assert error is None
    assert text_of(events) == TEXT
    assert emu.refresh_count == 1
    assert [c.status for c in generate_requests(emu)] == [403, 200]


def test_rejected_api_key_is_not_retried(emu: KiroEmulator) -> None:
    key = emu.api_key
    emu.revoke(emu.default_account)
    sleeps = Sleeps()
    with sync_transport(emu, sleeps, auth=KiroAuth(api_key=key)) as transport:
        events, error = collect(transport)
    assert isinstance(error, KiroAuthError)
    assert events == []
    assert len(generate_requests(emu)) == 1  # an API key cannot be refreshed
    assert key not in str(error)
    assert key not in repr(error)


# ---------------------------------------------------------------------------------------------
# Backoff: 429 with Retry-After, 5xx, exhausted retries
# ---------------------------------------------------------------------------------------------


def test_429_waits_for_retry_after_then_succeeds(emu: KiroEmulator) -> None:
    emu.script(Fault.http(429, retry_after=3), Reply.text(TEXT))
    sleeps = Sleeps()
    with sync_transport(emu, sleeps) as transport:
        events, error = collect(transport)
    assert error is None
    assert text_of(events) == TEXT
    assert sleeps == [3.0]
    assert [c.status for c in generate_requests(emu)] == [429, 200]


async def test_async_429_waits_for_retry_after_then_succeeds(emu: KiroEmulator) -> None:
    emu.script(Fault.http(429, retry_after=2), Reply.text(TEXT))
    sleeps = Sleeps()
    async with async_transport(emu, sleeps) as transport:
        events, error = await acollect(transport)
    assert error is None
    assert text_of(events) == TEXT
    assert sleeps == [2.0]


def test_retry_after_is_capped(emu: KiroEmulator) -> None:
    emu.script(Fault.http(429, retry_after=3600), Reply.text(TEXT))
    sleeps = Sleeps()
    with sync_transport(emu, sleeps) as transport:
        _, error = collect(transport)
    assert error is None
    assert sleeps == [30.0]


def test_5xx_twice_then_success(emu: KiroEmulator) -> None:
    emu.script(Fault.http(500), Fault.http(503), Reply.text(TEXT))
    sleeps = Sleeps()
    with sync_transport(emu, sleeps) as transport:
        events, error = collect(transport)
    assert error is None
    assert text_of(events) == TEXT
    assert [c.status for c in generate_requests(emu)] == [500, 503, 200]
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.5
    assert 0 <= sleeps[1] <= 1.0


async def test_async_5xx_twice_then_success(emu: KiroEmulator) -> None:
    emu.script(Fault.http(500), Fault.http(500), Reply.text(TEXT))
    sleeps = Sleeps()
    async with async_transport(emu, sleeps) as transport:
        events, error = await acollect(transport)
    assert error is None
    assert text_of(events) == TEXT
    assert [c.status for c in generate_requests(emu)] == [500, 500, 200]
    assert len(sleeps) == 2


def test_exhausted_retries_raise_the_last_error(emu: KiroEmulator) -> None:
    emu.script(Fault.http(503), Fault.http(500), Fault.http(500), Reply.text(TEXT))
    sleeps = Sleeps()
    with sync_transport(emu, sleeps, max_retries=2) as transport:
        events, error = collect(transport)
    assert isinstance(error, KiroAPIError)
    assert error.status == 500
    assert error.request_id == generate_requests(emu)[-1].request_id
    assert events == []
    assert len(generate_requests(emu)) == 3
    assert len(sleeps) == 2
    assert emu.pending == 1


def test_max_retries_zero_never_retries(emu: KiroEmulator) -> None:
    emu.script(Fault.http(500), Reply.text(TEXT))
    sleeps = Sleeps()
    with sync_transport(emu, sleeps, max_retries=0) as transport:
        _, error = collect(transport)
    assert isinstance(error, KiroAPIError)
    assert len(generate_requests(emu)) == 1
    assert sleeps == []


# ---------------------------------------------------------------------------------------------
# No retry: 400, 402
# ---------------------------------------------------------------------------------------------


def test_400_is_not_retried(emu: KiroEmulator) -> None:
    emu.script(Fault.http(400), Reply.text(TEXT))
    sleeps = Sleeps()
    with sync_transport(emu, sleeps) as transport:
        _, error = collect(transport)
    assert isinstance(error, KiroInvalidRequestError)
    assert error.status == 400
    assert "Improperly formed request" in str(error)
    assert error.__context__ is None  # no internal retry machinery in the traceback
    assert len(generate_requests(emu)) == 1
    assert sleeps == []


async def test_async_400_is_not_retried(emu: KiroEmulator) -> None:
    emu.script(Fault.http(400), Reply.text(TEXT))
    sleeps = Sleeps()
    async with async_transport(emu, sleeps) as transport:
        _, error = await acollect(transport)
    assert isinstance(error, KiroInvalidRequestError)
    assert len(generate_requests(emu)) == 1


def test_402_quota_is_not_retried(emu: KiroEmulator) -> None:
    emu.script(Fault.http(402), Reply.text(TEXT))
    sleeps = Sleeps()
    with sync_transport(emu, sleeps) as transport:
        _, error = collect(transport)
    assert isinstance(error, KiroQuotaExceededError)
    assert error.reason == "MONTHLY_REQUEST_COUNT"
    assert len(generate_requests(emu)) == 1
    assert sleeps == []


# ---------------------------------------------------------------------------------------------
# Broken streams
# ---------------------------------------------------------------------------------------------


def test_exception_frame_mid_stream_raises_after_the_text(emu: KiroEmulator) -> None:
    emu.script(Fault.exception_frame("ThrottlingException", after_text=TEXT), Reply.text(TEXT))
    sleeps = Sleeps()
    with sync_transport(emu, sleeps) as transport:
        events, error = collect(transport)
    assert text_of(events) == TEXT  # every text event reached the caller first
    assert isinstance(error, KiroRateLimitError)
    assert len(generate_requests(emu)) == 1  # not retried: output was already yielded
    assert emu.pending == 1


async def test_async_exception_frame_mid_stream_raises_after_the_text(emu: KiroEmulator) -> None:
    emu.script(Fault.exception_frame("ThrottlingException", after_text=TEXT))
    sleeps = Sleeps()
    async with async_transport(emu, sleeps) as transport:
        events, error = await acollect(transport)
    assert text_of(events) == TEXT
    assert isinstance(error, KiroRateLimitError)
    assert len(generate_requests(emu)) == 1


def test_exception_frame_before_any_event_is_retried(emu: KiroEmulator) -> None:
    emu.script(Fault.exception_frame("InternalServerException"), Reply.text(TEXT))
    sleeps = Sleeps()
    with sync_transport(emu, sleeps) as transport:
        events, error = collect(transport)
    assert error is None
    assert text_of(events) == TEXT
    assert len(generate_requests(emu)) == 2
    assert len(sleeps) == 1


def test_content_length_exceeded_is_an_event_not_an_error(emu: KiroEmulator) -> None:
    emu.script(Fault.exception_frame("ContentLengthExceededException", after_text=TEXT))
    sleeps = Sleeps()
    with sync_transport(emu, sleeps) as transport:
        events, error = collect(transport)
    assert error is None
    assert text_of(events) == TEXT
    last = events[-1]
    assert isinstance(last, StreamException)
    assert last.exception_type == "ContentLengthExceededException"


def test_corrupted_crc_raises_event_stream_error(emu: KiroEmulator) -> None:
    emu.script(Fault.corrupt_crc(after_frames=2, reply=Reply.text(TEXT, chunk_size=10)))
    sleeps = Sleeps()
    with sync_transport(emu, sleeps) as transport:
        events, error = collect(transport)
    assert isinstance(error, EventStreamError)
    assert "CRC" in str(error) or "crc" in str(error)
    assert text_of(events) == TEXT[:20]
    assert len(generate_requests(emu)) == 1


def test_truncated_frame_raises_connection_error(emu: KiroEmulator) -> None:
    emu.script(Fault.truncate(after_frames=2, reply=Reply.text(TEXT, chunk_size=10)))
    sleeps = Sleeps()
    with sync_transport(emu, sleeps) as transport:
        events, error = collect(transport)
    assert isinstance(error, KiroConnectionError)
    assert text_of(events) == TEXT[:20]
    assert len(generate_requests(emu)) == 1


async def test_async_truncated_frame_raises_connection_error(emu: KiroEmulator) -> None:
    emu.script(Fault.truncate(after_frames=2, reply=Reply.text(TEXT, chunk_size=10)))
    sleeps = Sleeps()
    async with async_transport(emu, sleeps) as transport:
        events, error = await acollect(transport)
    assert isinstance(error, KiroConnectionError)
    assert text_of(events) == TEXT[:20]


def test_truncated_before_any_event_is_retried(emu: KiroEmulator) -> None:
    emu.script(Fault.truncate(after_frames=0), Reply.text(TEXT))
    sleeps = Sleeps()
    with sync_transport(emu, sleeps) as transport:
        events, error = collect(transport)
    assert error is None
    assert text_of(events) == TEXT
    assert len(generate_requests(emu)) == 2


def test_clean_cut_with_pending_tool_call_yields_the_fragments(emu: KiroEmulator) -> None:
    # Kiro truncates big tool calls by just ending the body: no stop, no metering (§5.3). The
    # transport hands the fragments on; the assembler turns them into an invalid tool call.
    reply = Reply.tool_call("write_file", {"path": "a.txt", "text": "x" * 200}, stop=False)
    emu.script(reply)
    sleeps = Sleeps()
    with sync_transport(emu, sleeps) as transport:
        events, error = collect(transport)
    assert error is None
    assert events
    assert not any(getattr(e, "stop", False) for e in events)


def test_stall_beyond_idle_timeout_raises_timeout(emu: KiroEmulator) -> None:
    emu.script(Fault.stall(5.0, after_frames=2, reply=Reply.text(TEXT, chunk_size=10)))
    sleeps = Sleeps()
    started = time.monotonic()
    with sync_transport(emu, sleeps, idle_timeout=0.3, timeout=10.0) as transport:
        events, error = collect(transport)
    assert time.monotonic() - started < 2.5
    assert isinstance(error, KiroTimeoutError)
    assert "idle_timeout=" in str(error)
    assert text_of(events) == TEXT[:20]
    assert len(generate_requests(emu)) == 1


async def test_async_stall_beyond_idle_timeout_raises_timeout(emu: KiroEmulator) -> None:
    emu.script(Fault.stall(5.0, after_frames=2, reply=Reply.text(TEXT, chunk_size=10)))
    sleeps = Sleeps()
    started = time.monotonic()
    async with async_transport(emu, sleeps, idle_timeout=0.3, timeout=10.0) as transport:
        events, error = await acollect(transport)
    assert time.monotonic() - started < 2.5
    assert isinstance(error, KiroTimeoutError)
    assert "idle_timeout=" in str(error)
    assert text_of(events) == TEXT[:20]


def test_no_first_byte_within_timeout_raises_timeout(emu: KiroEmulator) -> None:
    emu.script(Fault.latency(3.0, Reply.text(TEXT)))
    sleeps = Sleeps()
    started = time.monotonic()
    with sync_transport(emu, sleeps, timeout=0.3, max_retries=0) as transport:
        _, error = collect(transport)
    assert time.monotonic() - started < 2.5
    assert isinstance(error, KiroTimeoutError)
    assert "timeout=" in str(error)
    assert "idle_timeout" not in str(error)


def test_pauses_between_frames_use_idle_timeout_not_timeout(emu: KiroEmulator) -> None:
    # `timeout` only bounds the wait for the response headers; the body may pause longer
    emu.script(SLOW)
    sleeps = Sleeps()
    with sync_transport(emu, sleeps, timeout=0.15, idle_timeout=3.0) as transport:
        events, error = collect(transport)
    assert error is None
    assert text_of(events) == "Slow and steady."
    assert len(generate_requests(emu)) == 1


async def test_async_pauses_between_frames_use_idle_timeout(emu: KiroEmulator) -> None:
    emu.script(SLOW)
    sleeps = Sleeps()
    async with async_transport(emu, sleeps, timeout=0.15, idle_timeout=3.0) as transport:
        events, error = await acollect(transport)
    assert error is None
    assert text_of(events) == "Slow and steady."


def test_first_byte_timeout_is_retried(emu: KiroEmulator) -> None:
    emu.script(Fault.latency(3.0, Reply.text("slow")), Reply.text(TEXT))
    sleeps = Sleeps()
    with sync_transport(emu, sleeps, timeout=0.3) as transport:
        events, error = collect(transport)
    assert error is None
    assert text_of(events) == TEXT
    assert len(sleeps) == 1


def test_keep_alive_without_eof_completes_promptly(emu: KiroEmulator) -> None:
    emu.script(Fault.keep_alive_without_eof(Reply.text(TEXT), timeout=10.0))
    sleeps = Sleeps()
    started = time.monotonic()
    with sync_transport(emu, sleeps, idle_timeout=5.0) as transport:
        events, error = collect(transport)
    assert time.monotonic() - started < 1.5  # the emulator would hold the body for 10 s
    assert error is None
    assert text_of(events) == TEXT
    assert isinstance(events[-1], Metering)


async def test_async_keep_alive_without_eof_completes_promptly(emu: KiroEmulator) -> None:
    emu.script(Fault.keep_alive_without_eof(Reply.text(TEXT), timeout=10.0))
    sleeps = Sleeps()
    started = time.monotonic()
    async with async_transport(emu, sleeps, idle_timeout=5.0) as transport:
        events, error = await acollect(transport)
    assert time.monotonic() - started < 1.5
    assert error is None
    assert isinstance(events[-1], Metering)


def test_keep_alive_waits_for_a_pending_tool_call(emu: KiroEmulator) -> None:
    # metering while a tool call lacks stop:true is not the end of the turn: keep reading
    # (here until idle_timeout, since the emulator never ends the body)
    reply = Reply.tool_call("lookup", {"q": "fox"}, stop=False)
    emu.script(Fault.keep_alive_without_eof(reply, timeout=10.0))
    sleeps = Sleeps()
    with sync_transport(emu, sleeps, idle_timeout=0.3) as transport:
        events, error = collect(transport)
    assert isinstance(error, KiroTimeoutError)
    assert isinstance(events[-1], Metering)


def test_reset_mid_stream_raises_connection_error(emu: KiroEmulator) -> None:
    emu.script(Fault.reset(after_frames=2, reply=Reply.text(TEXT, chunk_size=10)), Reply.text("x"))
    sleeps = Sleeps()
    with sync_transport(emu, sleeps) as transport:
        events, error = collect(transport)
    assert isinstance(error, KiroConnectionError)
    assert isinstance(error.__cause__, httpx.TransportError)
    assert text_of(events) == TEXT[:20]
    assert len(generate_requests(emu)) == 1  # no retry after the first event
    assert emu.pending == 1


async def test_async_reset_mid_stream_raises_connection_error(emu: KiroEmulator) -> None:
    emu.script(Fault.reset(after_frames=2, reply=Reply.text(TEXT, chunk_size=10)), Reply.text("x"))
    sleeps = Sleeps()
    async with async_transport(emu, sleeps) as transport:
        events, error = await acollect(transport)
    assert isinstance(error, KiroConnectionError)
    assert text_of(events) == TEXT[:20]
    assert len(generate_requests(emu)) == 1


def test_reset_before_first_byte_is_retried(emu: KiroEmulator) -> None:
    emu.script(Fault.reset(after_frames=0), Reply.text(TEXT))
    sleeps = Sleeps()
    with sync_transport(emu, sleeps) as transport:
        events, error = collect(transport)
    assert error is None
    assert text_of(events) == TEXT
    assert len(generate_requests(emu)) == 2


def test_no_retry_after_first_event_even_when_retryable(emu: KiroEmulator) -> None:
    emu.script(Fault.exception_frame("InternalServerException", after_text="Hi"), Reply.text(TEXT))
    sleeps = Sleeps()
    with sync_transport(emu, sleeps, max_retries=5) as transport:
        events, error = collect(transport)
    assert isinstance(error, KiroAPIError)
    assert error.is_retryable
    assert text_of(events) == "Hi"
    assert len(generate_requests(emu)) == 1
    assert sleeps == []
    assert emu.pending == 1
