"""The three refresh flows against the emulator, write-back, and how failures read."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import stat
import threading
import time

import httpx
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
    ide_idc_token,
    ide_social_token,
    make_cli_db,
    oidc_row,
    profile_state,
    registration_row,
    set_db_row,
    social_db_for,
    social_row,
    write_json,
)

from kiro_lc.auth import REFRESH_MARGIN, KiroAuth, sqlite_store
from kiro_lc.errors import (
    KiroAccountSuspendedError,
    KiroAPIError,
    KiroAuthError,
    KiroConnectionError,
    KiroSessionExpiredError,
)
from kiro_lc.testing import Fault, KiroEmulator


def closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


def test_valid_token_is_used_without_refreshing(home: KiroHome, emu: KiroEmulator) -> None:
    alice = emu.add_account("alice", kind="social")
    social_db_for(emu, home.cli_db, alice)
    creds = KiroAuth().get_credentials()
    assert emu.refresh_count == 0
    status, record = call_api(emu, creds)
    assert (status, record.account, record.problems) == (200, "alice", [])


def test_social_refresh_ahead_of_expiry_writes_back(home: KiroHome, emu: KiroEmulator) -> None:
    alice = emu.add_account("alice", kind="social", rotate_refresh_token=True)
    old_refresh = alice.refresh_token
    social_db_for(emu, home.cli_db, alice, expires_in=REFRESH_MARGIN - 60)
    creds = KiroAuth().get_credentials()
    assert emu.refresh_count == 1
    assert emu.requests[-1].path == "/refreshToken"
    assert call_api(emu, creds)[0] == 200
    row = get_db_row(home.cli_db, SOCIAL_KEY)
    assert row is not None
    assert row["access_token"] == creds.token.get_secret_value()
    assert row["refresh_token"] == alice.refresh_token != old_refresh
    assert row["expires_at"].endswith("Z")
    assert len(row["expires_at"].split(".")[1]) == 10  # nine digits + Z, as kiro-cli writes
    assert row["provider"] == "github"
    assert row["oauth_flow"] == "DeviceCode"


def test_oidc_refresh_uses_sso_token_endpoint_and_registration(
    home: KiroHome, emu: KiroEmulator
) -> None:
    bob = emu.add_account("bob", kind="oidc", rotate_refresh_token=True)
    assert bob.client_id is not None
    assert bob.client_secret is not None
    make_cli_db(
        home.cli_db,
        {
            ODIC_KEY: oidc_row("expired-access", str(bob.refresh_token), expires_in=-10),
            ODIC_REGISTRATION_KEY: registration_row(bob.client_id, bob.client_secret),
        },
        profile=profile_state(),
    )
    creds = KiroAuth().get_credentials()
    refresh_call = emu.requests[-1]
    assert refresh_call.path == "/token"
    assert refresh_call.body["grantType"] == "refresh_token"
    assert refresh_call.body["clientId"] == bob.client_id
    status, record = call_api(emu, creds)
    assert (status, record.account) == (200, "bob")
    row = get_db_row(home.cli_db, ODIC_KEY)
    assert row is not None
    assert row["refresh_token"] == bob.refresh_token
    assert "." not in row["expires_at"]  # whole seconds, as the OIDC row had
    assert row["start_url"] == "https://view.awsapps.com/start"


def test_external_idp_refresh_is_form_encoded_and_sends_tokentype(
    home: KiroHome, emu: KiroEmulator
) -> None:
    carol = emu.add_account("carol", kind="external_idp")
    assert carol.client_id is not None
    assert carol.token_endpoint is not None
    make_cli_db(
        home.cli_db,
        {
            EXTERNAL_IDP_KEY: external_idp_row(
                "expired",
                str(carol.refresh_token),
                client_id=carol.client_id,
                token_endpoint=carol.token_endpoint,
                expires_in=-5,
            )
        },
    )
    creds = KiroAuth().get_credentials()
    assert emu.requests[-1].path == "/external-idp/token"
    assert emu.requests[-1].headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert creds.kind == "external_idp"
    assert creds.auth_headers()["TokenType"] == "EXTERNAL_IDP"
    status, record = call_api(emu, creds)
    assert (status, record.account, record.problems) == (200, "carol", [])


def test_ide_social_file_refresh_keeps_format_mode_and_fields(
    home: KiroHome, emu: KiroEmulator
) -> None:
    dana = emu.add_account("dana", kind="social", rotate_refresh_token=True)
    original = ide_social_token(
        "expired", str(dana.refresh_token), expires_in=-60, profile_arn=str(dana.profile_arn)
    )
    write_json(home.ide_token_file, original, mode=0o600)
    creds = KiroAuth().get_credentials()
    assert call_api(emu, creds)[0] == 200
    data = json.loads(home.ide_token_file.read_text())
    assert data["refreshToken"] == dana.refresh_token
    assert data["accessToken"] == creds.token.get_secret_value()
    assert len(data["expiresAt"]) == len("2025-12-31T02:32:45.144Z")
    assert (data["authMethod"], data["provider"], data["profileArn"]) == (
        "social",
        "Google",
        dana.profile_arn,
    )
    assert stat.S_IMODE(os.stat(home.ide_token_file).st_mode) == 0o600


def test_ide_idc_file_refreshes_through_oidc(home: KiroHome, emu: KiroEmulator) -> None:
    erin = emu.add_account("erin", kind="oidc")
    cache = home.ide_token_file.parent
    write_json(
        home.ide_token_file,
        ide_idc_token("expired", str(erin.refresh_token), client_id_hash="f00d", expires_in=-1),
    )
    write_json(
        cache / "f00d.json",
        {
            "clientId": erin.client_id,
            "clientSecret": erin.client_secret,
            "expiresAt": "2099-01-01T00:00:00.000Z",
        },
    )
    creds = KiroAuth().get_credentials()
    assert emu.requests[-1].path == "/token"
    status, record = call_api(emu, creds)
    assert (status, record.account) == (200, "erin")


def test_read_only_never_writes_but_shares_the_refreshed_token(
    home: KiroHome, emu: KiroEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = emu.add_account("alice", kind="social", rotate_refresh_token=True)
    social_db_for(emu, home.cli_db, alice, expires_in=-30)
    before = home.cli_db.read_bytes()
    mtime = os.stat(home.cli_db).st_mtime_ns
    monkeypatch.setenv("KIRO_READ_ONLY", "1")
    first = KiroAuth()
    assert first.read_only
    creds = first.get_credentials()
    assert call_api(emu, creds)[0] == 200
    again = KiroAuth().get_credentials()  # another instance, same process: no second refresh
    assert again.token.get_secret_value() == creds.token.get_secret_value()
    assert emu.refresh_count == 1
    # and the rotated refresh token is remembered for the next refresh
    fresh = first.force_refresh(creds)
    assert fresh.token.get_secret_value() != creds.token.get_secret_value()
    assert emu.refresh_count == 2
    assert call_api(emu, fresh)[0] == 200
    assert home.cli_db.read_bytes() == before
    assert os.stat(home.cli_db).st_mtime_ns == mtime
    assert not KiroAuth(read_only=False).read_only


def test_force_refresh_after_403_and_not_when_someone_already_did(
    home: KiroHome, emu: KiroEmulator
) -> None:
    alice = emu.add_account("alice", kind="social")
    social_db_for(emu, home.cli_db, alice)
    auth = KiroAuth()
    stale = auth.get_credentials()
    emu.expire_access_tokens(alice)
    assert call_api(emu, stale)[0] == 403
    fresh = auth.force_refresh(stale)
    assert emu.refresh_count == 1
    assert call_api(emu, fresh)[0] == 200
    assert auth.force_refresh(stale) is not None
    assert auth.force_refresh(stale).token.get_secret_value() == fresh.token.get_secret_value()
    assert emu.refresh_count == 1


def test_invalid_grant_means_sign_in_again(home: KiroHome, emu: KiroEmulator) -> None:
    make_cli_db(home.cli_db, {SOCIAL_KEY: social_row("expired", "revoked-refresh", expires_in=-60)})
    with pytest.raises(KiroSessionExpiredError) as info:
        KiroAuth().get_credentials()
    assert info.value.message == "Your Kiro session has expired; open Kiro and sign in again."
    assert info.value.status == 400
    assert get_db_row(home.cli_db, SOCIAL_KEY)["access_token"] == "expired"  # type: ignore[index]


def test_invalid_grant_adopts_a_rotation_kiro_made_meanwhile(
    home: KiroHome, emu: KiroEmulator
) -> None:
    alice = emu.add_account("alice", kind="social")
    make_cli_db(home.cli_db, {SOCIAL_KEY: social_row("expired", "old-refresh", expires_in=-60)})
    emu.script_for("RefreshToken", Fault.latency(0.3))
    fixed = emu.issue_access_token(alice)

    def kiro_refreshes() -> None:
        while emu.refresh_count == 0:
            time.sleep(0.005)
        set_db_row(home.cli_db, SOCIAL_KEY, social_row(fixed, str(alice.refresh_token)))

    thread = threading.Thread(target=kiro_refreshes)
    thread.start()
    creds = KiroAuth().get_credentials()
    thread.join()
    assert creds.token.get_secret_value() == fixed
    assert call_api(emu, creds)[0] == 200


def test_unreachable_refresh_service_is_a_connection_error(
    home: KiroHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIRO_AUTH_URL", closed_port_url())
    make_cli_db(home.cli_db, {SOCIAL_KEY: social_row("expired", "ref", expires_in=-60)})
    with pytest.raises(KiroConnectionError) as info:
        KiroAuth(timeout=2).get_credentials()
    assert "Could not reach Kiro's sign-in service at 127.0.0.1:" in str(info.value)
    assert "check your network connection" in str(info.value)
    assert info.value.is_retryable


def test_failed_refresh_ahead_keeps_the_still_valid_token(
    home: KiroHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIRO_AUTH_URL", closed_port_url())
    make_cli_db(home.cli_db, {SOCIAL_KEY: social_row("still-good", "ref", expires_in=120)})
    auth = KiroAuth(timeout=2)
    assert auth.get_credentials().token.get_secret_value() == "still-good"
    assert auth.get_credentials().token.get_secret_value() == "still-good"  # backoff, no raise


def test_refresh_service_errors_map_to_clear_kiro_errors(home: KiroHome, emu: KiroEmulator) -> None:
    alice = emu.add_account("alice", kind="social")
    social_db_for(emu, home.cli_db, alice, expires_in=-5)
    emu.script_for(
        "RefreshToken",
        Fault.http(
            403,
            {
                "__type": "AccessDeniedException",
                "reason": "TEMPORARILY_SUSPENDED",
                "message": "Your account is temporarily suspended.",
            },
        ),
        Fault.http(503, {"message": "Service unavailable"}),
        Fault.http(401, {"error": "unauthorized_client"}),
    )
    with pytest.raises(KiroAccountSuspendedError, match="temporarily suspended") as suspended:
        KiroAuth().get_credentials()
    assert suspended.value.reason == "TEMPORARILY_SUSPENDED"
    with pytest.raises(KiroAPIError, match=r"HTTP 503") as unavailable:
        KiroAuth().get_credentials()
    assert unavailable.value.is_retryable
    with pytest.raises(KiroAuthError, match=r"HTTP 401, unauthorized_client.*sign in again"):
        KiroAuth().get_credentials()


def test_oidc_login_without_registration_says_sign_in_again(
    home: KiroHome, emu: KiroEmulator
) -> None:
    make_cli_db(home.cli_db, {ODIC_KEY: oidc_row("expired", "ref", expires_in=-60)})
    with pytest.raises(KiroAuthError, match="no OIDC client registration"):
        KiroAuth().get_credentials()
    assert emu.refresh_count == 0


def test_write_back_failure_keeps_the_token_in_memory(
    home: KiroHome, emu: KiroEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT", 0.2)
    alice = emu.add_account("alice", kind="social")
    social_db_for(emu, home.cli_db, alice, expires_in=-5)
    kiro = sqlite3.connect(home.cli_db, isolation_level=None, check_same_thread=False)
    kiro.execute("BEGIN IMMEDIATE")  # Kiro holds the write lock for longer than our busy timeout
    try:
        creds = KiroAuth().get_credentials()
    finally:
        kiro.execute("ROLLBACK")
        kiro.close()
    assert call_api(emu, creds)[0] == 200
    assert get_db_row(home.cli_db, SOCIAL_KEY)["access_token"] != creds.token.get_secret_value()  # type: ignore[index]


def test_injected_http_client_is_used_for_refresh(home: KiroHome, emu: KiroEmulator) -> None:
    alice = emu.add_account("alice", kind="social")
    social_db_for(emu, home.cli_db, alice, expires_in=-5)
    seen: list[str] = []
    with httpx.Client(event_hooks={"request": [lambda r: seen.append(r.url.path)]}) as client:
        creds = KiroAuth(http_client=client).get_credentials()
    assert seen == ["/refreshToken"]
    assert call_api(emu, creds)[0] == 200


def test_row_changed_during_refresh_is_adopted_not_overwritten(
    home: KiroHome, emu: KiroEmulator
) -> None:
    alice = emu.add_account("alice", kind="social", rotate_refresh_token=True)
    bob = emu.add_account("bob", kind="social")
    social_db_for(emu, home.cli_db, alice, expires_in=-5)
    emu.script_for("RefreshToken", Fault.latency(0.3))
    bob_row = social_row(
        emu.issue_access_token(bob), str(bob.refresh_token), profile_arn=bob.profile_arn
    )

    def kiro_logs_in_as_bob() -> None:
        while emu.refresh_count == 0:
            time.sleep(0.005)
        set_db_row(home.cli_db, SOCIAL_KEY, bob_row)

    thread = threading.Thread(target=kiro_logs_in_as_bob)
    thread.start()
    creds = KiroAuth().get_credentials()
    thread.join()
    assert emu.refresh_count == 1  # alice's refresh happened, but its write-back did not
    assert get_db_row(home.cli_db, SOCIAL_KEY) == bob_row
    status, record = call_api(emu, creds)
    assert (status, record.account) == (200, "bob")


def test_short_lived_tokens_are_not_refreshed_on_every_request(
    home: KiroHome, emu: KiroEmulator
) -> None:
    alice = emu.add_account("alice", kind="social", access_token_ttl=60)
    social_db_for(emu, home.cli_db, alice, expires_in=-1)
    auth = KiroAuth()
    first = auth.get_credentials()
    for _ in range(20):
        assert auth.get_credentials().token.get_secret_value() == first.token.get_secret_value()
    assert emu.refresh_count == 1
