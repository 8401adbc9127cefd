"""Talk to Kiro over HTTP: :class:`KiroTransport` (sync) and :class:`AsyncKiroTransport` (async).

Both send the requests :class:`~kiro_lc._http.TransportCore` builds (kiro-cli's awsJson 1.0 wire
form), retry as :class:`~kiro_lc._http.RetryState` decides, and turn the response body into
:data:`~kiro_lc.protocol.KiroEvent` objects with the sans-I/O
:class:`~kiro_lc._stream_reader.StreamReader`. The two classes mirror each other line for line;
only the ``await`` keywords differ.

Timeouts: ``timeout`` bounds connecting, sending and waiting for the response headers;
``idle_timeout`` bounds each wait for more bytes once the body streams. Once the turn is
complete (metering arrived, no tool call pending) the response is closed at once, so a
connection Kiro keeps open costs nothing. Retries never happen after an event reached the caller.

Logs go to ``kiro_lc.transport`` at DEBUG: method, URL, target, attempt, status, request id and
timings; never headers or bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from kiro_lc._http import (
    AttemptFailed,
    Decision,
    HttpCall,
    Phase,
    RetryState,
    TransportCore,
    check_origin,
    error_from_httpx,
    failure_from_status,
    parse_json_body,
    request_id_of,
    unexpected_content_type,
)
from kiro_lc._stream_reader import StreamReader
from kiro_lc.auth.credentials import Credentials
from kiro_lc.errors import KiroError, KiroProtocolError
from kiro_lc.models import ModelList, UsageLimits, parse_list_models, parse_usage_limits
from kiro_lc.protocol import ConversationRequest, KiroEvent

if TYPE_CHECKING:
    from kiro_lc.auth import KiroAuth

__all__ = ["AsyncKiroTransport", "KiroTransport"]

_DRAIN_WAIT = 0.05  # seconds to wait for the end of a body once the turn is complete

logger = logging.getLogger("kiro_lc.transport")

MAX_MODEL_PAGES = 50
"""ListAvailableModels pages followed at most (a guard against a server that never stops)."""

_BuildCall = Callable[[Credentials, int, int], HttpCall]


class KiroTransport:
    """Synchronous Kiro client over a pooled ``httpx.Client``.

    ``http_client``: use this client (kiro-lc never closes it); ``transport``: an httpx transport
    for the client kiro-lc creates lazily. ``sleep`` (default ``time.sleep``) waits out backoffs;
    tests may replace it, also later through the ``sleep`` attribute. Use as a context manager
    or call :meth:`close`.
    """

    def __init__(
        self,
        auth: KiroAuth,
        *,
        base_url: str | None = None,
        timeout: float | None = None,
        idle_timeout: float = 60.0,
        max_retries: int = 2,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        origin: str = "KIRO_CLI",
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if http_client is not None and transport is not None:
            raise ValueError("pass http_client or transport, not both")
        self._auth = auth
        self._core = TransportCore.create(
            base_url=base_url,
            timeout=timeout,
            idle_timeout=idle_timeout,
            max_retries=max_retries,
            origin=origin,
        )
        self._client = http_client
        self._owns_client = http_client is None
        self._transport = transport
        self._lock = threading.Lock()
        self.sleep: Callable[[float], None] = time.sleep if sleep is None else sleep

    # -- public API ----------------------------------------------------------------------------

    def stream(self, request: ConversationRequest) -> Generator[KiroEvent, None, None]:
        """Send ``request`` and yield Kiro's events as they arrive.

        Closing the generator closes the HTTP response. Raises a
        :class:`~kiro_lc.errors.KiroError` (retries exhausted, a non-retryable status, an
        exception frame, a cut or idle stream); ``ValueError`` at once for origin ``CLI``.
        A tool call still missing ``stop: true`` when the body ends is not an error here: its
        fragments are yielded and the assembler reports it as an invalid tool call.
        """
        check_origin(request.origin)
        return self._stream(request)

    def list_models(self, *, origin: str | None = None) -> ModelList:
        """Kiro's model catalogue for this account (ListAvailableModels, every page)."""
        if origin is not None:
            check_origin(origin)
        result: ModelList | None = None
        token: str | None = None
        for _ in range(MAX_MODEL_PAGES):
            build = functools.partial(_list_models_call, self._core, origin, token)
            page = parse_list_models(self._call_json(build, "ListAvailableModels"))
            result = page if result is None else result.with_page(page)
            if not page.next_token or page.next_token == token:
                return result
            token = page.next_token
        raise _too_many_pages()

    def get_usage_limits(self) -> UsageLimits:
        """The account's plan, credits used and reset date (GetUsageLimits)."""
        return parse_usage_limits(self._call_json(self._core.usage_limits_call, "GetUsageLimits"))

    def close(self) -> None:
        """Close the HTTP client kiro-lc created (a client you passed in stays open)."""
        client = self._client
        if client is not None and self._owns_client:
            self._client = None
            client.close()

    def __enter__(self) -> KiroTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- I/O -------------------------------------------------------------------------------------

    def _stream(self, request: ConversationRequest) -> Generator[KiroEvent, None, None]:
        state = RetryState(self._core.policy)
        creds = self._auth.get_credentials()
        while True:
            reader = StreamReader(model_id=request.model_id)
            try:
                call = self._core.generate_call(
                    request, creds, state.next_attempt(), state.max_attempts
                )
                response = self._send(call, model_id=request.model_id, streaming=True)
                try:
                    yield from self._read_events(call, response, reader)
                finally:
                    response.close()
                return
            except AttemptFailed as exc:
                failure = exc  # handled outside the except: no internal exception in chains
            creds = self._recover(failure, state, creds, yielded=reader.event_count > 0)

    def _read_events(
        self, call: HttpCall, response: httpx.Response, reader: StreamReader
    ) -> Generator[KiroEvent, None, None]:
        started = time.monotonic()
        try:
            for chunk in response.iter_bytes():
                yield from reader.feed(chunk)
                if reader.error is not None:
                    raise AttemptFailed(reader.error)
                if reader.turn_complete:
                    _log_stream_end(call, reader, started, "turn complete")
                    return
        except httpx.HTTPError as exc:
            raise AttemptFailed(self._httpx_error(exc, "body", call)) from exc
        _finish(reader)
        _log_stream_end(call, reader, started, "end of body")

    def _call_json(self, build: _BuildCall, what: str) -> dict[str, Any]:
        state = RetryState(self._core.policy)
        creds = self._auth.get_credentials()
        while True:
            try:
                call = build(creds, state.next_attempt(), state.max_attempts)
                response = self._send(call, model_id=None, streaming=False)
                try:
                    body = response.read()
                except httpx.HTTPError as exc:
                    raise AttemptFailed(self._httpx_error(exc, "body", call)) from exc
                finally:
                    response.close()
                return parse_json_body(body, what=what)
            except AttemptFailed as exc:
                failure = exc
            creds = self._recover(failure, state, creds, yielded=False)

    def _send(self, call: HttpCall, *, model_id: str | None, streaming: bool) -> httpx.Response:
        client = self._http()
        request = client.build_request(
            call.method,
            call.url,
            headers=call.headers,
            content=call.content,
            timeout=self._core.httpx_timeout(),
        )
        _log_attempt(call)
        started = time.monotonic()
        try:
            response = client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise AttemptFailed(self._httpx_error(exc, "response", call)) from exc
        _log_response(call, response, started)
        if response.is_success and not (streaming and unexpected_content_type(response.headers)):
            if streaming:
                _use_idle_timeout(response, self._core.idle_timeout)
            return response
        try:
            body = response.read()
        except httpx.HTTPError:
            body = b""
        finally:
            response.close()
        raise _failure(response, body, model_id)

    def _recover(
        self, failure: AttemptFailed, state: RetryState, creds: Credentials, *, yielded: bool
    ) -> Credentials:
        decision = state.decide(failure, yielded=yielded)
        _log_decision(failure, decision, state)
        if decision.action == "raise":
            raise failure.error from failure.__cause__
        if decision.action == "refresh":
            return self._auth.force_refresh(creds)
        self.sleep(decision.delay)
        return self._auth.get_credentials()

    def _http(self) -> httpx.Client:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = httpx.Client(
                        transport=self._transport, timeout=self._core.httpx_timeout()
                    )
                client = self._client
        return client

    def _httpx_error(self, exc: httpx.HTTPError, phase: Phase, call: HttpCall) -> KiroError:
        core = self._core
        return error_from_httpx(
            exc, phase=phase, url=call.url, timeout=core.timeout, idle_timeout=core.idle_timeout
        )


