"""What the sync and async transports share that is not I/O.

Request building (URL, headers, body bytes), the retry decision and its backoff, and the
translation of ``httpx`` failures into :mod:`kiro_lc.errors`. :class:`TransportCore` holds a
transport's settings and builds every :class:`HttpCall`; :class:`RetryState` decides, per call,
whether a failed attempt is refreshed, retried after a sleep, or raised.
"""

from __future__ import annotations

import json
import os
import platform
import random
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urlencode

import httpx

from kiro_lc._version import __version__
from kiro_lc.auth.credentials import Credentials, region_from_arn
from kiro_lc.errormap import error_from_response, is_bearer_invalid
from kiro_lc.errors import KiroConnectionError, KiroError, KiroProtocolError, KiroTimeoutError
from kiro_lc.protocol import ConversationRequest, request_to_bytes

__all__ = [
    "DEFAULT_TIMEOUT",
    "GENERATE_TARGET",
    "LIST_MODELS_TARGET",
    "USAGE_LIMITS_TARGET",
    "AttemptFailed",
    "Decision",
    "HttpCall",
    "Phase",
    "RetryPolicy",
    "RetryState",
    "TransportCore",
    "check_origin",
    "error_from_httpx",
    "failure_from_status",
    "parse_json_body",
    "request_id_of",
    "unexpected_content_type",
]

DEFAULT_TIMEOUT = 60.0
"""Seconds allowed to connect, send the request and receive the response headers."""

GENERATE_TARGET = "AmazonCodeWhispererStreamingService.GenerateAssistantResponse"
LIST_MODELS_TARGET = "AmazonCodeWhispererService.ListAvailableModels"
USAGE_LIMITS_TARGET = "AmazonCodeWhispererService.GetUsageLimits"

_ORIGINS = ("KIRO_CLI", "AI_EDITOR")
_SDK = "aws-sdk-rust/1.3.15 ua/2.1"
_API_VERSION = "0.1.17975"
_OS_NAMES = {"darwin": "macos", "win32": "windows", "cygwin": "windows"}


def check_origin(origin: str) -> str:
    """``origin`` if Kiro streams usage events for it; ``ValueError`` otherwise (e.g. ``CLI``)."""
    if origin not in _ORIGINS:
        raise ValueError(
            f"origin must be 'KIRO_CLI' or 'AI_EDITOR', not {origin!r}: with origin 'CLI' Kiro "
            "stops sending credit and context-usage events (kiro-protocol.md §3.3)."
        )
    return origin


def _user_agents(api: str) -> tuple[str, str]:
    """``(user-agent, x-amz-user-agent)`` in kiro-cli 2.15.2's format, naming kiro-lc."""
    os_name = _OS_NAMES.get(sys.platform, sys.platform.rstrip("0123456789") or "other")
    lang = f"lang/python/{platform.python_version()}"
    common = f"{_SDK} api/{api}/{_API_VERSION} os/{os_name} {lang}"
    return (
        f"{common} md/appVersion-kiro-lc-{__version__} app/kiro-lc",
        f"{common} m/F app/kiro-lc",
    )


_STREAMING_AGENTS = _user_agents("codewhispererstreaming")
_RUNTIME_AGENTS = _user_agents("codewhispererruntime")


@dataclass(frozen=True)
class HttpCall:
    """One HTTP attempt, ready to send. ``headers`` hold the token: never log or repr them."""

    method: str
    url: str
    target: str
    invocation_id: str
    attempt: int
    headers: dict[str, str] = field(repr=False)
    content: bytes = field(repr=False)


class AttemptFailed(Exception):
    """Internal: one attempt failed with ``error``; ``bearer_invalid`` says a refresh may fix it."""

    def __init__(self, error: KiroError, *, bearer_invalid: bool = False) -> None:
        super().__init__(error.message)
        self.error = error
        self.bearer_invalid = bearer_invalid


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """Kiro's request id of a response (``x-amzn-RequestId``), for logs and bug reports."""
    return headers.get("x-amzn-requestid") or headers.get("x-amz-request-id")


def unexpected_content_type(headers: Mapping[str, str]) -> bool:
    """Whether a 2xx streaming response is plainly not an event stream (JSON, HTML, text)."""
    content_type = headers.get("content-type", "").lower()
    return "json" in content_type or content_type.startswith("text/")


def failure_from_status(
    status: int, body: bytes, headers: Mapping[str, str], *, model_id: str | None
) -> AttemptFailed:
    """The :class:`AttemptFailed` for a non-2xx response (error mapped by :mod:`errormap`)."""
    error = error_from_response(status, body, headers, model_id=model_id)
    return AttemptFailed(error, bearer_invalid=is_bearer_invalid(status, body))


# ---------------------------------------------------------------------------------------------
# httpx failures → KiroError
# ---------------------------------------------------------------------------------------------

Phase = Literal["response", "body"]


