"""What ``kiro-lc status`` shows: the credentials source and what can be done with it, no token."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from kiro_lc.auth.credentials import Credentials, StoredToken

__all__ = [
    "AuthStatus",
    "format_relative_expiry",
    "format_status",
    "status_of_static",
    "status_of_token",
]

SourceKind = Literal["api_key", "access_token", "kiro_cli_db", "kiro_ide_token_file"]

_LOGIN_NAMES = {
    "api_key": "API key",
    "access_token": "raw access token",
    "social": "social (Google / GitHub)",
    "oidc": "AWS Builder ID / IAM Identity Center",
    "external_idp": "external identity provider",
}
_SOURCE_NAMES = {
    "api_key": "API key",
    "access_token": "access token",
    "kiro_cli_db": "Kiro CLI database",
    "kiro_ide_token_file": "Kiro IDE token file",
}


@dataclass(frozen=True)
class AuthStatus:
    """A summary of the credentials in use; holds no secret.

    ``path`` is the file (``~`` for home) or, for an API key or raw token, where it was set.
    ``login_kind`` is ``api_key``, ``access_token``, ``social``, ``oidc`` or ``external_idp``.
    """

    source_kind: SourceKind
    source: str
    path: str | None
    login_kind: str
    region: str
    profile_arn: str | None
    expires_at: datetime | None
    can_refresh: bool
    can_write_back: bool


def status_of_static(creds: Credentials, origin: str) -> AuthStatus:
    """Status of an API key or raw access token given as argument or environment variable."""
    kind: SourceKind = "api_key" if creds.kind == "api_key" else "access_token"
    return AuthStatus(kind, origin, None, kind, creds.region, creds.profile_arn, None, False, False)


def status_of_token(
    token: StoredToken,
    *,
    source_kind: SourceKind,
    path: str,
    region: str,
    profile_arn: str | None,
    can_write_back: bool,
) -> AuthStatus:
    """Status of a stored Kiro login."""
    can_refresh = token.refresh_token is not None and (
        (token.login == "social")
        or (token.login == "oidc" and bool(token.client_id) and token.client_secret is not None)
        or (token.login == "external_idp" and bool(token.token_endpoint))
    )
    return AuthStatus(
        source_kind=source_kind,
        source=token.location,
        path=path,
        login_kind=token.login,
        region=region,
        profile_arn=profile_arn,
        expires_at=token.expires_at,
        can_refresh=can_refresh,
        can_write_back=can_write_back and can_refresh,
    )


def _span(seconds: float) -> str:
    if seconds < 60:
        return f"{int(seconds)} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    return f"{hours // 24} days"


def format_relative_expiry(expires_at: datetime | None, now: datetime | None = None) -> str:
    """``expires in 47 min`` / ``expired 3 min ago`` / ``no expiry recorded``."""
    if expires_at is None:
        return "no expiry recorded"
    now = now or datetime.now(timezone.utc)
    delta = (expires_at - now).total_seconds()
    if math.isclose(delta, 0.0, abs_tol=0.5) or delta > 0:
        return f"expires in {_span(max(delta, 0.0))}"
    return f"expired {_span(-delta)} ago"


def format_status(status: AuthStatus, now: datetime | None = None) -> str:
    """Human-readable lines for ``kiro-lc status``."""
    if status.source_kind in ("api_key", "access_token"):
        refresh = "no (set a new one when it stops working)"
        expiry = "unknown (not recorded for this kind of credential)"
    else:
        refresh = "yes" if status.can_refresh else "no (sign in to Kiro again when it expires)"
        expiry = format_relative_expiry(status.expires_at, now)
    rows = [
        ("Source", f"{_SOURCE_NAMES[status.source_kind]}: {status.path or status.source}"),
        ("Login", _LOGIN_NAMES.get(status.login_kind, status.login_kind)),
        ("Region", status.region),
        ("Profile ARN", status.profile_arn or "(none)"),
        ("Access token", expiry),
        ("Refresh", refresh),
        ("Write-back", "yes" if status.can_write_back else "no"),
    ]
    return "\n".join(f"{label + ':':<14}{value}" for label, value in rows)
