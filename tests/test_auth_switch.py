"""Account switches and re-checks: Kiro's store changes between two requests, no restart."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest
from auth_fixtures import (
    ODIC_KEY,
    ODIC_REGISTRATION_KEY,
    SOCIAL_KEY,
    KiroHome,
    age_file,
    call_api,
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

from kiro_lc.auth import KiroAuth
from kiro_lc.auth.state import RACY_REREAD_INTERVAL
from kiro_lc.errors import KiroCredentialsNotFoundError
from kiro_lc.testing import KiroEmulator

EU_ARN = "arn:aws:codewhisperer:eu-central-1:111122223333:profile/BOBPROFILE"


class FileReads:
    """Counts file opens and SQLite connections of this process (via ``sys.audit`` events)."""

    active: FileReads | None = None
    installed = False

    def __init__(self) -> None:
        self.events: list[str] = []

    def __enter__(self) -> FileReads:
        if not FileReads.installed:
            sys.addaudithook(FileReads._hook)
            FileReads.installed = True
        FileReads.active = self
        return self

    def __exit__(self, *exc: object) -> None:
        FileReads.active = None

    @staticmethod
    def _hook(event: str, args: tuple[object, ...]) -> None:
        recorder = FileReads.active
        if (
            recorder is not None
            and event in ("open", "sqlite3.connect")
            and (threading.current_thread() is threading.main_thread())
        ):
            recorder.events.append(f"{event} {args[0]!r}")


@pytest.mark.parametrize("aged", [False, True], ids=["just-written", "old-file"])
def test_second_call_is_served_for_the_second_account(
    home: KiroHome, emu: KiroEmulator, aged: bool
) -> None:
    alice = emu.add_account("alice", kind="social")
    bob = emu.add_account("bob", kind="social", profile_arn=EU_ARN)
    social_db_for(emu, home.cli_db, alice)
    if aged:
        age_file(home.cli_db)
    auth = KiroAuth()
    first = auth.get_credentials()
    status, record = call_api(emu, first)
    assert (status, record.account) == (200, "alice")
    # kiro-cli logs in as bob between two requests
    bob_token = emu.issue_access_token(bob)
    set_db_row(
        home.cli_db, SOCIAL_KEY, social_row(bob_token, str(bob.refresh_token), profile_arn=EU_ARN)
    )
    second = auth.get_credentials()
    status, record = call_api(emu, second)
    assert (status, record.account) == (200, "bob")
    assert (second.profile_arn, second.region) == (EU_ARN, "eu-central-1")
    assert emu.refresh_count == 0


def test_switch_to_another_login_kind_and_then_logout(home: KiroHome, emu: KiroEmulator) -> None:
    alice = emu.add_account("alice", kind="social")
    carl = emu.add_account("carl", kind="oidc")
    social_db_for(emu, home.cli_db, alice)
    auth = KiroAuth()
    assert call_api(emu, auth.get_credentials())[1].account == "alice"
    set_db_row(home.cli_db, SOCIAL_KEY, None)
    set_db_row(home.cli_db, ODIC_KEY, oidc_row("expired", str(carl.refresh_token), expires_in=-1))
    set_db_row(
        home.cli_db,
        ODIC_REGISTRATION_KEY,
        registration_row(str(carl.client_id), str(carl.client_secret)),
    )
    creds = auth.get_credentials()  # adopts carl's login and refreshes it via OIDC
    assert emu.requests[-1].path == "/token"
    assert call_api(emu, creds)[1].account == "carl"
    set_db_row(home.cli_db, ODIC_KEY, None)  # kiro-cli logout
    with pytest.raises(KiroCredentialsNotFoundError, match="no Kiro login in it"):
        auth.get_credentials()


def test_ide_file_switch_is_followed(home: KiroHome, emu: KiroEmulator) -> None:
    alice = emu.add_account("alice", kind="social")
    bob = emu.add_account("bob", kind="social")
    write_json(
        home.ide_token_file,
        ide_social_token(emu.issue_access_token(alice), str(alice.refresh_token)),
    )
    auth = KiroAuth()
    assert call_api(emu, auth.get_credentials())[1].account == "alice"
    write_json(
        home.ide_token_file, ide_social_token(emu.issue_access_token(bob), str(bob.refresh_token))
    )
    assert call_api(emu, auth.get_credentials())[1].account == "bob"


def test_new_cli_login_takes_over_from_the_ide_file(home: KiroHome, emu: KiroEmulator) -> None:
    alice = emu.add_account("alice", kind="social")
    bob = emu.add_account("bob", kind="social")
    write_json(
        home.ide_token_file,
        ide_social_token(emu.issue_access_token(alice), str(alice.refresh_token)),
    )
    auth = KiroAuth()
    assert call_api(emu, auth.get_credentials())[1].account == "alice"
    social_db_for(emu, home.cli_db, bob)  # the user runs `kiro-cli login` for the first time
    assert call_api(emu, auth.get_credentials())[1].account == "bob"


def test_kiro_refreshing_the_same_account_is_adopted_without_our_refresh(
    home: KiroHome, emu: KiroEmulator
) -> None:
    alice = emu.add_account("alice", kind="social")
    social_db_for(emu, home.cli_db, alice, profile=profile_state())
    auth = KiroAuth()
    first = auth.get_credentials()
    newer = emu.issue_access_token(alice)
    set_db_row(
        home.cli_db, SOCIAL_KEY, social_row(newer, str(alice.refresh_token), expires_in=7200)
    )
    assert (
        auth.get_credentials().token.get_secret_value() == newer != first.token.get_secret_value()
    )
    assert emu.refresh_count == 0


def test_fast_path_stats_but_never_reads_until_the_file_changes(home: KiroHome) -> None:
    make_cli_db(home.cli_db, {SOCIAL_KEY: social_row("acc-1", "ref-1")})
    age_file(home.cli_db)
    auth = KiroAuth()
    first = auth.get_credentials()
    with FileReads() as reads:
        for _ in range(500):
            assert auth.get_credentials() is first
    assert reads.events == []
    set_db_row(home.cli_db, SOCIAL_KEY, social_row("acc-2", "ref-2"))
    age_file(home.cli_db, 5)
    with FileReads() as reads:
        second = auth.get_credentials()
    assert second.token.get_secret_value() == "acc-2"
    assert any(event.startswith("sqlite3.connect") for event in reads.events)


def test_just_modified_file_is_reread_until_its_timestamp_is_trustworthy(home: KiroHome) -> None:
    """Same size, same mtime tick: only the racy-timestamp rule catches this rewrite."""
    make_cli_db(home.cli_db, {SOCIAL_KEY: social_row("acc-A", "ref-A")})
    auth = KiroAuth()
    assert auth.get_credentials().token.get_secret_value() == "acc-A"
    stamp = os.stat(home.cli_db)
    set_db_row(home.cli_db, SOCIAL_KEY, social_row("acc-B", "ref-B"))
    os.utime(home.cli_db, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # an unchanged timestamp
    assert os.stat(home.cli_db).st_size == stamp.st_size
    time.sleep(RACY_REREAD_INTERVAL + 0.01)  # within the racy window: re-read every 50 ms
    assert auth.get_credentials().token.get_secret_value() == "acc-B"


def test_half_written_ide_file_keeps_the_current_token(home: KiroHome) -> None:
    write_json(home.ide_token_file, ide_social_token("acc-1", "ref-1"))
    auth = KiroAuth()
    assert auth.get_credentials().token.get_secret_value() == "acc-1"
    home.ide_token_file.write_text('{"accessToken": "acc-2", "refr')
    assert auth.get_credentials().token.get_secret_value() == "acc-1"
    write_json(home.ide_token_file, ide_social_token("acc-2", "ref-2"))
    assert auth.get_credentials().token.get_secret_value() == "acc-2"
