"""The three token-refresh flows (kiro-protocol.md §2), chosen by login kind, never by guessing.

* social (Google/GitHub): ``POST {auth_url}/refreshToken`` with ``{"refreshToken"}``;
* Builder ID / IAM Identity Center: AWS SSO OIDC ``POST {oidc_url}/token``, JSON camelCase with the
  client registration's id and secret;
* external IdP: the token's own ``token_endpoint``, form-encoded.

All return ``NewTokens`` (expiry = now + ``expiresIn``) or raise a ``KiroError`` whose message never
quotes a token or the server's body.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from kiro_lc._version import __version__
from kiro_lc.auth.credentials import DEFAULT_REGION, StoredToken
from kiro_lc.auth.fields import NewTokens, field_str
from kiro_lc.errors import (
    KiroAccountSuspendedError,
    KiroAPIError,
    KiroAuthError,
    KiroConnectionError,
    KiroError,
    KiroProtocolError,
    KiroSessionExpiredError,
    KiroTimeoutError,
)

__all__ = ["SESSION_EXPIRED_MESSAGE", "refresh_endpoint", "refresh_stored_token", "shared_client"]

logger = logging.getLogger("kiro_lc.auth")

SESSION_EXPIRED_MESSAGE = "Your Kiro session has expired; open Kiro and sign in again."
DEFAULT_EXPIRES_IN = 3600.0
_CODE = re.compile(r"^[A-Za-z0-9_.:#-]{1,80}$")
_USER_AGENT = f"kiro-lc/{__version__}"

_shared: httpx.Client | None = None
_shared_lock = threading.Lock()


def shared_client() -> httpx.Client:
    """The process-wide client for refresh calls, created on first use.

    Building an ``httpx.Client`` loads the CA bundle (~100 ms), so it is built once. Refreshes
    happen about once an hour, so connections are not kept alive between them.
    """
    global _shared
    with _shared_lock:
        if _shared is None or _shared.is_closed:
            limits = httpx.Limits(max_keepalive_connections=0)
            _shared = httpx.Client(limits=limits, timeout=30.0)
        return _shared


def refresh_endpoint(token: StoredToken, *, auth_url: str | None, oidc_url: str | None) -> str:
    """The URL a refresh of ``token`` goes to (depends only on its login kind and region)."""
    region = token.region or DEFAULT_REGION
    if token.login == "social":
        return (auth_url or f"https://prod.{region}.auth.desktop.kiro.dev").rstrip(
            "/"
        ) + "/refreshToken"
    if token.login == "oidc":
        return (oidc_url or f"https://oidc.{region}.amazonaws.com").rstrip("/") + "/token"
    if not token.token_endpoint:
        raise KiroAuthError(
            f"The external identity provider login in {token.location} has no token endpoint, "
            "so it cannot be refreshed. Sign in to Kiro again."
        )
    return token.token_endpoint


def refresh_stored_token(
    client: httpx.Client,
    token: StoredToken,
    *,
    auth_url: str | None = None,
    oidc_url: str | None = None,
    timeout: float | None = None,
) -> NewTokens:
    """Exchange ``token``'s refresh token for a new access token.

    ``timeout`` overrides the client's own timeout for this call when given.
    """
    refresh = token.refresh_value
    if not refresh:
        raise KiroAuthError(
            f"The Kiro login in {token.location} has no refresh token and its access token has "
            "expired. Open Kiro (or run `kiro-cli login`) and sign in again."
        )
    url = refresh_endpoint(token, auth_url=auth_url, oidc_url=oidc_url)
    request = _build_request(client, token, url, refresh)
    if timeout is not None:
        request.extensions["timeout"] = httpx.Timeout(timeout).as_dict()
    logger.debug(
        "refreshing the %s login from %s via %s", token.login, token.location, _safe_url(url)
    )
    try:
        response = client.send(request)
    except httpx.TimeoutException:
        raise KiroTimeoutError(
            f"Kiro's sign-in service at {_host(url)} did not answer in time while refreshing your "
            "access token; check your network connection and try again."
        ) from None
    except httpx.TransportError as exc:
        raise KiroConnectionError(
            f"Could not reach Kiro's sign-in service at {_host(url)} to refresh your access token "
            f"({type(exc).__name__}); check your network connection, proxy settings (HTTPS_PROXY) "
            "and firewall, then try again."
        ) from None
    return _parse_response(response, token)


def _build_request(
    client: httpx.Client, token: StoredToken, url: str, refresh: str
) -> httpx.Request:
    headers = {"User-Agent": _USER_AGENT, "Accept": "application/json"}
    if token.login == "social":
        return client.build_request("POST", url, json={"refreshToken": refresh}, headers=headers)
    if token.login == "oidc":
        if not token.client_id or token.client_secret is None:
            raise KiroAuthError(
                f"The Builder ID / IAM Identity Center login in {token.location} has no "
                "OIDC client registration, so it cannot be refreshed. Open Kiro (or run "
                "`kiro-cli login`) and sign in again."
            )
        body = {
            "clientId": token.client_id,
            "clientSecret": token.client_secret.get_secret_value(),
            "grantType": "refresh_token",
            "refreshToken": refresh,
        }
        return client.build_request("POST", url, json=body, headers=headers)
    form = {"grant_type": "refresh_token", "refresh_token": refresh}
    if token.client_id:
        form["client_id"] = token.client_id
    if token.scope:
        form["scope"] = token.scope
    return client.build_request("POST", url, data=form, headers=headers)


def _parse_response(response: httpx.Response, token: StoredToken) -> NewTokens:
    body = _json_body(response)
    if response.status_code != 200:
        raise _refresh_error(response, body)
    access = field_str(body, "accessToken", "access_token")
    if not access:
        raise KiroProtocolError(
            "Kiro's sign-in service answered the token refresh without an access token; "
            "try again, and sign in to Kiro again if it persists."
        )
    expires_in = body.get("expiresIn", body.get("expires_in"))
    seconds = float(expires_in) if isinstance(expires_in, (int, float)) else DEFAULT_EXPIRES_IN
    rotated = field_str(body, "refreshToken", "refresh_token")
    logger.debug("refreshed the %s login; new access token valid for %.0f s", token.login, seconds)
    return NewTokens(
        access_token=SecretStr(access),
        refresh_token=SecretStr(rotated) if rotated else None,
        expires_at=datetime.now(timezone.utc) + timedelta(seconds=seconds),
        profile_arn=field_str(body, "profileArn", "profile_arn"),
    )


def _json_body(response: httpx.Response) -> dict[str, Any]:
    try:
        value = json.loads(response.content or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _codes(body: dict[str, Any]) -> list[str]:
    """Machine-readable error codes from the body; free text is dropped (it may echo input)."""
    found = []
    for name in ("error", "__type", "reason", "code"):
        value = body.get(name)
        if isinstance(value, str) and _CODE.match(value):
            found.append(value.rsplit("#", 1)[-1])
    return found


def _refresh_error(response: httpx.Response, body: dict[str, Any]) -> KiroError:
    status = response.status_code
    codes = _codes(body)
    request_id = response.headers.get("x-amzn-requestid")
    reason = codes[0] if codes else None
    lowered = [c.lower() for c in codes]
    if any("invalid_grant" in c or "invalidgrant" in c for c in lowered) or (
        not codes and b"invalid_grant" in response.content
    ):
        return KiroSessionExpiredError(
            SESSION_EXPIRED_MESSAGE, status=status, reason="invalid_grant", request_id=request_id
        )
    if "temporarily_suspended" in lowered:
        return KiroAccountSuspendedError(
            "Your Kiro account is temporarily suspended, so its access token cannot be refreshed. "
            "Contact Kiro support; retrying will not help.",
            status=status,
            reason="TEMPORARILY_SUSPENDED",
            request_id=request_id,
        )
    detail = f"HTTP {status}" + (f", {reason}" if reason else "")
    if status >= 500:
        return KiroAPIError(
            f"Kiro's sign-in service failed ({detail}) while refreshing your access token; "
            "try again in a moment.",
            status=status,
            reason=reason,
            request_id=request_id,
        )
    return KiroAuthError(
        f"Kiro's sign-in service refused to refresh your access token ({detail}). "
        "Open Kiro (or run `kiro-cli login`) and sign in again.",
        status=status,
        reason=reason,
        request_id=request_id,
    )


def _host(url: str) -> str:
    """Host and port only: a URL's user-info or query could hold a secret."""
    parts = urlsplit(url)
    return (parts.hostname or "?") + (f":{parts.port}" if parts.port else "")


def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{_host(url)}{parts.path}"
