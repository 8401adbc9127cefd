"""``kiro-lc demo``: a scripted tour of the real kiro-lc stack, offline, without a Kiro account.

An in-process :class:`~kiro_lc.testing.KiroEmulator` plays Kiro on loopback and the tour runs
the same code a user would: ``ChatKiro`` streaming an answer, a tool bound with ``bind_tools``,
called and answered, then the credits the emulator metered and its GetUsageLimits report. Only
the answers are scripted; every request crosses a real socket as real Kiro wire bytes.

While it runs, the ``KIRO_*`` environment variables point at the emulator (and are restored
afterwards), so the user's own settings can neither break the tour nor be used by it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from kiro_lc._cli.output import isatty
from kiro_lc._env import ENVIRONMENT_VARIABLES

if TYPE_CHECKING:
    from langchain_core.messages import AIMessage

    from kiro_lc.chat_models import ChatKiro
    from kiro_lc.testing import KiroEmulator

__all__ = ["STREAM_ANSWER", "TOOL_ANSWER", "run_demo"]

STREAM_PROMPT = "What is kiro-lc, in two sentences?"
STREAM_ANSWER = (
    "kiro-lc lets you use the Claude models of your Kiro account from Python: ChatKiro for "
    "LangChain, %%kiro for notebooks and the kiro-lc command for the shell. It reads the "
    "credentials Kiro already keeps on this machine, so there is nothing to configure."
)
TOOL_PROMPT = "What's the weather in Paris?"
TOOL_ANSWER = "It is sunny and 21 °C in Paris: a fine afternoon for a walk along the Seine."


def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"Sunny, 21 °C in {city}"


@contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    """Replace every ``KIRO_*`` variable by ``variables`` for the duration of the block."""
    saved = {name: os.environ.pop(name) for name in ENVIRONMENT_VARIABLES if name in os.environ}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name in ENVIRONMENT_VARIABLES:
            os.environ.pop(name, None)
        os.environ.update(saved)


class _Printer:
    """Headings, code lines and streamed text, with a little colour on a terminal."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        color = "NO_COLOR" not in os.environ and isatty(out)
        self._bold, self._dim, self._reset = (
            ("\x1b[1m", "\x1b[2m", "\x1b[0m") if color else ("",) * 3
        )

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def bold(self, text: str) -> str:
        return f"{self._bold}{text}{self._reset}"

    def heading(self, text: str) -> None:
        self.line()
        self.line(self.bold(text))

    def code(self, *lines: str) -> None:
        for i, text in enumerate(lines):
            self.line(f"   {self._dim}{'>>>' if i == 0 else '...'} {text}{self._reset}")

    def note(self, text: str) -> None:
        self.line(f"   {self._dim}{text}{self._reset}")

    def stream(self, chunks: Iterator[AIMessage]) -> AIMessage | None:
        """Print the text of ``chunks`` as it arrives; returns the final chunk."""
        self.out.write("   ")
        final = None
        for chunk in chunks:
            self.out.write(chunk.text)
            self.out.flush()
            if getattr(chunk, "chunk_position", None) == "last":
                final = chunk
        self.line()
        return final


