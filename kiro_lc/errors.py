"""Every error kiro-lc raises, in one tree.

Each class also subclasses the matching ``langchain_core.exceptions`` class, so LangChain
middleware (``ModelRetryMiddleware`` reads ``is_retryable``; ``SummarizationMiddleware`` catches
``ContextOverflowError``) treats Kiro failures like any other provider's::

    KiroError                                   base of everything below
    ├── KiroProtocolError                       Kiro sent bytes or JSON we cannot understand
    │   └── EventStreamError                    a malformed event-stream frame (CRC, length, header)
    ├── KiroAuthError            (ModelAuthenticationError)   no usable credentials
    │   ├── KiroCredentialsNotFoundError        nothing found in any source: sign in to Kiro
    │   └── KiroSessionExpiredError             refresh token rejected: sign in again
    ├── KiroPermissionError      (ModelPermissionDeniedError) HTTP 403 that a refresh cannot fix
    │   └── KiroAccountSuspendedError           reason TEMPORARILY_SUSPENDED
    ├── KiroInvalidRequestError  (ModelInvalidRequestError)   HTTP 400: the request was rejected
    │   └── KiroContextOverflowError (ContextOverflowError)   the conversation is too long
    ├── KiroModelNotFoundError   (ModelNotFoundError)         INVALID_MODEL_ID / unknown model
    ├── KiroQuotaExceededError   (ModelRateLimitError)        HTTP 402: monthly credits used up
    ├── KiroRateLimitError       (ModelRateLimitError)        HTTP 429 / ThrottlingException
    ├── KiroAPIError             (ModelAPIError)              HTTP 5xx, exception frames
    │   └── KiroModelUnavailableError           model disabled or out of capacity
    ├── KiroConnectionError      (ModelConnectionError)       unreachable, reset, truncated stream
    └── KiroTimeoutError         (ModelTimeoutError)          no first byte / idle stream

Every message says what happened and what to do. No message, ``repr`` or attribute of these
errors ever holds a token: build them from server-provided text and our own words only.
"""

from __future__ import annotations

from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelTimeoutError,
)

__all__ = [
    "EventStreamError",
    "KiroAPIError",
    "KiroAccountSuspendedError",
    "KiroAuthError",
    "KiroConnectionError",
    "KiroContextOverflowError",
    "KiroCredentialsNotFoundError",
    "KiroError",
    "KiroInvalidRequestError",
    "KiroModelNotFoundError",
    "KiroModelUnavailableError",
    "KiroPermissionError",
    "KiroProtocolError",
    "KiroQuotaExceededError",
    "KiroRateLimitError",
    "KiroSessionExpiredError",
    "KiroTimeoutError",
]


class KiroError(Exception):
    """Base class of every kiro-lc error.

    Attributes (all optional, ``None`` when unknown):
        status: the HTTP status of the failed response.
        reason: Kiro's machine-readable ``reason`` (``MONTHLY_REQUEST_COUNT``...) or exception type.
        request_id: the ``x-amzn-RequestId`` of the failed call, to quote in bug reports.
        retry_after: seconds the server asked us to wait (``Retry-After``).
    """

    is_retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason
        self.request_id = request_id
        self.retry_after = retry_after

    def __str__(self) -> str:
        if self.request_id:
            return f"{self.message} (request id {self.request_id})"
        return self.message

    def __repr__(self) -> str:
        parts = [repr(self.message)]
        for name in ("status", "reason", "request_id"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def _render_traceback_(self) -> list[str]:
        """Short IPython rendering: the error's name and its actionable message, no frames."""
        return [f"{type(self).__name__}: {self}"]


class KiroProtocolError(KiroError):
    """Kiro answered with bytes or JSON that do not follow the protocol kiro-lc knows."""


class EventStreamError(KiroProtocolError):
    """A malformed AWS event-stream frame: bad CRC, impossible length, bad or duplicate header.

    ``offset`` is the byte offset in the stream (counted from the first byte fed) where the bad
    frame starts.
    """

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class KiroAuthError(KiroError, ModelAuthenticationError):
    """Kiro credentials are missing, invalid or expired."""


class KiroCredentialsNotFoundError(KiroAuthError):
    """No Kiro credentials in any source; the message lists where kiro-lc looked."""


class KiroSessionExpiredError(KiroAuthError):
    """The refresh token was rejected (``invalid_grant``): the user must sign in to Kiro again."""


class KiroPermissionError(KiroError, ModelPermissionDeniedError):
    """HTTP 403 that a token refresh does not fix."""


class KiroAccountSuspendedError(KiroPermissionError):
    """The Kiro account is suspended (``TEMPORARILY_SUSPENDED``); retrying cannot help."""


class KiroInvalidRequestError(KiroError, ModelInvalidRequestError):
    """Kiro rejected the request (HTTP 400), e.g. ``Improperly formed request.``."""


class KiroContextOverflowError(KiroInvalidRequestError, ContextOverflowError):
    """The conversation no longer fits the model's context window."""


class KiroModelNotFoundError(KiroError, ModelNotFoundError):
    """The model id is unknown to Kiro (``INVALID_MODEL_ID``); the message lists valid ids."""


class KiroQuotaExceededError(KiroError, ModelRateLimitError):
    """The account's monthly credits are used up (HTTP 402 ``MONTHLY_REQUEST_COUNT``).

    Not retryable: waiting a few seconds will not bring credits back.
    """

    is_retryable = False


class KiroRateLimitError(KiroError, ModelRateLimitError):
    """Kiro throttled the request (HTTP 429 or a ``ThrottlingException`` frame)."""

    is_retryable = True


class KiroAPIError(KiroError, ModelAPIError):
    """Kiro failed on its side (HTTP 5xx or an exception frame in the stream)."""

    is_retryable = True


class KiroModelUnavailableError(KiroAPIError):
    """The model is disabled or out of capacity right now; another model usually works."""


class KiroConnectionError(KiroError, ModelConnectionError):
    """Kiro could not be reached, or the connection broke (reset, truncated stream)."""

    is_retryable = True


class KiroTimeoutError(KiroError, ModelTimeoutError):
    """Kiro did not answer in time (no first byte, or the stream went idle)."""

    is_retryable = True
