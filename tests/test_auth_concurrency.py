"""Single-flight refresh across threads, asyncio tasks and instances; safe concurrent writes."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time

import pytest
from auth_fixtures import (
    SOCIAL_KEY,
    KiroHome,
    call_api,
    get_db_row,
    social_db_for,
)

from kiro_lc.auth import Credentials, KiroAuth
from kiro_lc.testing import Fault, KiroEmulator

CALLERS = 100


def expiring_db(emu: KiroEmulator, home: KiroHome, *, wal: bool = False) -> None:
    """An account whose stored token is expired; the refresh answer is slowed down so that
    every caller arrives while it is in flight."""
    alice = emu.add_account("alice", kind="social", rotate_refresh_token=True)
    social_db_for(emu, home.cli_db, alice, expires_in=-10, wal=wal)
    emu.script_for("RefreshToken", Fault.latency(0.3))


def run_threads(count: int, work: object) -> list[Credentials]:
    barrier = threading.Barrier(count)
    results: list[Credentials] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        try:
            creds = work()  # type: ignore[operator]
        except BaseException as exc:
            errors.append(exc)
            return
        with lock:
            results.append(creds)

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return results


def assert_one_valid_token(emu: KiroEmulator, results: list[Credentials], expected: int) -> None:
    assert len(results) == expected
    assert len({c.token.get_secret_value() for c in results}) == 1
    assert emu.refresh_count == 1
    assert call_api(emu, results[0])[0] == 200


@pytest.mark.parametrize("wal", [False, True])
def test_100_threads_cause_exactly_one_refresh(
    home: KiroHome, emu: KiroEmulator, wal: bool
) -> None:
    expiring_db(emu, home, wal=wal)
    auth = KiroAuth()
    results = run_threads(CALLERS, auth.get_credentials)
    assert_one_valid_token(emu, results, CALLERS)


async def test_100_tasks_cause_exactly_one_refresh(home: KiroHome, emu: KiroEmulator) -> None:
    expiring_db(emu, home)
    auth = KiroAuth()
    results = await asyncio.gather(*(auth.aget_credentials() for _ in range(CALLERS)))
    assert_one_valid_token(emu, list(results), CALLERS)


async def test_threads_and_tasks_mixed_cause_exactly_one_refresh(
    home: KiroHome, emu: KiroEmulator
) -> None:
    expiring_db(emu, home)
    auth = KiroAuth()
    thread_results: list[Credentials] = []
    go = threading.Event()

    def worker() -> None:
        go.wait()
        thread_results.append(auth.get_credentials())

    threads = [threading.Thread(target=worker) for _ in range(CALLERS // 2)]
    for thread in threads:
        thread.start()
    go.set()
    task_results = await asyncio.gather(*(auth.aget_credentials() for _ in range(CALLERS // 2)))
    for thread in threads:
        await asyncio.to_thread(thread.join)
    assert_one_valid_token(emu, thread_results + list(task_results), CALLERS)


def test_many_instances_share_one_refresh_per_source(home: KiroHome, emu: KiroEmulator) -> None:
    expiring_db(emu, home)
    instances = [KiroAuth() for _ in range(10)]
    counter = iter(range(CALLERS))
    lock = threading.Lock()

    def call() -> Credentials:
        with lock:
            index = next(counter)
        return instances[index % 10].get_credentials()

    assert_one_valid_token(emu, run_threads(CALLERS, call), CALLERS)


def test_100_concurrent_force_refreshes_cause_one_refresh(
    home: KiroHome, emu: KiroEmulator
) -> None:
    alice = emu.add_account("alice", kind="social", rotate_refresh_token=True)
    social_db_for(emu, home.cli_db, alice)
    auth = KiroAuth()
    stale = auth.get_credentials()
    emu.expire_access_tokens(alice)
    emu.script_for("RefreshToken", Fault.latency(0.3))
    results = run_threads(CALLERS, lambda: auth.force_refresh(stale))
    assert_one_valid_token(emu, results, CALLERS)
    assert results[0].token.get_secret_value() != stale.token.get_secret_value()


async def test_100_concurrent_async_force_refreshes_cause_one_refresh(
    home: KiroHome, emu: KiroEmulator
) -> None:
    alice = emu.add_account("alice", kind="social")
    social_db_for(emu, home.cli_db, alice)
    auth = KiroAuth()
    stale = await auth.aget_credentials()
    emu.script_for("RefreshToken", Fault.latency(0.2))
    results = await asyncio.gather(*(auth.aforce_refresh(stale) for _ in range(CALLERS)))
    assert_one_valid_token(emu, list(results), CALLERS)


def test_waiters_share_a_failed_refresh_instead_of_retrying(
    home: KiroHome, emu: KiroEmulator
) -> None:
    alice = emu.add_account("alice", kind="social")
    social_db_for(emu, home.cli_db, alice, expires_in=-10)
    emu.script_for("RefreshToken", Fault.latency(0.3, Fault.http(503, {"message": "down"})))
    auth = KiroAuth()
    failures: list[BaseException] = []
    barrier = threading.Barrier(20)

    def worker() -> None:
        barrier.wait()
        try:
            auth.get_credentials()
        except Exception as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(failures) == 20
    assert emu.refresh_count == 1


@pytest.mark.parametrize("wal", [False, True])
def test_concurrent_writers_lose_no_update_and_keep_the_database_intact(
    home: KiroHome, emu: KiroEmulator, wal: bool
) -> None:
    """Kiro (other connections) keeps rewriting the token row's other fields and other tables
    while kiro-lc refreshes with a rotating refresh token and writes back 10 times."""
    alice = emu.add_account("alice", kind="social", rotate_refresh_token=True)
    social_db_for(emu, home.cli_db, alice, wal=wal)
    stop = threading.Event()
    kiro_updates = [0, 0]

    def kiro_writer(slot: int) -> None:
        conn = sqlite3.connect(home.cli_db, timeout=10, isolation_level=None)
        while not stop.is_set():
            conn.execute("BEGIN IMMEDIATE")
            (value,) = conn.execute(
                "SELECT value FROM auth_kv WHERE key = ?", (SOCIAL_KEY,)
            ).fetchone()
            row = json.loads(value)
            row[f"kiro_counter_{slot}"] = row.get(f"kiro_counter_{slot}", 0) + 1
            conn.execute(
                "UPDATE auth_kv SET value = ? WHERE key = ?", (json.dumps(row), SOCIAL_KEY)
            )
            conn.execute(
                "INSERT INTO conversations_v2 VALUES (?, ?, '{}', 0, 0)",
                (f"/work/{slot}", f"c{kiro_updates[slot]}"),
            )
            conn.execute("COMMIT")
            kiro_updates[slot] += 1
            time.sleep(0.005)  # Kiro writes now and then, not in a tight loop
        conn.close()

    writers = [threading.Thread(target=kiro_writer, args=(slot,)) for slot in range(2)]
    for writer in writers:
        writer.start()
    auth = KiroAuth()
    creds = auth.get_credentials()
    try:
        for _ in range(10):
            creds = auth.force_refresh(creds)  # each would fail if a rotation had been lost
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    assert emu.refresh_count == 10
    assert call_api(emu, creds)[0] == 200
    row = get_db_row(home.cli_db, SOCIAL_KEY)
    assert row is not None
    assert row["refresh_token"] == alice.refresh_token
    assert row["access_token"] == creds.token.get_secret_value()
    assert [row.get(f"kiro_counter_{slot}", 0) for slot in range(2)] == kiro_updates
    assert min(kiro_updates) > 0
    conn = sqlite3.connect(home.cli_db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM conversations_v2").fetchone()[0] == sum(kiro_updates)
    conn.close()
