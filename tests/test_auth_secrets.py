"""No token, refresh token, client secret or API key in any log record, message or output."""

from __future__ import annotations

import logging
import socket
import sqlite3
from pathlib import Path

import pytest
from auth_fixtures import (
    EXTERNAL_IDP_KEY,
    ODIC_KEY,
    ODIC_REGISTRATION_KEY,
    SOCIAL_KEY,
    KiroHome,
    call_api,
    external_idp_row,
    get_db_row,
    make_cli_db,
    oidc_row,
    registration_row,
    set_db_row,
    social_db_for,
    social_row,
)

from kiro_lc.auth import KiroAuth, format_status, sqlite_store
from kiro_lc.errors import KiroError
from kiro_lc.testing import KiroEmulator


class Secrets:
    """Every secret the scenario handles, and every text kiro-lc produced."""

    def __init__(self) -> None:
        self.values: set[str] = set()
        self.texts: list[str] = []

    def add(self, *values: str | None) -> None:
        self.values.update(v for v in values if v)

    def row(self, db: Path, key: str) -> None:
        row = get_db_row(db, key) or {}
        self.add(row.get("access_token"), row.get("refresh_token"), row.get("client_secret"))

    def error(self, exc: BaseException) -> None:
        self.texts += [str(exc), repr(exc)]


def run_scenarios(
    home: KiroHome,
    emu: KiroEmulator,
    tmp_path: Path,
    seen: Secrets,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = home.cli_db
    alice = emu.add_account("alice", kind="social", rotate_refresh_token=True)
    bob = emu.add_account("bob", kind="oidc", rotate_refresh_token=True)
    carol = emu.add_account("carol", kind="external_idp", rotate_refresh_token=True)
    seen.add(
        alice.refresh_token, bob.refresh_token, carol.refresh_token, bob.client_secret, emu.api_key
    )
    # social: refresh-ahead, rotation, write-back, status
    social_db_for(emu, db, alice, expires_in=-1)
    seen.row(db, SOCIAL_KEY)
    auth = KiroAuth()
    creds = auth.get_credentials()
    seen.add(creds.token.get_secret_value(), alice.refresh_token)
    seen.texts += [
        repr(creds),
        str(creds),
        repr(auth),
        repr(auth.status()),
        format_status(auth.status()),
    ]
    print(format_status(auth.status()))
    # account switch to an OIDC login (refreshed with the client secret)
    set_db_row(db, SOCIAL_KEY, None)
    set_db_row(
        db, ODIC_KEY, oidc_row("old-oidc-access-token-xyz", str(bob.refresh_token), expires_in=-1)
    )
    set_db_row(
        db, ODIC_REGISTRATION_KEY, registration_row(str(bob.client_id), str(bob.client_secret))
    )
    seen.add("old-oidc-access-token-xyz")
    creds = auth.get_credentials()
    seen.add(creds.token.get_secret_value(), bob.refresh_token)
    assert call_api(emu, creds)[0] == 200
    # external IdP
    ext_db = make_cli_db(
        tmp_path / "ext.sqlite3",
        {
            EXTERNAL_IDP_KEY: external_idp_row(
                "old-ext-access-token-xyz",
                str(carol.refresh_token),
                client_id=str(carol.client_id),
                token_endpoint=str(carol.token_endpoint),
                expires_in=-1,
            )
        },
    )
    seen.add("old-ext-access-token-xyz")
    creds = KiroAuth(db_path=ext_db).get_credentials()
    seen.add(creds.token.get_secret_value(), carol.refresh_token)
    # failures: invalid_grant, unreachable service, write-back lock, static tokens, nothing found
    bad = make_cli_db(
        tmp_path / "bad.sqlite3",
        {SOCIAL_KEY: social_row("dead-access-token-xyz", "dead-refresh-token-xyz", expires_in=-1)},
    )
    seen.add("dead-access-token-xyz", "dead-refresh-token-xyz")
    expect_error(seen, lambda: KiroAuth(db_path=bad).get_credentials())
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    expect_error(
        seen, lambda: KiroAuth(db_path=bad, auth_url=f"http://127.0.0.1:{port}").get_credentials()
    )
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT", 0.1)
    locked = social_db_for(
        emu, tmp_path / "locked.sqlite3", emu.add_account("dave", kind="social"), expires_in=-1
    )
    seen.row(locked, SOCIAL_KEY)
    kiro = sqlite3.connect(locked, isolation_level=None, check_same_thread=False)
    kiro.execute("BEGIN IMMEDIATE")
    creds = KiroAuth(db_path=locked).get_credentials()
    kiro.execute("ROLLBACK")
    kiro.close()
    seen.add(creds.token.get_secret_value(), emu.account("dave").refresh_token)
    raw = KiroAuth(access_token="raw-access-token-xyz")
    seen.add("raw-access-token-xyz")
    expect_error(seen, lambda: raw.force_refresh(raw.get_credentials()))
    keyed = KiroAuth(api_key=emu.api_key)
    expect_error(seen, lambda: keyed.force_refresh(keyed.get_credentials()))
    seen.texts += [repr(raw), repr(keyed), format_status(keyed.status())]
    expect_error(seen, lambda: KiroAuth(db_path=tmp_path / "none.sqlite3").get_credentials())


def expect_error(seen: Secrets, action: object) -> None:
    with pytest.raises(KiroError) as info:
        action()  # type: ignore[operator]
    seen.error(info.value)


def test_no_secret_reaches_logs_errors_or_output(
    home: KiroHome,
    emu: KiroEmulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen = Secrets()
    run_scenarios(home, emu, tmp_path, seen, monkeypatch)
    out = capsys.readouterr()
    records = caplog.records
    assert any(r.name == "kiro_lc.auth" and r.levelno == logging.DEBUG for r in records)
    assert any("changed" in r.getMessage() for r in records)  # the account switch was logged
    assert any(
        r.levelno == logging.WARNING and "could not write" in r.getMessage() for r in records
    )
    assert len(seen.values) >= 15
    haystack = [caplog.text, out.out, out.err, *seen.texts]
    for record in records:
        haystack += [record.getMessage(), repr(record.args), str(record.exc_text or "")]
    for secret in seen.values:
        for text in haystack:
            assert secret not in text
