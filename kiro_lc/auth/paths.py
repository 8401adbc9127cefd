"""Where Kiro keeps its credentials on each OS (kiro-protocol.md §1).

All functions read the environment (``HOME``, ``XDG_*``, ``APPDATA``, ``LOCALAPPDATA``) at call
time, so tests can point them at temporary directories.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = [
    "cli_db_candidates",
    "display_path",
    "ide_profile_candidates",
    "ide_token_file",
    "sso_cache_dir",
]

DB_NAME = "data.sqlite3"
TOKEN_FILE_NAME = "kiro-auth-token.json"
_PROFILE_TAIL = ("User", "globalStorage", "kiro.kiroagent", "profile.json")


def _home() -> Path:
    return Path(os.path.expanduser("~"))


def _env_dir(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _data_dirs() -> list[Path]:
    """Per-user data directories in which kiro-cli (or Amazon Q) keeps ``data.sqlite3``."""
    if sys.platform == "win32":
        return [d for d in (_env_dir("APPDATA"), _env_dir("LOCALAPPDATA")) if d is not None]
    if sys.platform == "darwin":
        return [_home() / "Library" / "Application Support"]
    return [_env_dir("XDG_DATA_HOME") or _home() / ".local" / "share"]


def cli_db_candidates() -> list[Path]:
    """Kiro CLI databases in search order: ``kiro-cli`` dirs first, then legacy ``amazon-q``."""
    dirs = _data_dirs()
    kiro = [d / "kiro-cli" / DB_NAME for d in dirs]
    legacy = [d / "amazon-q" / DB_NAME for d in dirs]
    return list(dict.fromkeys(kiro + legacy))


def sso_cache_dir() -> Path:
    """``~/.aws/sso/cache`` (Windows: under ``%USERPROFILE%``), where the IDE keeps its tokens."""
    return _home() / ".aws" / "sso" / "cache"


def ide_token_file() -> Path:
    """The Kiro IDE token cache, ``~/.aws/sso/cache/kiro-auth-token.json``."""
    return sso_cache_dir() / TOKEN_FILE_NAME


def ide_profile_candidates() -> list[Path]:
    """``…/Kiro/User/globalStorage/kiro.kiroagent/profile.json`` (holds IdC users' profile ARN)."""
    if sys.platform == "win32":
        roots = [d / "Kiro" for d in (_env_dir("APPDATA"),) if d is not None]
    elif sys.platform == "darwin":
        roots = [_home() / "Library" / "Application Support" / "Kiro"]
    else:
        roots = [(_env_dir("XDG_CONFIG_HOME") or _home() / ".config") / "Kiro"]
    return [root.joinpath(*_PROFILE_TAIL) for root in roots]


def display_path(path: Path | str) -> str:
    """``path`` with the home directory shown as ``~`` (for messages and ``kiro-lc status``)."""
    text = str(path)
    home = str(_home())
    if home not in ("", os.sep) and (text == home or text.startswith(home + os.sep)):
        return "~" + text[len(home) :]
    return text
