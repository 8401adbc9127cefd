"""Realistic Kiro credential stores for auth tests (shapes of kiro-protocol.md §1).

``make_kiro_home`` points HOME, XDG_*, APPDATA, LOCALAPPDATA and USERPROFILE at a temporary
directory and clears every ``KIRO_*`` variable, so tests never see the real user's files. The
builders write the Kiro CLI database (``auth_kv``, ``state``, ``migrations``,
``conversations_v2``) and the Kiro IDE token file exactly as Kiro lays them out.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from kiro_lc._env import ENVIRONMENT_VARIABLES
from kiro_lc.auth import paths
from kiro_lc.testing import KiroEmulator

SOCIAL_KEY = "kirocli:social:token"
ODIC_KEY = "kirocli:odic:token"
ODIC_REGISTRATION_KEY = "kirocli:odic:device-registration"
EXTERNAL_IDP_KEY = "kirocli:external-idp:token"
LEGACY_ODIC_KEY = "codewhisperer:odic:token"
PROFILE_ARN = "arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK"


@dataclass
class KiroHome:
    """A fake user home; ``cli_db`` and ``ide_token_file`` are where Kiro would write."""

    root: Path
    cli_db: Path
    ide_token_file: Path


def make_kiro_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> KiroHome:
    """Isolate the environment in ``tmp_path`` (see module docstring)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("APPDATA", str(home / "AppData" / "Roaming"))
    monkeypatch.setenv("LOCALAPPDATA", str(home / "AppData" / "Local"))
    for name in ENVIRONMENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return KiroHome(home, paths.cli_db_candidates()[0], paths.ide_token_file())


def rfc3339(moment: datetime, digits: int = 9) -> str:
    """``2025-06-01T12:00:00.123456789Z`` with ``digits`` fraction digits, as kiro-cli writes."""
    text = moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + f"{moment.microsecond:06d}{moment.microsecond % 7:03d}"[:digits]
    return text + "Z"


def in_seconds(seconds: float) -> datetime:
    """Now plus ``seconds`` (UTC)."""
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


def social_row(
    access: str,
    refresh: str,
    *,
    expires_in: float = 3600,
    profile_arn: str | None = PROFILE_ARN,
    region: str = "us-east-1",
) -> dict[str, Any]:
    """A ``kirocli:social:token`` value (snake_case, nanosecond expiry)."""
    row: dict[str, Any] = {
        "access_token": access,
        "expires_at": rfc3339(in_seconds(expires_in), 9),
        "refresh_token": refresh,
        "region": region,
        "start_url": None,
        "oauth_flow": "DeviceCode",
        "scopes": None,
        "provider": "github",
    }
    if profile_arn is not None:
        row["profile_arn"] = profile_arn
    return row


def oidc_row(
    access: str, refresh: str, *, expires_in: float = 3600, region: str = "us-east-1"
) -> dict[str, Any]:
    """A ``kirocli:odic:token`` value (Builder ID; whole-second expiry, no profile ARN)."""
    return {
        "access_token": access,
        "expires_at": rfc3339(in_seconds(expires_in), 0),
        "refresh_token": refresh,
        "region": region,
        "start_url": "https://view.awsapps.com/start",
        "oauth_flow": "DeviceCode",
        "scopes": [
            "codewhisperer:completions",
            "codewhisperer:analysis",
            "codewhisperer:conversations",
        ],
    }


def registration_row(
    client_id: str, client_secret: str, region: str = "us-east-1"
) -> dict[str, Any]:
    """A ``kirocli:odic:device-registration`` value."""
    return {
        "client_id": client_id,
        "client_secret": client_secret,
        "client_secret_expires_at": rfc3339(in_seconds(90 * 86400), 0),
        "region": region,
        "oauth_flow": "DeviceCode",
        "scopes": ["codewhisperer:completions", "codewhisperer:analysis"],
    }


def external_idp_row(
    access: str,
    refresh: str,
    *,
    client_id: str,
    token_endpoint: str,
    expires_in: float = 3600,
    profile_arn: str | None = PROFILE_ARN,
) -> dict[str, Any]:
    """A ``kirocli:external-idp:token`` value (Entra/Okta)."""
    row: dict[str, Any] = {
        "access_token": access,
        "expires_at": rfc3339(in_seconds(expires_in), 9),
        "refresh_token": refresh,
        "region": "us-east-1",
        "auth_method": "external_idp",
        "token_endpoint": token_endpoint,
        "issuer_url": "https://login.example.test/tenant/v2.0",
        "client_id": client_id,
        "audience": "api://kiro",
        "scopes": ["openid", "offline_access"],
    }
    if profile_arn is not None:
        row["profile_arn"] = profile_arn
    return row


def profile_state(arn: str = PROFILE_ARN) -> dict[str, Any]:
    """The ``state`` value under ``api.codewhisperer.profile``."""
    return {"arn": arn, "profile_name": "KiroProfile-us-east-1"}


