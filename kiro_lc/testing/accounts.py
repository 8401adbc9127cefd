"""Accounts, tokens and the three refresh endpoints of the emulator (kiro-protocol.md §1–§2).

An :class:`AccountStore` holds every :class:`EmulatorAccount` and every token it minted. Tokens
are random (``secrets.token_urlsafe``) with recognisable prefixes: ``aoa`` access tokens, ``aor``
refresh tokens, ``ksk_`` API keys. Access tokens expire on the store's clock, which tests can move
with :meth:`AccountStore.advance_clock` or cut short with :meth:`AccountStore.expire_access_tokens`.

The refresh handlers are pure with respect to HTTP: they take the parsed request body and return
``(status, json_body)``. Nothing here logs or formats a token.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

AccountKind = Literal["api_key", "social", "oidc", "external_idp"]
ACCOUNT_KINDS: tuple[str, ...] = ("api_key", "social", "oidc", "external_idp")

BEARER_INVALID: dict[str, Any] = {
    "message": "The bearer token included in the request is invalid.",
    "reason": None,
}
SUSPENDED: dict[str, Any] = {
    "__type": "AccessDeniedException",
    "message": "Your account is temporarily suspended. Contact support to restore access.",
    "reason": "TEMPORARILY_SUSPENDED",
}
QUOTA_EXHAUSTED: dict[str, Any] = {
    "message": "You have reached the limit.",
    "reason": "MONTHLY_REQUEST_COUNT",
}

JsonReply = tuple[int, dict[str, Any]]


def _token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def _fake_profile_arn(region: str) -> str:
    account_number = "".join(secrets.choice("0123456789") for _ in range(12))
    profile_id = secrets.token_hex(6).upper()
    return f"arn:aws:codewhisperer:{region}:{account_number}:profile/{profile_id}"


@dataclass
class EmulatorAccount:
    """One Kiro account the emulator knows; secrets are kept out of ``repr``.

    ``refresh_token`` is the currently valid refresh token (``None`` for API-key accounts);
    ``client_id``/``client_secret`` exist for OIDC and external-IdP accounts; ``token_endpoint``
    is the external-IdP refresh URL (set once the emulator listens). The flags ``suspended`` and
    ``quota_exhausted`` may be flipped at any time. ``refresh_count`` counts successful refreshes.
    """

    name: str
    kind: AccountKind
    profile_arn: str | None = None
    region: str = "us-east-1"
    access_token_ttl: float = 3600.0
    rotate_refresh_token: bool = False
    suspended: bool = False
    quota_exhausted: bool = False
    refresh_token: str | None = field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    token_endpoint: str | None = None
    refresh_count: int = 0


@dataclass
class _Grant:
    account: str
    expires_at: float | None  # None: never expires (API keys)
    api_key: bool = False


class AccountStore:
    """Thread-safe registry of accounts and the tokens minted for them."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._offset = 0.0
        self._lock = threading.RLock()
        self._accounts: dict[str, EmulatorAccount] = {}
        self._grants: dict[str, _Grant] = {}
        self.refresh_calls = 0
        self.token_endpoint_base: str | None = None

    # -- clock ---------------------------------------------------------------------------------

    def now(self) -> float:
        """The store's clock: monotonic seconds plus any :meth:`advance_clock` offset."""
        return self._clock() + self._offset

    def advance_clock(self, seconds: float) -> None:
        """Move the server clock forward (tokens expire as if ``seconds`` had passed)."""
        with self._lock:
            self._offset += seconds

    # -- accounts ------------------------------------------------------------------------------

    def add(
        self,
        name: str,
        *,
        kind: str,
        profile_arn: str | None = None,
        region: str = "us-east-1",
        access_token_ttl: float = 3600.0,
        rotate_refresh_token: bool = False,
        suspended: bool = False,
        quota_exhausted: bool = False,
        api_key: str | None = None,
    ) -> EmulatorAccount:
        """Create an account; social accounts get a fake profile ARN unless one is given."""
        if kind not in ACCOUNT_KINDS:
            raise ValueError(
                f"unknown account kind {kind!r}; use one of {', '.join(ACCOUNT_KINDS)}"
            )
        if kind == "social" and profile_arn is None:
            profile_arn = _fake_profile_arn(region)
        account = EmulatorAccount(
            name=name,
            kind=kind,  # type: ignore[arg-type]
            profile_arn=profile_arn,
            region=region,
            access_token_ttl=access_token_ttl,
            rotate_refresh_token=rotate_refresh_token,
            suspended=suspended,
            quota_exhausted=quota_exhausted,
        )
        if kind != "api_key":
            account.refresh_token = _token("aor")
        if kind in ("oidc", "external_idp"):
            account.client_id = "emu-client-" + secrets.token_hex(8)
        if kind == "oidc":
            account.client_secret = _token("emu-secret-")
        with self._lock:
            if name in self._accounts:
                raise ValueError(f"an account named {name!r} already exists in this emulator")
            self._accounts[name] = account
            if kind == "api_key":
                key = api_key or _token("ksk_")
                self._grants[key] = _Grant(name, None, api_key=True)
            self._set_endpoint(account)
        return account

    def api_key_of(self, name: str) -> str:
        """The API key of an ``api_key`` account."""
        with self._lock:
            for token, grant in self._grants.items():
                if grant.account == name and grant.api_key:
                    return token
        raise KeyError(f"account {name!r} has no API key")

    def get(self, account: EmulatorAccount | str) -> EmulatorAccount:
        """Look an account up by object or name."""
        name = account if isinstance(account, str) else account.name
        with self._lock:
            try:
                return self._accounts[name]
            except KeyError:
                raise KeyError(f"no account named {name!r} in this emulator") from None

    def accounts(self) -> list[EmulatorAccount]:
        """Every account, in creation order."""
        with self._lock:
            return list(self._accounts.values())

    def set_token_endpoint_base(self, base_url: str) -> None:
        """Point every external-IdP account's ``token_endpoint`` at this server."""
        with self._lock:
            self.token_endpoint_base = base_url
            for account in self._accounts.values():
                self._set_endpoint(account)

    def _set_endpoint(self, account: EmulatorAccount) -> None:
        if account.kind == "external_idp" and self.token_endpoint_base:
            account.token_endpoint = self.token_endpoint_base + "/external-idp/token"

    # -- tokens --------------------------------------------------------------------------------

    def issue_access_token(self, account: EmulatorAccount | str, ttl: float | None = None) -> str:
        """Mint a bearer token valid for ``ttl`` seconds (default: the account's TTL)."""
        acct = self.get(account)
        if acct.kind == "api_key":
            raise ValueError("API-key accounts use their key, not access tokens")
        token = _token("aoa")
        with self._lock:
            lifetime = acct.access_token_ttl if ttl is None else ttl
            self._grants[token] = _Grant(acct.name, self.now() + lifetime)
        return token

    def expire_access_tokens(self, account: EmulatorAccount | str | None = None) -> None:
        """Make every access token (of one account, or all) expired right now."""
        name = None if account is None else self.get(account).name
        with self._lock:
            now = self.now()
            for grant in self._grants.values():
                if not grant.api_key and (name is None or grant.account == name):
                    grant.expires_at = now - 1.0

    def revoke(self, account: EmulatorAccount | str) -> None:
        """Invalidate every token of the account: access tokens, API key and refresh token."""
        acct = self.get(account)
        with self._lock:
            for token in [t for t, g in self._grants.items() if g.account == acct.name]:
                del self._grants[token]
            if acct.refresh_token is not None:
                acct.refresh_token = _token("aor")  # the old one stops working; nobody knows this

    def authenticate(self, token: str) -> tuple[EmulatorAccount | None, str, bool]:
        """Resolve a bearer token to ``(account, problem, is_api_key)``; problem '' = valid."""
        with self._lock:
            grant = self._grants.get(token)
            if grant is None:
                return None, "unknown or revoked bearer token", False
            if grant.expires_at is not None and grant.expires_at <= self.now():
                return None, f"access token of account {grant.account!r} has expired", False
            return self._accounts[grant.account], "", grant.api_key

    # -- refresh endpoints ---------------------------------------------------------------------

    def refresh_social(self, body: Mapping[str, Any]) -> JsonReply:
        """Kiro desktop ``POST /refreshToken`` (§2.1): social accounts only."""
        acct = self._begin_refresh(body.get("refreshToken"), kinds=("social",))
        if acct is None:
            return 400, {
                "error": "invalid_grant",
                "error_description": "Invalid refresh token provided",
            }
        access, refresh = self._rotate(acct)
        return 200, {
            "accessToken": access,
            "refreshToken": refresh,
            "expiresIn": int(acct.access_token_ttl),
            "profileArn": acct.profile_arn,
        }

    def refresh_oidc(self, body: Mapping[str, Any]) -> JsonReply:
        """SSO OIDC ``CreateToken`` (§2.2): JSON camelCase, client id and secret must match."""
        if not all(isinstance(body.get(k), str) for k in ("clientId", "clientSecret", "grantType")):
            with self._lock:
                self.refresh_calls += 1
            return 400, {"error": "invalid_request", "error_description": "Invalid request"}
        if body["grantType"] != "refresh_token":
            with self._lock:
                self.refresh_calls += 1
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": "Unsupported grant type",
            }
        acct = self._begin_refresh(
            body.get("refreshToken"),
            kinds=("oidc",),
            client=(body["clientId"], body["clientSecret"]),
        )
        if acct is None:
            return 400, {"error": "invalid_grant", "error_description": "Invalid refresh token"}
        access, refresh = self._rotate(acct)
        return 200, {
            "accessToken": access,
            "tokenType": "Bearer",
            "expiresIn": int(acct.access_token_ttl),
            "refreshToken": refresh,
        }

    def refresh_external_idp(self, form: Mapping[str, str]) -> JsonReply:
        """External-IdP token endpoint (§2.3): form-encoded in, snake_case out."""
        if form.get("grant_type") != "refresh_token" or not form.get("client_id"):
            with self._lock:
                self.refresh_calls += 1
            return 400, {"error": "invalid_request", "error_description": "Invalid request"}
        acct = self._begin_refresh(
            form.get("refresh_token"), kinds=("external_idp",), client=(form["client_id"], None)
        )
        if acct is None:
            return 400, {"error": "invalid_grant", "error_description": "Invalid refresh token"}
        access, refresh = self._rotate(acct)
        return 200, {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(acct.access_token_ttl),
            "refresh_token": refresh,
        }

    def _begin_refresh(
        self,
        refresh_token: object,
        *,
        kinds: tuple[str, ...],
        client: tuple[str, str | None] | None = None,
    ) -> EmulatorAccount | None:
        """Count the call and find the account owning ``refresh_token`` (and client), if any."""
        with self._lock:
            self.refresh_calls += 1
            if not isinstance(refresh_token, str) or not refresh_token:
                return None
            for acct in self._accounts.values():
                if acct.kind not in kinds or not acct.refresh_token:
                    continue
                if not secrets.compare_digest(acct.refresh_token.encode(), refresh_token.encode()):
                    continue
                if client is not None:
                    client_id, client_secret = client
                    if client_id != acct.client_id:
                        return None
                    if client_secret is not None and client_secret != acct.client_secret:
                        return None
                return acct
            return None

    def _rotate(self, acct: EmulatorAccount) -> tuple[str, str]:
        access = self.issue_access_token(acct)
        with self._lock:
            if acct.rotate_refresh_token:
                acct.refresh_token = _token("aor")
            acct.refresh_count += 1
            refresh = acct.refresh_token
        assert refresh is not None
        return access, refresh
