"""kiro-lc: the Claude models of an Amazon Kiro account, from Python.

``ChatKiro`` is a LangChain chat model; ``%load_ext kiro_lc`` adds the ``%%kiro`` notebook magic;
``kiro_lc.testing.KiroEmulator`` is a local Kiro for tests. Imports are lazy so that
``import kiro_lc`` (and ``%load_ext kiro_lc``) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kiro_lc._version import __version__

if TYPE_CHECKING:
    from kiro_lc.chat_models import ChatKiro
    from kiro_lc.errors import (
        EventStreamError,
        KiroAccountSuspendedError,
        KiroAPIError,
        KiroAuthError,
        KiroConnectionError,
        KiroContextOverflowError,
        KiroCredentialsNotFoundError,
        KiroError,
        KiroInvalidRequestError,
        KiroModelNotFoundError,
        KiroModelUnavailableError,
        KiroPermissionError,
        KiroProtocolError,
        KiroQuotaExceededError,
        KiroRateLimitError,
        KiroSessionExpiredError,
        KiroTimeoutError,
    )

__all__ = [
    "ChatKiro",
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
    "__version__",
    "load_ipython_extension",
    "unload_ipython_extension",
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext kiro_lc``: register ``%kiro`` / ``%%kiro`` (cheap: nothing else loads)."""
    from kiro_lc.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext kiro_lc``: remove the magics again."""
    from kiro_lc.magics import unload_ipython_extension as unload

    unload(ipython)


def __getattr__(name: str) -> Any:
    # Everything but the version loads on first use: the error tree pulls in langchain-core
    # (~0.1 s), which `%load_ext kiro_lc` should not pay for.
    if name == "ChatKiro":
        from kiro_lc.chat_models import ChatKiro

        return ChatKiro
    if name in __all__ and name.endswith("Error"):
        from kiro_lc import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'kiro_lc' has no attribute {name!r}")