class AsyncKiroTransport:
    """Asynchronous twin of :class:`KiroTransport` over pooled ``httpx.AsyncClient`` objects.

    kiro-lc creates one client per event loop (connections cannot move between loops), so one
    transport survives repeated ``asyncio.run`` calls; a client you pass in is used as is.
    ``sleep`` (default ``asyncio.sleep``) waits out backoffs. Use as an async context manager
    or call :meth:`aclose`.
    """

    def __init__(
        self,
        auth: KiroAuth,
        *,
        base_url: str | None = None,
        timeout: float | None = None,
        idle_timeout: float = 60.0,
        max_retries: int = 2,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        origin: str = "KIRO_CLI",
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        if http_client is not None and transport is not None:
            raise ValueError("pass http_client or transport, not both")
        self._auth = auth
        self._core = TransportCore.create(
            base_url=base_url,
            timeout=timeout,
            idle_timeout=idle_timeout,
            max_retries=max_retries,
            origin=origin,
        )
        self._user_client = http_client
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]
        self._clients = weakref.WeakKeyDictionary()
        self._transport = transport
        self._lock = threading.Lock()
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep if sleep is None else sleep

    # -- public API ----------------------------------------------------------------------------

    def stream(self, request: ConversationRequest) -> AsyncGenerator[KiroEvent, None]:
        """Send ``request`` and yield Kiro's events as they arrive (``async for``).

        Closing (``aclose``) or cancelling the generator closes the HTTP response. Raises as
        :meth:`KiroTransport.stream` does.
        """
        check_origin(request.origin)
        return self._stream(request)

    async def list_models(self, *, origin: str | None = None) -> ModelList:
        """Kiro's model catalogue for this account (ListAvailableModels, every page)."""
        if origin is not None:
            check_origin(origin)
        result: ModelList | None = None
        token: str | None = None
        for _ in range(MAX_MODEL_PAGES):
            build = functools.partial(_list_models_call, self._core, origin, token)
            page = parse_list_models(await self._call_json(build, "ListAvailableModels"))
            result = page if result is None else result.with_page(page)
            if not page.next_token or page.next_token == token:
                return result
            token = page.next_token
        raise _too_many_pages()

    async def get_usage_limits(self) -> UsageLimits:
        """The account's plan, credits used and reset date (GetUsageLimits)."""
        data = await self._call_json(self._core.usage_limits_call, "GetUsageLimits")
        return parse_usage_limits(data)

    async def aclose(self) -> None:
        """Close the HTTP client kiro-lc created (a client you passed in stays open)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            clients = list(self._clients.items())
            self._clients.clear()
        for owner, client in clients:
            if owner is loop:  # a client of another loop can only be closed by that loop
                await client.aclose()

    async def __aenter__(self) -> AsyncKiroTransport:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- I/O -------------------------------------------------------------------------------------

    async def _stream(self, request: ConversationRequest) -> AsyncGenerator[KiroEvent, None]:
        state = RetryState(self._core.policy)
        creds = await self._auth.aget_credentials()
        while True:
            reader = StreamReader(model_id=request.model_id)
            try:
                call = self._core.generate_call(
                    request, creds, state.next_attempt(), state.max_attempts
                )
                response = await self._send(call, model_id=request.model_id, streaming=True)
                try:
                    async for event in self._read_events(call, response, reader):
                        yield event
                finally:
                    await response.aclose()
                return
            except AttemptFailed as exc:
                failure = exc  # handled outside the except: no internal exception in chains
            creds = await self._recover(failure, state, creds, yielded=reader.event_count > 0)

    async def _read_events(
        self, call: HttpCall, response: httpx.Response, reader: StreamReader
    ) -> AsyncGenerator[KiroEvent, None]:
        started = time.monotonic()
        chunks = response.aiter_bytes()
        try:
            async for chunk in chunks:
                for event in reader.feed(chunk):
                    yield event
                if reader.error is not None:
                    raise AttemptFailed(reader.error)
                if reader.turn_complete:
                    _log_stream_end(call, reader, started, "turn complete")
                    await _drain_end_of_body(chunks)
                    return
        except httpx.HTTPError as exc:
            raise AttemptFailed(self._httpx_error(exc, "body", call)) from exc
        _finish(reader)
        _log_stream_end(call, reader, started, "end of body")

    async def _call_json(self, build: _BuildCall, what: str) -> dict[str, Any]:
        state = RetryState(self._core.policy)
        creds = await self._auth.aget_credentials()
        while True:
            try:
                call = build(creds, state.next_attempt(), state.max_attempts)
                response = await self._send(call, model_id=None, streaming=False)
                try:
                    body = await response.aread()
                except httpx.HTTPError as exc:
                    raise AttemptFailed(self._httpx_error(exc, "body", call)) from exc
                finally:
                    await response.aclose()
                return parse_json_body(body, what=what)
            except AttemptFailed as exc:
                failure = exc
            creds = await self._recover(failure, state, creds, yielded=False)

    async def _send(
        self, call: HttpCall, *, model_id: str | None, streaming: bool
    ) -> httpx.Response:
        client = self._http()
        request = client.build_request(
            call.method,
            call.url,
            headers=call.headers,
            content=call.content,
            timeout=self._core.httpx_timeout(),
        )
        _log_attempt(call)
        started = time.monotonic()
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise AttemptFailed(self._httpx_error(exc, "response", call)) from exc
        _log_response(call, response, started)
        if response.is_success and not (streaming and unexpected_content_type(response.headers)):
            if streaming:
                _use_idle_timeout(response, self._core.idle_timeout)
            return response
        try:
            body = await response.aread()
        except httpx.HTTPError:
            body = b""
        finally:
            await response.aclose()
        raise _failure(response, body, model_id)

    async def _recover(
        self, failure: AttemptFailed, state: RetryState, creds: Credentials, *, yielded: bool
    ) -> Credentials:
        decision = state.decide(failure, yielded=yielded)
        _log_decision(failure, decision, state)
        if decision.action == "raise":
            raise failure.error from failure.__cause__
        if decision.action == "refresh":
            return await self._auth.aforce_refresh(creds)
        await self.sleep(decision.delay)
        return await self._auth.aget_credentials()

    def _http(self) -> httpx.AsyncClient:
        """The client for the running event loop: pooled connections belong to one loop, so
        ``asyncio.run`` called twice on one transport gets a fresh client the second time."""
        if self._user_client is not None:
            return self._user_client
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.get(loop)
            if client is None:
                client = httpx.AsyncClient(
                    transport=self._transport, timeout=self._core.httpx_timeout()
                )
                self._clients[loop] = client
        return client

    def _httpx_error(self, exc: httpx.HTTPError, phase: Phase, call: HttpCall) -> KiroError:
        core = self._core
        return error_from_httpx(
            exc, phase=phase, url=call.url, timeout=core.timeout, idle_timeout=core.idle_timeout
        )


# ---------------------------------------------------------------------------------------------
# Shared helpers (no I/O)
# ---------------------------------------------------------------------------------------------


def _list_models_call(
    core: TransportCore,
    origin: str | None,
    token: str | None,
    creds: Credentials,
    attempt: int,
    max_attempts: int,
) -> HttpCall:
    return core.list_models_call(creds, attempt, max_attempts, origin=origin, next_token=token)


def _too_many_pages() -> KiroProtocolError:
    return KiroProtocolError(
        f"Kiro's model list did not end after {MAX_MODEL_PAGES} pages. Retry later; if it "
        "persists, report it with `kiro-lc status` output."
    )


async def _drain_end_of_body(chunks: AsyncIterator[bytes]) -> None:
    """Read the body's end if it comes at once, so the pooled connection can be reused.

    The turn is complete. A server that ends the body right away gets its connection reused
    (saving a TCP and TLS handshake on the next call); one that holds it open without ending
    the body (kiro-protocol.md §5.4) costs at most ``_DRAIN_WAIT`` before we close it. The
    sync transport cannot bound a read this way (httpx fixes the read timeout when the body
    starts), so it closes the connection at once instead.
    """
    with contextlib.suppress(Exception), anyio.move_on_after(_DRAIN_WAIT):
        async for _ in chunks:
            pass


def _use_idle_timeout(response: httpx.Response, idle_timeout: float) -> None:
    """From now on, each read of the body waits at most ``idle_timeout``.

    httpx applies ``request.extensions["timeout"]["read"]`` per read, and its HTTP/1.1 body
    reader looks the value up when the body starts streaming, i.e. after this call.
    """
    timeouts = response.request.extensions.get("timeout")
    if isinstance(timeouts, dict):
        timeouts["read"] = idle_timeout


def _failure(response: httpx.Response, body: bytes, model_id: str | None) -> AttemptFailed:
    if response.is_success:  # a 2xx that is not an event stream
        content_type = response.headers.get("content-type", "")
        return AttemptFailed(
            KiroProtocolError(
                f"Kiro answered HTTP {response.status_code} with {content_type!r} instead of an "
                "event stream. Check base_url / KIRO_API_URL: something other than Kiro may be "
                "answering.",
                status=response.status_code,
                request_id=request_id_of(response.headers),
            )
        )
    return failure_from_status(response.status_code, body, response.headers, model_id=model_id)


def _finish(reader: StreamReader) -> None:
    try:
        reader.finish()
    except KiroError as err:
        raise AttemptFailed(err) from None


def _log_attempt(call: HttpCall) -> None:
    logger.debug(
        "%s %s target=%s attempt=%d invocation=%s",
        call.method,
        call.url,
        call.target,
        call.attempt,
        call.invocation_id,
    )


def _log_response(call: HttpCall, response: httpx.Response, started: float) -> None:
    logger.debug(
        "%s attempt=%d -> HTTP %d in %.0f ms (request id %s)",
        call.target,
        call.attempt,
        response.status_code,
        (time.monotonic() - started) * 1000,
        request_id_of(response.headers),
    )


def _log_stream_end(call: HttpCall, reader: StreamReader, started: float, why: str) -> None:
    logger.debug(
        "%s attempt=%d stream done (%s): %d events, %d bytes in %.0f ms",
        call.target,
        call.attempt,
        why,
        reader.event_count,
        reader.bytes_consumed,
        (time.monotonic() - started) * 1000,
    )


def _log_decision(failure: AttemptFailed, decision: Decision, state: RetryState) -> None:
    error = failure.error
    if decision.action == "refresh":
        logger.debug("token rejected as stale (HTTP %s); refreshing it and retrying", error.status)
    elif decision.action == "retry":
        logger.debug(
            "%s (status %s) on attempt %d; retry %d/%d in %.2f s",
            type(error).__name__,
            error.status,
            state.attempt,
            state.retries,
            state.policy.max_retries,
            decision.delay,
        )
    else:
        logger.debug(
            "%s (status %s) on attempt %d; not retrying",
            type(error).__name__,
            error.status,
            state.attempt,
        )
