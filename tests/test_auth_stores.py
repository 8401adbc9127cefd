"""Reading Kiro's stores and writing refreshed tokens back without damaging them."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from auth_fixtures import (
    EXTERNAL_IDP_KEY,
    LEGACY_ODIC_KEY,
    ODIC_KEY,
    ODIC_REGISTRATION_KEY,
    PROFILE_ARN,
    SOCIAL_KEY,
    external_idp_row,
    get_db_row,
    ide_idc_token,
    ide_social_token,
    make_cli_db,
    oidc_row,
    profile_state,
    registration_row,
    social_row,
    write_json,
)
from pydantic import SecretStr

from kiro_lc.auth.errors_internal import SourceUnreadable
from kiro_lc.auth.fields import NewTokens
from kiro_lc.auth.json_store import login_kind_of, read_token_file, write_back_token_file
from kiro_lc.auth.sqlite_store import read_cli_db, write_back_cli_db

NEW_EXPIRY = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)


def new_tokens(access: str = "acc-new", refresh: str | None = "ref-new") -> NewTokens:
    return NewTokens(
        SecretStr(access), SecretStr(refresh) if refresh else None, NEW_EXPIRY, profile_arn=None
    )


# -- Kiro CLI database: reading ------------------------------------------------------------------


def test_social_row_is_read_with_its_profile_and_nanosecond_expiry(tmp_path: Path) -> None:
    db = make_cli_db(tmp_path / "data.sqlite3", {SOCIAL_KEY: social_row("acc-1", "ref-1")})
    read = read_cli_db(db)
    token = read.token
    assert token is not None
    assert (token.login, token.key, token.access_value, token.refresh_value) == (
        "social",
        SOCIAL_KEY,
        "acc-1",
        "ref-1",
    )
    assert token.profile_arn == PROFILE_ARN
    assert token.region == "us-east-1"
    assert token.expires_at is not None
    assert token.expires_at > datetime.now(timezone.utc) + timedelta(minutes=59)
    assert not read.wal
    assert "acc-1" not in repr(token)
    assert "ref-1" not in repr(token)


def test_key_priority_external_idp_then_social_then_odic_then_legacy(tmp_path: Path) -> None:
    rows = {
        LEGACY_ODIC_KEY: oidc_row("acc-legacy", "ref-legacy"),
        ODIC_KEY: oidc_row("acc-odic", "ref-odic"),
        SOCIAL_KEY: social_row("acc-social", "ref-social"),
        EXTERNAL_IDP_KEY: external_idp_row(
            "acc-ext", "ref-ext", client_id="cid", token_endpoint="https://idp.test/token"
        ),
    }
    expected = [
        (EXTERNAL_IDP_KEY, "external_idp"),
        (SOCIAL_KEY, "social"),
        (ODIC_KEY, "oidc"),
        (LEGACY_ODIC_KEY, "oidc"),
    ]
    for index, (key, login) in enumerate(expected):
        db = make_cli_db(tmp_path / f"db{index}.sqlite3", {k: rows[k] for k, _ in expected[index:]})
        token = read_cli_db(db).token
        assert token is not None
        assert (token.key, token.login) == (key, login)


def test_oidc_row_gets_registration_and_profile_from_state(tmp_path: Path) -> None:
    db = make_cli_db(
        tmp_path / "data.sqlite3",
        {
            ODIC_KEY: oidc_row("acc", "ref", region="us-east-2"),
            ODIC_REGISTRATION_KEY: registration_row("client-1", "secret-1", "us-east-2"),
        },
        profile=profile_state("arn:aws:codewhisperer:eu-central-1:111122223333:profile/ABC"),
    )
    token = read_cli_db(db).token
    assert token is not None
    assert token.client_id == "client-1"
    assert token.client_secret is not None
    assert token.client_secret.get_secret_value() == "secret-1"
    assert token.region == "us-east-2"
    assert token.profile_arn == "arn:aws:codewhisperer:eu-central-1:111122223333:profile/ABC"
    assert token.expires_at is not None
    assert token.expires_at.microsecond == 0


def test_camel_case_rows_and_blob_values_are_accepted(tmp_path: Path) -> None:
    db = make_cli_db(tmp_path / "data.sqlite3", {})
    camel = {
        "accessToken": "acc-c",
        "refreshToken": "ref-c",
        "expiresAt": "2030-01-01T00:00:00Z",
        "profileArn": PROFILE_ARN,
    }
    registration = {"clientId": "cid", "clientSecret": "csec"}
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO auth_kv VALUES (?, ?)", (ODIC_KEY, json.dumps(camel).encode()))
    conn.execute(
        "INSERT INTO auth_kv VALUES (?, ?)", (ODIC_REGISTRATION_KEY, json.dumps(registration))
    )
    conn.commit()
    conn.close()
    token = read_cli_db(db).token
    assert token is not None
    assert (token.access_value, token.refresh_value, token.client_id) == ("acc-c", "ref-c", "cid")
    assert token.expires_at == datetime(2030, 1, 1, tzinfo=timezone.utc)


def test_database_without_login_or_tables_yields_no_token(tmp_path: Path) -> None:
    assert read_cli_db(make_cli_db(tmp_path / "a.sqlite3", {})).token is None
    empty = tmp_path / "b.sqlite3"
    sqlite3.connect(empty).close()
    assert read_cli_db(empty).token is None


def test_not_a_database_is_unreadable_and_left_alone(tmp_path: Path) -> None:
    junk = tmp_path / "data.sqlite3"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(SourceUnreadable, match="not a readable SQLite database"):
        read_cli_db(junk)
    assert junk.read_bytes() == b"this is not sqlite" * 100


def test_reading_never_creates_a_database(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "data.sqlite3"
    with pytest.raises(SourceUnreadable):
        read_cli_db(missing)
    assert not missing.exists()
    assert write_back_cli_db(missing, SOCIAL_KEY, "ref", new_tokens()) is False
    assert not missing.exists()


def test_wal_database_is_read_read_only_and_reported(tmp_path: Path) -> None:
    db = make_cli_db(tmp_path / "data.sqlite3", {SOCIAL_KEY: social_row("a", "r")}, wal=True)
    read = read_cli_db(db)
    assert read.wal
    assert read.token is not None


def test_read_waits_for_kiro_write_lock_instead_of_failing(tmp_path: Path) -> None:
    db = make_cli_db(tmp_path / "data.sqlite3", {SOCIAL_KEY: social_row("a", "r")})
    writer = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN EXCLUSIVE")
    released = threading.Event()

    def release() -> None:
        time.sleep(0.3)
        writer.execute("COMMIT")
        released.set()

    thread = threading.Thread(target=release)
    thread.start()
    token = read_cli_db(db).token
    thread.join()
    writer.close()
    assert released.is_set()
    assert token is not None


# -- Kiro CLI database: write-back -------------------------------------------------------------


def test_write_back_merges_three_fields_and_keeps_everything_else(tmp_path: Path) -> None:
    original = social_row("acc-old", "ref-old")
    original["unknown_future_field"] = {"nested": [1, 2]}
    db = make_cli_db(tmp_path / "data.sqlite3", {SOCIAL_KEY: original}, profile=profile_state())
    assert write_back_cli_db(db, SOCIAL_KEY, "ref-old", new_tokens()) is True
    row = get_db_row(db, SOCIAL_KEY)
    assert row is not None
    assert row["access_token"] == "acc-new"
    assert row["refresh_token"] == "ref-new"
    assert row["expires_at"] == "2030-01-02T03:04:05.678901000Z"  # nanoseconds, as kiro-cli
    for key, value in original.items():
        if key not in ("access_token", "refresh_token", "expires_at"):
            assert row[key] == value
    assert list(row) == list(original)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM migrations").fetchone()[0] == 9
    conn.close()


def test_write_back_keeps_whole_second_expiry_and_unrotated_refresh_token(tmp_path: Path) -> None:
    db = make_cli_db(tmp_path / "data.sqlite3", {ODIC_KEY: oidc_row("acc", "ref")})
    assert write_back_cli_db(db, ODIC_KEY, "ref", new_tokens(refresh=None)) is True
    row = get_db_row(db, ODIC_KEY)
    assert row is not None
    assert (row["access_token"], row["refresh_token"]) == ("acc-new", "ref")
    assert row["expires_at"] == "2030-01-02T03:04:05Z"


def test_write_back_refuses_when_kiro_changed_the_row(tmp_path: Path) -> None:
    db = make_cli_db(tmp_path / "data.sqlite3", {SOCIAL_KEY: social_row("acc-kiro", "ref-kiro")})
    assert write_back_cli_db(db, SOCIAL_KEY, "ref-we-used", new_tokens()) is False
    row = get_db_row(db, SOCIAL_KEY)
    assert row is not None
    assert (row["access_token"], row["refresh_token"]) == ("acc-kiro", "ref-kiro")


def test_write_back_gives_up_when_kiro_holds_the_lock_too_long(tmp_path: Path) -> None:
    db = make_cli_db(tmp_path / "data.sqlite3", {SOCIAL_KEY: social_row("a", "r")})
    kiro = sqlite3.connect(db, isolation_level=None)
    kiro.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            write_back_cli_db(db, SOCIAL_KEY, "r", new_tokens(), timeout=0.2)
    finally:
        kiro.execute("ROLLBACK")
        kiro.close()
    assert get_db_row(db, SOCIAL_KEY)["access_token"] == "a"  # type: ignore[index]


# -- Kiro IDE token file ------------------------------------------------------------------------


def test_ide_social_file_is_read(tmp_path: Path) -> None:
    path = write_json(tmp_path / "kiro-auth-token.json", ide_social_token("acc", "ref"))
    token = read_token_file(path)
    assert token is not None
    assert (token.login, token.access_value, token.refresh_value) == ("social", "acc", "ref")
    assert token.profile_arn == PROFILE_ARN
    assert token.expires_at is not None


def test_ide_idc_file_uses_its_registration_and_profile_json(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path = write_json(
        cache / "kiro-auth-token.json", ide_idc_token("acc", "ref", client_id_hash="abc123")
    )
    write_json(
        cache / "abc123.json",
        {"clientId": "cid", "clientSecret": "csec", "expiresAt": "2030-01-01T00:00:00.000Z"},
    )
    profile = write_json(tmp_path / "profile.json", {"arn": PROFILE_ARN})
    token = read_token_file(path, [tmp_path / "missing.json", profile])
    assert token is not None
    assert token.login == "oidc"
    assert token.client_id == "cid"
    assert token.client_secret is not None
    assert token.profile_arn == PROFILE_ARN


def test_ide_idc_registration_in_snake_case_is_accepted(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "kiro-auth-token.json", ide_idc_token("a", "r", client_id_hash="h")
    )
    write_json(tmp_path / "h.json", {"client_id": "cid", "client_secret": "csec"})
    token = read_token_file(path)
    assert token is not None
    assert token.client_id == "cid"


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"authMethod": "social", "provider": "Github"}, "social"),
        ({"authMethod": "IdC", "provider": "Enterprise"}, "oidc"),
        ({"provider": "BuilderId"}, "oidc"),
        ({"provider": "Internal"}, "oidc"),
        ({"authMethod": "external_idp"}, "external_idp"),
        ({"provider": "ExternalIdp"}, "external_idp"),
        ({"tokenEndpoint": "https://idp/token"}, "external_idp"),
        ({"clientIdHash": "h"}, "oidc"),
        ({}, "social"),
    ],
)
def test_login_kind_comes_from_what_the_file_records(fields: dict[str, str], kind: str) -> None:
    assert login_kind_of(fields) == kind


def test_half_written_ide_file_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "kiro-auth-token.json"
    path.write_text('{"accessToken": "abc", "refre')
    with pytest.raises(SourceUnreadable) as info:
        read_token_file(path)
    assert "abc" not in info.value.reason


def test_json_write_back_is_atomic_keeps_mode_fields_and_ms_precision(tmp_path: Path) -> None:
    original = ide_social_token("acc-old", "ref-old")
    original["someFutureField"] = True
    path = write_json(tmp_path / "kiro-auth-token.json", original, mode=0o640)
    inode_before = os.stat(path).st_ino
    assert write_back_token_file(path, "ref-old", new_tokens()) is True
    data = json.loads(path.read_text())
    assert (data["accessToken"], data["refreshToken"]) == ("acc-new", "ref-new")
    assert data["expiresAt"] == "2030-01-02T03:04:05.678Z"
    assert {
        k: v for k, v in data.items() if k not in ("accessToken", "refreshToken", "expiresAt")
    } == {
        k: v for k, v in original.items() if k not in ("accessToken", "refreshToken", "expiresAt")
    }
    assert list(data) == list(original)
    if sys.platform != "win32":
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
        assert os.stat(path).st_ino != inode_before  # replaced by rename, never rewritten in place
    assert [p.name for p in tmp_path.iterdir()] == ["kiro-auth-token.json"]  # no temp file left
    assert path.read_text().startswith("{\n  ")  # the IDE's indentation kept


def test_json_write_back_refuses_when_the_file_changed(tmp_path: Path) -> None:
    path = write_json(tmp_path / "kiro-auth-token.json", ide_social_token("acc-kiro", "ref-kiro"))
    before = path.read_bytes()
    assert write_back_token_file(path, "ref-we-used", new_tokens()) is False
    assert path.read_bytes() == before
    assert write_back_token_file(tmp_path / "gone.json", "ref", new_tokens()) is False
    assert not (tmp_path / "gone.json").exists()


@pytest.mark.parametrize("store", ["sqlite", "json"])
def test_racing_write_backs_with_the_same_expected_token_let_exactly_one_win(
    tmp_path: Path, store: str
) -> None:
    if store == "sqlite":
        path = make_cli_db(tmp_path / "data.sqlite3", {SOCIAL_KEY: social_row("a", "ref-0")})

        def write(index: int) -> bool:
            return write_back_cli_db(
                path, SOCIAL_KEY, "ref-0", new_tokens(f"acc-{index}", f"ref-{index + 1}")
            )

    else:
        path = write_json(tmp_path / "kiro-auth-token.json", ide_social_token("a", "ref-0"))

        def write(index: int) -> bool:
            return write_back_token_file(
                path, "ref-0", new_tokens(f"acc-{index}", f"ref-{index + 1}")
            )

    barrier = threading.Barrier(8)
    outcomes: dict[int, bool] = {}

    def worker(index: int) -> None:
        barrier.wait()
        outcomes[index] = write(index)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [i for i, won in outcomes.items() if won]
    assert len(winners) == 1
    if store == "sqlite":
        stored = get_db_row(path, SOCIAL_KEY)
        assert stored is not None
        assert (stored["access_token"], stored["refresh_token"]) == (
            f"acc-{winners[0]}",
            f"ref-{winners[0] + 1}",
        )
    else:
        data = json.loads(path.read_text())
        assert (data["accessToken"], data["refreshToken"]) == (
            f"acc-{winners[0]}",
            f"ref-{winners[0] + 1}",
        )
