"""``KiroAuth``: pick a credentials source, keep its access token valid, follow account switches.

Sources, first match wins: ``api_key``/``access_token`` arguments (or ``db_path``/``token_file``,
which restrict the search to those files), ``KIRO_API_KEY``, ``KIRO_ACCESS_TOKEN``, the Kiro CLI
database, the Kiro IDE token file.

``get_credentials`` runs before every API request. Its fast path takes no lock and reads no file:
one ``os.stat`` per watched file, compared with the signature of the last read. Any change (or a
token within ``REFRESH_MARGIN`` of expiry) sends the caller to the slow path, which holds the
source's process-wide lock: re-read, adopt a new login if the stored refresh token changed,
refresh once for all waiters, write back with compare-and-swap.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
from pydantic import SecretStr

from kiro_lc.auth import paths
from kiro_lc.auth.credentials import Credentials, CredentialsKind, StoredToken, resolve_region
from kiro_lc.auth.errors_internal import SourceUnreadable
from kiro_lc.auth.fields import NewTokens
from kiro_lc.auth.refresh import refresh_stored_token, shared_client
from kiro_lc.auth.sources import CliDbSource, IdeFileSource, Signature, Source, stat_signature
from kiro_lc.auth.state import (
    DEFAULT_MARGIN,
    Entry,
    SourceState,
    read_entry,
    state_for,
    with_new_tokens,
)
from kiro_lc.auth.status import AuthStatus, status_of_static, status_of_token
from kiro_lc.errors import (
    KiroAuthError,
    KiroCredentialsNotFoundError,
    KiroError,
    KiroSessionExpiredError,
)

__all__ = ["EXPIRY_SLACK", "REFRESH_MARGIN", "KiroAuth"]

logger = logging.getLogger("kiro_lc.auth")

REFRESH_MARGIN = DEFAULT_MARGIN
"""Refresh an access token this many seconds before it expires (5 min: long requests finish)."""
EXPIRY_SLACK = 30.0
"""A token this close to expiry counts as expired: it cannot be used while a refresh fails."""
FAILURE_BACKOFF = 30.0
"""After a failed refresh-ahead, keep using the still-valid token this long before retrying."""

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class _Snapshot:
    """What the fast path needs, published as one object (atomic for readers)."""

    credentials: Credentials
    state: SourceState | None
    entry: Entry | None
    refresh_at: float = math.inf
    also_watch: tuple[str, ...] = ()
    also_signature: Signature = ()


@dataclass(frozen=True)
class _Static:
    credentials: Credentials
    origin: str


def _secret(value: str | SecretStr | None) -> str | None:
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    return text or None


def _due(token: StoredToken, now: float, margin: float) -> bool:
    if token.access_token is None:
        return True
    if token.expires_at is None:
        return False  # unknown expiry: use it; a 403 will trigger force_refresh
    return token.expires_at.timestamp() - now <= margin


class KiroAuth:
    """Finds the user's Kiro credentials and keeps a valid access token (thread- and task-safe).

    Arguments win over environment variables (``KIRO_API_KEY``, ``KIRO_ACCESS_TOKEN``,
    ``KIRO_PROFILE_ARN``, ``KIRO_REGION``, ``KIRO_DB_PATH``, ``KIRO_TOKEN_FILE``,
    ``KIRO_AUTH_URL``, ``KIRO_OIDC_URL``, ``KIRO_READ_ONLY``). ``profile_arn`` and ``region``
    override what a source stores. ``read_only`` keeps refreshed tokens in memory instead of
    writing them back to Kiro's files. ``http_client`` is used for refresh calls if given.
    """

    def __init__(
        self,
        *,
        api_key: str | SecretStr | None = None,
        access_token: str | SecretStr | None = None,
        profile_arn: str | None = None,
        region: str | None = None,
        db_path: str | os.PathLike[str] | None = None,
        token_file: str | os.PathLike[str] | None = None,
        read_only: bool | None = None,
        auth_url: str | None = None,
        oidc_url: str | None = None,
        timeout: float = 30.0,
        http_client: httpx.Client | None = None,
    ) -> None:
        env = os.environ
        self._profile_arn = profile_arn or env.get("KIRO_PROFILE_ARN") or None
        self._region = region or env.get("KIRO_REGION") or None
        self._auth_url = auth_url or env.get("KIRO_AUTH_URL") or None
        self._oidc_url = oidc_url or env.get("KIRO_OIDC_URL") or None
        env_read_only = env.get("KIRO_READ_ONLY", "").strip().lower() in _TRUE
        self.read_only = env_read_only if read_only is None else read_only
        self._timeout = timeout
        self._http_client = http_client
        explicit_files = db_path is not None or token_file is not None
        self._static = self._static_source(_secret(api_key), _secret(access_token), explicit_files)
        self._sources = [] if self._static else self._file_sources(db_path, token_file)
        self._snap: _Snapshot | None = (
            _Snapshot(self._static.credentials, None, None) if self._static else None
        )
        self._inflight: dict[
            tuple[asyncio.AbstractEventLoop, object], asyncio.Task[Credentials]
        ] = {}
        self._inflight_lock = threading.Lock()

    def __repr__(self) -> str:
        where = self._static.origin if self._static else ", ".join(s.display for s in self._sources)
        return f"KiroAuth(source={where!r}, read_only={self.read_only})"

    # -- configuration -------------------------------------------------------------------------

    def _static_source(
        self, api_key: str | None, access_token: str | None, explicit_files: bool
    ) -> _Static | None:
        env = os.environ
        choices: list[tuple[str | None, CredentialsKind, str]] = [
            (api_key, "api_key", "the api_key argument"),
            (access_token, "bearer", "the access_token argument"),
        ]
        if not explicit_files:
            choices += [
                (env.get("KIRO_API_KEY"), "api_key", "the KIRO_API_KEY environment variable"),
                (
                    env.get("KIRO_ACCESS_TOKEN"),
                    "bearer",
                    "the KIRO_ACCESS_TOKEN environment variable",
                ),
            ]
        for value, kind, origin in choices:
            if value:
                region = resolve_region(self._region, self._profile_arn, None)
                creds = Credentials(SecretStr(value), kind, self._profile_arn, region, None, origin)
                return _Static(creds, origin)
        return None

    @staticmethod
    def _file_sources(
        db_path: str | os.PathLike[str] | None, token_file: str | os.PathLike[str] | None
    ) -> list[Source]:
        if db_path is not None or token_file is not None:
            explicit: list[Source] = []
            if db_path is not None:
                explicit.append(CliDbSource(Path(db_path).expanduser()))
            if token_file is not None:
                explicit.append(IdeFileSource(Path(token_file).expanduser()))
            return explicit
        env_db, env_file = os.environ.get("KIRO_DB_PATH"), os.environ.get("KIRO_TOKEN_FILE")
        dbs = [Path(env_db).expanduser()] if env_db else paths.cli_db_candidates()
        file = Path(env_file).expanduser() if env_file else paths.ide_token_file()
        return [*(CliDbSource(p) for p in dbs), IdeFileSource(file)]

    # -- public API ----------------------------------------------------------------------------

    def get_credentials(self) -> Credentials:
        """Valid credentials for the next request (refreshed if within 5 min of expiry)."""
        creds = self._fast()
        return creds if creds is not None else self._slow(None)

    async def aget_credentials(self) -> Credentials:
        """Async ``get_credentials``; file reads and refreshes run in a worker thread."""
        creds = self._fast()
        if creds is not None:
            return creds
        return await self._in_thread("get", lambda: self._slow(None))

    def force_refresh(self, stale: Credentials) -> Credentials:
        """New credentials after the API rejected ``stale`` (403 bearer token invalid).

        Refreshes unless the current token already differs from ``stale`` (another caller
        refreshed, or Kiro did). Raw access tokens and API keys cannot be refreshed: raises
        ``KiroAuthError`` saying so.
        """
        return self._slow(stale)

    async def aforce_refresh(self, stale: Credentials) -> Credentials:
        """Async ``force_refresh``; concurrent callers with the same ``stale`` share one call."""
        if self._static:
            return self._slow(stale)
        return await self._in_thread(("force", id(stale)), lambda: self._slow(stale))

    def status(self) -> AuthStatus:
        """Where the credentials come from and what kiro-lc can do with them; never a token.

        Reads the source but does not refresh. Raises ``KiroCredentialsNotFoundError``.
        """
        if self._static:
            return status_of_static(self._static.credentials, self._static.origin)
        state = self._search()[0]
        with state.lock:
            entry = self._current_entry(state)
        if entry.token is None:
            raise self._not_found([f"{state.source.display} (no Kiro login in it)"])
        source = state.source
        arn = self._profile_arn or entry.token.profile_arn
        return status_of_token(
            entry.token,
            source_kind=source.kind,
            path=source.display,
            region=resolve_region(self._region, arn, entry.token.region),
            profile_arn=arn,
            can_write_back=not self.read_only and os.access(source.path, os.W_OK),
        )

    # -- fast path -----------------------------------------------------------------------------

    def _fast(self) -> Credentials | None:
        snap = self._snap
        if snap is None:
            return None
        state = snap.state
        if state is None:
            return snap.credentials
        entry = snap.entry
        if entry is None or state.current is not entry:
            return None
        now = time.time()
        if now >= snap.refresh_at or now < entry.trust_after:
            return None
        if stat_signature(entry.watch) != entry.signature:
            return None
        if snap.also_watch and stat_signature(snap.also_watch) != snap.also_signature:
            return None
        return snap.credentials

    async def _in_thread(self, key: object, work: Callable[[], Credentials]) -> Credentials:
        """Run ``work`` in a thread; concurrent tasks of one loop with the same key share it."""
        loop = asyncio.get_running_loop()
        slot = (loop, key)
        with self._inflight_lock:
            task = self._inflight.get(slot)
            if task is None:
                task = loop.create_task(asyncio.to_thread(work))
                self._inflight[slot] = task
                task.add_done_callback(lambda done: self._forget(slot, done))
        return await asyncio.shield(task)

    def _forget(
        self, slot: tuple[asyncio.AbstractEventLoop, object], done: asyncio.Task[Credentials]
    ) -> None:
        with self._inflight_lock:
            if self._inflight.get(slot) is done:
                del self._inflight[slot]
        if not done.cancelled():
            done.exception()  # mark retrieved: every waiter may have been cancelled

    # -- slow path -----------------------------------------------------------------------------

    def _slow(self, stale: Credentials | None) -> Credentials:
        if self._static:
            if stale is not None:
                raise self._static_rejected()
            return self._static.credentials
        search = False
        for _ in range(3):  # a source that lost its login meanwhile sends us searching again
            state, also, also_sig, seen = self._search() if search else self._locate()
            with state.lock:
                entry = self._current_entry(state)
                if entry.token is not None:
                    entry = self._ensure_fresh(state, entry, stale, seen)
            if entry.token is not None:
                snap = self._snapshot(state, entry, also, also_sig)
                self._snap = snap
                return snap.credentials
            search = True
        raise self._not_found([f"{state.source.display} (no Kiro login in it)"])

    def _locate(self) -> tuple[SourceState, tuple[str, ...], Signature, int]:
        """The source in use (searching again if a higher-priority file changed).

        Also returns the source's refresh sequence number *before* waiting for its lock, so a
        caller that waited out a failed refresh shares that failure instead of retrying.
        """
        snap = self._snap
        if (
            snap is not None
            and snap.state is not None
            and (not snap.also_watch or stat_signature(snap.also_watch) == snap.also_signature)
        ):
            return snap.state, snap.also_watch, snap.also_signature, snap.state.refresh_seq
        return self._search()

    def _search(self) -> tuple[SourceState, tuple[str, ...], Signature, int]:
        notes: list[str] = []
        also: list[str] = []
        for source in self._sources:
            if not source.exists():
                notes.append(f"{source.display} (not found)")
                also.append(str(source.path))
                continue
            state = state_for(source)
            seen = state.refresh_seq
            try:
                with state.lock:
                    entry = self._current_entry(state)
            except SourceUnreadable as exc:
                notes.append(f"{source.display} ({exc.reason})")
                also.append(str(source.path))
                continue
            if entry.token is not None:
                return state, tuple(also), stat_signature(also), seen
            notes.append(f"{source.display} (no Kiro login in it)")
            also.extend(entry.watch)
        raise self._not_found(notes)

    @staticmethod
    def _not_found(notes: list[str]) -> KiroCredentialsNotFoundError:
        return KiroCredentialsNotFoundError(
            "No Kiro credentials found. Open Kiro (or run `kiro-cli login`) and sign in; "
            f"looked in: {'; '.join(notes)}."
        )

    @staticmethod
    def _current_entry(state: SourceState) -> Entry:
        entry = state.current
        if entry is not None and state.is_unchanged(entry, time.time()):
            return entry
        return read_entry(state)

    def _ensure_fresh(
        self, state: SourceState, entry: Entry, stale: Credentials | None, seen: int
    ) -> Entry:
        """Refresh if needed (caller holds the lock); waiters share the outcome of a refresh."""
        token = entry.token
        assert token is not None
        now = time.time()
        failed_meanwhile = state.refresh_seq != seen and state.last_failure is not None
        if stale is not None:
            if token.access_value not in (None, stale.token.get_secret_value()):
                return entry  # someone refreshed while this caller's request was failing
        elif not _due(token, now, entry.margin):
            return entry
        elif not _due(token, now, EXPIRY_SLACK) and (failed_meanwhile or now < state.backoff_until):
            return entry  # refresh-ahead failed a moment ago; the token is still good
        if failed_meanwhile and state.last_failure is not None:
            raise state.last_failure[1]
        try:
            return self._refresh(state, stale)
        except KiroError as exc:
            if stale is not None or _due(token, time.time(), EXPIRY_SLACK):
                raise
            logger.warning(
                "could not refresh the Kiro access token ahead of its expiry (%s); "
                "using the current one for now",
                exc,
            )
            return state.current or entry

    def _refresh(self, state: SourceState, stale: Credentials | None) -> Entry:
        try:
            entry = self._refresh_once(state, stale)
        except KiroError as exc:
            state.refresh_seq += 1
            state.last_failure = (state.refresh_seq, exc)
            state.backoff_until = time.time() + FAILURE_BACKOFF
            raise
        state.refresh_seq += 1
        state.last_failure = None
        state.backoff_until = 0.0
        return entry

    def _refresh_once(self, state: SourceState, stale: Credentials | None) -> Entry:
        entry = read_entry(state)  # Kiro may have refreshed (and rotated the refresh token)
        token = entry.token
        if token is None:
            return entry
        if stale is not None and token.access_value not in (None, stale.token.get_secret_value()):
            return entry
        if stale is None and not _due(token, time.time(), entry.margin):
            return entry
        try:
            new = self._call_refresh(token)
        except KiroSessionExpiredError:
            again = read_entry(state)
            rotated = again.token and again.origin_refresh != entry.origin_refresh
            if rotated and again.token and not _due(again.token, time.time(), EXPIRY_SLACK):
                return again  # Kiro rotated the refresh token under us; its token is good
            raise
        return self._store(state, entry, token, new)

    def _call_refresh(self, token: StoredToken) -> NewTokens:
        injected = self._http_client
        return refresh_stored_token(
            injected or shared_client(),
            token,
            auth_url=self._auth_url,
            oidc_url=self._oidc_url,
            timeout=None if injected else self._timeout,
        )

    def _store(self, state: SourceState, entry: Entry, token: StoredToken, new: NewTokens) -> Entry:
        """Publish the refreshed token; write it back unless read-only (compare-and-swap)."""
        refreshed = with_new_tokens(token, new)
        lifetime = new.expires_at.timestamp() - time.time()
        entry = replace(entry, margin=max(min(REFRESH_MARGIN, lifetime / 2), 0.0))
        if self.read_only:
            return self._publish(state, entry, refreshed, entry.origin_refresh)
        try:
            written = state.source.write_back(token.key, entry.origin_refresh, new)
        except (sqlite3.Error, OSError) as exc:
            logger.warning(
                "could not write the refreshed Kiro token back to %s (%s: %s); "
                "keeping it in memory",
                state.source.display,
                type(exc).__name__,
                exc,
            )
            return self._publish(state, entry, refreshed, entry.origin_refresh)
        mine = self._publish(state, entry, refreshed, refreshed.refresh_value)
        if not written:
            logger.info(
                "Kiro changed its login in %s during the refresh; using Kiro's token",
                state.source.display,
            )
        fresh = read_entry(state)
        if fresh.token is None and written:
            state.current = mine  # cannot happen unless the file is replaced right after our write
            return mine
        return fresh

    @staticmethod
    def _publish(state: SourceState, entry: Entry, token: StoredToken, origin: str | None) -> Entry:
        published = replace(entry, token=token, origin_refresh=origin)
        state.current = published
        return published

    def _snapshot(
        self, state: SourceState, entry: Entry, also: tuple[str, ...], also_sig: Signature
    ) -> _Snapshot:
        token = entry.token
        assert token is not None
        assert token.access_token is not None
        arn = self._profile_arn or token.profile_arn
        kind: CredentialsKind = "external_idp" if token.login == "external_idp" else "bearer"
        region = resolve_region(self._region, arn, token.region)
        creds = Credentials(token.access_token, kind, arn, region, token.expires_at, token.location)
        refresh_at = math.inf
        if token.expires_at is not None:
            expires = token.expires_at.timestamp()
            refresh_at = expires - entry.margin
            if refresh_at <= time.time():  # in a refresh-ahead backoff
                refresh_at = min(state.backoff_until, expires - EXPIRY_SLACK)
        return _Snapshot(creds, state, entry, refresh_at, also, also_sig)

    def _static_rejected(self) -> KiroAuthError:
        assert self._static is not None
        creds, origin = self._static.credentials, self._static.origin
        if creds.kind == "api_key":
            return KiroAuthError(
                f"Kiro rejected the API key from {origin}: it is invalid, expired or revoked. "
                "Create a new key in Kiro and set it, or unset it to use your Kiro sign-in."
            )
        return KiroAuthError(
            f"Kiro rejected the access token from {origin}: it is invalid or expired, and a raw "
            "access token cannot be refreshed. Set a fresh one, or unset it so kiro-lc uses your "
            "Kiro sign-in (Kiro IDE or `kiro-cli login`), which it refreshes automatically."
        )