def error_from_httpx(
    exc: httpx.HTTPError, *, phase: Phase, url: str, timeout: float, idle_timeout: float
) -> KiroError:
    """The :class:`KiroError` for an ``httpx`` failure while waiting for the response
    (``phase="response"``: connect, send, headers) or while reading the body (``"body"``)."""
    host = httpx.URL(url).host
    if isinstance(exc, httpx.TimeoutException):
        return KiroTimeoutError(_timeout_message(exc, phase, host, timeout, idle_timeout))
    if isinstance(exc, httpx.DecodingError):
        return KiroProtocolError(
            f"Kiro's response from {host} could not be decompressed ({exc}). Retry the "
            "request; if it keeps happening, a proxy may be altering the response."
        )
    if isinstance(exc, httpx.ConnectError):
        return KiroConnectionError(
            f"Could not connect to Kiro at {host} ({exc}). Check the network connection, "
            "and base_url / KIRO_API_URL if you set them."
        )
    if phase == "body":
        return KiroConnectionError(
            f"The connection to Kiro ({host}) broke in the middle of the response ({exc}); "
            "the answer is incomplete. Retry the request."
        )
    return KiroConnectionError(
        f"The connection to Kiro ({host}) broke before it answered ({exc}). Retry the request; "
        "check the network connection if it keeps happening."
    )


def _timeout_message(
    exc: httpx.TimeoutException, phase: Phase, host: str, timeout: float, idle_timeout: float
) -> str:
    if phase == "body":
        return (
            f"Kiro's response stream went idle: no data for {idle_timeout:g} s. Retry the "
            "request, or raise idle_timeout= if the model needs longer between outputs."
        )
    if isinstance(exc, httpx.ConnectTimeout):
        what = "Could not connect to Kiro"
    elif isinstance(exc, httpx.WriteTimeout):
        what = "Could not send the request to Kiro"
    elif isinstance(exc, httpx.PoolTimeout):
        what = "No free connection to Kiro was available"
    else:
        what = "Kiro did not start answering"
    return (
        f"{what} ({host}) within {timeout:g} s. Retry the request, or raise timeout= if the "
        "network or Kiro is slow."
    )


# ---------------------------------------------------------------------------------------------
# Retries
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter (``base``·2ⁿ capped at ``cap``); a server's
    ``Retry-After`` replaces the jitter, capped at ``retry_after_cap``."""

    max_retries: int = 2
    base: float = 0.5
    cap: float = 8.0
    retry_after_cap: float = 30.0

    def delay(self, retry: int, retry_after: float | None, rand: Callable[[], float]) -> float:
        """Seconds to sleep before retry number ``retry`` (0-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_cap)
        return rand() * min(self.cap, self.base * 2.0**retry)


@dataclass(frozen=True)
class Decision:
    """What to do after a failed attempt: ``raise`` it, ``refresh`` the token, or ``retry``."""

    action: Literal["raise", "refresh", "retry"]
    delay: float = 0.0


class RetryState:
    """The retry bookkeeping of one public call (one ``stream``/``list_models``/...).

    A 403 "bearer token invalid" earns one forced token refresh and an immediate retry that does
    not use up ``max_retries``; a second one is raised. Retryable errors (429, 5xx, connection
    errors and timeouts, see ``KiroError.is_retryable``) are retried after a backoff until
    ``max_retries`` are spent. Nothing is retried once an event reached the caller.
    """

    def __init__(self, policy: RetryPolicy, rand: Callable[[], float] = random.random) -> None:
        self.policy = policy
        self.attempt = 0
        self.retries = 0
        self.refreshed = False
        self._rand = rand

    def next_attempt(self) -> int:
        """Count a new attempt and return its number (1-based)."""
        self.attempt += 1
        return self.attempt

    @property
    def max_attempts(self) -> int:
        """Attempts this call may make at most (for the ``amz-sdk-request`` header)."""
        return max(self.policy.max_retries + 1 + int(self.refreshed), self.attempt)

    def decide(self, failure: AttemptFailed, *, yielded: bool) -> Decision:
        """The next step after ``failure``; ``yielded`` says whether the caller saw events."""
        if yielded:
            return Decision("raise")
        if failure.bearer_invalid:
            if self.refreshed:
                return Decision("raise")
            self.refreshed = True
            return Decision("refresh")
        if not failure.error.is_retryable or self.retries >= self.policy.max_retries:
            return Decision("raise")
        delay = self.policy.delay(self.retries, failure.error.retry_after, self._rand)
        self.retries += 1
        return Decision("retry", delay)