class _Tour:
    """The steps of the demo, sharing one emulator, one model and a credits tally."""

    def __init__(self, out: TextIO, emu: KiroEmulator, pace: float) -> None:
        from kiro_lc.chat_models import ChatKiro

        self.p = _Printer(out)
        self.emu = emu
        self.pace = pace
        self.model: ChatKiro = ChatKiro(model="claude-sonnet-4-5")
        self.credits = 0.0

    def _count(self, message: AIMessage | None) -> dict[str, Any]:
        meta = dict(message.response_metadata) if message is not None else {}
        self.credits += float(meta.get("credits") or 0.0)
        return meta

    def intro(self) -> None:
        self.p.line(f"{self.p.bold('kiro-lc demo')}: the real kiro-lc stack, offline.")
        self.p.line(
            f"Kiro is played by a local emulator at {self.emu.base_url}: the answers below are "
            "scripted, not written by Claude, and nothing leaves this machine."
        )

    def streaming(self) -> None:
        from kiro_lc.testing import Reply

        self.emu.script(Reply.text(STREAM_ANSWER, delay_between=self.pace, context_usage=None))
        self.p.heading("1. Streaming an answer with ChatKiro")
        self.p.code("from kiro_lc import ChatKiro")
        self.p.code('model = ChatKiro(model="claude-sonnet-4-5")')
        self.p.code(
            f"for chunk in model.stream({STREAM_PROMPT!r}):", '    print(chunk.text, end="")'
        )
        final = self.p.stream(self.model.stream(STREAM_PROMPT))
        meta = self._count(final)
        usage = final.usage_metadata if final is not None else None
        if usage:
            self.p.note(
                f"The last chunk carries usage: ≈{usage['input_tokens']} tokens in, "
                f"≈{usage['output_tokens']} out (estimated), {meta.get('credits', 0):.3f} credits."
            )

    def tool_call(self) -> None:
        from langchain_core.messages import HumanMessage
        from langchain_core.tools import tool

        from kiro_lc.testing import Reply

        weather = tool(get_weather)
        self.emu.script(
            Reply.tool_call("get_weather", {"city": "Paris"}, context_usage=None),
            Reply.text(TOOL_ANSWER, delay_between=self.pace, context_usage=None),
        )
        self.p.heading("2. Calling a tool")
        self.p.code("@tool", "def get_weather(city: str) -> str: ...")
        self.p.code(f"ai = model.bind_tools([get_weather]).invoke({TOOL_PROMPT!r})")
        with_tools = self.model.bind_tools([weather])
        ai = with_tools.invoke(TOOL_PROMPT)
        self._count(ai)
        call = ai.tool_calls[0]
        self.p.note(f"The model asked for {call['name']}({call['args']}); the tour runs it:")
        result = weather.invoke(call)
        self.p.code("result = get_weather.invoke(ai.tool_calls[0])")
        self.p.note(f"-> {result.content!r}. The result goes back to the model:")
        self.p.code("model.bind_tools([get_weather]).stream([question, ai, result])")
        final = self.p.stream(with_tools.stream([HumanMessage(TOOL_PROMPT), ai, result]))
        self._count(final)
        if _sent_tool_result(self.emu):
            self.p.note("(Kiro received the tool result as toolResults in the last request.)")

    def usage(self) -> None:
        from kiro_lc._cli.account import format_usage
        from kiro_lc.auth import KiroAuth
        from kiro_lc.transport import KiroTransport

        self.p.heading("3. Usage and credits")
        chats = sum(1 for r in self.emu.requests if r.operation == "GenerateAssistantResponse")
        self.p.line(
            f"   This tour: {chats} requests, {self.credits:.3f} credits (metered as Kiro does)."
        )
        self.p.line("   $ kiro-lc usage")
        with KiroTransport(KiroAuth()) as transport:
            report = format_usage(transport.get_usage_limits())
        for text in report.splitlines():
            self.p.line(f"   {text}")

    def outro(self, seconds: float) -> None:
        self.p.heading(f"Done in {seconds:.1f} s.")
        self.p.line("Every answer above came from the local emulator, not from Claude.")
        self.p.line("To use your own Kiro account:")
        self.p.line("  1. Sign in once: open the Kiro IDE and log in, or run `kiro-cli login`.")
        self.p.line("  2. kiro-lc status          shows the credentials kiro-lc found")
        self.p.line('  3. kiro-lc chat "hello"    streams a real answer from Claude')
        self.p.line('  4. Python: ChatKiro(model="claude-sonnet-4-5").invoke("hello")')
        self.p.line(
            "Test your own agents offline against kiro_lc.testing.KiroEmulator "
            "(see docs/testing.md)."
        )


def _sent_tool_result(emu: KiroEmulator) -> bool:
    """Whether the last chat request carried a tool result (what the tour just did)."""
    body: Any = emu.requests[-1].body if emu.requests else None
    try:
        message = body["conversationState"]["currentMessage"]["userInputMessage"]
        return bool(message["userInputMessageContext"].get("toolResults"))
    except (KeyError, TypeError, AttributeError):
        return False


def run_demo(out: TextIO, *, pace: float = 0.03) -> int:
    """Run the tour, printing to ``out``; ``pace`` is the pause between streamed chunks.

    Returns the exit status (0). Kiro errors propagate (they would be kiro-lc bugs here).
    """
    from kiro_lc.testing import KiroEmulator

    started = time.monotonic()
    with KiroEmulator() as emu, _environment(emu.env()):
        tour = _Tour(out, emu, pace)
        tour.intro()
        tour.streaming()
        tour.tool_call()
        tour.usage()
    tour.outro(time.monotonic() - started)
    return 0
