"""Per-source state shared by every ``KiroAuth`` in the process.

One ``SourceState`` per credentials file (keyed by its real path) holds the lock that makes
refreshes single-flight process-wide, and the current ``Entry``: the best token known for the
source and the stat signature it was read under. Entries are immutable and replaced whole, so
the lock-free fast path in ``KiroAuth`` can read ``state.current`` safely.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import dataclass, field, replace

from kiro_lc.auth.credentials import StoredToken
from kiro_lc.auth.errors_internal import SourceUnreadable
from kiro_lc.auth.fields import NewTokens
from kiro_lc.auth.sources import Signature, Source, stat_signature
from kiro_lc.errors import KiroError

__all__ = ["RACY_WINDOW", "Entry", "SourceState", "read_entry", "state_for", "with_new_tokens"]

logger = logging.getLogger("kiro_lc.auth")

DEFAULT_MARGIN = 300.0
"""Refresh an access token this many seconds before it expires (5 min: long requests finish)."""
RACY_REREAD_INTERVAL = 0.05
"""Inside the racy window, re-read at most this often (a change is seen within 50 ms)."""
RACY_WINDOW = 2.0
"""Seconds after a file's mtime during which its stat signature is not trusted.

Two writes within one timestamp tick (up to 2 s on FAT, ~4 ms on ext4) can leave mtime and size
unchanged, so a file modified that recently is re-read on each request until it is older than this
(the "racy git" rule).
"""


@dataclass(frozen=True)
class Entry:
    """The best token for a source and how it was read.

    ``origin_refresh`` is the refresh token of the stored row ``token`` derives from. It equals
    ``token``'s own refresh token unless kiro-lc refreshed without writing back (read-only mode),
    and it is what decides an account switch: a stored row whose refresh token differs from it is
    a new login (or Kiro refreshed), and replaces ``token``. ``margin`` is how long before expiry
    to refresh: ``DEFAULT_MARGIN``, or half the lifetime of a token we refreshed when shorter.
    """

    token: StoredToken | None
    origin_refresh: str | None
    watch: tuple[str, ...]
    signature: Signature
    trust_after: float
    read_at: float = 0.0
    margin: float = DEFAULT_MARGIN


@dataclass(eq=False)
class SourceState:
    """Lock and current entry of one source; ``refresh_seq``/``last_failure`` share outcomes."""

    source: Source
    lock: threading.Lock = field(default_factory=threading.Lock)
    current: Entry | None = None
    refresh_seq: int = 0
    last_failure: tuple[int, KiroError] | None = None
    backoff_until: float = 0.0

    def is_unchanged(self, entry: Entry, now: float) -> bool:
        """Whether ``entry`` still describes the files (nothing changed, or just re-read)."""
        if now < entry.trust_after and now - entry.read_at >= RACY_REREAD_INTERVAL:
            return False
        return stat_signature(entry.watch) == entry.signature


_STATES: weakref.WeakValueDictionary[tuple[str, str], SourceState] = weakref.WeakValueDictionary()
_STATES_LOCK = threading.Lock()


def state_for(source: Source) -> SourceState:
    """The process-wide state of ``source`` (created on first use, dropped when unused)."""
    with _STATES_LOCK:
        state = _STATES.get(source.key)
        if state is None:
            state = SourceState(source)
            _STATES[source.key] = state
        return state


def _trust_after(signature: Signature, read_at: float) -> float:
    newest = max((sig[0] for sig in signature if sig is not None), default=0) / 1e9
    return min(newest, read_at) + RACY_WINDOW


def read_entry(state: SourceState) -> Entry:
    """Re-read the source (caller holds ``state.lock``), adopt what is stored, publish and return.

    The stored row replaces the current token unless it is the very row the current token was
    refreshed from in memory (then ours is newer). An unreadable file keeps the current token
    for now and is re-read on the next request.
    """
    prev = state.current
    watch = prev.watch if prev else (str(state.source.path),)
    before = stat_signature(watch)
    now = time.time()
    try:
        loaded = state.source.load()
    except SourceUnreadable:
        if prev is None or prev.token is None:
            raise
        entry = replace(prev, signature=before, trust_after=now + RACY_WINDOW, read_at=now)
        state.current = entry
        return entry
    if loaded.watch != watch:
        before, trust = stat_signature(loaded.watch), now + RACY_WINDOW
    else:
        trust = _trust_after(before, now)
    token, origin = _choose(prev, loaded.token, state.source)
    margin = DEFAULT_MARGIN
    if prev and prev.token and token and prev.token.access_value == token.access_value:
        margin = prev.margin  # same token: keep the margin its refresh chose
    entry = Entry(token, origin, loaded.watch, before, trust, now, margin)
    state.current = entry
    return entry


def _choose(
    prev: Entry | None, row: StoredToken | None, source: Source
) -> tuple[StoredToken | None, str | None]:
    if row is None:
        return None, None
    if prev is None or prev.token is None:
        return row, row.refresh_value
    if row.refresh_value == prev.origin_refresh and row.key == prev.token.key:
        if _is_newer(prev.token, row):
            return prev.token, prev.origin_refresh
        return row, row.refresh_value
    logger.info(
        "the Kiro login in %s changed (new sign-in, another account, or Kiro refreshed it); "
        "using the new one",
        source.display,
    )
    return row, row.refresh_value


def _is_newer(ours: StoredToken, stored: StoredToken) -> bool:
    if ours.access_value == stored.access_value or ours.expires_at is None:
        return False
    return stored.expires_at is None or ours.expires_at > stored.expires_at


def with_new_tokens(token: StoredToken, new: NewTokens) -> StoredToken:
    """``token`` after a refresh that is kept in memory only (read-only or write-back failed)."""
    return replace(
        token,
        access_token=new.access_token,
        refresh_token=new.refresh_token or token.refresh_token,
        expires_at=new.expires_at,
        profile_arn=token.profile_arn or new.profile_arn,
    )