# ---------------------------------------------------------------------------------------------
# Settings and request building
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransportCore:
    """A transport's settings, and the builder of every request it sends.

    ``base_url``: the argument, else ``KIRO_API_URL`` (read at construction), else
    ``https://q.{region}.amazonaws.com`` with the region of the credentials' profile ARN, or of
    the credentials.

    API-key credentials (``ksk_``) are sent with origin ``AI_EDITOR`` and the header
    ``x-amzn-kiro-agent-mode: vibe``, as kirollm does (kiro-protocol.md §2.4); bearer and
    external-IdP credentials use the configured origin (``KIRO_CLI`` by default, as kiro-cli).
    ``profileArn`` is added to a conversation request that does not set one whenever the
    credentials know it (§3.3), and to ListAvailableModels / GetUsageLimits likewise, since
    profile-less logins (Builder ID, social, API key) simply have none (§4.2).
    """

    base_url: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    idle_timeout: float = 60.0
    policy: RetryPolicy = RetryPolicy()
    origin: str = "KIRO_CLI"

    @classmethod
    def create(
        cls,
        *,
        base_url: str | None,
        timeout: float | None,
        idle_timeout: float,
        max_retries: int,
        origin: str,
    ) -> TransportCore:
        """Validate the arguments of a transport's constructor and resolve the defaults."""
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, not {max_retries}")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be positive seconds or None, not {timeout}")
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be positive seconds, not {idle_timeout}")
        url = base_url or os.environ.get("KIRO_API_URL") or None
        return cls(
            base_url=url.rstrip("/") if url else None,
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
            idle_timeout=idle_timeout,
            policy=RetryPolicy(max_retries=max_retries),
            origin=check_origin(origin),
        )

    def httpx_timeout(self) -> httpx.Timeout:
        """Timeouts of an attempt up to the response headers (the body read uses idle)."""
        return httpx.Timeout(self.timeout)

    def url_for(self, creds: Credentials) -> str:
        """The API base URL (no trailing slash) to use with ``creds``."""
        if self.base_url:
            return self.base_url
        region = region_from_arn(creds.profile_arn) or creds.region
        return f"https://q.{region}.amazonaws.com"

    def origin_for(self, creds: Credentials, origin: str | None = None) -> str:
        """The origin to send: ``AI_EDITOR`` for API keys, else ``origin`` or the default."""
        if creds.kind == "api_key":
            return "AI_EDITOR"
        return check_origin(origin) if origin is not None else self.origin

    def generate_call(
        self, request: ConversationRequest, creds: Credentials, attempt: int, max_attempts: int
    ) -> HttpCall:
        """The ``GenerateAssistantResponse`` attempt for ``request``."""
        check_origin(request.origin)
        changes: dict[str, Any] = {}
        if request.profile_arn is None and creds.profile_arn:
            changes["profile_arn"] = creds.profile_arn
        if creds.kind == "api_key" and request.origin != "AI_EDITOR":
            changes["origin"] = "AI_EDITOR"
        body = request_to_bytes(replace(request, **changes) if changes else request)
        return self._call(
            GENERATE_TARGET, _STREAMING_AGENTS, body, "", creds, attempt, max_attempts
        )

    def list_models_call(
        self,
        creds: Credentials,
        attempt: int,
        max_attempts: int,
        *,
        origin: str | None,
        next_token: str | None,
    ) -> HttpCall:
        """One ``ListAvailableModels`` page, as kiro-cli sends it (query and body)."""
        params = {"origin": self.origin_for(creds, origin)}
        if creds.profile_arn:
            params["profileArn"] = creds.profile_arn
        body: dict[str, Any] = dict(params)
        if next_token:
            body["nextToken"] = next_token
        query = "?" + urlencode(params)
        content = _json_bytes(body)
        return self._call(
            LIST_MODELS_TARGET, _RUNTIME_AGENTS, content, query, creds, attempt, max_attempts
        )

    def usage_limits_call(self, creds: Credentials, attempt: int, max_attempts: int) -> HttpCall:
        """The ``GetUsageLimits`` call (origin ``AI_EDITOR``, resource ``AGENTIC_REQUEST``)."""
        body: dict[str, Any] = {"origin": "AI_EDITOR"}
        if creds.profile_arn:
            body["profileArn"] = creds.profile_arn
        body["resourceType"] = "AGENTIC_REQUEST"
        return self._call(
            USAGE_LIMITS_TARGET,
            _RUNTIME_AGENTS,
            _json_bytes(body),
            "",
            creds,
            attempt,
            max_attempts,
        )

    def _call(
        self,
        target: str,
        agents: tuple[str, str],
        content: bytes,
        query: str,
        creds: Credentials,
        attempt: int,
        max_attempts: int,
    ) -> HttpCall:
        invocation_id = str(uuid.uuid4())
        headers = {
            "accept": "*/*",
            "accept-encoding": "gzip",
            "content-type": "application/x-amz-json-1.0",
            "x-amz-target": target,
            "user-agent": agents[0],
            "x-amz-user-agent": agents[1],
            "x-amzn-codewhisperer-optout": "true",
            "amz-sdk-invocation-id": invocation_id,
            "amz-sdk-request": f"attempt={attempt}; max={max(max_attempts, attempt)}",
        }
        if creds.kind == "api_key":
            headers["x-amzn-kiro-agent-mode"] = "vibe"
        headers.update(creds.auth_headers())
        url = f"{self.url_for(creds)}/{query}"
        return HttpCall("POST", url, target, invocation_id, attempt, headers, content)


def _json_bytes(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def parse_json_body(body: bytes, *, what: str) -> dict[str, Any]:
    """A JSON object response body, or :class:`KiroProtocolError` saying what was expected."""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise KiroProtocolError(
            f"Kiro's {what} answer is not a JSON object ({len(body)} bytes). Check base_url / "
            "KIRO_API_URL; a proxy may be answering instead of Kiro."
        )
    return data