def make_cli_db(
    path: Path,
    tokens: dict[str, dict[str, Any]],
    *,
    profile: dict[str, Any] | None = None,
    wal: bool = False,
) -> Path:
    """Create a kiro-cli ``data.sqlite3`` holding ``tokens`` (``auth_kv`` key → JSON value)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    try:
        if wal:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(
            """
            CREATE TABLE migrations (id INTEGER PRIMARY KEY, version INTEGER NOT NULL,
                                     migration_time INTEGER NOT NULL);
            CREATE TABLE state (key TEXT PRIMARY KEY, value BLOB);
            CREATE TABLE auth_kv (key TEXT PRIMARY KEY, value TEXT);
            CREATE TABLE conversations_v2 (key TEXT NOT NULL, conversation_id TEXT NOT NULL,
                                           value TEXT NOT NULL, created_at INTEGER NOT NULL,
                                           updated_at INTEGER NOT NULL,
                                           PRIMARY KEY (key, conversation_id));
            """
        )
        conn.executemany(
            "INSERT INTO migrations (version, migration_time) VALUES (?, ?)",
            [(v, 1_700_000_000 + v) for v in range(9)],
        )
        conn.execute(
            "INSERT INTO state VALUES (?, ?)",
            ("telemetry.clientId", b'"3f1c0a52-1111-2222-3333-444455556666"'),
        )
        if profile is not None:
            conn.execute(
                "INSERT INTO state VALUES (?, ?)",
                ("api.codewhisperer.profile", json.dumps(profile).encode()),
            )
        for key, value in tokens.items():
            conn.execute("INSERT INTO auth_kv VALUES (?, ?)", (key, json.dumps(value)))
        conn.commit()
    finally:
        conn.close()
    return path


def set_db_row(path: Path, key: str, value: dict[str, Any] | None) -> None:
    """What kiro-cli does on login/refresh/logout: replace (or delete) one ``auth_kv`` row."""
    conn = sqlite3.connect(path, timeout=10)
    try:
        if value is None:
            conn.execute("DELETE FROM auth_kv WHERE key = ?", (key,))
        else:
            conn.execute("INSERT OR REPLACE INTO auth_kv VALUES (?, ?)", (key, json.dumps(value)))
        conn.commit()
    finally:
        conn.close()


def get_db_row(path: Path, key: str) -> dict[str, Any] | None:
    """The JSON value of one ``auth_kv`` row."""
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT value FROM auth_kv WHERE key = ?", (key,)).fetchone()
    finally:
        conn.close()
    return json.loads(row[0]) if row else None


def ide_social_token(
    access: str, refresh: str, *, expires_in: float = 3600, profile_arn: str = PROFILE_ARN
) -> dict[str, Any]:
    """``kiro-auth-token.json`` of a Google/GitHub login (camelCase, millisecond expiry)."""
    return {
        "accessToken": access,
        "refreshToken": refresh,
        "profileArn": profile_arn,
        "expiresAt": rfc3339(in_seconds(expires_in), 3),
        "authMethod": "social",
        "provider": "Google",
    }


def ide_idc_token(
    access: str,
    refresh: str,
    *,
    client_id_hash: str,
    expires_in: float = 3600,
    region: str = "us-east-1",
) -> dict[str, Any]:
    """``kiro-auth-token.json`` of a Builder ID / IdC login."""
    return {
        "accessToken": access,
        "refreshToken": refresh,
        "expiresAt": rfc3339(in_seconds(expires_in), 3),
        "authMethod": "IdC",
        "provider": "BuilderId",
        "clientIdHash": client_id_hash,
        "region": region,
        "startUrl": "https://view.awsapps.com/start",
    }


def write_json(path: Path, data: dict[str, Any], mode: int = 0o600) -> Path:
    """Write ``data`` as the IDE does (2-space indent) with permissions ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.chmod(path, mode)
    return path


def age_file(path: Path, seconds: float = 10.0) -> None:
    """Set the mtime ``seconds`` into the past (out of the racy-timestamp window)."""
    past = datetime.now().timestamp() - seconds
    os.utime(path, (past, past))


def call_api(emu: Any, creds: Any) -> tuple[int, Any]:
    """One authenticated GetUsageLimits call to the emulator; returns (status, its record)."""
    import httpx

    headers = {
        **creds.auth_headers(),
        "content-type": "application/x-amz-json-1.0",
        "x-amz-target": "AmazonCodeWhispererService.GetUsageLimits",
    }
    body: dict[str, Any] = {"origin": "KIRO_CLI", "resourceType": "AGENTIC_REQUEST"}
    if creds.profile_arn:
        body["profileArn"] = creds.profile_arn
    response = httpx.post(emu.base_url + "/", headers=headers, content=json.dumps(body))
    return response.status_code, emu.requests[-1]


def social_db_for(
    emu: Any, path: Path, account: Any, *, expires_in: float = 3600, **kw: Any
) -> Path:
    """A kiro-cli database signed in to the emulator's social ``account``."""
    token = emu.issue_access_token(account, ttl=max(expires_in, 1))
    row = social_row(
        token,
        account.refresh_token,
        expires_in=expires_in,
        profile_arn=account.profile_arn,
        region=account.region,
    )
    return make_cli_db(path, {SOCIAL_KEY: row}, **kw)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> KiroHome:
    """A fresh fake home directory with Kiro's folders; the real user's files stay unseen."""
    return make_kiro_home(tmp_path, monkeypatch)


@pytest.fixture
def emu(home: KiroHome, monkeypatch: pytest.MonkeyPatch) -> Iterator[KiroEmulator]:
    """An emulator that both refresh endpoints (desktop and OIDC) point at."""
    with KiroEmulator() as emulator:
        monkeypatch.setenv("KIRO_AUTH_URL", emulator.auth_url)
        monkeypatch.setenv("KIRO_OIDC_URL", emulator.oidc_url)
        yield emulator
