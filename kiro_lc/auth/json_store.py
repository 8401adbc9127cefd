"""Kiro IDE's token cache (``~/.aws/sso/cache/kiro-auth-token.json``): read and atomic write-back.

The file is camelCase JSON (snake_case accepted). IdC/Builder ID logins keep their OIDC client
registration in ``<clientIdHash>.json`` beside it and their profile ARN in Kiro's
``profile.json``. A write-back re-reads the file under an advisory lock, compares the refresh
token, writes a temporary file in the same directory with the original permissions, fsyncs it and
renames it over the original, so a reader (Kiro's file watcher) never sees a half-written file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import sys
import tempfile
from collections.abc import Iterator, Sequence
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

__all__ = ["login_kind_of", "read_token_file", "write_back_token_file"]

logger = logging.getLogger("kiro_lc.auth")

_FILE_STYLE = TimestampStyle(fraction_digits=3, zulu=True)
_OIDC_PROVIDERS = {"builderid", "enterprise", "internal"}


def login_kind_of(data: dict[str, Any]) -> LoginKind:
    """The login kind recorded in the file (``authMethod``, then ``provider``)."""
    method = (field_str(data, "authMethod", "auth_method") or "").lower()
    provider = (field_str(data, "provider") or "").lower()
    if method in ("external_idp", "externalidp") or provider == "externalidp":
        return "external_idp"
    if method == "idc" or provider in _OIDC_PROVIDERS:
        return "oidc"
    if method == "social" or provider in ("google", "github"):
        return "social"
    # No method recorded: the fields that only one kind of login writes decide.
    if field_str(data, "tokenEndpoint", "token_endpoint"):
        return "external_idp"
    if field_str(data, "clientIdHash", "client_id_hash"):
        return "oidc"
    return "social"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return load_json_object(path.read_bytes())
    except OSError:
        return None


def _profile_arn(candidates: Sequence[Path]) -> str | None:
    for candidate in candidates:
        data = _read_json(candidate)
        if data and (arn := field_str(data, "arn")):
            return arn
    return None


def read_token_file(path: Path, profile_candidates: Sequence[Path] = ()) -> StoredToken | None:
    """Read the IDE token file; ``None`` when it holds no token.

    Raises ``SourceUnreadable`` when the file exists but is not readable JSON.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SourceUnreadable(f"cannot be read: {exc.strerror or exc}") from None
    data = load_json_object(raw)
    if data is None:
        raise SourceUnreadable("is not a JSON object (Kiro may be writing it; try again)")
    return _to_token(path, data, profile_candidates)


def _to_token(
    path: Path, data: dict[str, Any], profile_candidates: Sequence[Path]
) -> StoredToken | None:
    if not field_str(data, "accessToken", "access_token", "refreshToken", "refresh_token"):
        return None
    login = login_kind_of(data)
    registration: dict[str, Any] = {}
    client_hash = field_str(data, "clientIdHash", "client_id_hash")
    if login == "oidc" and client_hash:
        registration = _read_json(path.parent / f"{client_hash}.json") or {}
    profile_arn = field_str(data, "profileArn", "profile_arn")
    if profile_arn is None and login != "social":
        profile_arn = _profile_arn(profile_candidates)
    return StoredToken(
        login=login,
        access_token=secret_field(data, "accessToken", "access_token"),
        refresh_token=secret_field(data, "refreshToken", "refresh_token"),
        expires_at=parse_timestamp(data.get("expiresAt", data.get("expires_at"))),
        location=f"Kiro IDE token file {display_path(path)}",
        key=path.name,
        region=field_str(data, "region") or field_str(registration, "region"),
        profile_arn=profile_arn,
        client_id=field_str(registration, "clientId", "client_id")
        or field_str(data, "clientId", "client_id"),
        client_secret=secret_field(registration, "clientSecret", "client_secret"),
        token_endpoint=field_str(data, "tokenEndpoint", "token_endpoint"),
        scope=field_str(data, "scopes", "scope"),
    )


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Advisory lock shared with other kiro-lc processes (POSIX only; Kiro ignores it).

    The lock sits on the file's inode, which a rename replaces, so after locking we check the
    path still names the inode we locked and start over if not.
    """
    if sys.platform == "win32":
        yield
        return
    import fcntl

    while True:
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                yield
                return
        finally:
            os.close(fd)


def write_back_token_file(path: Path, expected_refresh_token: str | None, new: NewTokens) -> bool:
    """Merge ``new`` into the file if it still holds ``expected_refresh_token``.

    Returns ``False`` (nothing written) when the file is gone, unreadable or now holds another
    refresh token — the caller then adopts what is there. Raises ``OSError`` if writing fails.
    """
    try:
        with _exclusive(path):
            raw = path.read_text(encoding="utf-8")
            data = load_json_object(raw)
            current = field_str(data, "refreshToken", "refresh_token") if data else None
            if data is None or current != expected_refresh_token:
                return False
            merged = merge_new_tokens(data, new, default_style=_FILE_STYLE, prefer_camel=True)
            indent = 2 if "\n" in raw.strip() else None
            _atomic_write(path, json.dumps(merged, indent=indent, ensure_ascii=False))
    except FileNotFoundError:
        return False
    logger.debug("wrote refreshed token back to %s", path)
    return True


def _atomic_write(path: Path, text: str) -> None:
    """Write via a temp file in the same directory, keeping the original file's mode."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    if sys.platform == "win32":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
