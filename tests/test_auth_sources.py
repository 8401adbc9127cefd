"""Where KiroAuth looks, in which order, and what it says when it finds nothing."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from auth_fixtures import (
    ODIC_KEY,
    ODIC_REGISTRATION_KEY,
    PROFILE_ARN,
    SOCIAL_KEY,
    KiroHome,
    call_api,
    ide_social_token,
    make_cli_db,
    oidc_row,
    profile_state,
    registration_row,
    social_row,
    write_json,
)
from pydantic import SecretStr

from kiro_lc.auth import AuthStatus, Credentials, KiroAuth, format_status
from kiro_lc.auth.credentials import StoredToken, region_from_arn, resolve_region
from kiro_lc.auth.refresh import refresh_endpoint
from kiro_lc.auth.status import format_relative_expiry
from kiro_lc.errors import KiroAuthError, KiroCredentialsNotFoundError
from kiro_lc.testing import KiroEmulator

EU_ARN = "arn:aws:codewhisperer:eu-central-1:111122223333:profile/EUPROFILE"


@pytest.fixture
def emu() -> Iterator[KiroEmulator]:
    with KiroEmulator() as emulator:
        yield emulator


def test_nothing_found_lists_every_place_looked(home: KiroHome) -> None:
    with pytest.raises(KiroCredentialsNotFoundError) as info:
        KiroAuth().get_credentials()
    message = str(info.value)
    assert message.startswith(
        "No Kiro credentials found. Open Kiro (or run `kiro-cli login`) and sign in; looked in: "
    )
    assert "~/.local/share/kiro-cli/data.sqlite3 (not found)" in message or sys.platform != "linux"
    assert "amazon-q" in message
    assert "kiro-auth-token.json (not found)" in message
    assert isinstance(info.value, KiroAuthError)


def test_database_without_a_login_is_reported_as_such(home: KiroHome) -> None:
    make_cli_db(home.cli_db, {})
    with pytest.raises(KiroCredentialsNotFoundError, match=r"data.sqlite3 \(no Kiro login in it\)"):
        KiroAuth().get_credentials()


def test_cli_database_is_found_with_zero_configuration(home: KiroHome) -> None:
    make_cli_db(home.cli_db, {SOCIAL_KEY: social_row("acc-cli", "ref-cli")})
    write_json(home.ide_token_file, ide_social_token("acc-ide", "ref-ide"))
    creds = KiroAuth().get_credentials()
    assert creds.token.get_secret_value() == "acc-cli"
    assert creds.kind == "bearer"
    assert creds.profile_arn == PROFILE_ARN
    assert (
        creds.source == f"Kiro CLI database ~/.local/share/kiro-cli/data.sqlite3 ({SOCIAL_KEY})"
        or (sys.platform != "linux")
    )


def test_legacy_amazon_q_database_is_used_when_kiro_cli_has_none(home: KiroHome) -> None:
    legacy = home.cli_db.parent.parent / "amazon-q" / "data.sqlite3"
    make_cli_db(legacy, {"codewhisperer:odic:token": oidc_row("acc-q", "ref-q")})
    creds = KiroAuth().get_credentials()
    assert creds.token.get_secret_value() == "acc-q"
    assert "amazon-q" in creds.source


def test_ide_token_file_is_the_last_resort(home: KiroHome) -> None:
    make_cli_db(home.cli_db, {})  # kiro-cli installed but signed out
    write_json(home.ide_token_file, ide_social_token("acc-ide", "ref-ide"))
    creds = KiroAuth().get_credentials()
    assert creds.token.get_secret_value() == "acc-ide"
    assert creds.source == "Kiro IDE token file ~/.aws/sso/cache/kiro-auth-token.json"


def test_environment_order_api_key_then_access_token_then_files(
    home: KiroHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_cli_db(home.cli_db, {SOCIAL_KEY: social_row("acc-cli", "ref-cli")})
    monkeypatch.setenv("KIRO_ACCESS_TOKEN", "raw-token")
    monkeypatch.setenv("KIRO_PROFILE_ARN", EU_ARN)
    creds = KiroAuth().get_credentials()
    assert (creds.token.get_secret_value(), creds.kind) == ("raw-token", "bearer")
    assert (creds.profile_arn, creds.region) == (EU_ARN, "eu-central-1")
    monkeypatch.setenv("KIRO_API_KEY", "ksk_from_env")
    creds = KiroAuth().get_credentials()
    assert (creds.token.get_secret_value(), creds.kind) == ("ksk_from_env", "api_key")
    assert creds.auth_headers() == {"Authorization": "Bearer ksk_from_env", "tokentype": "API_KEY"}
    creds = KiroAuth(api_key=SecretStr("ksk_arg")).get_credentials()
    assert creds.token.get_secret_value() == "ksk_arg"
    assert creds.source == "the api_key argument"
    creds = KiroAuth(access_token="raw-arg").get_credentials()
    assert (creds.token.get_secret_value(), creds.kind) == ("raw-arg", "bearer")


def test_explicit_db_path_restricts_the_search_and_beats_env_keys(
    home: KiroHome, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KIRO_API_KEY", "ksk_env")
    write_json(home.ide_token_file, ide_social_token("acc-ide", "ref-ide"))
    mine = make_cli_db(tmp_path / "mine.sqlite3", {SOCIAL_KEY: social_row("acc-mine", "r")})
    assert KiroAuth(db_path=mine).get_credentials().token.get_secret_value() == "acc-mine"
    empty = make_cli_db(tmp_path / "empty.sqlite3", {})
    with pytest.raises(KiroCredentialsNotFoundError) as info:
        KiroAuth(db_path=empty).get_credentials()
    assert "empty.sqlite3 (no Kiro login in it)" in str(info.value)
    assert "kiro-auth-token.json" not in str(info.value)
    only_file = KiroAuth(token_file=home.ide_token_file).get_credentials()
    assert only_file.token.get_secret_value() == "acc-ide"


def test_env_paths_replace_the_default_locations(
    home: KiroHome, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    make_cli_db(home.cli_db, {SOCIAL_KEY: social_row("acc-default", "r")})
    other = make_cli_db(tmp_path / "other.sqlite3", {SOCIAL_KEY: social_row("acc-env", "r")})
    monkeypatch.setenv("KIRO_DB_PATH", str(other))
    assert KiroAuth().get_credentials().token.get_secret_value() == "acc-env"
    monkeypatch.setenv("KIRO_DB_PATH", str(tmp_path / "missing.sqlite3"))
    token_file = write_json(tmp_path / "tok.json", ide_social_token("acc-file", "r"))
    monkeypatch.setenv("KIRO_TOKEN_FILE", str(token_file))
    assert KiroAuth().get_credentials().token.get_secret_value() == "acc-file"


@pytest.mark.parametrize(
    ("override", "arn", "token_region", "expected"),
    [
        ("ap-south-1", EU_ARN, "us-east-2", "ap-south-1"),
        (None, EU_ARN, "us-east-2", "eu-central-1"),
        (None, None, "us-east-2", "us-east-2"),
        (None, None, None, "us-east-1"),
        (None, "not-an-arn", None, "us-east-1"),
    ],
)
def test_region_rule(
    override: str | None, arn: str | None, token_region: str | None, expected: str
) -> None:
    assert resolve_region(override, arn, token_region) == expected


def test_region_and_profile_in_credentials(home: KiroHome, monkeypatch: pytest.MonkeyPatch) -> None:
    make_cli_db(
        home.cli_db,
        {
            ODIC_KEY: oidc_row("acc", "ref", region="us-east-2"),
            ODIC_REGISTRATION_KEY: registration_row("cid", "csec", "us-east-2"),
        },
        profile=profile_state(EU_ARN),
    )
    creds = KiroAuth().get_credentials()
    assert (creds.profile_arn, creds.region) == (EU_ARN, "eu-central-1")
    monkeypatch.setenv("KIRO_REGION", "us-west-2")
    assert KiroAuth().get_credentials().region == "us-west-2"
    assert KiroAuth(region="eu-west-1").get_credentials().region == "eu-west-1"
    assert region_from_arn(EU_ARN) == "eu-central-1"


def test_refresh_endpoint_follows_login_kind_and_token_region() -> None:
    def token(login: str, region: str | None, endpoint: str | None = None) -> StoredToken:
        return StoredToken(
            login,
            None,
            SecretStr("r"),
            None,
            "test",
            "k",
            region=region,  # type: ignore[arg-type]
            token_endpoint=endpoint,
        )

    assert refresh_endpoint(token("social", None), auth_url=None, oidc_url=None) == (
        "https://prod.us-east-1.auth.desktop.kiro.dev/refreshToken"
    )
    assert refresh_endpoint(token("oidc", "us-east-2"), auth_url=None, oidc_url=None) == (
        "https://oidc.us-east-2.amazonaws.com/token"
    )
    assert (
        refresh_endpoint(token("oidc", "us-east-2"), auth_url="x", oidc_url="http://o/")
        == "http://o/token"
    )
    assert (
        refresh_endpoint(token("social", None), auth_url="http://a", oidc_url="x")
        == "http://a/refreshToken"
    )
    assert (
        refresh_endpoint(
            token("external_idp", None, "https://idp.test/oauth2/token"), auth_url="a", oidc_url="o"
        )
        == "https://idp.test/oauth2/token"
    )
    with pytest.raises(KiroAuthError, match="no token endpoint"):
        refresh_endpoint(token("external_idp", None), auth_url=None, oidc_url=None)


def test_raw_access_token_and_api_key_cannot_be_refreshed(
    home: KiroHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIRO_ACCESS_TOKEN", "raw-token-value")
    auth = KiroAuth()
    stale = auth.get_credentials()
    with pytest.raises(KiroAuthError) as info:
        auth.force_refresh(stale)
    assert "KIRO_ACCESS_TOKEN" in str(info.value)
    assert "invalid or expired" in str(info.value)
    assert "raw-token-value" not in str(info.value) + repr(info.value)
    key_auth = KiroAuth(api_key="ksk_secret_key")
    with pytest.raises(KiroAuthError, match="API key from the api_key argument"):
        key_auth.force_refresh(key_auth.get_credentials())


async def test_async_static_force_refresh_raises_too(home: KiroHome) -> None:
    auth = KiroAuth(access_token="raw")
    with pytest.raises(KiroAuthError, match="cannot be refreshed"):
        await auth.aforce_refresh(await auth.aget_credentials())


def test_credentials_hide_the_token_and_build_headers() -> None:
    creds = Credentials(SecretStr("tok-123"), "external_idp", PROFILE_ARN, "us-east-1")
    assert "tok-123" not in repr(creds)
    assert "tok-123" not in str(creds)
    assert creds.auth_headers() == {"Authorization": "Bearer tok-123", "TokenType": "EXTERNAL_IDP"}
    bearer = Credentials(SecretStr("tok-123"), "bearer", None, "us-east-1")
    assert bearer.auth_headers() == {"Authorization": "Bearer tok-123"}


def test_api_key_is_accepted_by_the_emulator(home: KiroHome, emu: KiroEmulator) -> None:
    creds = KiroAuth(api_key=emu.api_key).get_credentials()
    status, record = call_api(emu, creds)
    assert status == 200
    assert record.problems == []


def test_status_describes_the_source_without_secrets(home: KiroHome) -> None:
    make_cli_db(
        home.cli_db,
        {
            ODIC_KEY: oidc_row("acc-secret", "ref-secret", expires_in=47 * 60 + 30),
            ODIC_REGISTRATION_KEY: registration_row("cid", "csec-secret"),
        },
        profile=profile_state(),
    )
    status = KiroAuth().status()
    assert isinstance(status, AuthStatus)
    assert (status.source_kind, status.login_kind, status.region) == (
        "kiro_cli_db",
        "oidc",
        "us-east-1",
    )
    assert status.profile_arn == PROFILE_ARN
    assert status.can_refresh
    assert status.can_write_back
    text = format_status(status)
    assert "expires in 47 min" in text
    assert "AWS Builder ID / IAM Identity Center" in text
    assert "Write-back:   yes" in text
    for secret in ("acc-secret", "ref-secret", "csec-secret"):
        assert secret not in text
        assert secret not in repr(status)
    read_only = KiroAuth(read_only=True).status()
    assert not read_only.can_write_back


def test_status_of_api_key_and_missing_credentials(home: KiroHome) -> None:
    text = format_status(KiroAuth(api_key="ksk_hidden").status())
    assert "API key: the api_key argument" in text
    assert "ksk_hidden" not in text
    with pytest.raises(KiroCredentialsNotFoundError):
        KiroAuth().status()


def test_relative_expiry_wording() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert (
        format_relative_expiry(now + timedelta(minutes=47, seconds=10), now) == "expires in 47 min"
    )
    assert format_relative_expiry(now + timedelta(seconds=42), now) == "expires in 42 s"
    assert (
        format_relative_expiry(now + timedelta(hours=2, minutes=5), now) == "expires in 2 h 5 min"
    )
    assert format_relative_expiry(now - timedelta(minutes=3), now) == "expired 3 min ago"
    assert format_relative_expiry(None, now) == "no expiry recorded"


def test_unreadable_database_is_skipped_with_a_note(home: KiroHome) -> None:
    home.cli_db.parent.mkdir(parents=True)
    home.cli_db.write_bytes(b"garbage" * 200)
    write_json(home.ide_token_file, ide_social_token("acc-ide", "r"))
    assert KiroAuth().get_credentials().token.get_secret_value() == "acc-ide"
    home.ide_token_file.unlink()
    with pytest.raises(KiroCredentialsNotFoundError, match="not a readable SQLite database"):
        KiroAuth().get_credentials()
    assert home.cli_db.read_bytes() == b"garbage" * 200


def test_ide_file_profile_json_supplies_idc_profile(home: KiroHome) -> None:
    cache = home.ide_token_file.parent
    write_json(
        home.ide_token_file,
        {
            "accessToken": "a",
            "refreshToken": "r",
            "authMethod": "IdC",
            "provider": "Enterprise",
            "clientIdHash": "h1",
            "region": "us-east-2",
            "expiresAt": "2099-01-01T00:00:00.000Z",
        },
    )
    write_json(cache / "h1.json", {"clientId": "cid", "clientSecret": "cs"})
    profile = (
        home.root
        / ".config"
        / "Kiro"
        / "User"
        / "globalStorage"
        / "kiro.kiroagent"
        / "profile.json"
    )
    if sys.platform == "linux":
        write_json(profile, {"arn": EU_ARN, "name": "x"})
        creds = KiroAuth().get_credentials()
        assert (creds.profile_arn, creds.region) == (EU_ARN, "eu-central-1")
    assert json.loads(home.ide_token_file.read_text())["accessToken"] == "a"
