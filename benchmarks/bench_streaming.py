"""Streaming overhead of ``ChatKiro.stream`` against its floor, measured in the same run.

The emulator streams a reply of 5,001 text frames (2,501 words and the spaces between them). It
runs in a child process, as a real Kiro would be remote: in-process, its server thread would
compete with the client for the GIL and blur what is measured.

* **ChatKiro**: ``ChatKiro.stream(...)`` consumed to the end: HTTP, event-stream decoding, event
  parsing, chunk assembly and langchain-core's own ``stream()`` machinery.
* **floor**: a raw ``httpx`` read of the same response bytes from the same emulator (identical
  request) **plus** langchain-core's per-chunk cost: ``GenericFakeChatModel.stream`` of the very
  same 5,001 chunks.

Target: ChatKiro ≤ 1.3 × floor. Run: ``python benchmarks/bench_streaming.py``.
"""

from __future__ import annotations

import multiprocessing
import re
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

if __package__ is None:  # run as a script from a checkout: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGenerationChunk

from kiro_lc._assemble import ChunkAssembler
from kiro_lc._http import TransportCore
from kiro_lc._stream_reader import StreamReader
from kiro_lc.auth import KiroAuth
from kiro_lc.chat_models import ChatKiro
from kiro_lc.protocol import KiroEvent
from kiro_lc.testing import KiroEmulator, Reply

WORDS = 2501
ROUNDS = 7
TARGET = 1.3
PROMPT = "Stream a long answer."


def reply_text() -> str:
    return " ".join(f"word{i:04d}" for i in range(WORDS))


def pieces(text: str) -> list[str]:
    """The chunks GenericFakeChatModel streams for ``text``; the emulator sends the same."""
    return [p for p in re.split(r"(\s)", text) if p]


def timed(run: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of one call of ``run`` (CPU: this process only, not the emulator)."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def serve(conn: Connection, replies: int) -> None:
    """Child process: an emulator with ``replies`` long answers queued, until told to stop."""
    text = reply_text()
    with KiroEmulator(split_frames=0.0) as emu:
        emu.script(*[Reply.text(text, chunk_size=pieces(text)) for _ in range(replies)])
        conn.send((emu.base_url, emu.api_key))
        conn.recv()


def main() -> None:
    text = reply_text()
    chunks = pieces(text)
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(
        target=serve, args=(child, 2 * (ROUNDS + 1)), daemon=True
    )
    server.start()
    base_url, api_key = parent.recv()
    model = ChatKiro(base_url=base_url, api_key=api_key)

    def run_chatkiro() -> None:
        out = "".join(str(c.content) for c in model.stream(PROMPT))
        assert out == text, "ChatKiro returned different text"

    request, _ = model._start([HumanMessage(PROMPT)], None, {})
    auth = KiroAuth(api_key=api_key)
    core = TransportCore.create(
        base_url=base_url, timeout=None, idle_timeout=60.0, max_retries=0, origin="KIRO_CLI"
    )
    client = httpx.Client()

    body: list[bytes] = []  # the reads of the first raw run, replayed offline by breakdown()

    def run_raw_http() -> None:
        call = core.generate_call(request, auth.get_credentials(), 1, 1)
        keep = not body
        with client.stream(call.method, call.url, headers=call.headers, content=call.content) as r:
            for data in r.iter_bytes():
                if keep:
                    body.append(data)

    def run_fake_model() -> None:
        fake = GenericFakeChatModel(messages=iter([AIMessage(content=text)]))
        assert sum(1 for _ in fake.stream(PROMPT)) == len(chunks)

    runs: dict[str, Callable[[], None]] = {
        "chatkiro": run_chatkiro,
        "raw": run_raw_http,
        "fake": run_fake_model,
    }
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    try:
        for run in runs.values():  # warm-up: connections, imports, caches
            run()
        for _ in range(ROUNDS):  # interleaved, so drift in machine load hits all three alike
            for name, run in runs.items():
                samples[name].append(timed(run))
    finally:
        client.close()
        model.close()
        parent.send("stop")
        server.join(timeout=10)
    report(len(chunks), samples)
    breakdown(body, request.model_id)


def best(values: list[tuple[float, float]], which: int) -> float:
    """The fastest sample: for a fixed workload, noise from other processes only adds time."""
    return min(v[which] for v in values)


def report(frames: int, samples: dict[str, list[tuple[float, float]]]) -> None:
    """Print wall and CPU times, the floor and the ratios; the CPU ratio is the verdict."""
    print(f"reply: {frames:,} text frames; {ROUNDS} interleaved rounds, best of each")
    print(f"{'':38}{'wall ms':>9}{'cpu ms':>9}")
    rows = [
        ("raw httpx read of the same bytes", "raw"),
        ("GenericFakeChatModel, same chunks", "fake"),
        ("ChatKiro.stream", "chatkiro"),
    ]
    for label, key in rows:
        print(f"{label:38}{best(samples[key], 0) * 1000:9.1f}{best(samples[key], 1) * 1000:9.1f}")
    ratios = []
    for which, kind in ((0, "wall"), (1, "cpu")):
        floor = best(samples["raw"], which) + best(samples["fake"], which)
        ratio = best(samples["chatkiro"], which) / floor
        ratios.append(ratio)
        print(f"ratio ChatKiro / floor ({kind}){'':13}{ratio:9.2f}x   floor {floor * 1000:.1f} ms")
    per_frame = best(samples["chatkiro"], 1) / frames * 1e6
    print(f"ChatKiro CPU per frame: {per_frame:.1f} us")
    verdict = "PASS" if ratios[1] <= TARGET else "FAIL"
    print(f"{verdict}: CPU ratio {ratios[1]:.2f}x (target <= {TARGET}x)")


def breakdown(body: list[bytes], model_id: str) -> None:
    """Offline CPU of the two kiro-lc stages between the socket and LangChain, on the same reads."""

    def decode() -> list[KiroEvent]:
        reader = StreamReader(model_id=model_id)
        return [event for data in body for event in reader.feed(data)]

    events = decode()

    def assemble() -> None:
        assembler = ChunkAssembler(model_name=model_id)
        for event in events:
            for chunk in assembler.add(event):
                ChatGenerationChunk(message=chunk)
        assembler.finish()

    def cpu(run: Callable[[], object]) -> float:
        return min(timed(run)[1] for _ in range(ROUNDS))

    frames = len(events)
    print("where ChatKiro's CPU goes beyond the socket (offline replay of the same reads):")
    for label, run in (
        ("decode + parse (StreamReader)", decode),
        ("assemble + chunk objects", assemble),
    ):
        spent = cpu(run)
        print(f"  {label:36}{spent * 1000:9.1f} ms  {spent / frames * 1e6:6.1f} us/frame")


if __name__ == "__main__":
    main()
