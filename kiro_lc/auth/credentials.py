"""The auth layer's values: ``Credentials`` for the transport, ``StoredToken`` inside.

Every secret is a ``pydantic.SecretStr``: its ``repr``/``str`` print ``**********``, so neither
value can leak a token through logging or a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import SecretStr

__all__ = [
    "DEFAULT_REGION",
    "Credentials",
    "CredentialsKind",
    "LoginKind",
    "StoredToken",
    "region_from_arn",
    "resolve_region",
]

DEFAULT_REGION = "us-east-1"

CredentialsKind = Literal["api_key", "bearer", "external_idp"]
"""How the transport must present the token (see ``Credentials.auth_headers``)."""

LoginKind = Literal["social", "oidc", "external_idp"]
"""Which sign-in produced a stored token; it alone decides the refresh endpoint."""


@dataclass(frozen=True)
class Credentials:
    """What one API request needs: the bearer token, how to send it, profile ARN and region.

    ``source`` describes where it came from (a path and key, or an environment variable) for
    ``kiro-lc status`` and error messages; it never holds a secret.
    """

    token: SecretStr
    kind: CredentialsKind
    profile_arn: str | None
    region: str
    expires_at: datetime | None = None
    source: str = ""

    def auth_headers(self) -> dict[str, str]:
        """``Authorization: Bearer …`` plus ``tokentype: API_KEY`` / ``TokenType: EXTERNAL_IDP``."""
        headers = {"Authorization": f"Bearer {self.token.get_secret_value()}"}
        if self.kind == "api_key":
            headers["tokentype"] = "API_KEY"
        elif self.kind == "external_idp":
            headers["TokenType"] = "EXTERNAL_IDP"
        return headers

    def same_token(self, other: Credentials) -> bool:
        """Whether ``other`` carries the very same token (used by ``force_refresh``)."""
        return self.token.get_secret_value() == other.token.get_secret_value()


@dataclass(frozen=True)
class StoredToken:
    """A token as a Kiro store holds it, with what refreshing it needs.

    ``key`` names the row (SQLite ``auth_kv`` key, or the token file's name); ``location`` is the
    human description used in ``Credentials.source``. ``region`` is the token's own region (where
    its refresh endpoint lives), not necessarily the API region.
    """

    login: LoginKind
    access_token: SecretStr | None
    refresh_token: SecretStr | None
    expires_at: datetime | None
    location: str
    key: str
    region: str | None = None
    profile_arn: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = field(default=None)
    token_endpoint: str | None = None
    scope: str | None = None

    @property
    def refresh_value(self) -> str | None:
        """The refresh token's text, or ``None`` (used for compare-and-swap and switch checks)."""
        return self.refresh_token.get_secret_value() if self.refresh_token else None

    @property
    def access_value(self) -> str | None:
        """The access token's text, or ``None`` when the store holds only a refresh token."""
        return self.access_token.get_secret_value() if self.access_token else None


def region_from_arn(arn: str | None) -> str | None:
    """The region of ``arn:aws:codewhisperer:<region>:<account>:profile/<id>`` (4th field)."""
    if not arn:
        return None
    parts = arn.split(":")
    if len(parts) >= 4 and parts[0] == "arn" and parts[3]:
        return parts[3]
    return None


def resolve_region(override: str | None, profile_arn: str | None, token_region: str | None) -> str:
    """API region: the override, else the profile ARN's, else the token's, else us-east-1."""
    return override or region_from_arn(profile_arn) or token_region or DEFAULT_REGION
