"""Kiro CLI's SQLite store: read the token row, write a refreshed one back (compare-and-swap).

Reads open the database read-only (``mode=ro`` URI) with a busy timeout, because kiro-cli may
hold a write lock. A write-back runs in one ``BEGIN IMMEDIATE`` transaction: it re-reads the row,
writes only if the row still holds the refresh token we refreshed with, and merges just the three
token fields. ``mode=rw`` never creates a missing database.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiro_lc.auth.credentials import LoginKind, StoredToken
from kiro_lc.auth.errors_internal import SourceUnreadable
from kiro_lc.auth.fields import (
    NewTokens,
    field_str,
    load_json_object,
    merge_new_tokens,
    secret_field,
)
from kiro_lc.auth.paths import display_path
from kiro_lc.auth.timestamps import TimestampStyle, parse_timestamp

__all__ = ["TOKEN_KEYS", "SqliteRead", "read_cli_db", "write_back_cli_db"]

logger = logging.getLogger("kiro_lc.auth")

BUSY_TIMEOUT = 5.0
"""Seconds to wait for kiro-cli's write lock before giving up (reads and write-backs)."""
PROFILE_STATE_KEY = "api.codewhisperer.profile"
_DB_STYLE = TimestampStyle(fraction_digits=9, zulu=True)


@dataclass(frozen=True)
class _TokenKey:
    key: str
    login: LoginKind
    registration_key: str | None = None


TOKEN_KEYS: tuple[_TokenKey, ...] = (
    _TokenKey("kirocli:external-idp:token", "external_idp"),
    _TokenKey("kirocli:social:token", "social"),
    _TokenKey("kirocli:odic:token", "oidc", "kirocli:odic:device-registration"),
    _TokenKey("codewhisperer:odic:token", "oidc", "codewhisperer:odic:device-registration"),
)
"""``auth_kv`` keys in priority order, with the login kind each one means."""


@dataclass(frozen=True)
class SqliteRead:
    """A token read from the database, and whether the database is in WAL mode."""

    token: StoredToken | None
    wal: bool


def _uri(path: Path, mode: str) -> str:
    return f"{path.resolve().as_uri()}?mode={mode}"


@contextlib.contextmanager
def _connect(path: Path, mode: str, timeout: float) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(
        _uri(path, mode), uri=True, timeout=timeout, isolation_level=None, check_same_thread=False
    )
    try:
        yield conn
    finally:
        conn.close()


def _kv(conn: sqlite3.Connection, table: str, keys: list[str]) -> dict[str, Any]:
    marks = ",".join("?" * len(keys))
    try:
        rows = conn.execute(f"SELECT key, value FROM {table} WHERE key IN ({marks})", keys)
        return {key: value for key, value in rows.fetchall()}
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return {}
        raise


def read_cli_db(path: Path, *, timeout: float | None = None) -> SqliteRead:
    """Read the highest-priority Kiro login from ``path``; ``token`` is ``None`` if none is there.

    Raises ``SourceUnreadable`` when the file is not a readable SQLite database.
    """
    wanted = [k.key for k in TOKEN_KEYS] + [
        k.registration_key for k in TOKEN_KEYS if k.registration_key
    ]
    try:
        with _connect(path, "ro", BUSY_TIMEOUT if timeout is None else timeout) as conn:
            wal = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal"
            values = _kv(conn, "auth_kv", wanted)
            state = _kv(conn, "state", [PROFILE_STATE_KEY])
    except sqlite3.Error as exc:
        raise SourceUnreadable(f"not a readable SQLite database: {exc}") from None
    profile = load_json_object(state.get(PROFILE_STATE_KEY))
    profile_arn = field_str(profile, "arn") if profile else None
    for spec in TOKEN_KEYS:
        row = load_json_object(values.get(spec.key))
        if row is None or not (
            field_str(row, "access_token", "accessToken", "refresh_token", "refreshToken")
        ):
            continue
        registration = load_json_object(values.get(spec.registration_key or ""))
        return SqliteRead(_to_token(path, spec, row, registration, profile_arn), wal)
    return SqliteRead(None, wal)


def _to_token(
    path: Path,
    spec: _TokenKey,
    row: dict[str, Any],
    registration: dict[str, Any] | None,
    state_profile_arn: str | None,
) -> StoredToken:
    reg = registration or {}
    return StoredToken(
        login=spec.login,
        access_token=secret_field(row, "access_token", "accessToken"),
        refresh_token=secret_field(row, "refresh_token", "refreshToken"),
        expires_at=parse_timestamp(row.get("expires_at", row.get("expiresAt"))),
        location=f"Kiro CLI database {display_path(path)} ({spec.key})",
        key=spec.key,
        region=field_str(row, "region") or field_str(reg, "region"),
        profile_arn=field_str(row, "profile_arn", "profileArn") or state_profile_arn,
        client_id=field_str(reg, "client_id", "clientId")
        or field_str(row, "client_id", "clientId"),
        client_secret=secret_field(reg, "client_secret", "clientSecret"),
        token_endpoint=field_str(row, "token_endpoint", "tokenEndpoint"),
        scope=field_str(row, "scopes", "scope"),
    )


def write_back_cli_db(
    path: Path,
    key: str,
    expected_refresh_token: str | None,
    new: NewTokens,
    *,
    timeout: float | None = None,
) -> bool:
    """Merge ``new`` into row ``key`` if it still holds ``expected_refresh_token``.

    Returns ``True`` when written, ``False`` when the row changed meanwhile (Kiro refreshed or
    the user switched accounts: the caller adopts what is there) or is gone. Raises
    ``sqlite3.Error`` when the database cannot be written (read-only file, lock held too long).
    """
    if not path.is_file():
        return False
    with _connect(path, "rw", BUSY_TIMEOUT if timeout is None else timeout) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = conn.execute("SELECT value FROM auth_kv WHERE key = ?", (key,)).fetchone()
            row = load_json_object(found[0]) if found else None
            current = field_str(row, "refresh_token", "refreshToken") if row else None
            if row is None or current != expected_refresh_token:
                conn.execute("ROLLBACK")
                return False
            merged = merge_new_tokens(row, new, default_style=_DB_STYLE, prefer_camel=False)
            text = _json_compact(merged)
            conn.execute("UPDATE auth_kv SET value = ? WHERE key = ?", (text, key))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    logger.debug("wrote refreshed token back to %s (%s)", path, key)
    return True


def _json_compact(obj: dict[str, Any]) -> str:
    """JSON as kiro-cli's serde writes it: compact, key order kept."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
