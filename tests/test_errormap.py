"""kiro_lc.errormap: the kiro-protocol.md §6.1 table, row by row."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from kiro_lc.errormap import error_from_exception, error_from_response, is_bearer_invalid
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

REQUEST_ID = "5c0ffee0-1234-4abc-9def-000000000001"


@dataclass(frozen=True)
class Row:
    """One HTTP error and what kiro-lc must make of it."""

    status: int
    body: object  # dict → JSON; str → raw text
    cls: type[KiroError]
    retryable: bool
    hints: tuple[str, ...]
    reason: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    model_id: str | None = "claude-sonnet-4.5"

    def raw_body(self) -> bytes:
        return self.body.encode() if isinstance(self.body, str) else json.dumps(self.body).encode()


ROWS = {
    "400 improperly formed": Row(
        400,
        {"message": "Improperly formed request.", "reason": None},
        KiroInvalidRequestError,
        False,
        ("improperly formed", "alternate", "tool call without its result", "64 characters"),
    ),
    "400 content length": Row(
        400,
        {"message": "Input exceeds", "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"},
        KiroContextOverflowError,
        False,
        ("too long", "start a new conversation or trim history"),
        reason="CONTENT_LENGTH_EXCEEDS_THRESHOLD",
    ),
    "400 context window full": Row(
        400,
        {"message": "Context window is full"},
        KiroContextOverflowError,
        False,
        ("start a new conversation or trim history",),
    ),
    "400 input too long": Row(
        400,
        "Input is too long for requested model.",
        KiroContextOverflowError,
        False,
        ("start a new conversation or trim history",),
    ),
    "400 invalid model": Row(
        400,
        {
            "message": "Invalid model. Please select a different model.",
            "reason": "INVALID_MODEL_ID",
        },
        KiroModelNotFoundError,
        False,
        ("does not know the model 'claude-sonet-4-5'", "claude-sonnet-4-5", "kiro-lc models"),
        reason="INVALID_MODEL_ID",
        model_id="claude-sonet-4-5",
    ),
    "400 profileArn required": Row(
        400,
        {"message": "profileArn is required for this request."},
        KiroInvalidRequestError,
        False,
        ("profile ARN", "KIRO_PROFILE_ARN"),
    ),
    "400 thinking unsupported": Row(
        400,
        {"message": "additionalModelRequestFields is not supported for this model"},
        KiroInvalidRequestError,
        False,
        ("turn thinking off", "claude-sonnet-4.5"),
    ),
    "400 thinking signature": Row(
        400,
        {"message": "bad signature", "reason": "THINKING_SIGNATURE_INVALID"},
        KiroInvalidRequestError,
        False,
        ("drop old thinking blocks",),
        reason="THINKING_SIGNATURE_INVALID",
    ),
    "400 tool pairing": Row(
        400,
        {"message": "Tool use mismatch", "reason": "TOOL_USE_RESULT_MISMATCH"},
        KiroInvalidRequestError,
        False,
        ("every tool call must be answered",),
        reason="TOOL_USE_RESULT_MISMATCH",
    ),
    "400 quota as ServiceQuotaExceededException": Row(
        400,
        {
            "__type": "com.amazon.kiro#ServiceQuotaExceededException",
            "message": "You have reached the limit",
            "reason": "MONTHLY_REQUEST_COUNT",
        },
        KiroQuotaExceededError,
        False,
        ("credits", "kiro-lc usage", "upgrade", "wait"),
        reason="MONTHLY_REQUEST_COUNT",
    ),
    "401 bearer invalid": Row(
        401,
        {"message": "The bearer token included in the request is invalid."},
        KiroAuthError,
        False,
        ("open kiro", "sign in again"),
    ),
    "402 monthly limit": Row(
        402,
        {"message": "You have reached the limit.", "reason": "MONTHLY_REQUEST_COUNT"},
        KiroQuotaExceededError,
        False,
        ("credits", "used up", "kiro-lc usage", "reset"),
        reason="MONTHLY_REQUEST_COUNT",
    ),
    "402 nested error.reason": Row(
        402,
        {"error": {"message": "Overage limit reached", "reason": "MONTHLY_REQUEST_COUNT"}},
        KiroQuotaExceededError,
        False,
        ("kiro-lc usage", "overage limit reached"),
        reason="MONTHLY_REQUEST_COUNT",
    ),
    "403 bearer invalid": Row(
        403,
        {"message": "The bearer token included in the request is invalid."},
        KiroAuthError,
        False,
        ("sign in again",),
    ),
    "403 suspended": Row(
        403,
        {
            "__type": "AccessDeniedException",
            "message": "Account suspended",
            "reason": "TEMPORARILY_SUSPENDED",
        },
        KiroAccountSuspendedError,
        False,
        ("suspended", "retrying will not help"),
        reason="TEMPORARILY_SUSPENDED",
    ),
    "403 other": Row(
        403,
        {"__type": "AccessDeniedException", "message": "User is not authorized"},
        KiroPermissionError,
        False,
        ("denied", "subscription"),
        reason="AccessDeniedException",
    ),
    "404 model": Row(
        404,
        {"message": "Model not found"},
        KiroModelNotFoundError,
        False,
        ("does not know the model", "kiro-lc models"),
    ),
    "404 endpoint": Row(
        404,
        "<html>Not Found</html>",
        KiroAPIError,
        False,
        ("no such endpoint", "KIRO_API_URL"),
    ),
    "429 throttled": Row(
        429,
        {
            "__type": "ThrottlingException",
            "message": "Too many requests, please wait before trying again.",
            "reason": "USER_REQUEST_RATE_EXCEEDED",
        },
        KiroRateLimitError,
        True,
        ("rate-limiting", "wait 7 s", "retry"),
        reason="USER_REQUEST_RATE_EXCEEDED",
        headers={"Retry-After": "7"},
    ),
    "429 capacity": Row(
        429,
        {"message": "I am experiencing high traffic", "reason": "INSUFFICIENT_MODEL_CAPACITY"},
        KiroModelUnavailableError,
        True,
        ("out of capacity", "claude-haiku-4-5", "auto"),
        reason="INSUFFICIENT_MODEL_CAPACITY",
    ),
    "500 model temporarily unavailable": Row(
        500,
        {
            "message": "Encountered unexpectedly high load",
            "reason": "MODEL_TEMPORARILY_UNAVAILABLE",
        },
        KiroModelUnavailableError,
        True,
        ("out of capacity", "try"),
        reason="MODEL_TEMPORARILY_UNAVAILABLE",
        model_id="claude-opus-4.5",
    ),
    "400 model disabled": Row(
        400,
        {"message": "This model is currently disabled due to capacity"},
        KiroModelUnavailableError,
        True,
        ("try claude-haiku-4-5 or claude-sonnet-4-5",),
        model_id="claude-opus-4.5",
    ),
    "502 generic": Row(
        502, "Bad Gateway", KiroAPIError, True, ("failed on its side", "retry in a moment")
    ),
    "503 empty body": Row(503, "", KiroAPIError, True, ("failed on its side",)),
}


@pytest.mark.parametrize("row", list(ROWS.values()), ids=list(ROWS))
def test_http_error_table(row: Row) -> None:
    headers = {"x-amzn-RequestId": REQUEST_ID, **row.headers}
    error = error_from_response(row.status, row.raw_body(), headers, model_id=row.model_id)
    assert type(error) is row.cls
    assert error.status == row.status
    assert error.request_id == REQUEST_ID
    assert error.is_retryable is row.retryable
    if row.reason is not None:
        assert error.reason == row.reason
    text = error.message.lower()
    for hint in row.hints:
        assert hint.lower() in text, f"{hint!r} missing from {error.message!r}"
    assert str(error).endswith(f"(request id {REQUEST_ID})")


def test_retry_after_seconds_and_http_date() -> None:
    error = error_from_response(429, b"{}", {"retry-after": "2.5"})
    assert error.retry_after == 2.5
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=120), usegmt=True)
    error = error_from_response(503, b"", {"Retry-After": later})
    assert error.retry_after is not None
    assert 100 < error.retry_after <= 120
    past = format_datetime(datetime.now(timezone.utc) - timedelta(days=1), usegmt=True)
    assert error_from_response(503, b"", {"Retry-After": past}).retry_after == 0.0
    assert error_from_response(503, b"", {"Retry-After": "soon"}).retry_after is None


def test_request_id_header_is_case_insensitive() -> None:
    error = error_from_response(500, b"", {"X-AMZN-REQUESTID": "abc"})
    assert error.request_id == "abc"
    assert error_from_response(500, b"", {}).request_id is None


def test_error_type_from_header_and_oidc_bodies() -> None:
    error = error_from_response(
        400, b'{"message": "x"}', {"x-amzn-ErrorType": "ValidationException:http://internal"}
    )
    assert isinstance(error, KiroInvalidRequestError)
    assert error.reason == "ValidationException"
    oidc = b'{"error": "invalid_request", "error_description": "Invalid request"}'
    error = error_from_response(400, oidc, {})
    assert error.reason == "invalid_request"
    assert "Invalid request" in error.message


def test_valid_models_feed_the_model_not_found_hint() -> None:
    error = error_from_response(
        400,
        b'{"reason": "INVALID_MODEL_ID"}',
        {},
        model_id="claude-opus-5.1",
        valid_models=["auto", "claude-opus-5", "claude-sonnet-5"],
    )
    assert isinstance(error, KiroModelNotFoundError)
    assert "Did you mean 'claude-opus-5'?" in error.message
    assert "Valid models: auto, claude-opus-5, claude-sonnet-5." in error.message


def test_server_text_is_truncated_and_token_shaped_text_redacted() -> None:
    token = "aoa" + "Zx9" * 40
    body = json.dumps({"message": f"bad Bearer {token} and ksk_abcDEF123 " + "y " * 400})
    error = error_from_response(400, body.encode(), {"Authorization": f"Bearer {token}"})
    assert token not in error.message
    assert "ksk_abcDEF123" not in error.message
    assert "[redacted]" in error.message
    quoted = error.message.split("Kiro said: ", 1)[1]
    assert len(quoted) <= 300 + 2


def test_capacity_hint_skips_the_model_that_failed() -> None:
    error = error_from_response(
        429,
        b'{"reason": "INSUFFICIENT_MODEL_CAPACITY"}',
        {},
        model_id="claude-haiku-4-5",
    )
    assert "try claude-sonnet-4-5 or auto" in error.message
    assert error.status == 429


def test_redirect_and_endpoint_errors_are_not_retryable() -> None:
    redirect = error_from_response(302, b"", {})
    assert type(redirect) is KiroAPIError
    assert redirect.is_retryable is False
    assert KiroAPIError.is_retryable is True, "the instance override must not leak to the class"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (403, b'{"message": "The bearer token included in the request is invalid."}', True),
        (401, b"", True),
        (401, b'{"message": "The security token included in the request is expired"}', True),
        (403, b'{"message": "x", "reason": "TEMPORARILY_SUSPENDED"}', False),
        (401, b'{"message": "Account suspended"}', False),
        (403, b'{"message": "User is not authorized"}', False),
        (400, b'{"message": "The bearer token included in the request is invalid."}', False),
        (500, b"", False),
    ],
)
def test_is_bearer_invalid(status: int, body: bytes, expected: bool) -> None:
    assert is_bearer_invalid(status, body) is expected


@pytest.mark.parametrize(
    ("exception", "cls", "retryable", "hint"),
    [
        (
            StreamException("ThrottlingException", "Too many requests, please wait."),
            KiroRateLimitError,
            True,
            "rate-limiting",
        ),
        (
            StreamException("ThrottlingException", "x", "INSUFFICIENT_MODEL_CAPACITY"),
            KiroModelUnavailableError,
            True,
            "out of capacity",
        ),
        (
            StreamException("InternalServerException", "Something went wrong"),
            KiroAPIError,
            True,
            "failed on its side",
        ),
        (
            StreamException("InternalServerException", "Encountered unexpectedly high load"),
            KiroModelUnavailableError,
            True,
            "claude-haiku-4-5",
        ),
        (
            StreamException("ValidationException", "Improperly formed request."),
            KiroInvalidRequestError,
            False,
            "improperly formed",
        ),
        (
            StreamException("ValidationException", "Input is too long for requested model."),
            KiroContextOverflowError,
            False,
            "trim history",
        ),
        (
            StreamException("AccessDeniedException", "no", "TEMPORARILY_SUSPENDED"),
            KiroAccountSuspendedError,
            False,
            "suspended",
        ),
        (
            StreamException("AccessDeniedException", "not allowed"),
            KiroPermissionError,
            False,
            "denied",
        ),
        (
            StreamException("ServiceQuotaExceededException", "limit", "MONTHLY_REQUEST_COUNT"),
            KiroQuotaExceededError,
            False,
            "kiro-lc usage",
        ),
        (
            StreamException("ContentLengthExceededException", "output too long"),
            KiroAPIError,
            True,
            "ContentLengthExceededException",
        ),
        (StreamException("WeirdNewException", ""), KiroAPIError, True, "WeirdNewException"),
        (StreamException("", "?"), KiroAPIError, True, "UnknownException"),
    ],
)
def test_exception_frames(
    exception: StreamException, cls: type[KiroError], retryable: bool, hint: str
) -> None:
    error = error_from_exception(exception, model_id="claude-opus-4.5")
    assert type(error) is cls
    assert error.status is None
    assert error.is_retryable is retryable
    assert hint.lower() in error.message.lower()
    assert "response stream" in error.message
    assert error.reason == (exception.reason or exception.exception_type or "UnknownException")
