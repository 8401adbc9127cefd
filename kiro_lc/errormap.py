"""Turn Kiro's HTTP error responses and stream exception frames into :mod:`kiro_lc.errors`.

Pure apart from reading the clock for an HTTP-date ``Retry-After``. The table this follows is
kiro-protocol.md §6.1. Every message says what happened and what to do; server text is quoted
(whitespace collapsed, cut to ~300 characters, anything token-shaped redacted) and request
headers are never looked at, so no credential can leak into an error.

Capacity shortages (429 ``INSUFFICIENT_MODEL_CAPACITY``, 500 ``MODEL_TEMPORARILY_UNAVAILABLE``,
"disabled for capacity") all become :class:`~kiro_lc.errors.KiroModelUnavailableError`: it is
retryable (a :class:`~kiro_lc.errors.KiroAPIError`), keeps ``status`` and ``retry_after``, and
one ``except`` clause lets callers switch model whichever way Kiro reported the shortage.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from kiro_lc import models
from kiro_lc.errors import (
    KiroAccountSuspendedError,
    KiroAPIError,
    KiroAuthError,
    KiroContextOverflowError,
    KiroError,
    KiroInvalidRequestError,
    KiroModelNotFoundError,
    KiroModelUnavailableError,
    KiroPermissionError,
    KiroQuotaExceededError,
    KiroRateLimitError,
)
from kiro_lc.protocol import StreamException

__all__ = ["error_from_exception", "error_from_response", "is_bearer_invalid"]

MAX_SERVER_TEXT = 300
FALLBACK_MODELS = ("claude-haiku-4-5", "claude-sonnet-4-5")

# Exception frames carry no HTTP status; classify them like the HTTP error they stand for.
_EXCEPTION_STATUS = {
    "ThrottlingException": 429,
    "ServiceQuotaExceededException": 402,
    "ValidationException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
}

_SECRETS = re.compile(
    r"(?i)\bbearer\s+[A-Za-z0-9+/_.~=-]{12,}|\bksk_[A-Za-z0-9_-]+|[A-Za-z0-9+/_.=-]{64,}",
)
_OVERFLOW_MARKERS = (
    "content_length_exceeds_threshold",
    "context window is full",
    "input is too long",
    "prompt is too long",
)
_CAPACITY_REASONS = ("insufficient_model_capacity", "model_temporarily_unavailable")
_CAPACITY_TEXT = (
    "capacity",
    "temporarily unavailable",
    "temporarily busy",
    "high load",
    "high traffic",
)
_DISABLED_TEXT = ("model is disabled", "model has been disabled", "model is currently disabled")
_BEARER_MARKERS = ("bearer token", "token is invalid", "token has expired", "expiredtoken")


@dataclass(frozen=True)
class _Problem:
    """One failure, normalised from an HTTP response or an exception frame."""

    status: int | None  # the HTTP status; None for exception frames
    kind: int  # the status used to classify (exception frames get a stand-in)
    where: str  # "HTTP 400" or "ThrottlingException in the response stream"
    reason: str | None
    error_type: str | None
    text: str  # server text, safe to show; "" when there is none
    raw_text: str  # server text as received, only for matching; never shown
    request_id: str | None
    retry_after: float | None
    model_id: str | None

    @property
    def haystack(self) -> str:
        return " ".join(p for p in (self.reason, self.error_type, self.raw_text) if p).lower()

    def has(self, *markers: str) -> bool:
        hay = self.haystack
        return any(m in hay for m in markers)

    def said(self) -> str:
        return f' Kiro said: "{self.text}"' if self.text else ""

    def model(self) -> str:
        return f"model {self.model_id!r}" if self.model_id else "the requested model"


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def error_from_response(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    model_id: str | None = None,
    valid_models: Sequence[str] | None = None,
) -> KiroError:
    """The :class:`~kiro_lc.errors.KiroError` for a failed HTTP response from Kiro.

    Reads ``message``/``reason``/``__type`` (also nested ``error.reason`` and OIDC
    ``error``/``error_description``) from a JSON body, the request id from ``x-amzn-RequestId``
    and ``Retry-After`` (seconds or HTTP date). ``valid_models`` (e.g. from ListAvailableModels)
    feeds the "valid models" hint of an ``INVALID_MODEL_ID`` error.
    """
    message, reason, error_type = _parse_body(body)
    header_type = _header(headers, "x-amzn-ErrorType")
    problem = _Problem(
        status=status,
        kind=status,
        where=f"HTTP {status}",
        reason=reason,
        error_type=error_type or (_normalise_type(header_type) if header_type else None),
        text=_safe_text(message),
        raw_text=message or "",
        request_id=_header(headers, "x-amzn-RequestId") or _header(headers, "x-amz-request-id"),
        retry_after=_retry_after(_header(headers, "Retry-After")),
        model_id=model_id,
    )
    return _build(problem, valid_models)


def error_from_exception(ev: StreamException, *, model_id: str | None = None) -> KiroError:
    """The :class:`~kiro_lc.errors.KiroError` for an exception/error frame in the stream.

    ``ContentLengthExceededException`` normally ends a response with stop reason ``max_tokens``
    instead of reaching here; if it does, it maps to :class:`~kiro_lc.errors.KiroAPIError`.
    """
    exception_type = _normalise_type(ev.exception_type) or "UnknownException"
    problem = _Problem(
        status=None,
        kind=_EXCEPTION_STATUS.get(exception_type, 500),
        where=f"{exception_type} in the response stream",
        reason=ev.reason,
        error_type=exception_type,
        text=_safe_text(ev.message),
        raw_text=ev.message,
        request_id=None,
        retry_after=None,
        model_id=model_id,
    )
    return _build(problem, None)


def is_bearer_invalid(status: int, body: bytes) -> bool:
    """Whether a response means "the access token is stale": refresh it and retry once.

    True for any 401 and for a 403 whose text says the bearer token is invalid or expired;
    never for a suspended account.
    """
    if status not in (401, 403):
        return False
    hay = " ".join(p for p in _parse_body(body) if p).lower()
    if "suspended" in hay:
        return False
    return status == 401 or any(m in hay for m in _BEARER_MARKERS)


# ---------------------------------------------------------------------------------------------
# Classification
# ---------------------------------------------------------------------------------------------

_Verdict = tuple[type[KiroError], str]


def _build(problem: _Problem, valid_models: Sequence[str] | None) -> KiroError:
    cls, message = (
        _classify_access(problem)
        or _classify_request(problem, valid_models)
        or _classify_server(problem)
    )
    error = cls(
        message,
        status=problem.status,
        reason=problem.reason or problem.error_type,
        request_id=problem.request_id,
        retry_after=problem.retry_after,
    )
    if problem.kind < 400 or (problem.kind == 404 and cls is KiroAPIError):
        error.is_retryable = False  # a wrong URL or a redirect does not fix itself
    return error


def _classify_access(p: _Problem) -> _Verdict | None:
    """Credits, credentials, permissions."""
    if p.kind == 402 or p.has("monthly_request_count", "servicequotaexceeded"):
        return KiroQuotaExceededError, (
            f"Your Kiro credits for this month are used up ({p.where}). `kiro-lc usage` shows "
            "when they reset; upgrade your Kiro plan or wait for the reset." + p.said()
        )
    if p.kind in (401, 403) and p.has("temporarily_suspended", "suspended"):
        return KiroAccountSuspendedError, (
            f"Your Kiro account is suspended ({p.where}); retrying will not help. Check the "
            "account in Kiro or contact Kiro support." + p.said()
        )
    if p.kind == 401 or (p.kind == 403 and p.has(*_BEARER_MARKERS)):
        return KiroAuthError, (
            f"Kiro rejected the access token ({p.where}). Open Kiro (or run `kiro-cli login`) "
            "and sign in again." + p.said()
        )
    if p.kind == 403:
        return KiroPermissionError, (
            f"Kiro denied access ({p.where}). This account or profile may not be allowed to "
            "use this model or feature; check the Kiro subscription and KIRO_PROFILE_ARN, "
            "or sign in again with the right account." + p.said()
        )
    return None


def _classify_request(p: _Problem, valid_models: Sequence[str] | None) -> _Verdict | None:
    """Capacity, context size, model ids, rate limits and malformed requests."""
    if p.has(*_CAPACITY_REASONS, *_DISABLED_TEXT) or (p.kind >= 429 and p.has(*_CAPACITY_TEXT)):
        return KiroModelUnavailableError, _capacity_message(p)
    if p.kind == 413 or p.has(*_OVERFLOW_MARKERS):
        return KiroContextOverflowError, (
            f"The conversation is too long for the model's context window ({p.where}). "
            "Start a new conversation or trim history (e.g. langchain_core's trim_messages "
            "or LangChain's SummarizationMiddleware)." + p.said()
        )
    if p.has("invalid_model_id") or (p.kind == 404 and p.has("model")):
        return KiroModelNotFoundError, _unknown_model_message(p, valid_models)
    if p.kind == 429:
        wait = f"Kiro asked to wait {p.retry_after:g} s. " if p.retry_after is not None else ""
        return KiroRateLimitError, (
            f"Kiro is rate-limiting requests ({p.where}). {wait}Wait a moment and retry; "
            "sending fewer requests at once helps." + p.said()
        )
    if p.kind == 404:
        return KiroAPIError, (
            f"Kiro has no such endpoint ({p.where}). Check KIRO_API_URL and KIRO_REGION "
            "(default https://q.us-east-1.amazonaws.com)." + p.said()
        )
    for check in _REQUEST_HINTS:
        verdict = check(p)
        if verdict is not None:
            return verdict
    if 400 <= p.kind < 500 and p.kind != 408:
        return KiroInvalidRequestError, (
            f"Kiro rejected the request ({p.where}). Check the messages, tools and model "
            "settings sent." + p.said()
        )
    return None


def _classify_server(p: _Problem) -> _Verdict:
    """Everything left: 408, 5xx, unknown exception frames, odd statuses."""
    if p.kind < 400:
        return KiroAPIError, (
            f"Kiro answered with an unexpected {p.where}. Check KIRO_API_URL; a proxy may be "
            "redirecting the request." + p.said()
        )
    return KiroAPIError, (
        f"Kiro failed on its side ({p.where}). This is usually temporary: retry in a moment."
        + p.said()
    )


def _hint_improperly_formed(p: _Problem) -> _Verdict | None:
    if not p.has("improperly formed"):
        return None
    return KiroInvalidRequestError, (
        f"Kiro rejected the request as improperly formed ({p.where}). Usual causes: history "
        "that does not alternate user/assistant, a tool call without its result in the next "
        "message, an empty message, a tool name over 64 characters or an empty tool "
        "description, or a request that is too large (too many tools or images)." + p.said()
    )


def _hint_profile_arn(p: _Problem) -> _Verdict | None:
    if not p.has("profilearn"):
        return None
    return KiroInvalidRequestError, (
        f"Kiro needs a valid profile ARN for this endpoint ({p.where}). Sign in with kiro-cli "
        "or the Kiro IDE so kiro-lc can find it, or set KIRO_PROFILE_ARN." + p.said()
    )


def _hint_thinking(p: _Problem) -> _Verdict | None:
    if p.has("additionalmodelrequestfields"):
        what = "does not support native thinking settings; turn thinking off for it"
    elif p.has("thinking_signature_invalid"):
        what = "rejected a replayed thinking signature; drop old thinking blocks from history"
    else:
        return None
    return KiroInvalidRequestError, f"The {p.model()} {what} ({p.where})." + p.said()


def _hint_tool_pairing(p: _Problem) -> _Verdict | None:
    if not p.has("tool_use_result_mismatch"):
        return None
    return KiroInvalidRequestError, (
        f"Tool calls and tool results do not match ({p.where}): every tool call must be "
        "answered by exactly one tool result in the next message, and no result may refer to "
        "an unknown call." + p.said()
    )


_REQUEST_HINTS: tuple[Callable[[_Problem], _Verdict | None], ...] = (
    _hint_improperly_formed,
    _hint_profile_arn,
    _hint_thinking,
    _hint_tool_pairing,
)


def _capacity_message(p: _Problem) -> str:
    current = models.resolve_model_id(p.model_id) if p.model_id else None
    others = [m for m in FALLBACK_MODELS if models.resolve_model_id(m) != current]
    if len(others) < len(FALLBACK_MODELS):
        others.append("auto")
    return (
        f"The {p.model()} is out of capacity right now ({p.where}); try "
        f"{' or '.join(others)}, or retry later." + p.said()
    )


def _unknown_model_message(p: _Problem, valid_models: Sequence[str] | None) -> str:
    valid = list(valid_models) if valid_models else _known_friendly_ids()
    guesses = models.suggest(p.model_id, valid) if p.model_id else []
    did_you_mean = f" Did you mean {guesses[0]!r}?" if guesses else ""
    info = models.KNOWN_MODELS.get(models.resolve_model_id(p.model_id or ""))
    note = f" Note: {info.note}" if info and info.note else ""
    return (
        f"Kiro does not know the {p.model()} ({p.where}).{did_you_mean} Valid models: "
        f"{', '.join(valid)}. `kiro-lc models` lists the models of your account.{note}" + p.said()
    )


def _known_friendly_ids() -> list[str]:
    return [info.friendly_ids[0] for info in models.KNOWN_MODELS.values()]


# ---------------------------------------------------------------------------------------------
# Parsing helpers
# ---------------------------------------------------------------------------------------------


def _parse_body(body: bytes) -> tuple[str | None, str | None, str | None]:
    """``(message, reason, error type)`` from an error body; non-JSON text becomes the
    message."""
    text = body.decode("utf-8", errors="replace").strip() if body else ""
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return text or None, None, None
    if not isinstance(data, dict):
        return (text or None), None, None
    message = _first_str(data, "message", "Message", "error_description")
    reason = _first_str(data, "reason")
    error_type = _first_str(data, "__type", "code")
    nested = data.get("error")
    if isinstance(nested, dict):
        message = message or _first_str(nested, "message", "Message")
        reason = reason or _first_str(nested, "reason")
        error_type = error_type or _first_str(nested, "__type", "type", "code")
    elif isinstance(nested, str):  # OIDC: {"error": "invalid_grant", "error_description": ...}
        error_type = error_type or nested
    return message, reason, _normalise_type(error_type) if error_type else None


def _first_str(data: Mapping[str, object], *names: str) -> str | None:
    for name in names:
        value = data.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _normalise_type(value: str) -> str:
    """``com.amazon.x#ThrottlingException:http://...`` → ``ThrottlingException``."""
    return value.rsplit("#", 1)[-1].split(":", 1)[0].strip()


def _safe_text(text: str | None) -> str:
    if not text:
        return ""
    text = _SECRETS.sub("[redacted]", " ".join(text.split()))
    if len(text) > MAX_SERVER_TEXT:
        text = text[: MAX_SERVER_TEXT - 1].rstrip() + "…"
    return text


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (never negative), from delay-seconds or an HTTP date."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    return max(seconds, 0.0) if math.isfinite(seconds) else None
