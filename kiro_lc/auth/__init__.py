"""Kiro credentials: find them, keep the access token fresh, follow account switches.

``KiroAuth`` is the one object the transport uses (``get_credentials`` before every request,
``force_refresh`` after a 403). See ``manager.py`` for the source order and ``refresh.py`` for
the three refresh flows.
"""

from __future__ import annotations

from kiro_lc.auth.credentials import Credentials, StoredToken
from kiro_lc.auth.manager import EXPIRY_SLACK, REFRESH_MARGIN, KiroAuth
from kiro_lc.auth.status import AuthStatus, format_status

__all__ = [
    "EXPIRY_SLACK",
    "REFRESH_MARGIN",
    "AuthStatus",
    "Credentials",
    "KiroAuth",
    "StoredToken",
    "format_status",
]
