"""100 concurrent ``ChatKiro.astream`` calls against an emulator with 200 ms latency.

The account is a social login whose access token has already expired, so the first calls must
refresh it: the shared ``KiroAuth`` has to do that exactly once (single-flight) while 100 calls
wait. Checks, in one run:

* all 100 calls complete with the expected text;
* the emulator served exactly one token refresh;
* wall time of the 100 ≤ 1.5 × one call (the baseline: the median of 5 sequential calls made
  afterwards with the same model, token already fresh and connections pooled).

The emulator (a ``ThreadingHTTPServer``: one thread per connection; its latency is a ``sleep``
per request, so requests overlap) runs in a child process, as a real Kiro would be remote. A
second burst with warm connections is reported too.

Two reference points, measured in the same run, show where the wall time goes:

* **raw httpx**: 100 concurrent streaming POSTs of the same request with a bare
  ``httpx.AsyncClient`` against the same emulator (HTTP + emulator floor, no kiro-lc at all);
* **langchain-core**: 100 concurrent ``GenericFakeChatModel.astream`` calls that sleep the same
  200 ms (langchain-core's own per-call cost, no HTTP).

Run: ``python benchmarks/bench_concurrency.py``.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

if __package__ is None:  # run as a script from a checkout: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGenerationChunk

from kiro_lc._http import TransportCore
from kiro_lc.auth import KiroAuth
from kiro_lc.chat_models import ChatKiro
from kiro_lc.testing import KiroEmulator

CALLS = 100
LATENCY = 0.2
TARGET = 1.5
EXPECTED = "Hello from the Kiro emulator (claude-sonnet-4.5)."


def write_expired_social_login(emu: KiroEmulator, directory: str) -> str:
    """A Kiro IDE token file for a new social account, its access token already expired."""
    account = emu.add_account("bench", kind="social")
    token = emu.issue_access_token(account)
    emu.expire_access_tokens(account)
    path = os.path.join(directory, "kiro-auth-token.json")
    data = {
        "accessToken": token,
        "refreshToken": account.refresh_token,
        "expiresAt": "2020-01-01T00:00:00.000Z",
        "authMethod": "social",
        "provider": "Github",
        "profileArn": account.profile_arn,
        "region": "us-east-1",
    }
    Path(path).write_text(json.dumps(data), encoding="utf-8")
    return path


async def one_call(model: ChatKiro) -> tuple[str, float]:
    start = time.perf_counter()
    text = "".join([str(chunk.content) async for chunk in model.astream("Hi")])
    return text, time.perf_counter() - start


async def burst(model: ChatKiro) -> tuple[float, list[tuple[str, float]]]:
    """``CALLS`` concurrent calls: wall seconds and each call's (text, seconds)."""
    start = time.perf_counter()
    results = await asyncio.gather(*(one_call(model) for _ in range(CALLS)))
    return time.perf_counter() - start, list(results)


def serve(conn: Connection) -> None:
    """Child process: the emulator and the token file; reports the refresh count at the end."""
    with (
        tempfile.TemporaryDirectory(prefix="kiro-bench-") as directory,
        KiroEmulator(latency=LATENCY) as emu,
    ):
        token_file = write_expired_social_login(emu, directory)
        conn.send((emu.base_url, emu.auth_url, token_file))
        conn.recv()
        conn.send(emu.refresh_count)


async def raw_httpx_burst(model: ChatKiro, base_url: str) -> float:
    """Wall seconds of ``CALLS`` concurrent raw httpx streams of the same request."""
    request, _ = model._start([HumanMessage("Hi")], None, {})
    creds = await KiroAuth(token_file=model.token_file).aget_credentials()
    core = TransportCore.create(
        base_url=base_url, timeout=None, idle_timeout=60.0, max_retries=0, origin="KIRO_CLI"
    )

    async def one(client: httpx.AsyncClient) -> None:
        call = core.generate_call(request, creds, 1, 1)
        async with client.stream(
            call.method, call.url, headers=call.headers, content=call.content
        ) as r:
            async for _ in r.aiter_bytes():
                pass

    async with httpx.AsyncClient() as client:
        start = time.perf_counter()
        await asyncio.gather(*(one(client) for _ in range(CALLS)))
        return time.perf_counter() - start


class _SlowFake(GenericFakeChatModel):
    """langchain-core's fake chat model, answering after the emulator's latency."""

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        await asyncio.sleep(LATENCY)
        async for chunk in super()._astream(*args, **kwargs):
            yield chunk


async def langchain_burst() -> tuple[float, float]:
    """(wall of ``CALLS`` concurrent fake astream calls, wall of one) with the same latency."""
    fake = _SlowFake(messages=iter([AIMessage(EXPECTED)] * (CALLS + 1)))

    async def one() -> None:
        async for _ in fake.astream("Hi"):
            pass

    start = time.perf_counter()
    await one()
    single = time.perf_counter() - start
    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(CALLS)))
    return time.perf_counter() - start, single


async def run(base_url: str, token_file: str) -> tuple[float, float, float, int]:
    """Cold burst (expired token, no connections), warm burst, single-call baseline."""
    model = ChatKiro(base_url=base_url, token_file=token_file)
    cold, results = await burst(model)
    warm, more = await burst(model)
    single = statistics.median([(await one_call(model))[1] for _ in range(5)])
    raw = await raw_httpx_burst(model, base_url)
    fake_burst, fake_single = await langchain_burst()
    print(f"reference: raw httpx burst          {raw * 1000:7.1f} ms  = {raw / single:.2f}x single")
    print(
        f"reference: langchain-core fake burst {fake_burst * 1000:6.1f} ms  = "
        f"{fake_burst / fake_single:.2f}x its single call"
    )
    await model.aclose()
    ok = sum(1 for text, _ in results + more if text == EXPECTED)
    return cold, warm, single, ok


def main() -> None:
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(child,), daemon=True)
    server.start()
    base_url, auth_url, token_file = parent.recv()
    os.environ["KIRO_AUTH_URL"] = auth_url  # where the social-login refresh goes
    try:
        cold, warm, single, ok = asyncio.run(run(base_url, token_file))
    finally:
        parent.send("done")
    refreshes = parent.recv()
    server.join(timeout=10)

    print(f"{CALLS} concurrent astream calls, emulator latency {LATENCY * 1000:.0f} ms")
    print(f"completed with the expected text: {ok}/{2 * CALLS}")
    print(f"token refreshes served:           {refreshes} (expected 1)")
    print(f"single call (median of 5):        {single * 1000:7.1f} ms")
    print(f"cold burst (refresh, new conns):  {cold * 1000:7.1f} ms  = {cold / single:.2f}x single")
    print(f"warm burst (pooled connections):  {warm * 1000:7.1f} ms  = {warm / single:.2f}x single")
    passed = ok == 2 * CALLS and refreshes == 1 and cold / single <= TARGET
    print(f"{'PASS' if passed else 'FAIL'} (target: cold burst <= {TARGET}x single, one refresh)")


if __name__ == "__main__":
    main()
