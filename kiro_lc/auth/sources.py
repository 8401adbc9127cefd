"""The two credential files as one interface: read a token, list files to watch, write back.

A source's *signature* is ``(mtime_ns, size, inode)`` of each watched file (``None`` when missing);
comparing signatures is how ``KiroAuth`` re-checks a source before every request without reading
it. SQLite databases in WAL mode also watch their ``-wal`` file, where committed writes land first.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kiro_lc.auth import paths
from kiro_lc.auth.credentials import StoredToken
from kiro_lc.auth.fields import NewTokens
from kiro_lc.auth.json_store import read_token_file, write_back_token_file
from kiro_lc.auth.sqlite_store import read_cli_db, write_back_cli_db

__all__ = ["CliDbSource", "IdeFileSource", "Loaded", "Signature", "Source", "stat_signature"]

SourceKind = Literal["kiro_cli_db", "kiro_ide_token_file"]
Signature = tuple[tuple[int, int, int] | None, ...]


def stat_signature(files: Sequence[str]) -> Signature:
    """``(mtime_ns, size, inode)`` per file, ``None`` for a file that is missing."""
    result: list[tuple[int, int, int] | None] = []
    for name in files:
        try:
            st = os.stat(name)
        except OSError:
            result.append(None)
        else:
            result.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(result)


@dataclass(frozen=True)
class Loaded:
    """One read of a source: its token (``None`` if no login is stored) and files to watch."""

    token: StoredToken | None
    watch: tuple[str, ...]


class Source:
    """A credentials file kiro-lc can read, watch and (unless read-only) write back to."""

    kind: SourceKind
    label: str

    def __init__(self, path: Path) -> None:
        self.path = path
        self.key = (self.kind, os.path.realpath(path))

    @property
    def display(self) -> str:
        """The path for messages, with ``~`` for the home directory."""
        return paths.display_path(self.path)

    def exists(self) -> bool:
        """Whether the file is there (sources are never created by kiro-lc)."""
        return self.path.is_file()

    def load(self) -> Loaded:
        """Read the source; raises ``SourceUnreadable`` when the file cannot be used."""
        raise NotImplementedError

    def write_back(self, key: str, expected_refresh_token: str | None, new: NewTokens) -> bool:
        """Compare-and-swap ``new`` into row ``key``; ``False`` when the row changed meanwhile."""
        raise NotImplementedError


class CliDbSource(Source):
    """Kiro CLI's ``data.sqlite3``."""

    kind: SourceKind = "kiro_cli_db"
    label = "Kiro CLI database"

    def load(self) -> Loaded:
        """Read the highest-priority login row (see ``sqlite_store.TOKEN_KEYS``)."""
        read = read_cli_db(self.path)
        watch = (str(self.path), f"{self.path}-wal") if read.wal else (str(self.path),)
        return Loaded(read.token, watch)

    def write_back(self, key: str, expected_refresh_token: str | None, new: NewTokens) -> bool:
        """One ``BEGIN IMMEDIATE`` transaction (see ``sqlite_store.write_back_cli_db``)."""
        return write_back_cli_db(self.path, key, expected_refresh_token, new)


class IdeFileSource(Source):
    """Kiro IDE's ``kiro-auth-token.json``."""

    kind: SourceKind = "kiro_ide_token_file"
    label = "Kiro IDE token file"

    def load(self) -> Loaded:
        """Read the token file (plus its IdC registration and profile ARN when needed)."""
        return Loaded(read_token_file(self.path, paths.ide_profile_candidates()), (str(self.path),))

    def write_back(self, key: str, expected_refresh_token: str | None, new: NewTokens) -> bool:
        """Temp file + rename (see ``json_store.write_back_token_file``)."""
        return write_back_token_file(self.path, expected_refresh_token, new)
