"""The emulator's request log: :class:`RecordedRequest`, with every secret masked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MASK = "***"
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-amz-security-token"}
)
SECRET_FIELDS = frozenset(
    {
        "accessToken",
        "access_token",
        "refreshToken",
        "refresh_token",
        "clientSecret",
        "client_secret",
        "idToken",
        "id_token",
        "apiKey",
        "api_key",
    }
)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the emulator answered.

    ``headers`` has lower-cased names and masked secrets (``Authorization: Bearer ***``);
    ``body`` is the parsed JSON (or form) body with token fields masked, ``None`` otherwise;
    ``target`` is the operation (``x-amz-target``, or the path's operation for REST calls);
    ``account`` the authenticated account's name; ``problems`` the validation findings, each a
    readable sentence; ``status`` the HTTP status sent; ``client_port`` the client's TCP port
    (equal ports on consecutive requests mean the client reused its connection).
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw_size: int
    target: str | None
    account: str | None
    problems: list[str] = field(default_factory=list)
    status: int = 0
    request_id: str = ""
    client_port: int | None = None

    @property
    def operation(self) -> str | None:
        """The operation name without its service prefix (``GenerateAssistantResponse``)."""
        return self.target.rsplit(".", 1)[-1] if self.target else None


def mask_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-case header names; secret values become ``***`` (``Bearer ***`` keeps the scheme)."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key in SECRET_HEADERS:
            scheme = value.split(" ", 1)[0] if " " in value else ""
            value = f"{scheme} {MASK}" if scheme else MASK
        out[key] = value
    return out


def mask_body(value: Any) -> Any:
    """A copy of a JSON value with every token-bearing field replaced by ``***``."""
    if isinstance(value, dict):
        return {k: MASK if k in SECRET_FIELDS else mask_body(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_body(v) for v in value]
    return value
